package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

// waitFor polls cond for up to 10 s (a condition, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFreeRADIUSUpstreamWithTOTPAndCachedFailmode(t *testing.T) {
	need(t, "radclient", "radtest", "oathtool")
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		RequireMessageAuthenticator: true,
		Users: []upstreamtest.RADIUSUser{
			{Name: "alice", Password: "alice upstream pw", Reply: []string{`Class := "clinicians"`, `Filter-Id := "clinic-acl"`, `Idle-Timeout := 900`, `Reply-Message := "upstream internals"`}},
			{Name: "bob", Password: "bob upstream pw"},
		},
	})
	data := t.TempDir()
	d := startDaemon(t, data)
	out := mustCG(t, data, fr.Secret, "upstream", "add", "fr", "--kind", "radius", "--server", fr.Addr,
		"--require-message-authenticator=false", "--group-attribute", "Class", "--secret-stdin",
		"--pass-attribute", "Filter-Id", "--pass-attribute", "Idle-Timeout", "--pass-attribute", "Class")
	if !strings.Contains(out, "warning:") {
		t.Fatalf("no warning about replies without Message-Authenticator:\n%s", out)
	}
	mustCG(t, data, secret, "client", "add", "vpn", "--address", "127.0.0.1", "--secret-stdin",
		"--upstream", "fr", "--mfa", "enrolled", "--vlan", "clinicians=20")

	// The upstream decides the password; alice was never added locally.
	out = radclient(t, d.auth, "auth", secret, pap("alice", "alice upstream pw"))
	if got := received(out); got != "Access-Accept" {
		t.Fatalf("upstream password: got %s, want Access-Accept\n%s\n%s", got, out, fr.Log())
	}
	if !strings.Contains(out, `Tunnel-Private-Group-Id:0 = "20"`) && !strings.Contains(out, `Tunnel-Private-Group-Id = "20"`) {
		t.Fatalf("the upstream's group did not give VLAN 20:\n%s", out)
	}
	// Allowed reply attributes pass through; others never do.
	if !strings.Contains(out, `Filter-Id = "clinic-acl"`) || !strings.Contains(out, "Idle-Timeout = 900") || strings.Contains(out, "upstream internals") {
		t.Fatalf("pass-through attributes wrong:\n%s", out)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "wrong"))); got != "Access-Reject" {
		t.Fatalf("wrong password: got %s, want Access-Reject", got)
	}
	if users := mustCG(t, data, "", "user", "list"); !strings.Contains(users, "alice") {
		t.Fatalf("alice was not provisioned locally:\n%s", users)
	}
	test := mustCG(t, data, "alice upstream pw", "upstream", "test", "fr", "--user", "alice")
	if !strings.Contains(test, "accepted") || !strings.Contains(test, "clinicians") {
		t.Fatalf("upstream test did not report the accepted login:\n%s", test)
	}
	if out, err := cg(t, data, "nope", "upstream", "test", "fr", "--user", "alice"); err == nil || !strings.Contains(out, "wrong password") {
		t.Fatalf("upstream test with a wrong password: %v\n%s", err, out)
	}

	// TOTP on top of the upstream password.
	seed := enroll(t, data, "alice")
	rt, _ := exec.Command("radtest", "alice", "alice upstream pw,"+oathtool(t, seed, time.Now()), d.auth, "0", secret).CombinedOutput()
	if got := received(string(rt)); got != "Access-Accept" {
		t.Fatalf("upstream password plus TOTP: got %s, want Access-Accept\n%s", got, rt)
	}

	// Secure failmode: pulling the plug rejects.
	fr.Stop()
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "alice upstream pw"))); got != "Access-Reject" {
		t.Fatalf("upstream down, failmode secure: got %s, want Access-Reject", got)
	}
	if tail := mustCG(t, data, "", "audit", "tail"); !strings.Contains(tail, "upstream_unreachable") {
		t.Fatalf("audit lacks upstream_unreachable:\n%s", tail)
	}
}

func TestCachedFailmodeAcceptsOnlyVerifiedPasswordsWithTOTP(t *testing.T) {
	need(t, "radclient", "oathtool")
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		Users: []upstreamtest.RADIUSUser{
			{Name: "alice", Password: "alice upstream pw"},
			{Name: "carol", Password: "carol upstream pw"},
		},
	})
	data := t.TempDir()
	d := startDaemon(t, data)
	mustCG(t, data, fr.Secret, "upstream", "add", "fr", "--kind", "radius", "--server", fr.Addr,
		"--require-message-authenticator=false", "--timeout-ms", "300", "--secret-stdin")
	mustCG(t, data, secret, "client", "add", "vpn", "--address", "127.0.0.1", "--secret-stdin",
		"--upstream", "fr", "--failmode", "cached", "--mfa", "required", "--mfa-style", "append")
	// carol logs in first so that she exists locally, then enrols.
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "alice upstream pw"))); got != "Access-Reject" {
		t.Fatalf("alice without TOTP: got %s, want Access-Reject (mfa_not_enrolled)", got)
	}
	seed := enroll(t, data, "alice")
	now := time.Now()
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "alice upstream pw,"+oathtool(t, seed, now)))); got != "Access-Accept" {
		t.Fatalf("alice with TOTP: got %s, want Access-Accept", got)
	}
	db := openDB(t, data)
	waitFor(t, "alice's verifier to be cached", func() bool {
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM cached_verifiers`).Scan(&n)
		return n > 0
	})

	fr.Stop() // the internet is gone
	next := oathtool(t, seed, now.Add(30*time.Second))
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "wrong password,"+next))); got != "Access-Reject" {
		t.Fatalf("cached mode, wrong password: got %s, want Access-Reject", got)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "alice upstream pw,000000"))); got != "Access-Reject" {
		t.Fatalf("cached mode, wrong code: got %s, want Access-Reject", got)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "alice upstream pw,"+next))); got != "Access-Accept" {
		t.Fatalf("cached mode, verified password and TOTP: got %s, want Access-Accept", got)
	}
	// carol's password is right upstream, but was never verified here: the
	// cache must not accept what it has not seen.
	if got := received(radclient(t, d.auth, "auth", secret, pap("carol", "carol upstream pw,123456"))); got != "Access-Reject" {
		t.Fatalf("cached mode, never verified: got %s, want Access-Reject", got)
	}
	var detail string
	if err := db.QueryRow(`SELECT detail FROM audit WHERE kind = 'decision' AND outcome = 'accept' ORDER BY seq DESC LIMIT 1`).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "accepted_from_cached_credential") {
		t.Fatalf("the cached acceptance is not marked in the audit: %s", detail)
	}
	// Disabling alice deletes her cached verifier.
	mustCG(t, data, "", "user", "disable", "alice")
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM cached_verifiers`).Scan(&n)
	if n != 0 {
		t.Fatalf("got %d cached verifiers after disabling, want 0", n)
	}
}

func TestSlapdUpstreamEndToEnd(t *testing.T) {
	need(t, "radclient")
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: []upstreamtest.LDAPUser{
		{UID: "nina", Password: "nina ldap pw", Groups: []string{"nurses"}},
		{UID: "otto", Password: "otto ldap pw", Groups: []string{"billing"}},
	}})
	data := t.TempDir()
	d := startDaemon(t, data)
	mustCG(t, data, "service-secret", "upstream", "add", "dir", "--kind", "ldap", "--url", s.URL, "--starttls",
		"--ca-file", s.CAFile, "--bind-dn", "cn=ehr-service,"+s.Base, "--base-dn", "ou=people,"+s.Base,
		"--group-base-dn", "ou=groups,"+s.Base, "--secret-stdin")
	mustCG(t, data, secret, "client", "add", "wifi", "--address", "127.0.0.1", "--secret-stdin",
		"--upstream", "dir", "--mfa", "off", "--allow-group", "nurses", "--vlan", "nurses=30")
	out := radclient(t, d.auth, "auth", secret, pap("nina", "nina ldap pw"))
	if got := received(out); got != "Access-Accept" || !strings.Contains(out, `"30"`) {
		t.Fatalf("nina: got %s, want Access-Accept with VLAN 30\n%s", got, out)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("otto", "otto ldap pw"))); got != "Access-Reject" {
		t.Fatalf("otto (billing, not allowed): got %s, want Access-Reject", got)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("*)(uid=*", "nina ldap pw"))); got != "Access-Reject" {
		t.Fatalf("filter injection: got %s, want Access-Reject", got)
	}
	tail := mustCG(t, data, "", "audit", "tail")
	for _, want := range []string{"group_not_allowed", "accept    ok"} {
		if !strings.Contains(tail, want) {
			t.Fatalf("audit lacks %s:\n%s", want, tail)
		}
	}
	test := mustCG(t, data, "nina ldap pw", "upstream", "test", "dir", "--user", "nina")
	if !strings.Contains(test, "2. connecting") || !strings.Contains(test, "accepted") {
		t.Fatalf("upstream test:\n%s", test)
	}
	// A wrong CA is explained in words.
	mustCG(t, data, "service-secret", "upstream", "add", "badca", "--kind", "ldap", "--url", s.URL, "--starttls",
		"--ca-file", s.WrongCAFile, "--bind-dn", "cn=ehr-service,"+s.Base, "--base-dn", s.Base, "--secret-stdin")
	out2, err := cg(t, data, "x", "upstream", "test", "badca", "--user", "nina")
	if err == nil || !strings.Contains(out2, "unknown authority") {
		t.Fatalf("wrong CA: %v\n%s", err, out2)
	}
}

func TestOIDCUpstreamEndToEnd(t *testing.T) {
	need(t, "radclient", "oathtool")
	l := upstreamtest.StartLemonLDAP(t)
	data := t.TempDir()
	d := startDaemon(t, data)
	mustCG(t, data, l.ClientSecret, "upstream", "add", "idp", "--kind", "oidc", "--issuer", l.Issuer,
		"--client-id", l.ClientID, "--scope", "openid", "--scope", "profile", "--scope", "groups", "--secret-stdin")
	mustCG(t, data, secret, "client", "add", "vpn", "--address", "127.0.0.1", "--secret-stdin",
		"--upstream", "idp", "--mfa", "enrolled", "--allow-group", "timelords", "--vlan", "timelords=42")
	out := radclient(t, d.auth, "auth", secret, pap("dwho", "dwho"))
	if got := received(out); got != "Access-Accept" || !strings.Contains(out, `"42"`) {
		t.Fatalf("dwho via the OpenID Provider: got %s, want Access-Accept with VLAN 42\n%s", got, out)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("dwho", "not-dwho"))); got != "Access-Reject" {
		t.Fatalf("wrong password: got %s, want Access-Reject", got)
	}
	// rtyler's password is right, but the groups claim lacks timelords.
	if got := received(radclient(t, d.auth, "auth", secret, pap("rtyler", "rtyler"))); got != "Access-Reject" {
		t.Fatalf("rtyler: got %s, want Access-Reject (group_not_allowed)", got)
	}
	seed := enroll(t, data, "dwho")
	if got := received(radclient(t, d.auth, "auth", secret, pap("dwho", "dwho,"+oathtool(t, seed, time.Now())))); got != "Access-Accept" {
		t.Fatalf("dwho with TOTP: got %s, want Access-Accept", got)
	}
	test := mustCG(t, data, "dwho", "upstream", "test", "idp", "--user", "dwho")
	if !strings.Contains(test, "accepted") || !strings.Contains(test, "timelords") {
		t.Fatalf("upstream test:\n%s", test)
	}
}

// TestPEAPThroughFreeRADIUSUpstream: PEAP's inner MS-CHAPv2 checked by a
// RADIUS upstream rather than a kept NT hash. FreeRADIUS holds the
// password and checks the response itself; clinicgate relays the
// MS-CHAP attributes and hands its proof to the peer inside the tunnel.
// eapol_test checks that proof (a wrong one ends the tunnel) and the MPPE
// keys of the Accept.
func TestPEAPThroughFreeRADIUSUpstream(t *testing.T) {
	need(t, "radclient", "radtest", "oathtool")
	fr := upstreamtest.StartFreeRADIUS(t, upstreamtest.FreeRADIUSOptions{
		RequireMessageAuthenticator: true,
		Users:                       []upstreamtest.RADIUSUser{{Name: "bob", Password: "bob upstream pw"}},
	})
	data := t.TempDir()
	d := startDaemon(t, data)
	// FreeRADIUS 3.2.1 signs no replies: the check is relaxed for it, as
	// its warning says.
	mustCG(t, data, fr.Secret, "upstream", "add", "fr", "--kind", "radius", "--server", fr.Addr, "--require-message-authenticator=false", "--secret-stdin")
	mustCG(t, data, secret, "client", "add", "aps", "--address", "127.0.0.1", "--secret-stdin",
		"--upstream", "fr", "--mfa", "off", "--allow-mschap", "--eap", "peap")
	peap := func(password string) []string {
		return []string{`eap=PEAP`, `identity="bob"`, `anonymous_identity="anonymous"`, `password="` + password + `"`,
			`phase1="peapver=0"`, `phase2="auth=MSCHAPV2"`}
	}
	out, ok := eapol(t, data, d, peap("bob upstream pw")...)
	if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
		t.Fatalf("PEAP through the FreeRADIUS upstream failed:\n%s\nlast audit entry:\n%s\nFreeRADIUS:\n%s", tail(out, 3000), lastAudit(t, data), tail(fr.Log(), 3000))
	}
	if show := lastAudit(t, data); !strings.Contains(show, "MS-CHAPv2 response verified by fr") || !strings.Contains(show, "PEAP with EAP-MSCHAPv2 over TLS") {
		t.Fatalf("the story does not say the upstream checked the response:\n%s", show)
	}
	// No NT hash was kept: the upstream checked it, and bob never logged
	// in with a password here.
	out, ok = eapol(t, data, d, peap("wrong pw")...)
	if ok || strings.Contains(out, "MPPE keys OK: 1") {
		t.Fatalf("a wrong password through the upstream succeeded:\n%s", tail(out, 3000))
	}
	if show := lastAudit(t, data); !strings.Contains(show, "bad_password") {
		t.Fatalf("the last audit entry lacks bad_password:\n%s", show)
	}
}
