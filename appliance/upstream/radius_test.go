package upstream_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

func radiusConfig(t *testing.T, c upstream.RADIUSConfig) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRADIUSUpstreamAgainstFreeRADIUS(t *testing.T) {
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		RequireMessageAuthenticator: true, // our requests always carry one
		Users: []upstreamtest.RADIUSUser{
			{Name: "alice", Password: "alice pw 1", Reply: []string{`Class := "clinicians"`}},
			{Name: "bob", Password: "bob,pw,with,commas"},
		},
	})
	// FreeRADIUS 3.2.1 sends no Message-Authenticator in PAP replies.
	r, err := upstream.NewRADIUS("fr", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{fr.Addr}, GroupAttribute: "Class"}), secrets.Secret(fr.Secret))
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Verify(t.Context(), "alice", secrets.Secret("alice pw 1"))
	if err != nil {
		t.Fatalf("right password: %v\n%s", err, fr.Log())
	}
	if id.Name != "alice" || !slices.Equal(id.Groups, []string{"clinicians"}) {
		t.Fatalf("got %+v, want alice in clinicians", id)
	}
	if _, err := r.Verify(t.Context(), "bob", secrets.Secret("bob,pw,with,commas")); err != nil {
		t.Fatalf("password with commas: %v", err)
	}
	for _, tc := range []struct{ user, pw string }{{"alice", "wrong"}, {"nobody", "x"}, {"alice", ""}} {
		if _, err := r.Verify(t.Context(), tc.user, secrets.Secret(tc.pw)); !errors.Is(err, upstream.ErrBadCredentials) {
			t.Fatalf("%s/%q: got %v, want ErrBadCredentials", tc.user, tc.pw, err)
		}
	}
}

func TestUpstreamReplyWithoutMessageAuthenticatorDropped(t *testing.T) {
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		Users: []upstreamtest.RADIUSUser{{Name: "alice", Password: "alice pw 1"}},
	})
	r, err := upstream.NewRADIUS("fr", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{fr.Addr}, RequireMessageAuthenticator: true, TimeoutMS: 300, BudgetMS: 600}), secrets.Secret(fr.Secret))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Verify(t.Context(), "alice", secrets.Secret("alice pw 1"))
	if !errors.Is(err, upstream.ErrUnreachable) || !strings.Contains(err.Error(), "no Message-Authenticator") {
		t.Fatalf("got %v, want unreachable because replies lack Message-Authenticator", err)
	}
	if len(r.Warnings()) != 0 {
		t.Fatalf("got warnings %v with Message-Authenticator required", r.Warnings())
	}
}

func TestUpstreamWrongSecretIsUnreachable(t *testing.T) {
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		Users: []upstreamtest.RADIUSUser{{Name: "alice", Password: "alice pw 1"}},
	})
	r, err := upstream.NewRADIUS("fr", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{fr.Addr}, TimeoutMS: 300, BudgetMS: 600}), secrets.Secret("not-the-secret"))
	if err != nil {
		t.Fatal(err)
	}
	// FreeRADIUS drops the request (bad Message-Authenticator), or an
	// answer fails our check: either way no verified reply.
	if _, err := r.Verify(t.Context(), "alice", secrets.Secret("alice pw 1")); !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
}

// fakeServer answers every request with reply(request) from a UDP socket on
// 127.0.0.1; it stands in for a broken or hostile upstream.
func fakeServer(t *testing.T, reply func(req []byte) [][]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, out := range reply(append([]byte(nil), buf[:n]...)) {
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestUpstreamBadResponseAuthenticatorDropped(t *testing.T) {
	addr := fakeServer(t, func(req []byte) [][]byte {
		// An Access-Accept with a made-up authenticator.
		out := make([]byte, 20)
		out[0], out[1], out[3] = 2, req[1], 20
		copy(out[4:], "forged-forged-16")
		return [][]byte{out}
	})
	r, err := upstream.NewRADIUS("fake", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{addr}, TimeoutMS: 200, BudgetMS: 400}), secrets.Secret("s3cret-s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Verify(t.Context(), "alice", secrets.Secret("pw"))
	if !errors.Is(err, upstream.ErrUnreachable) || !strings.Contains(err.Error(), "failed verification") {
		t.Fatalf("got %v, want the forged Accept dropped", err)
	}
}

func TestSilentUpstreamBoundedByBudget(t *testing.T) {
	addr := fakeServer(t, func([]byte) [][]byte { return nil })
	r, err := upstream.NewRADIUS("silent", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{addr, addr}, TimeoutMS: 200, BudgetMS: 500}), secrets.Secret("s3cret-s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Verify(t.Context(), "alice", secrets.Secret("pw"))
	if !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	// Not a timing assertion on speed: the budget is a hard upper bound the
	// code enforces, and ten times it means the budget was ignored.
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v with a 500 ms budget", el)
	}
}

func TestRADIUSConfigRefusesNonsense(t *testing.T) {
	for name, c := range map[string]upstream.RADIUSConfig{
		"no servers":   {},
		"bad server":   {Servers: []string{"10.0.0.1"}},
		"bad group":    {Servers: []string{"10.0.0.1:1812"}, GroupAttribute: "Reply-Message"},
		"tiny timeout": {Servers: []string{"10.0.0.1:1812"}, TimeoutMS: 5},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := upstream.NewRADIUS("x", radiusConfig(t, c), secrets.Secret("s3cret")); err == nil {
				t.Fatal("got no error")
			}
		})
	}
}

// TestRetryResendsTheSamePacket: a retry to the same server is the same
// packet (RFC 5080), so the server's duplicate detection sees one login and
// a directory behind it counts one failure, not two.
func TestRetryResendsTheSamePacket(t *testing.T) {
	var got [][]byte
	var mu sync.Mutex
	addr := fakeServer(t, func(req []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, req)
		return nil // never answer
	})
	r, err := upstream.NewRADIUS("silent", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{addr}, TimeoutMS: 150, BudgetMS: 1000}), secrets.Secret("s3cret-s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Verify(t.Context(), "alice", secrets.Secret("pw")); !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("got %d requests, want 2 (one retransmission)", len(got))
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatal("the retry was a new request (new identifier or authenticator), not a retransmission")
	}
}
