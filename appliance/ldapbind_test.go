package appliance_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// proxyUpstreams is proxy mode's LDAP upstream, as the gate sees it: it
// knows alice's DN, and names one DN whose lookup fails.
type proxyUpstreams struct{ asked *[]string }

func (p proxyUpstreams) Directory(_ context.Context, name string) (upstream.Directory, error) {
	if name != "corp" {
		return nil, errors.New("no such upstream")
	}
	return p, nil
}

func (p proxyUpstreams) SearchDirectory(context.Context, *ldap.SearchRequest) (*ldap.SearchResult, error) {
	return nil, errors.New("not in this test")
}

func (p proxyUpstreams) NameForDN(_ context.Context, dn string) (string, error) {
	*p.asked = append(*p.asked, dn)
	switch strings.ToLower(dn) {
	case "uid=a.nurse,ou=people,dc=clinic,dc=local":
		return "alice", nil
	case "uid=broken,ou=people,dc=clinic,dc=local":
		return "", upstream.ErrUnreachable
	}
	return "", upstream.ErrUnknownUser
}

// TestLDAPBindNameResolution: the gate, not the door, turns an LDAP bind's
// name (DN, user@domain, DOMAIN\user, plain) into a user or a bind
// account, refusing with the reason the door used to give.
func TestLDAPBindNameResolution(t *testing.T) {
	const (
		alicePW = "correct horse battery"
		acctPW  = "ehr-search-secret-0123456789"
	)
	type want struct {
		outcome appliance.Outcome
		reason  appliance.Reason
		user    string // Decision.User on accept
		account bool
		audited string // the audit row's user
	}
	accept := func(user string, account bool, audited string) want {
		return want{appliance.Accept, appliance.ReasonOK, user, account, audited}
	}
	reject := func(r appliance.Reason, audited string) want {
		return want{outcome: appliance.Reject, reason: r, audited: audited}
	}
	cases := []struct {
		mode, name, pw string
		want           want
		askedUpstream  bool
	}{
		{"directory", "alice", alicePW, accept("alice", false, "alice"), false},
		{"directory", "cn=alice,ou=Users,dc=clinic,dc=local", alicePW, accept("alice", false, "alice"), false},
		{"directory", "uid=alice,ou=Users,DC=Clinic,DC=Local", alicePW, accept("alice", false, "alice"), false},
		{"directory", "cn=alice,dc=other,dc=org", alicePW, reject(appliance.ReasonOutsideBase, "cn=alice,dc=other,dc=org"), false},
		{"directory", "ou=alice,dc=clinic,dc=local", alicePW, reject(appliance.ReasonUnknownUser, "ou=alice,dc=clinic,dc=local"), false},
		{"directory", "cn=alice+sn=x,dc=clinic,dc=local", alicePW, reject(appliance.ReasonBadUserName, "cn=alice+sn=x,dc=clinic,dc=local"), false},
		{"directory", "alice@clinic.local", alicePW, accept("alice", false, "alice"), false},
		{"directory", "alice@other.org", alicePW, reject(appliance.ReasonUnknownUser, "alice@other.org"), false},
		{"directory", `CLINIC\alice`, alicePW, accept("alice", false, "alice"), false},
		{"directory", `OTHER\alice`, alicePW, reject(appliance.ReasonOutsideBase, `OTHER\alice`), false},
		{"directory", `CLINIC\`, alicePW, reject(appliance.ReasonBadUserName, `CLINIC\`), false},
		{"directory", "alice", "wrong password", reject(appliance.ReasonBadPassword, "alice"), false},
		{"directory", "ehr-search", acctPW, accept("ehr-search", true, "ehr-search"), false},
		{"directory", "cn=ehr-search,ou=Services,dc=clinic,dc=local", acctPW, accept("ehr-search", true, "ehr-search"), false},
		{"directory", "ehr-search@clinic.local", acctPW, accept("ehr-search", true, "ehr-search"), false},
		{"directory", "ehr-search", "not the secret", want{appliance.Reject, appliance.ReasonBadPassword, "", true, "ehr-search"}, false},
		{"proxy", "uid=a.nurse,ou=people,dc=clinic,dc=local", alicePW, accept("alice", false, "alice"), true},
		{"proxy", "uid=nobody,ou=people,dc=clinic,dc=local", alicePW, reject(appliance.ReasonUnknownUser, "uid=nobody,ou=people,dc=clinic,dc=local"), true},
		{"proxy", "uid=broken,ou=people,dc=clinic,dc=local", alicePW, reject(appliance.ReasonUpstreamDown, "uid=broken,ou=people,dc=clinic,dc=local"), true},
		{"proxy", "uid=a.nurse,dc=other,dc=org", alicePW, reject(appliance.ReasonOutsideBase, "uid=a.nurse,dc=other,dc=org"), false},
		{"proxy", "cn=ehr-search,ou=Services,dc=clinic,dc=local", acctPW, accept("ehr-search", true, "ehr-search"), false},
		{"proxy", "alice", alicePW, accept("alice", false, "alice"), false},
	}
	for _, c := range cases {
		label := c.mode + "/" + c.name
		if c.pw != alicePW && c.pw != acctPW {
			// Distinct names: t.Run's "#01" suffix would land in
			// t.TempDir, and the store cannot open a path with '#'.
			label += " wrong secret"
		}
		t.Run(label, func(t *testing.T) {
			var asked []string
			core := appliancetest.New(t, appliancetest.Options{Configure: func(cfg *appliance.Config) {
				cfg.Directories = proxyUpstreams{asked: &asked}
			}})
			ctx := t.Context()
			pol := policy.Default()
			pol.MFA = policy.MFAOff
			if _, err := core.Admin.AddClient(ctx, admin.NewClient{Door: appliance.DoorLDAP, Name: "ehr", Address: "127.0.0.1", Policy: pol}); err != nil {
				t.Fatal(err)
			}
			if err := core.Admin.AddUser(ctx, admin.NewUser{Name: "alice", Password: secrets.Secret(alicePW)}); err != nil {
				t.Fatal(err)
			}
			if _, err := core.Admin.AddBindAccount(ctx, admin.NewBindAccount{Name: "ehr-search", Networks: []string{"127.0.0.1"}, Secret: secrets.Secret(acctPW)}); err != nil {
				t.Fatal(err)
			}
			if c.mode == "proxy" {
				for k, v := range map[string]string{"ldap_proxy_upstream": "corp", "ldap_mode": appliance.LDAPModeProxy} {
					if err := core.Admin.SetSetting(ctx, k, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			src := netip.MustParseAddr("127.0.0.1")
			client, ok, err := core.Clients(appliance.DoorLDAP).Lookup(ctx, src)
			if err != nil || !ok {
				t.Fatalf("client lookup: %v %v", ok, err)
			}
			d, err := core.Gate.Decide(ctx, appliance.Request{
				Door: appliance.DoorLDAP, Method: appliance.MethodLDAPBind, Client: client, Source: src,
				User: c.name, Password: secrets.Secret(c.pw),
			})
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Outcome != c.want.outcome || d.Reason != c.want.reason {
				t.Errorf("got %s %s, want %s %s (steps %v)", d.Outcome, d.Reason, c.want.outcome, c.want.reason, d.Steps)
			}
			if c.want.outcome == appliance.Accept && d.User != c.want.user {
				t.Errorf("got user %q, want %q", d.User, c.want.user)
			}
			if d.BindAccount != c.want.account {
				t.Errorf("got BindAccount %v, want %v", d.BindAccount, c.want.account)
			}
			if got := slices.Contains(d.Notes, "bind_account"); got != c.want.account {
				t.Errorf("got note bind_account %v, want %v", got, c.want.account)
			}
			if got := len(asked) > 0; got != c.askedUpstream {
				t.Errorf("asked the proxy upstream %v (%q), want %v", got, asked, c.askedUpstream)
			}
			rows, err := core.LastAudit(ctx, 1)
			if err != nil || len(rows) != 1 {
				t.Fatalf("audit: %v %v", rows, err)
			}
			if rows[0].User != c.want.audited || rows[0].Reason != string(c.want.reason) {
				t.Errorf("audit row user %q reason %q, want %q %q", rows[0].User, rows[0].Reason, c.want.audited, c.want.reason)
			}
		})
	}
}

// TestProxyModeWithoutUpstreamRefusesDNBinds: proxy mode with no upstream
// configured cannot tell whom a DN names, so a bind by DN fails as
// upstream_unreachable (the door answers "unavailable"), never as a guess.
func TestProxyModeWithoutUpstreamRefusesDNBinds(t *testing.T) {
	core := appliancetest.New(t, appliancetest.Options{})
	ctx := t.Context()
	pol := policy.Default()
	pol.MFA = policy.MFAOff
	if _, err := core.Admin.AddClient(ctx, admin.NewClient{Door: appliance.DoorLDAP, Name: "ehr", Address: "127.0.0.1", Policy: pol}); err != nil {
		t.Fatal(err)
	}
	if err := core.Admin.SetSetting(ctx, "ldap_mode", appliance.LDAPModeProxy); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("127.0.0.1")
	client, _, _ := core.Clients(appliance.DoorLDAP).Lookup(ctx, src)
	d, err := core.Gate.Decide(ctx, appliance.Request{
		Door: appliance.DoorLDAP, Method: appliance.MethodLDAPBind, Client: client, Source: src,
		User: "cn=alice,ou=Users,dc=clinic,dc=local", Password: secrets.Secret("x"),
	})
	if err != nil || d.Outcome != appliance.Reject || d.Reason != appliance.ReasonUpstreamDown {
		t.Errorf("got %s %s %v, want reject %s", d.Outcome, d.Reason, err, appliance.ReasonUpstreamDown)
	}
}

// TestBindAccountThrottledPerSource: wrong secrets for a bind account
// from one address are throttled there (the right secret refused too,
// for a while); the EHR server at another address is not affected, and
// the account never locks (issue 16, finding 2).
func TestBindAccountThrottledPerSource(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	core := appliancetest.New(t, appliancetest.Options{Now: func() time.Time { return now }})
	ctx := t.Context()
	pol := policy.Default()
	pol.MFA = policy.MFAOff
	if _, err := core.Admin.AddClient(ctx, admin.NewClient{Door: appliance.DoorLDAP, Name: "ehr", Address: "127.0.0.0/8", Policy: pol}); err != nil {
		t.Fatal(err)
	}
	const secret = "ehr-search-secret-0123456789"
	if _, err := core.Admin.AddBindAccount(ctx, admin.NewBindAccount{Name: "ehr-search", Networks: []string{"127.0.0.0/8"}, Secret: secrets.Secret(secret)}); err != nil {
		t.Fatal(err)
	}
	bind := func(src, pw string) appliance.Decision {
		t.Helper()
		addr := netip.MustParseAddr(src)
		client, ok, err := core.Clients(appliance.DoorLDAP).Lookup(ctx, addr)
		if err != nil || !ok {
			t.Fatalf("client lookup: %v %v", ok, err)
		}
		d, err := core.Gate.Decide(ctx, appliance.Request{Door: appliance.DoorLDAP, Method: appliance.MethodLDAPBind, Client: client, Source: addr,
			User: "ehr-search", Password: secrets.Secret(pw)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for range 5 {
		if d := bind("127.0.0.66", "guess"); d.Reason != appliance.ReasonBadPassword {
			t.Fatalf("a wrong secret: %s", d.Reason)
		}
	}
	if d := bind("127.0.0.66", secret); d.Outcome != appliance.Reject || d.Reason != appliance.ReasonLockedOut {
		t.Fatalf("the right secret from the throttled address: %s %s, want reject locked_out", d.Outcome, d.Reason)
	}
	if d := bind("127.0.0.20", secret); d.Outcome != appliance.Accept {
		t.Fatalf("the EHR server's address: %s %s, want accept", d.Outcome, d.Reason)
	}
	now = now.Add(6 * time.Minute)
	if d := bind("127.0.0.66", secret); d.Outcome != appliance.Accept {
		t.Fatalf("after the block: %s %s, want accept", d.Outcome, d.Reason)
	}
}
