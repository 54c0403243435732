package upstream_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

// TestActiveDirectoryAgainstSamba drives the LDAP connector against a real
// Samba AD DC: the bind-name forms AD accepts, memberOf groups, AD's bind
// sub-codes, and TLS required for simple binds.
func TestActiveDirectoryAgainstSamba(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions a domain (about 15 s); run without -short")
	}
	ad := upstreamtest.StartSambaAD(t)
	const pw = "Clinic-Passw0rd!"
	ad.Tool("user", "create", "svc-clinicgate", "Svc-Passw0rd!1")
	ad.Tool("group", "add", "Nurses")
	for _, u := range []string{"alice", "bob", "carol", "eve"} {
		ad.Tool("user", "create", u, pw)
	}
	ad.Tool("user", "create", "dave", pw, "--must-change-at-next-login")
	ad.Tool("group", "addmembers", "Nurses", "alice")
	ad.Tool("user", "disable", "bob")
	ad.Tool("user", "setexpiry", "carol", "--days=0")
	ad.Tool("domain", "passwordsettings", "set", "--account-lockout-threshold=3")

	conn := func(t *testing.T, mut func(*upstream.LDAPConfig)) *upstream.LDAP {
		c := upstream.LDAPConfig{URLs: []string{"ldaps://" + ad.Addr + ":636"}, CAFile: ad.CAFile,
			BindDN: "svc-clinicgate@clinic.test", BaseDN: ad.Base, UserAttribute: "sAMAccountName", TimeoutMS: 3000}
		if mut != nil {
			mut(&c)
		}
		b, _ := json.Marshal(c)
		l, err := upstream.NewLDAP("ad", string(b), secrets.Secret("Svc-Passw0rd!1"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
	l := conn(t, nil)
	for _, typed := range []string{"alice", "alice@clinic.test", `CLINIC\alice`} {
		id, err := l.Verify(t.Context(), typed, secrets.Secret(pw))
		if err != nil {
			t.Fatalf("%s: %v\n%s", typed, err, ad.Log())
		}
		if id.Name != "alice" || !slices.Contains(id.Groups, "Nurses") {
			t.Fatalf("%s: got %+v, want alice in Nurses (from memberOf)", typed, id)
		}
	}
	cases := []struct {
		user, pw string
		want     error
	}{
		{"alice", "wrong", upstream.ErrBadCredentials},
		{"nobody", pw, upstream.ErrUnknownUser},
		{"bob", pw, upstream.ErrAccountDisabled},
		{"carol", pw, upstream.ErrAccountExpired},
		{"dave", pw, upstream.ErrMustChange},
	}
	for _, tc := range cases {
		if _, err := l.Verify(t.Context(), tc.user, secrets.Secret(tc.pw)); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.user, err, tc.want)
		}
	}
	for range 3 {
		l.Verify(t.Context(), "eve", secrets.Secret("wrong"))
	}
	if _, err := l.Verify(t.Context(), "eve", secrets.Secret(pw)); !errors.Is(err, upstream.ErrAccountLockedOut) {
		t.Errorf("eve after 3 failures: got %v, want ErrAccountLockedOut", err)
	}

	t.Run("starttls", func(t *testing.T) {
		l := conn(t, func(c *upstream.LDAPConfig) { c.URLs, c.StartTLS = []string{"ldap://" + ad.Addr + ":389"}, true })
		if _, err := l.Verify(t.Context(), `CLINIC\alice`, secrets.Secret(pw)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("plain ldap refused by AD", func(t *testing.T) {
		l := conn(t, func(c *upstream.LDAPConfig) { c.URLs = []string{"ldap://" + ad.Addr + ":389"} })
		_, err := l.Verify(t.Context(), "alice", secrets.Secret(pw))
		if !errors.Is(err, upstream.ErrUpstreamRefused) || !strings.Contains(err.Error(), "TLS") {
			t.Fatalf("got %v, want a refusal that points at TLS", err)
		}
	})
}
