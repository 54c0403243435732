package admin

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/dirsync"
)

func TestUpstreamFormDefaults(t *testing.T) {
	off, no := false, false
	cases := []struct {
		name     string
		form     UpstreamForm
		wantKind string
		want     map[string]any
	}{
		{"plain ldap gets StartTLS", UpstreamForm{Kind: "ldap", URLs: []string{" ldap://dc1:389 "}, BaseDN: "dc=x"},
			"ldap", map[string]any{"starttls": true, "user_attribute": "uid", "group_attribute": "memberOf", "timeout_ms": 2000.0}},
		{"ldaps needs no StartTLS", UpstreamForm{Kind: "ldap", URLs: []string{"ldaps://dc1:636"}, BaseDN: "dc=x"},
			"ldap", map[string]any{"starttls": false}},
		{"StartTLS turned off on purpose stays off", UpstreamForm{Kind: "ldap", URLs: []string{"ldap://dc1:389"}, StartTLS: &off, BaseDN: "dc=x"},
			"ldap", map[string]any{"starttls": false}},
		{"ad is ldap found by sAMAccountName", UpstreamForm{Kind: "ad", URLs: []string{"ldap://dc1:389"}, BaseDN: "dc=x"},
			"ldap", map[string]any{"starttls": true, "user_attribute": "sAMAccountName"}},
		{"ad keeps a given attribute", UpstreamForm{Kind: "ad", URLs: []string{"ldaps://dc1:636"}, BaseDN: "dc=x", UserAttribute: "mail"},
			"ldap", map[string]any{"user_attribute": "mail"}},
		{"radius requires Message-Authenticator by default", UpstreamForm{Kind: "radius", Servers: []string{"10.0.0.5:1812"}},
			"radius", map[string]any{"require_message_authenticator": true, "timeout_ms": 1200.0, "budget_ms": 2500.0}},
		{"radius without Message-Authenticator on purpose", UpstreamForm{Kind: "radius", Servers: []string{"10.0.0.5:1812"}, RequireMessageAuthenticator: &no},
			"radius", map[string]any{"require_message_authenticator": false}},
		{"oidc", UpstreamForm{Kind: "oidc", Issuer: "https://login.example/v2.0", ClientID: "id"},
			"oidc", map[string]any{"username_claim": "preferred_username", "timeout_ms": 3000.0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Name = " up "
			n, err := tc.form.NewUpstream()
			if err != nil {
				t.Fatal(err)
			}
			if n.Name != "up" || n.Kind != tc.wantKind {
				t.Fatalf("got name %q kind %q, want up and %s", n.Name, n.Kind, tc.wantKind)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(n.Config), &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: got %v, want %v (settings %s)", k, got[k], v, n.Config)
				}
			}
		})
	}
}

func TestUpstreamFormRefusals(t *testing.T) {
	for _, f := range []UpstreamForm{
		{Kind: "ftp"},
		{Kind: "ldap", URLs: []string{"ldaps://dc1:636"}, BaseDN: "dc=x", Sync: &dirsync.Config{Kind: "graph"}},
	} {
		if _, err := f.NewUpstream(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want an ErrInvalid refusal", f, err)
		}
	}
}
