package store_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestSealedBindSecretsBecomeHashes: a bind account stored sealed before
// migration 011 is hashed once, and its sealed secret is gone from the
// database (issue 16: a secret that is only compared needs no key).
func TestSealedBindSecretsBecomeHashes(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	ctx := t.Context()
	secret := secrets.Secret("old-sealed-secret-0123456789")
	err := st.WithTx(ctx, func(tx *store.Tx) error {
		return tx.AddSealedBindAccount(ctx, store.BindAccount{Name: "ehr-search", Secret: secret, Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.BindAccountByName(ctx, "ehr-search")
	if err != nil || b.Hash != "" || !bytes.Equal(b.Secret, secret) {
		t.Fatalf("legacy row: %+v %v", b, err)
	}
	hash := func(_ context.Context, s []byte) (string, error) { return "hashed:" + string(s), nil }
	if n, err := st.HashBindSecrets(ctx, hash); err != nil || n != 1 {
		t.Fatalf("hashed %d, %v", n, err)
	}
	if n, err := st.HashBindSecrets(ctx, hash); err != nil || n != 0 {
		t.Fatalf("a second pass hashed %d, %v", n, err)
	}
	b, err = st.BindAccountByName(ctx, "ehr-search")
	if err != nil || b.Hash != "hashed:"+string(secret) || b.Secret != nil || len(b.Networks) != 1 {
		t.Fatalf("after: %+v %v", b, err)
	}
	var sealed []byte
	if err := raw(t, dir).QueryRowContext(ctx, `SELECT secret FROM bind_accounts`).Scan(&sealed); err != nil || len(sealed) != 0 {
		t.Fatalf("the sealed secret is still stored: %d bytes %v", len(sealed), err)
	}
}
