package sntp_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/internal/sntp"
	"github.com/clinicgate/clinicgate/internal/sntp/sntptest"
)

func TestOffsetAgainstChrony(t *testing.T) {
	addr := sntptest.Chrony(t, true)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	r, err := sntp.Query(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stratum != 8 || r.Offset.Abs() > time.Second || r.RTT < 0 {
		t.Fatalf("%+v, want stratum 8 and about no offset", r)
	}
	// This machine's clock 47 s slow, as a Pi without its RTC after a
	// power cut: the server is 47 s ahead.
	slow := func() time.Time { return time.Now().Add(-47 * time.Second) }
	r, err = sntp.Query(ctx, addr, slow)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Offset - 47*time.Second; d.Abs() > time.Second {
		t.Fatalf("offset %v with the clock 47 s slow", r.Offset)
	}
}

func TestUnsynchronisedServerIsNotTrusted(t *testing.T) {
	addr := sntptest.Chrony(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := sntp.Query(ctx, addr, nil); !errors.Is(err, sntp.ErrUnsynchronised) {
		t.Fatalf("got %v, want sntp.ErrUnsynchronised", err)
	}
}

// An answer that does not echo the request is not taken, however
// plausible its time (an off-path spoofer's): the query times out.
func TestSpoofedAnswerIgnored(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 128)
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		ans := make([]byte, 48)
		ans[0], ans[1] = 4<<3|4, 2
		now := uint64(time.Now().Add(time.Hour).Sub(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)).Seconds()) << 32
		for _, off := range []int{32, 40} {
			for i := range 8 {
				ans[off+i] = byte(now >> (56 - 8*i))
			}
		}
		_, _ = pc.WriteTo(ans, from) // origin left zero
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if r, err := sntp.Query(ctx, pc.LocalAddr().String(), nil); err == nil {
		t.Fatalf("took a spoofed answer: %+v", r)
	}
}
