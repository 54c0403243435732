// Package mfatest holds stand-ins for the push MFA services the gate
// calls — Duo's Auth API v2 and Okta's Factors API — on
// net/http/httptest TLS servers, for tests and benchmarks.
//
// Each follows its vendor's documented contract (cited on each type):
// paths, parameters, request signing or token, result values, error
// bodies. Each refuses what the real service would refuse (a bad
// signature, a stale Date, a wrong token) and counts the pushes it sent,
// so a test can assert exactly one push per login. A test decides how
// each push is answered (Answer) and injects faults with Intercept. It
// must never be used outside tests.
package mfatest

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Outcome is what the person does with a push.
type Outcome string

const (
	Approve Outcome = "approve"
	Deny    Outcome = "deny"
	Fraud   Outcome = "fraud"   // "I did not ask for this" / report
	Timeout Outcome = "timeout" // never answers; the service times the push out
	Never   Outcome = "never"   // never answers, and the service keeps waiting
)

// Answer is how and when the person answers one push.
type Answer struct {
	Outcome Outcome
	After   time.Duration
}

// Intercept lets a test answer a request itself (return true) before the
// stand-in does: kind names the endpoint ("preauth", "auth", "auth_status",
// "user", "factors", "verify", "poll"), n counts requests of that kind from 1.
type Intercept func(w http.ResponseWriter, r *http.Request, kind string, n int) bool

// people is what both stand-ins share: how pushes are answered, the
// pushes sent, the fault hook.
type people struct {
	// Answer decides how the person answers their n-th push (from 1);
	// nil approves after 200 ms.
	Answer func(user string, n int) Answer
	// Intercept, if set, sees each request first.
	Intercept Intercept
	// PushTimeout is when the service itself gives up on a push (Duo
	// and Okta: 60 s); an answer After it is a timeout.
	PushTimeout time.Duration

	mu     sync.Mutex
	counts map[string]int
	pushes map[string]int // by user
	total  int
}

func (p *people) intercept(w http.ResponseWriter, r *http.Request, kind string) bool {
	p.mu.Lock()
	if p.counts == nil {
		p.counts = map[string]int{}
	}
	p.counts[kind]++
	n := p.counts[kind]
	hook := p.Intercept
	p.mu.Unlock()
	return hook != nil && hook(w, r, kind, n)
}

// push records one push sent to user and returns how it will be answered
// and when it was sent.
func (p *people) push(user string) (Answer, time.Time) {
	p.mu.Lock()
	if p.pushes == nil {
		p.pushes = map[string]int{}
	}
	p.pushes[user]++
	p.total++
	n := p.pushes[user]
	decide := p.Answer
	p.mu.Unlock()
	a := Answer{Outcome: Approve, After: 200 * time.Millisecond}
	if decide != nil {
		a = decide(user, n)
	}
	return a, time.Now()
}

// state is where a push stands at now.
func (p *people) state(a Answer, sent, now time.Time) Outcome {
	limit := p.PushTimeout
	if limit <= 0 {
		limit = 60 * time.Second
	}
	if a.Outcome == Never {
		return Never
	}
	if a.Outcome == Timeout || a.After >= limit {
		if now.Sub(sent) >= limit {
			return Timeout
		}
		return Never
	}
	if now.Sub(sent) >= a.After {
		return a.Outcome
	}
	return Never
}

// Pushes is how many pushes were sent, to anyone.
func (p *people) Pushes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// PushesTo is how many pushes user was sent.
func (p *people) PushesTo(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pushes[user]
}

// Requests is how many requests of kind arrived.
func (p *people) Requests(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[kind]
}

// WriteCA writes the PEM of a TLS stand-in's certificate to a file in
// tb's temporary directory and returns its path: the provider's ca_file.
func WriteCA(tb testing.TB, cert *x509.Certificate) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "standin-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
