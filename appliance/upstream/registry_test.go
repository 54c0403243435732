package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

// TestFlappingUpstreamHealth follows an upstream that answers, goes
// silent, and answers again: the registry's health says down while it is
// silent (since when, why) and up again after, and each login gets the
// answer of that moment, never a stale one.
func TestFlappingUpstreamHealth(t *testing.T) {
	const sec = "flap-secret-123"
	var silent atomic.Bool
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if silent.Load() {
				continue
			}
			req, err := radius.Parse(buf[:n], []byte(sec))
			if err != nil {
				continue
			}
			b, _ := req.Response(radius.CodeAccessAccept).Encode()
			pc.WriteTo(b, from)
		}
	}()
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, _ := json.Marshal(upstream.RADIUSConfig{Servers: []string{pc.LocalAddr().String()}, TimeoutMS: 200, BudgetMS: 400})
	if err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.CreateUpstream(t.Context(), store.Upstream{Name: "flappy", Kind: "radius", Config: string(cfg), Secret: []byte(sec)}, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	reg := upstream.NewRegistry(st, nil, nil, slog.New(slog.DiscardHandler))
	defer reg.Close()
	state := func() upstream.Health {
		hs, err := reg.Status(context.Background())
		if err != nil || len(hs) != 1 {
			t.Fatalf("status: %v %v", hs, err)
		}
		return hs[0]
	}
	if h := state(); h.State != upstream.StateUnknown || len(h.Warnings) == 0 {
		t.Fatalf("before any login: got %+v, want unknown with the Message-Authenticator warning", h)
	}
	login := func() error {
		v, err := reg.Lookup(t.Context(), "flappy")
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(t.Context(), "alice", secrets.Secret("pw"))
		return err
	}
	for round := range 3 {
		silent.Store(false)
		if err := login(); err != nil {
			t.Fatalf("round %d, answering: %v", round, err)
		}
		if h := state(); h.State != upstream.StateUp {
			t.Fatalf("round %d: got %+v, want up", round, h)
		}
		silent.Store(true)
		if err := login(); !errors.Is(err, upstream.ErrUnreachable) {
			t.Fatalf("round %d, silent: got %v, want ErrUnreachable", round, err)
		}
		h := state()
		if h.State != upstream.StateDown || h.LastError == "" || h.Since.IsZero() {
			t.Fatalf("round %d: got %+v, want down with the error and since when", round, h)
		}
	}
}

// TestRefusedSetupIsDegradedNotUp: an upstream that answers but refuses
// clinicgate's own service account is shown degraded, with the reason.
func TestRefusedSetupIsDegradedNotUp(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, _ := json.Marshal(upstream.LDAPConfig{URLs: []string{s.URL}, StartTLS: true, CAFile: s.CAFile, BindDN: "cn=ehr-service," + s.Base, BaseDN: s.Base})
	if err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.CreateUpstream(t.Context(), store.Upstream{Name: "dir", Kind: "ldap", Config: string(cfg), Secret: []byte("wrong service secret")}, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	reg := upstream.NewRegistry(st, nil, nil, slog.New(slog.DiscardHandler))
	defer reg.Close()
	reg.ProbeAll(t.Context())
	hs, err := reg.Status(t.Context())
	if err != nil || len(hs) != 1 {
		t.Fatal(hs, err)
	}
	if hs[0].State != upstream.StateDegraded || !strings.Contains(hs[0].LastError, "service account") {
		t.Fatalf("got %+v, want degraded naming the service account", hs[0])
	}
}
