package upstream_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"log/slog"
	"testing"
	"time"

	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc3079"

	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

// mschapResponse is what a peer sends for password.
func mschapResponse(t *testing.T, name, password string) upstream.MSCHAPv2 {
	t.Helper()
	m := upstream.MSCHAPv2{Name: name, Ident: 7}
	rand.Read(m.AuthenticatorChallenge[:])
	rand.Read(m.PeerChallenge[:])
	nt, err := rfc2759.GenerateNTResponse(m.AuthenticatorChallenge[:], m.PeerChallenge[:], []byte(name), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	copy(m.NTResponse[:], nt)
	return m
}

// TestMSCHAPv2RelayedToFreeRADIUS checks the relay against a real server
// that verifies MS-CHAPv2 itself: its proof and MPPE keys must be the ones
// the peer derives from the same password (RFC 2759 §8.7, RFC 3079 §3.3,
// the server's Send-Key being the peer's receive key).
func TestMSCHAPv2RelayedToFreeRADIUS(t *testing.T) {
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		RequireMessageAuthenticator: true,
		Users:                       []upstreamtest.RADIUSUser{{Name: "alice", Password: "alice pw 1", Reply: []string{`Class := "clinicians"`}}},
	})
	r, err := upstream.NewRADIUS("fr", radiusConfig(t, upstream.RADIUSConfig{Servers: []string{fr.Addr}, GroupAttribute: "Class"}), secrets.Secret(fr.Secret))
	if err != nil {
		t.Fatal(err)
	}
	mv, ok := upstream.MSCHAPOf(r)
	if !ok {
		t.Fatal("the RADIUS connector does not relay MS-CHAPv2")
	}
	m := mschapResponse(t, "alice", "alice pw 1")
	id, proof, err := mv.VerifyMSCHAPv2(t.Context(), "alice", m)
	if err != nil {
		t.Fatalf("right password: %v\n%s", err, fr.Log())
	}
	if id.Name != "alice" || len(id.Groups) != 1 || id.Groups[0] != "clinicians" {
		t.Fatalf("got identity %+v, want alice in clinicians", id)
	}
	want, err := rfc2759.GenerateAuthenticatorResponse(m.AuthenticatorChallenge[:], m.PeerChallenge[:], m.NTResponse[:], []byte("alice"), []byte("alice pw 1"))
	if err != nil {
		t.Fatal(err)
	}
	if proof.AuthenticatorResponse != want {
		t.Fatalf("got authenticator response %s, want %s", proof.AuthenticatorResponse, want)
	}
	send, _ := rfc3079.MakeKey(m.NTResponse[:], []byte("alice pw 1"), true)
	recv, _ := rfc3079.MakeKey(m.NTResponse[:], []byte("alice pw 1"), false)
	if !bytes.Equal(proof.SendKey, send) || !bytes.Equal(proof.RecvKey, recv) {
		t.Fatalf("got send %x recv %x, want send %x recv %x", proof.SendKey, proof.RecvKey, send, recv)
	}

	wrong := mschapResponse(t, "alice", "not her password")
	if _, _, err := mv.VerifyMSCHAPv2(t.Context(), "alice", wrong); !errors.Is(err, upstream.ErrBadCredentials) {
		t.Fatalf("wrong password: got %v, want ErrBadCredentials", err)
	}
	// Through the daemon's registry the connector still relays, and its
	// answers count for its health.
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.CreateUpstream(t.Context(), store.Upstream{Name: "nps", Kind: "radius", Config: radiusConfig(t, upstream.RADIUSConfig{Servers: []string{fr.Addr}}), Secret: []byte(fr.Secret)}, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	h, err := passwd.NewHasher(passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	local, err := upstream.NewLocal(st, h)
	if err != nil {
		t.Fatal(err)
	}
	reg := upstream.NewRegistry(st, local, nil, slog.New(slog.DiscardHandler))
	defer reg.Close()
	v, err := reg.Lookup(t.Context(), "nps")
	if err != nil {
		t.Fatal(err)
	}
	if mv, ok = upstream.MSCHAPOf(v); !ok {
		t.Fatal("a RADIUS upstream from the registry does not relay MS-CHAPv2")
	}
	if _, _, err := mv.VerifyMSCHAPv2(t.Context(), "alice", mschapResponse(t, "alice", "alice pw 1")); err != nil {
		t.Fatalf("through the registry: %v", err)
	}
	if hs, _ := reg.Status(t.Context()); len(hs) != 1 || hs[0].State != upstream.StateUp {
		t.Fatalf("got health %+v, want nps up", hs)
	}
	if _, ok := upstream.MSCHAPOf(local); ok {
		t.Fatal("the local connector claims to check MS-CHAPv2 (the gate does, with the kept NT hash)")
	}

	// A response hashed with another name than the one sent fails too.
	other := mschapResponse(t, "bob", "alice pw 1")
	other.Name = "alice"
	if _, _, err := mv.VerifyMSCHAPv2(t.Context(), "alice", other); !errors.Is(err, upstream.ErrBadCredentials) {
		t.Fatalf("response for another name: got %v, want ErrBadCredentials", err)
	}
}
