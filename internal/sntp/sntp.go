// Package sntp asks an NTP server for the time (SNTP, RFC 4330, over the
// NTPv4 packet of RFC 5905) to measure how far this machine's clock is
// off. TOTP codes are only good within a step or two of 30 s: a clock off
// by more than that refuses every code, and nothing else would say why.
//
// It only measures: it never sets the clock (systemd-timesyncd does), and
// it trusts an answer only if it echoes the request's transmit time, comes
// from a synchronised server (stratum 1–15, leap indicator not 3) and
// arrives within the timeout.
package sntp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultPort is NTP's.
const DefaultPort = "123"

// ntpEpoch is 1900-01-01, where NTP time starts.
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is one measurement.
type Result struct {
	Server  string        // host:port asked
	Offset  time.Duration // the server's time minus ours (positive: we are behind)
	RTT     time.Duration // round trip, minus the server's own time
	Stratum int
}

// Errors of an answer not trusted.
var (
	ErrUnsynchronised = errors.New("the server says its own clock is not synchronised")
	ErrMalformed      = errors.New("not an NTP server answer")
)

func toNTP(t time.Time) uint64 {
	d := t.Sub(ntpEpoch)
	sec := uint64(d / time.Second)
	frac := uint64(d%time.Second) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

func fromNTP(v uint64) time.Time {
	sec, frac := v>>32, v&0xffffffff
	return ntpEpoch.Add(time.Duration(sec)*time.Second + time.Duration(frac*uint64(time.Second)>>32))
}

// Query asks server (host or host:port) once. now is the local clock
// (time.Now outside tests).
func Query(ctx context.Context, server string, now func() time.Time) (Result, error) {
	if now == nil {
		now = time.Now
	}
	addr := server
	if _, _, err := net.SplitHostPort(server); err != nil {
		addr = net.JoinHostPort(server, DefaultPort)
	}
	r := Result{Server: addr}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return r, err
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now().Add(3 * time.Second)
	}
	_ = c.SetDeadline(deadline)

	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // no leap warning, version 4, client
	// The transmit field's fraction is random, not our time: an answer
	// must echo all 64 bits, which an off-path attacker cannot guess.
	// The server only echoes it, so the sums below use t1 itself.
	t1 := now()
	var noise [4]byte
	if _, err := rand.Read(noise[:]); err != nil {
		return r, err
	}
	xmt := toNTP(t1)&^0xffffffff | uint64(binary.BigEndian.Uint32(noise[:]))
	binary.BigEndian.PutUint64(req[40:], xmt)
	if _, err := c.Write(req); err != nil {
		return r, err
	}
	buf := make([]byte, 128)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return r, err
		}
		t4 := now()
		if n < 48 {
			return r, fmt.Errorf("%w: %d bytes", ErrMalformed, n)
		}
		if binary.BigEndian.Uint64(buf[24:]) != xmt {
			continue // not the answer to this request: wait for it
		}
		leap, mode := buf[0]>>6, buf[0]&7
		r.Stratum = int(buf[1])
		switch {
		case mode != 4 && mode != 5:
			return r, fmt.Errorf("%w: mode %d", ErrMalformed, mode)
		case leap == 3 || r.Stratum == 0 || r.Stratum > 15:
			return r, ErrUnsynchronised
		}
		t2 := fromNTP(binary.BigEndian.Uint64(buf[32:]))
		t3 := fromNTP(binary.BigEndian.Uint64(buf[40:]))
		if binary.BigEndian.Uint64(buf[40:]) == 0 {
			return r, fmt.Errorf("%w: no transmit time", ErrMalformed)
		}
		// RFC 5905 8: offset ((T2 - T1) + (T3 - T4)) / 2, delay
		// (T4 - T1) - (T3 - T2).
		r.Offset = (t2.Sub(t1) + t3.Sub(t4)) / 2
		r.RTT = t4.Sub(t1) - t3.Sub(t2)
		return r, nil
	}
}
