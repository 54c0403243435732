// Package auditfwd sends the audit log off the box as it is written: every
// entry, with its place in the chain, to the clinic's syslog collector or
// SIEM as RFC 5424 messages over TLS (RFC 5425), and at intervals a
// checkpoint of the chain's head. A copy the appliance's root user cannot
// reach is what catches a log rewritten with the key (issue 16).
//
// The audit table is the queue: the forwarder reads it from a durable
// cursor (store.AuditForwardState) and never holds more than one batch in
// memory, so a restart or a long outage loses nothing and costs no memory.
// It must never sit in the path of a login: a collector that is down,
// slow or hanging only delays the copy. It never sends in plaintext and
// never skips the collector's certificate check.
package auditfwd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Forwarder sends the log to the collector the store names. Build it with
// New; Run it for the daemon's lifetime.
type Forwarder struct {
	log    *audit.Log
	store  *store.Store
	logger *slog.Logger

	// Hostname is the HOSTNAME of every message (default: the system's).
	Hostname string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts (defaults 1 s and 30 s); it doubles from one to the other.
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often the table and the settings are read again
	// without a signal (default 1 s): entries written by another process
	// (the command line) and changed settings are seen within it.
	Poll time.Duration
	// DialTimeout bounds the connection and TLS handshake (default 10 s).
	DialTimeout time.Duration
	// StopTimeout bounds the last flush and checkpoint when Run's
	// context ends (default 5 s).
	StopTimeout time.Duration
	// AckGrace is how long the connection must stay up after the
	// collector's TCP acknowledged an entry before it counts as delivered
	// (default 2 s). RFC 5425 has no acknowledgement of its own, and a
	// collector that closes with entries unread in its socket loses them:
	// those are sent again after the reconnection instead.
	AckGrace time.Duration

	mu    sync.Mutex
	state store.AuditForwardState
}

// New builds a forwarder over the audit log (and its store).
func New(l *audit.Log, logger *slog.Logger) (*Forwarder, error) {
	if l == nil || logger == nil {
		return nil, errors.New("auditfwd: needs the audit log and a logger")
	}
	host, _ := os.Hostname()
	return &Forwarder{log: l, store: l.Store(), logger: logger, Hostname: host, Now: time.Now,
		MinBackoff: time.Second, MaxBackoff: 30 * time.Second, Poll: time.Second, DialTimeout: 10 * time.Second, StopTimeout: 5 * time.Second, AckGrace: 2 * time.Second}, nil
}

// Heartbeat is how often a connected forwarder records its state even
// when nothing moves.
const Heartbeat = 30 * time.Second

// batch bounds what is read from the table and written at once.
const batch = 256

// Run forwards until ctx ends, then sends what is left and a last
// checkpoint within StopTimeout. It returns only then.
func (f *Forwarder) Run(ctx context.Context) {
	if st, err := f.store.AuditForwardState(ctx); err == nil {
		f.mu.Lock()
		f.state = st
		f.state.Connected = false
		f.mu.Unlock()
	}
	backoff := f.MinBackoff
	for ctx.Err() == nil {
		cfg, err := f.store.AuditForward(ctx)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !cfg.Enabled) {
			f.setConnected(ctx, false, "")
			sleep(ctx, f.Poll)
			continue
		}
		if err != nil {
			f.setConnected(ctx, false, "reading the forwarding settings: "+err.Error())
			sleep(ctx, f.Poll)
			continue
		}
		conn, err := f.dial(ctx, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.logger.Warn("audit forwarding: cannot reach the collector; entries wait in the audit table", "collector", cfg.Address, "err", err, "retry_in", backoff)
			f.setConnected(ctx, false, err.Error())
			sleep(ctx, jitter(backoff))
			backoff = min(backoff*2, f.MaxBackoff)
			continue
		}
		backoff = f.MinBackoff
		f.logger.Info("audit forwarding: connected", "collector", cfg.Address)
		err = f.session(ctx, conn, cfg)
		conn.Close()
		if err != nil {
			f.logger.Warn("audit forwarding: connection lost; entries not acknowledged are sent again", "collector", cfg.Address, "err", err)
			f.setConnected(ctx, false, err.Error())
			sleep(ctx, jitter(f.MinBackoff))
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// TLSConfig is the client side of RFC 5425 for cfg: the collector must
// present a certificate from cfg's CA for the address's host name (or IP
// address), TLS 1.2 at least, with the client certificate when one is set.
func TLSConfig(cfg store.AuditForward) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil || host == "" {
		return nil, fmt.Errorf("the collector address %q is not host:port", cfg.Address)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cfg.CAPEM)) {
		return nil, errors.New("the collector's CA holds no PEM certificate")
	}
	tc := &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CertPEM != "" {
		cert, err := tls.X509KeyPair([]byte(cfg.CertPEM), cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("the client certificate and key do not load: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (f *Forwarder) dial(ctx context.Context, cfg store.AuditForward) (*tls.Conn, error) {
	tc, err := TLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: f.DialTimeout, KeepAlive: 30 * time.Second}, Config: tc}
	dctx, cancel := context.WithTimeout(ctx, f.DialTimeout)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", cfg.Address)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// session sends over one connection until it fails (an error), the
// settings change (nil) or ctx ends (nil, after the last flush).
func (f *Forwarder) session(ctx context.Context, conn *tls.Conn, cfg store.AuditForward) error {
	st, err := f.store.AuditForwardState(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state.SentSeq = max(f.state.SentSeq, st.SentSeq)
	acked := f.state.SentSeq
	f.mu.Unlock()
	written := acked
	w := bufio.NewWriter(conn)
	pid := os.Getpid()
	// The collector never speaks in RFC 5425: a read that returns means
	// it closed the connection, which a write would notice only later.
	closed := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := conn.Read(b[:])
		if err == nil {
			err = errors.New("the collector sent data, which RFC 5425 collectors never do")
		}
		closed <- err
	}()
	send := func(deadline time.Time, msgs ...[]byte) error {
		_ = conn.SetWriteDeadline(deadline)
		for _, m := range msgs {
			if _, err := w.Write(frame(m)); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	checkpoint := func(cctx context.Context, deadline time.Time) error {
		seq, hash, err := f.store.AuditHead(cctx)
		if err != nil {
			return err
		}
		now := f.Now()
		rec := f.log.CheckpointRecord(store.AuditPoint{Seq: seq, Hash: hash}, now)
		if err := send(deadline, message(sevNotice, now, f.Hostname, pid, "checkpoint", rec)); err != nil {
			return err
		}
		f.mu.Lock()
		f.state.CheckpointSeq, f.state.CheckpointAt = seq, now
		f.mu.Unlock()
		return nil
	}
	// pump sends the entries after written, a batch at a time, up to
	// most batches (0: all); more says entries are left.
	pump := func(pctx context.Context, deadline time.Time, most int) (more bool, err error) {
		for n := 0; most == 0 || n < most; n++ {
			rows, err := f.store.AuditRows(pctx, store.AuditFilter{AfterSeq: written, Limit: batch})
			if err != nil {
				return false, err
			}
			if len(rows) == 0 {
				return false, nil
			}
			msgs := make([][]byte, len(rows))
			for i, r := range rows {
				msgs[i] = message(sevInfo, r.At, f.Hostname, pid, "entry", audit.EntryRecord(r))
			}
			if err := send(deadline, msgs...); err != nil {
				return false, err
			}
			written = rows[len(rows)-1].Seq
			if len(rows) < batch {
				return false, nil
			}
		}
		return true, nil
	}
	// marks are points the collector's TCP had acknowledged everything
	// up to, and when; each becomes the delivered cursor once the
	// connection has outlived it by AckGrace.
	type mark struct {
		seq int64
		at  time.Time
	}
	var marks []mark
	ack := func(final bool) {
		now := time.Now()
		if n, ok := unacked(conn.NetConn()); (!ok || n == 0) && (len(marks) == 0 || marks[len(marks)-1].seq < written) && written > acked {
			if len(marks) < 64 {
				marks = append(marks, mark{written, now})
			} else {
				marks[len(marks)-1] = mark{written, now}
			}
		}
		for len(marks) > 0 && (final || now.Sub(marks[0].at) >= f.AckGrace) {
			acked, marks = marks[0].seq, marks[1:]
		}
	}
	if err := checkpoint(ctx, time.Now().Add(30*time.Second)); err != nil {
		return err
	}
	f.setConnected(ctx, true, "")
	every := cfg.Checkpoint
	if every <= 0 {
		every = 10 * time.Minute
	}
	nextCheckpoint := time.Now().Add(every)
	poll := time.NewTicker(f.Poll)
	defer poll.Stop()
	lastSaved, dirty := time.Time{}, false
	for {
		// A long backlog (forwarding just set up on a big log, or a long
		// outage) goes out a few thousand entries at a time, with the
		// cursor saved and the checkpoints sent in between.
		more, err := pump(ctx, time.Now().Add(30*time.Second), 16)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if time.Now().After(nextCheckpoint) {
			if err := checkpoint(ctx, time.Now().Add(30*time.Second)); err != nil {
				return err
			}
			nextCheckpoint = time.Now().Add(every)
		}
		ack(false)
		// Progress is saved at most once per Poll, and at least every
		// heartbeat, so `audit forward show` can tell a live connection
		// from a daemon that stopped reporting.
		dirty = f.advance(acked) || dirty
		if (dirty && time.Since(lastSaved) >= f.Poll) || time.Since(lastSaved) >= Heartbeat {
			f.save(ctx)
			lastSaved, dirty = time.Now(), false
		}
		if more {
			select {
			case err := <-closed:
				return fmt.Errorf("the collector closed the connection: %w", err)
			default:
				if ctx.Err() == nil {
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
		case err := <-closed:
			return fmt.Errorf("the collector closed the connection: %w", err)
		case <-f.log.Committed():
		case <-poll.C:
			now, err := f.store.AuditForward(ctx)
			if err == nil && (!now.Enabled || !now.Updated.Equal(cfg.Updated)) {
				// The entry recording the change goes to the collector
				// that was in place, with a last checkpoint: turning
				// forwarding off is itself on the copy.
				deadline := time.Now().Add(10 * time.Second)
				if _, err := pump(ctx, deadline, 0); err != nil {
					return err
				}
				if err := checkpoint(ctx, deadline); err != nil {
					return err
				}
				f.logger.Info("audit forwarding: the settings changed; reconnecting")
				f.save(ctx)
				return nil
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	// Stopping: what is left, then the last checkpoint, then wait a
	// little for the collector to acknowledge, so the cursor saved is
	// the true one.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.StopTimeout)
	defer cancel()
	deadline, _ := sctx.Deadline()
	_, err = pump(sctx, deadline, 0)
	if err == nil {
		err = checkpoint(sctx, deadline)
	}
	// Our side closes: what the collector's TCP has is read by it.
	for err == nil && sctx.Err() == nil {
		if n, ok := unacked(conn.NetConn()); !ok || n == 0 {
			break
		}
		sleep(sctx, 20*time.Millisecond)
	}
	if err == nil {
		ack(true)
	}
	f.advance(acked)
	f.mu.Lock()
	f.state.Connected = false
	f.mu.Unlock()
	f.save(sctx)
	return nil
}

// advance moves the delivered cursor; it reports whether it moved.
func (f *Forwarder) advance(seq int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq <= f.state.SentSeq {
		return false
	}
	f.state.SentSeq, f.state.SentAt = seq, f.Now()
	return true
}

func (f *Forwarder) setConnected(ctx context.Context, on bool, lastErr string) {
	f.mu.Lock()
	// Saved on a change, and at least every heartbeat while retrying,
	// so a daemon that keeps failing to connect is not taken for one
	// that stopped reporting.
	// An idle forwarder (not set up, or off) keeps the last error for
	// `audit forward show`.
	keepErr := !on && lastErr == ""
	changed := f.state.Connected != on || (!keepErr && f.state.LastError != lastErr) || f.state.StateAt.IsZero() ||
		(lastErr != "" && f.Now().Sub(f.state.StateAt) >= Heartbeat)
	f.state.Connected = on
	if !keepErr {
		f.state.LastError = lastErr
	}
	f.mu.Unlock()
	if changed {
		f.save(ctx)
	}
}

func (f *Forwarder) save(ctx context.Context) {
	f.mu.Lock()
	f.state.StateAt = f.Now()
	st := f.state
	f.mu.Unlock()
	if err := f.store.SetAuditForwardState(ctx, st); err != nil && ctx.Err() == nil {
		f.logger.Warn("audit forwarding: cannot record its progress", "err", err)
	}
}

// State is the forwarder's state as this process sees it.
func (f *Forwarder) State() store.AuditForwardState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}
