package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// An upstream edited from two places at once: the second is told, and an
// edit forgets the passwords cached under the old settings.
func TestUpstreamEditRefusesLostUpdateAndForgetsCache(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	now := time.Now()
	if err := st.WithTx(ctx, func(tx *store.Tx) error {
		return tx.CreateUpstream(ctx, store.Upstream{Name: "ad", Kind: "ldap", Config: `{"a":1}`, Secret: []byte("s1")}, now)
	}); err != nil {
		t.Fatal(err)
	}
	u, err := st.UpstreamByName(ctx, "ad")
	if err != nil {
		t.Fatal(err)
	}
	var uid int64
	if err := st.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		uid, err = tx.CreateUser(ctx, store.User{Name: "nina", Source: "ad"}, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCachedVerifier(ctx, store.CachedVerifier{UserID: uid, Upstream: "ad", Hash: "h", VerifiedAt: now}); err != nil {
		t.Fatal(err)
	}
	first, second := u, u
	first.Config, second.Config = `{"a":2}`, `{"a":3}`
	if err := st.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateUpstream(ctx, first, now) }); err != nil {
		t.Fatal(err)
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateUpstream(ctx, second, now) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second edit from the same version: got %v, want ErrConflict", err)
	}
	got, _ := st.UpstreamByName(ctx, "ad")
	if got.Config != `{"a":2}` || string(got.Secret) != "s1" {
		t.Fatalf("after the edits: config %s, secret %q", got.Config, got.Secret)
	}
	if n, _ := st.CountCachedVerifiers(ctx, "ad"); n != 0 {
		t.Fatalf("%d cached passwords survived the edit", n)
	}
}
