package store_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func createClient(t *testing.T, st *store.Store, name, prefix, secret string) int64 {
	t.Helper()
	var id int64
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		var err error
		id, err = tx.CreateClient(ctx, store.Client{
			Name: name, Door: "radius", Prefix: netip.MustParsePrefix(prefix),
			Secret: secrets.Secret(secret), Policy: policy.Default(),
		}, now)
		return err
	})
	return id
}

// TestClientSecretSealedAtRest: the shared secret is nowhere in the
// database files in plaintext, and comes back whole through the store.
func TestClientSecretSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	const plain = "s3cr3t-office-ap-shared-0123456789"
	pol := policy.Default()
	pol.MFA = policy.MFAEnrolled
	pol.Rules = []policy.Rule{{Group: "nurses", VLAN: 20}}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.CreateClient(ctx, store.Client{
			Name: "Office-AP", Door: "radius", Prefix: netip.MustParsePrefix("10.0.0.7/24"),
			Secret: secrets.Secret(plain), Policy: pol,
		}, now)
		return err
	})

	var sealed []byte
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT secret FROM clients WHERE name = 'Office-AP'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(plain)) {
		t.Errorf("secret column: got %q, want a sealed value without the plaintext", sealed)
	}
	for _, name := range []string{store.DBFile, store.DBFile + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(plain)) {
			t.Errorf("%s contains the plaintext secret", name)
		}
	}

	for _, name := range []string{"Office-AP", "office-ap", "OFFICE-AP"} {
		c, err := st.ClientByName(t.Context(), name)
		if err != nil {
			t.Fatalf("ClientByName(%q): %v", name, err)
		}
		if string(c.Secret) != plain {
			t.Errorf("ClientByName(%q).Secret: got %q, want %q", name, []byte(c.Secret), plain)
		}
		if got, want := c.Prefix, netip.MustParsePrefix("10.0.0.0/24"); got != want {
			t.Errorf("prefix: got %v, want %v (masked)", got, want)
		}
		if c.Name != "Office-AP" || c.Door != "radius" || c.Policy.MFA != policy.MFAEnrolled || len(c.Policy.Rules) != 1 || c.Policy.Rules[0].VLAN != 20 || c.Version != 1 {
			t.Errorf("ClientByName(%q): got %+v", name, c)
		}
	}
	all, err := st.Clients(t.Context(), "radius")
	if err != nil || len(all) != 1 || string(all[0].Secret) != plain {
		t.Errorf("Clients(radius): got (%d clients, %v), want the one client with its secret", len(all), err)
	}
	if none, err := st.Clients(t.Context(), "ldap"); err != nil || len(none) != 0 {
		t.Errorf("Clients(ldap): got (%d clients, %v), want none", len(none), err)
	}
}

// TestClientSecretCopiedToAnotherClientDoesNotOpen: someone who can write
// the database cannot give a client of theirs the secret of another by
// copying the sealed value across rows.
func TestClientSecretCopiedToAnotherClientDoesNotOpen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	createClient(t, st, "office-ap", "10.0.0.0/24", "office-secret")
	createClient(t, st, "guest-ap", "10.9.0.0/24", "guest-secret")
	exec(t, raw(t, dir), `UPDATE clients SET secret = (SELECT secret FROM clients WHERE name = 'office-ap') WHERE name = 'guest-ap'`)

	c, err := st.ClientByName(t.Context(), "guest-ap")
	if !errors.Is(err, secrets.ErrOpen) {
		t.Fatalf("ClientByName(guest-ap) with office-ap's sealed secret: got (%q, %v), want ErrOpen", []byte(c.Secret), err)
	}
	if _, err := st.ClientByName(t.Context(), "office-ap"); err != nil {
		t.Errorf("ClientByName(office-ap): got %v, want nil", err)
	}
}

func TestDuplicateClientConflicts(t *testing.T) {
	st := open(t, t.TempDir())
	createClient(t, st, "office-ap", "10.0.0.0/24", "s1")
	tests := []struct {
		name, prefix string
	}{
		{"OFFICE-AP", "10.1.0.0/24"},  // same name, other case
		{"other-ap", "10.0.0.0/24"},   // same address
		{"third-ap", "10.0.0.200/24"}, // same network once masked
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.WithTx(t.Context(), func(tx *store.Tx) error {
				_, err := tx.CreateClient(t.Context(), store.Client{
					Name: tt.name, Door: "radius", Prefix: netip.MustParsePrefix(tt.prefix),
					Secret: secrets.Secret("s2"), Policy: policy.Default(),
				}, now)
				return err
			})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateClient(%s, %s): got %v, want ErrConflict", tt.name, tt.prefix, err)
			}
		})
	}
}

func TestClientWithoutDoorRefused(t *testing.T) {
	st := open(t, t.TempDir())
	err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.CreateClient(t.Context(), store.Client{Name: "x", Prefix: netip.MustParsePrefix("10.0.0.1/32"), Secret: secrets.Secret("s")}, now)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no door") {
		t.Errorf("CreateClient without a door: got %v, want a 'no door' error", err)
	}
}

func TestStaleClientUpdateConflicts(t *testing.T) {
	st := open(t, t.TempDir())
	createClient(t, st, "office-ap", "10.0.0.0/24", "old-secret")
	read := func() store.Client {
		c, err := st.ClientByName(t.Context(), "office-ap")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before, err := st.ClientsVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first, second := read(), read()
	first.Secret = secrets.Secret("new-secret")
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateClient(ctx, first, now) })
	second.Secret = secrets.Secret("other-secret")
	err = st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.UpdateClient(t.Context(), second, now) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale UpdateClient: got %v, want ErrConflict", err)
	}
	if got := read(); string(got.Secret) != "new-secret" || got.Version != 2 {
		t.Errorf("after the stale update: got secret %q version %d, want new-secret version 2", []byte(got.Secret), got.Version)
	}
	after, err := st.ClientsVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Errorf("ClientsVersion did not change after an update: %s", after)
	}
}

func TestDeleteClient(t *testing.T) {
	st := open(t, t.TempDir())
	createClient(t, st, "office-ap", "10.0.0.0/24", "s")
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteClient(ctx, "OFFICE-AP") })
	if _, err := st.ClientByName(t.Context(), "office-ap"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClientByName after delete: got %v, want ErrNotFound", err)
	}
	err := st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.DeleteClient(t.Context(), "office-ap") })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
}
