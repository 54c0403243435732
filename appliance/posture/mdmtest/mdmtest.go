// Package mdmtest holds stand-ins for the cloud MDM APIs the posture
// connectors read — Microsoft Graph with the Microsoft identity platform,
// Jamf Pro, Google Cloud Identity with Google's OAuth 2.0 token endpoint —
// built on net/http/httptest for tests and benchmarks.
//
// Each follows its vendor's documented contract (cited on each type):
// paths, query parameters, paging, the token endpoint and its form
// fields, error bodies, Retry-After. Each refuses what the real API would
// refuse: a wrong or expired token, a missing scope, a page token it did
// not issue. A test injects faults with Intercept. It must never be used
// outside tests.
package mdmtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Intercept lets a test answer a request itself (return true) before the
// stand-in does: kind names the endpoint ("token", "list", "get",
// "members", "users"), n counts the requests of that kind from 1.
type Intercept func(w http.ResponseWriter, r *http.Request, kind string, n int) bool

// base is what every stand-in has: the test's Intercept, the access
// tokens it issued with their expiry, and request counts.
type base struct {
	// Intercept, if set, sees each request first.
	Intercept Intercept

	mu     sync.Mutex
	issued map[string]time.Time
	counts map[string]int
}

// intercept counts a request of kind and lets the test answer it.
func (t *base) intercept(w http.ResponseWriter, r *http.Request, kind string) bool {
	n := t.count(kind)
	return t.Intercept != nil && t.Intercept(w, r, kind, n)
}

// ExpireTokens expires every token issued so far, as if a sync outlived
// them.
func (t *base) ExpireTokens() { t.expireAll() }

func (t *base) issue(life time.Duration) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.issued == nil {
		t.issued = map[string]time.Time{}
	}
	t.issued[tok] = time.Now().Add(life)
	return tok
}

// check reads "Authorization: Bearer T": ok, or expired (known but past
// its expiry), or unknown.
func (t *base) check(r *http.Request) (ok, expired bool) {
	h := r.Header.Get("Authorization")
	tok, found := cutPrefixFold(h, "Bearer ")
	if !found || tok == "" {
		return false, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, known := t.issued[tok]
	if !known {
		return false, false
	}
	if time.Now().After(exp) {
		return false, true
	}
	return true, false
}

// expireAll makes every issued token expired.
func (t *base) expireAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.issued {
		t.issued[k] = time.Now().Add(-time.Second)
	}
}

func (t *base) count(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[kind]++
	return t.counts[kind]
}

// Count reports how many requests of kind were made.
func (t *base) Count(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[kind]
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && equalFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteTruncated answers 200 with a body cut off before its declared
// length, as a connection dropped mid-page looks to the client.
func WriteTruncated(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body[:len(body)/2]))
}

// WriteMalformed answers 200 with a body that is not JSON.
func WriteMalformed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"value": [ {"id": "x", ]`))
}

// nonce makes a page token.
func nonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
