package auditfwd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/auditfwd"
	"github.com/clinicgate/clinicgate/appliance/auditfwd/auditfwdtest"
	"github.com/clinicgate/clinicgate/appliance/store"
)

type env struct {
	st  *store.Store
	log *audit.Log
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := audit.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return &env{st: st, log: l}
}

func (e *env) configure(t *testing.T, f store.AuditForward) {
	t.Helper()
	f.Enabled, f.Updated = true, time.Now()
	if err := e.st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.SetAuditForward(t.Context(), f) }); err != nil {
		t.Fatal(err)
	}
}

func (e *env) append(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindDecision, User: fmt.Sprintf("user%d", i), Outcome: "accept", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
}

// running is a forwarder in a goroutine; stop ends it and waits.
type running struct {
	f      *auditfwd.Forwarder
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *env) start(t *testing.T) *running {
	t.Helper()
	f, err := auditfwd.New(e.log, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.Hostname, f.Poll, f.MinBackoff, f.MaxBackoff, f.DialTimeout, f.AckGrace = "clinic-gw", 20*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, cancel: cancel, done: make(chan struct{})}
	go func() { f.Run(ctx); close(r.done) }()
	var once sync.Once
	t.Cleanup(func() { once.Do(r.stop) })
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

var msgRE = regexp.MustCompile(`^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) clinic-gw clinicgate \d+ (entry|checkpoint) - @cgaudit1 \{"t":"(entry|checkpoint)","seq":(\d+),`)

// seqs parses the collector's messages: the entry numbers received and
// the checkpoints' numbers, in order.
func seqs(t *testing.T, msgs []string) (entries, checkpoints []int64) {
	t.Helper()
	for _, m := range msgs {
		p := msgRE.FindStringSubmatch(m)
		if p == nil {
			t.Fatalf("not an RFC 5424 message as sent by clinicgate: %q", m)
		}
		n, _ := strconv.ParseInt(p[5], 10, 64)
		switch {
		case p[3] == "entry" && p[1] == "110":
			entries = append(entries, n)
		case p[3] == "checkpoint" && p[1] == "109":
			checkpoints = append(checkpoints, n)
		default:
			t.Fatalf("priority %s for a %s: want 110 (log audit, info) for entries and 109 (notice) for checkpoints", p[1], p[3])
		}
	}
	return entries, checkpoints
}

// waitFor polls cond; the deadline only keeps a broken forwarder from
// hanging the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting: %s", what)
}

// covers reports whether got holds every number from 1 to n.
func covers(got []int64, n int64) bool {
	seen := map[int64]bool{}
	for _, s := range got {
		seen[s] = true
	}
	for i := int64(1); i <= n; i++ {
		if !seen[i] {
			return false
		}
	}
	return true
}

func TestEveryEntryForwardedInOrderWithCheckpoints(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	col := auditfwdtest.NewCollector(t, ca, nil)
	e.append(t, 3) // written before forwarding was set up: sent too
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ca.CertPEM), Checkpoint: time.Hour})
	r := e.start(t)
	e.append(t, 300) // more than one batch
	waitFor(t, "303 entries at the collector", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, 303) })
	r.stop()
	waitFor(t, "the stop checkpoint", func() bool { _, cps := seqs(t, col.Messages()); return len(cps) >= 2 })

	entries, cps := seqs(t, col.Messages())
	for i, s := range entries {
		if s != int64(i+1) {
			t.Fatalf("entry %d arrived as number %d: want every entry once, in order", s, i+1)
		}
	}
	if len(cps) != 2 || cps[1] != 303 {
		t.Fatalf("checkpoints: got %v, want one at the start and one of entry 303 at the stop", cps)
	}
	msgs := col.Messages()
	if !strings.HasPrefix(msgs[0], "<109>1 ") {
		t.Errorf("first message: got %.60q, want the start checkpoint", msgs[0])
	}
	// What the collector holds is a copy the log verifies against.
	rep, err := e.log.VerifyAgainst(t.Context(), strings.NewReader(strings.Join(msgs, "\n")))
	if err != nil || !rep.OK() || rep.Compared != 303 || rep.CopyCheckpoints != 2 {
		t.Fatalf("VerifyAgainst the collector's copy: got %+v, %v", rep, err)
	}
	st, err := e.st.AuditForwardState(t.Context())
	if err != nil || st.SentSeq != 303 || st.CheckpointSeq != 303 || st.Connected {
		t.Fatalf("state after stop: got %+v, %v; want sent 303, checkpoint 303, not connected", st, err)
	}
	if errs := col.Errors(); len(errs) > 0 {
		t.Fatalf("collector: %v", errs)
	}
}

// TestCollectorDownNeverBlocksTheLog: a collector that accepts the TCP
// connection and then says nothing (the worst case: no refusal to act
// on) only delays the copy; appends go on.
func TestCollectorDownNeverBlocksTheLog(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	e.configure(t, store.AuditForward{Address: mute.Addr().String(), CAPEM: string(ca.CertPEM)})
	e.start(t)
	e.append(t, 50)
	waitFor(t, "the failure recorded", func() bool {
		st, _ := e.st.AuditForwardState(t.Context())
		return !st.Connected && st.LastError != ""
	})
	st, _ := e.st.AuditForwardState(t.Context())
	if st.SentSeq != 0 {
		t.Errorf("sent cursor: got %d, want 0 (nothing reached a collector)", st.SentSeq)
	}
}

// TestQueueSurvivesARestart: entries written while no forwarder runs
// (a daemon restart, a long outage) are sent by the next one, from the
// durable cursor, with no gap.
func TestQueueSurvivesARestart(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	col := auditfwdtest.NewCollector(t, ca, nil)
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ca.CertPEM)})
	r := e.start(t)
	e.append(t, 5)
	waitFor(t, "5 entries", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, 5) })
	r.stop()
	e.append(t, 7)
	before := len(col.Messages())
	e.start(t)
	waitFor(t, "12 entries", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, 12) })
	got, _ := seqs(t, col.Messages()[before:])
	if len(got) == 0 || got[0] > 6 {
		t.Fatalf("after the restart the first entry sent was %v, want at most 6 (the first not yet delivered)", got)
	}
}

// TestDroppedConnectionLosesNothing: the collector restarts while
// entries flow; entries not acknowledged are sent again.
func TestDroppedConnectionLosesNothing(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	col := auditfwdtest.NewCollector(t, ca, nil)
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ca.CertPEM)})
	e.start(t)
	for round := range 5 {
		e.append(t, 20)
		col.Drop()
		e.append(t, 5)
		n := int64(25 * (round + 1))
		waitFor(t, fmt.Sprintf("%d entries", n), func() bool { got, _ := seqs(t, col.Messages()); return covers(got, n) })
	}
}

func TestCollectorFromAnotherCARefused(t *testing.T) {
	e := newEnv(t)
	ours := auditfwdtest.NewCA(t, "clinic syslog CA")
	rogue := auditfwdtest.NewCA(t, "rogue CA")
	col := auditfwdtest.NewCollector(t, rogue, nil)
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ours.CertPEM)})
	e.start(t)
	e.append(t, 3)
	waitFor(t, "the refusal recorded", func() bool {
		st, _ := e.st.AuditForwardState(t.Context())
		return strings.Contains(st.LastError, "certificate")
	})
	if msgs := col.Messages(); len(msgs) > 0 {
		t.Fatalf("a collector with a certificate from another CA received %d messages", len(msgs))
	}
}

// TestNeverSentInPlaintext: a plain TCP listener on the collector's
// address gets a TLS handshake and nothing else.
func TestNeverSentInPlaintext(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var got []byte
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				b, _ := io.ReadAll(c)
				mu.Lock()
				got = append(got, b...)
				mu.Unlock()
			}()
		}
	}()
	e.append(t, 3)
	e.configure(t, store.AuditForward{Address: ln.Addr().String(), CAPEM: string(ca.CertPEM)})
	e.start(t)
	waitFor(t, "a connection attempt", func() bool {
		st, _ := e.st.AuditForwardState(t.Context())
		mu.Lock()
		defer mu.Unlock()
		return st.LastError != "" && len(got) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0] != 0x16 || strings.Contains(string(got), "cgaudit") || strings.Contains(string(got), "user0") {
		t.Fatalf("a plain listener received %q: want only a TLS ClientHello", got)
	}
}

func TestClientCertificatePresented(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	col := auditfwdtest.NewCollector(t, ca, ca)
	cert, key := ca.Issue(t, "clinicgate-gw")
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ca.CertPEM), CertPEM: string(cert), Key: key})
	e.start(t)
	e.append(t, 2)
	waitFor(t, "2 entries", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, 2) })
	if col.ClientCerts[0] != "clinicgate-gw" {
		t.Fatalf("client certificate: got %q", col.ClientCerts)
	}
	f, err := e.st.AuditForward(t.Context())
	if err != nil || string(f.Key) != string(key) {
		t.Fatalf("the key does not read back: %v", err)
	}
}

// TestTurningForwardingOffIsOnTheCopy: the entry recording `audit forward
// off` reaches the collector before forwarding stops.
func TestTurningForwardingOffIsOnTheCopy(t *testing.T) {
	e := newEnv(t)
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	col := auditfwdtest.NewCollector(t, ca, nil)
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ca.CertPEM)})
	e.start(t)
	e.append(t, 2)
	waitFor(t, "2 entries", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, 2) })
	// Stop the forwarder from seeing the commit at once: the change and
	// its entry land in one transaction, as admin does.
	if err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.SetAuditForwardEnabled(t.Context(), false, time.Now()); err != nil {
			return err
		}
		_, err := e.log.AppendTx(t.Context(), tx, audit.Entry{Kind: audit.KindAdmin, Reason: "audit_forward", Detail: "audit forwarding turned off"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the entry of the change", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, 3) })
	waitFor(t, "the forwarder to stop", func() bool {
		st, _ := e.st.AuditForwardState(t.Context())
		return !st.Connected
	})
	e.append(t, 1)
	time.Sleep(200 * time.Millisecond) // several polls: nothing more may go out
	if got, _ := seqs(t, col.Messages()); covers(got, 4) {
		t.Fatal("entry 4, written after forwarding was turned off, was sent")
	}
}

// TestLongBacklogSentInOrder: a backlog longer than one round of batches
// (forwarding set up on a big log) goes out whole and in order.
func TestLongBacklogSentInOrder(t *testing.T) {
	e := newEnv(t)
	const n = 5000
	if err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		for i := range n {
			if _, err := e.log.AppendTx(t.Context(), tx, audit.Entry{Kind: audit.KindDecision, User: fmt.Sprintf("u%d", i), Outcome: "accept", Reason: "ok"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ca := auditfwdtest.NewCA(t, "clinic syslog CA")
	col := auditfwdtest.NewCollector(t, ca, nil)
	e.configure(t, store.AuditForward{Address: col.Addr, CAPEM: string(ca.CertPEM)})
	e.start(t)
	waitFor(t, "the whole backlog", func() bool { got, _ := seqs(t, col.Messages()); return covers(got, n) })
	got, _ := seqs(t, col.Messages())
	for i, s := range got[:n] {
		if s != int64(i+1) {
			t.Fatalf("message %d is entry %d", i+1, s)
		}
	}
	waitFor(t, "the cursor saved", func() bool { st, _ := e.st.AuditForwardState(t.Context()); return st.SentSeq == n })
}
