package ldapproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/ldapproxy"
)

const (
	base     = "dc=clinic,dc=local"
	alicePW  = "correct horse battery"
	bindName = "ehr-search"
	bindPW   = "ehr-search-secret-0123456789"
)

type env struct {
	t     testing.TB
	core  *appliancetest.Core
	adm   *admin.Service
	srv   *ldapproxy.Server
	addr  string // plain LDAP
	addrS string // LDAPS
	ca    *x509.CertPool
	dir   string
}

type opts struct {
	clientAddr string // default 127.0.0.1
	mut        func(*policy.Policy)
	cfg        func(*ldapproxy.Config)
}

// newEnv starts the door on 127.0.0.1 with a real core (appliancetest)
// and TLS certificate; user alice (group nurses) and bind account
// ehr-search.
func newEnv(t testing.TB, o opts) *env {
	t.Helper()
	core := appliancetest.New(t, appliancetest.Options{})
	log := slog.New(slog.DiscardHandler)
	adm, dir := core.Admin, core.Dir
	e := &env{t: t, core: core, adm: adm, dir: dir}
	ca := o.clientAddr
	if ca == "" {
		ca = "127.0.0.1"
	}
	pol := policy.Default()
	pol.MFA = policy.MFAOff
	if o.mut != nil {
		o.mut(&pol)
	}
	if _, err := adm.AddClient(t.Context(), admin.NewClient{Door: appliance.DoorLDAP, Name: "ehr", Address: ca, Policy: pol}); err != nil {
		t.Fatal(err)
	}
	if err := adm.AddUser(t.Context(), admin.NewUser{Name: "alice", DisplayName: "Alice Nurse", Password: secrets.Secret(alicePW), Groups: []string{"nurses"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AddBindAccount(t.Context(), admin.NewBindAccount{Name: bindName, Networks: []string{ca}, Secret: secrets.Secret(bindPW)}); err != nil {
		t.Fatal(err)
	}
	certPath, keyPath, _, _, err := ldapproxy.EnsureCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ldapproxy.TLSConfig(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(certPath)
	e.ca = x509.NewCertPool()
	e.ca.AppendCertsFromPEM(pem)
	cfg := ldapproxy.Config{Gate: core.Gate, Clients: core.Clients(appliance.DoorLDAP), TLS: tlsCfg, Logger: log}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	srv, err := ldapproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lns, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr, e.addrS = ln.Addr().String(), lns.Addr().String()
	go srv.Serve(ln)
	go srv.ServeTLS(lns)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return e
}

func (e *env) dial() *ldap.Conn {
	e.t.Helper()
	c, err := ldap.DialURL("ldap://"+e.addr, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetTimeout(10 * time.Second)
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: e.ca, ServerName: "127.0.0.1"}
}

func (e *env) dialTLS() *ldap.Conn {
	e.t.Helper()
	c := e.dial()
	if err := c.StartTLS(e.tlsConfig()); err != nil {
		e.t.Fatalf("StartTLS: %v", err)
	}
	return c
}

func code(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	if err == nil {
		return 0
	}
	return 9999
}

// lastAudit returns the newest audit rows' reasons.
func (e *env) auditReasons(n int) []string {
	e.t.Helper()
	rows, err := e.core.LastAudit(e.t.Context(), n)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Reason)
	}
	return out
}

func (e *env) wantAudit(reason string) {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := e.auditReasons(5)
		for _, r := range got {
			if r == reason {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("audit: got reasons %v, want %s among them", got, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnonymousBindReadsOnlyTheRootDSE: as Active Directory does, an
// anonymous bind succeeds, and the connection may read the root DSE and
// nothing else (issue 16).
func TestAnonymousBindReadsOnlyTheRootDSE(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.UnauthenticatedBind(""); err != nil {
		t.Fatalf("anonymous bind: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("root DSE after an anonymous bind: %v", err)
	}
	_, err = c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	if code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("a search after an anonymous bind: got %v, want insufficientAccessRights", err)
	}
	e.wantAudit(string(appliance.ReasonNotBound))
}

// RFC 4513 §5.1.2: a DN with an empty password must never succeed.
func TestUnauthenticatedBindRefused(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	for _, dn := range []string{"cn=alice,ou=Users," + base, "alice", bindName} {
		err := c.UnauthenticatedBind(dn)
		if got := code(err); got != ldap.LDAPResultUnwillingToPerform {
			t.Errorf("bind %q with no password: got %v (code %d), want unwillingToPerform", dn, err, got)
		}
	}
	e.wantAudit(string(appliance.ReasonUnauthenticated))
	if err := c.Bind("alice", alicePW); err != nil {
		t.Fatalf("the connection must still work after a refusal: %v", err)
	}
}

func TestSASLBindGetsResultCodeNotHang(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	err := c.ExternalBind()
	if got := code(err); got != ldap.LDAPResultAuthMethodNotSupported {
		t.Fatalf("SASL EXTERNAL: got %v (code %d), want authMethodNotSupported", err, got)
	}
	e.wantAudit(string(appliance.ReasonSASLUnsupported))
	if err := c.Bind("alice", alicePW); err != nil {
		t.Fatalf("simple bind after the refused SASL bind: %v", err)
	}
}

func TestPlainBindRefusedWhenTLSRequired(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dial()
	err := c.Bind("alice", alicePW)
	if got := code(err); got != ldap.LDAPResultConfidentialityRequired {
		t.Fatalf("plain bind: got %v (code %d), want confidentialityRequired", err, got)
	}
	e.wantAudit(string(appliance.ReasonTLSRequired))
	if err := c.Bind(bindName, bindPW); code(err) != ldap.LDAPResultConfidentialityRequired {
		t.Fatalf("plain bind of the bind account: got %v, want confidentialityRequired", err)
	}
	// StartTLS on the same connection, then the bind works.
	if err := c.StartTLS(e.tlsConfig()); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind("alice", alicePW); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	// LDAPS.
	s, err := ldap.DialURL("ldaps://"+e.addrS, ldap.DialWithTLSConfig(e.tlsConfig()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Bind("alice", alicePW); err != nil {
		t.Fatalf("bind over LDAPS: %v", err)
	}
}

func TestPlainBindAllowedWhenPolicySaysSo(t *testing.T) {
	e := newEnv(t, opts{mut: func(p *policy.Policy) { p.AllowPlainLDAP = true }})
	if err := e.dial().Bind("alice", alicePW); err != nil {
		t.Fatalf("plain bind with allow_plain_ldap: %v", err)
	}
}

func TestOldTLSRefused(t *testing.T) {
	e := newEnv(t, opts{})
	cfg := e.tlsConfig()
	cfg.MaxVersion = tls.VersionTLS11
	if _, err := ldap.DialURL("ldaps://"+e.addrS, ldap.DialWithTLSConfig(cfg)); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

func TestBindNameForms(t *testing.T) {
	e := newEnv(t, opts{})
	for _, tt := range []struct {
		name string
		want uint16
	}{
		{"alice", 0},
		{"cn=alice,ou=Users," + base, 0},
		{"CN=Alice,OU=Users,DC=Clinic,DC=Local", 0},
		{"uid=alice,ou=people," + base, 0},
		{"alice@clinic.local", 0},
		{"ALICE@CLINIC.LOCAL", 0},
		{`CLINIC\alice`, 0},
		{`clinic\alice`, 0},
		{`OTHER\alice`, ldap.LDAPResultInvalidCredentials},
		{"cn=alice,ou=Users,dc=evil,dc=example", ldap.LDAPResultInvalidCredentials},
		{"cn=alice,dc=local", ldap.LDAPResultInvalidCredentials},
		{"alice@other.example", ldap.LDAPResultInvalidCredentials},
		{"cn=alice,,,=", ldap.LDAPResultInvalidCredentials},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := e.dialTLS().Bind(tt.name, alicePW)
			if got := code(err); got != tt.want {
				t.Errorf("bind as %q: got %v (code %d), want code %d", tt.name, err, got, tt.want)
			}
		})
	}
	e.wantAudit(string(appliance.ReasonOutsideBase))
}

func TestBindDNOutsideBaseRefused(t *testing.T) {
	e := newEnv(t, opts{})
	err := e.dialTLS().Bind("cn=alice,ou=Users,dc=evil,dc=example", alicePW)
	if code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("got %v, want invalidCredentials", err)
	}
	e.wantAudit(string(appliance.ReasonOutsideBase))
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	e := newEnv(t, opts{})
	var msgs []string
	for _, u := range []string{"alice", "nobody"} {
		err := e.dialTLS().Bind(u, "wrong password")
		var le *ldap.Error
		if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bind %s: got %v, want invalidCredentials", u, err)
		}
		msgs = append(msgs, le.Err.Error())
	}
	if msgs[0] != msgs[1] {
		t.Errorf("diagnostics differ: %q vs %q", msgs[0], msgs[1])
	}
}

func TestDisabledUserCannotBind(t *testing.T) {
	e := newEnv(t, opts{})
	yes := true
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	err := e.dialTLS().Bind("alice", alicePW)
	if code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("disabled user: got %v, want invalidCredentials", err)
	}
	e.wantAudit(string(appliance.ReasonDisabled))
}

func totp(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mfa.HOTP(seed, uint64(mfa.Step(at, 30)), 6, "SHA1")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUserBindNeedsAppendedCode(t *testing.T) {
	e := newEnv(t, opts{mut: func(p *policy.Policy) { p.MFA = policy.MFARequired; p.Style = policy.StyleChallenge }})
	en, err := e.adm.EnrollTOTP(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	var le *ldap.Error
	err = e.dialTLS().Bind("alice", alicePW)
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials || !strings.Contains(le.Err.Error(), "comma") {
		t.Fatalf("bind without a code: got %v, want invalidCredentials telling how to append the code", err)
	}
	e.wantAudit(string(appliance.ReasonMFARequired))
	c := totp(t, en.Secret, time.Now())
	if err := e.dialTLS().Bind("alice", alicePW+","+c); err != nil {
		t.Fatalf("bind with password,code: %v", err)
	}
	// The same code again is a replay (no remembering in this policy).
	if err := e.dialTLS().Bind("alice", alicePW+","+c); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("replayed code: got %v, want invalidCredentials", err)
	}
	e.wantAudit(string(appliance.ReasonMFAReplay))
}

func TestRememberedCodeLetsTheEHRBindAgain(t *testing.T) {
	e := newEnv(t, opts{mut: func(p *policy.Policy) { p.MFA = policy.MFARequired; p.MFARemember = 600 }})
	en, err := e.adm.EnrollTOTP(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dialTLS().Bind("alice", alicePW); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("first bind without a code: got %v, want invalidCredentials", err)
	}
	typed := alicePW + "," + totp(t, en.Secret, time.Now())
	if err := e.dialTLS().Bind("alice", typed); err != nil {
		t.Fatalf("bind with password,code: %v", err)
	}
	// The EHR repeats what the user typed, and later only the password.
	for _, pw := range []string{typed, alicePW} {
		if err := e.dialTLS().Bind("alice", pw); err != nil {
			t.Fatalf("rebind within the remember window with %q: %v", strings.Repeat("*", len(pw)), err)
		}
	}
	// A wrong password is still refused: only the code is remembered.
	if err := e.dialTLS().Bind("alice", "wrong"); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("wrong password within the window: got %v", err)
	}
	// A password reset voids what was remembered.
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Password: secrets.Secret("a new long password")}); err != nil {
		t.Fatal(err)
	}
	if err := e.dialTLS().Bind("alice", "a new long password"); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("after a password reset, the code must be asked again: got %v", err)
	}
}

func TestBindAccountSearchesDirectory(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatalf("bind account: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectCategory=person)(objectClass=user)(sAMAccountName=alice))", []string{"sAMAccountName", "userPrincipalName", "memberOf", "displayName"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 {
		t.Fatalf("got %d entries, want 1", len(res.Entries))
	}
	en := res.Entries[0]
	if got, want := en.DN, "cn=alice,ou=Users,"+base; !strings.EqualFold(got, want) {
		t.Errorf("DN: got %q, want %q", got, want)
	}
	if got := en.GetAttributeValue("userPrincipalName"); got != "alice@clinic.local" {
		t.Errorf("userPrincipalName: got %q", got)
	}
	if got := en.GetAttributeValue("displayName"); got != "Alice Nurse" {
		t.Errorf("displayName: got %q", got)
	}
	if got := en.GetAttributeValues("memberOf"); len(got) != 1 || !strings.HasPrefix(strings.ToLower(got[0]), "cn=nurses,") {
		t.Errorf("memberOf: got %q", got)
	}
	// Then the EHR binds as the DN it found.
	if err := e.dialTLS().Bind(en.DN, alicePW); err != nil {
		t.Errorf("user bind as the DN found: %v", err)
	}
}

func TestBindAccountFromOtherNetworkRefused(t *testing.T) {
	e := newEnv(t, opts{clientAddr: "127.0.0.0/8"})
	if err := e.adm.RemoveBindAccount(t.Context(), bindName); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adm.AddBindAccount(t.Context(), admin.NewBindAccount{Name: bindName, Networks: []string{"127.0.0.9"}, Secret: secrets.Secret(bindPW)}); err != nil {
		t.Fatal(err)
	}
	err := e.dialTLS().Bind(bindName, bindPW)
	if code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("bind account from 127.0.0.1: got %v, want invalidCredentials", err)
	}
	e.wantAudit(string(appliance.ReasonNotAllowedNet))
	if err := e.dialTLS().Bind(bindName, "wrong secret"); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("wrong secret: got %v", err)
	}
}

func TestSearchBeforeBindRefused(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	_, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	if code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("anonymous search: got %v, want insufficientAccessRights", err)
	}
	e.wantAudit(string(appliance.ReasonNotBound))
	// The root DSE may be read before binding (clients discover the base).
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("namingContexts") != base {
		t.Fatalf("root DSE: got %v, %v", res, err)
	}
	// A failed bind leaves the connection unauthenticated.
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	_ = c.Bind(bindName, "wrong")
	if _, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil)); code(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Fatalf("search after a failed rebind: got %v, want insufficientAccessRights", err)
	}
}

func TestSearchOutsideBaseFindsNothing(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	_, err := c.Search(ldap.NewSearchRequest("dc=other,dc=example", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	if code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("got %v, want noSuchObject", err)
	}
	e.wantAudit(string(appliance.ReasonOutsideBase))
}

func TestFilterInjectionFindsOnlyTheLiteralName(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"*)(uid=*", "alice)(|(objectClass=*", "\x00", "*"} {
		f := "(sAMAccountName=" + ldap.EscapeFilter(name) + ")"
		res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, f, nil, nil))
		if err != nil {
			t.Fatalf("%q: %v", f, err)
		}
		if len(res.Entries) != 0 {
			t.Errorf("%q found %d entries, want none", f, len(res.Entries))
		}
	}
	for _, name := range []string{"*)(uid=*", "al\x00ice", "\xff\xfe", strings.Repeat("a", 300)} {
		if err := e.dialTLS().Bind(name, alicePW); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Errorf("bind as %q: got %v, want invalidCredentials", name, err)
		}
	}
}

func TestWritesRefused(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	dn := "cn=alice,ou=Users," + base
	add := ldap.NewAddRequest("cn=mallory,ou=Users,"+base, nil)
	add.Attribute("objectClass", []string{"user"})
	mod := ldap.NewModifyRequest(dn, nil)
	mod.Replace("displayName", []string{"x"})
	for name, op := range map[string]func() error{
		"add":      func() error { return c.Add(add) },
		"modify":   func() error { return c.Modify(mod) },
		"delete":   func() error { return c.Del(ldap.NewDelRequest(dn, nil)) },
		"modrdn":   func() error { return c.ModifyDN(ldap.NewModifyDNRequest(dn, "cn=bob", true, "")) },
		"compare":  func() error { _, err := c.Compare(dn, "sAMAccountName", "alice"); return err },
		"password": func() error { _, err := c.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", "x")); return err },
	} {
		err := op()
		want := uint16(ldap.LDAPResultInsufficientAccessRights)
		if name == "password" {
			want = ldap.LDAPResultProtocolError
		}
		if got := code(err); got != want {
			t.Errorf("%s: got %v (code %d), want %d", name, err, got, want)
		}
	}
	e.wantAudit(string(appliance.ReasonWriteRefused))
	if _, err := c.WhoAmI(nil); err != nil {
		t.Fatalf("the connection must survive refused writes: %v", err)
	}
}

func TestWhoAmI(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.Bind("alice@clinic.local", alicePW); err != nil {
		t.Fatal(err)
	}
	res, err := c.WhoAmI(nil)
	if err != nil || res.AuthzID != "u:alice" {
		t.Fatalf("whoami: got %+v, %v; want u:alice", res, err)
	}
}

// rawConn speaks bytes to the door, for what no client library sends.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// expectDisconnect reads until EOF and reports whether a Notice of
// Disconnection (protocolError) came first.
func expectDisconnect(t *testing.T, c net.Conn) {
	t.Helper()
	p, err := ber.ReadPacket(c)
	if err != nil {
		t.Fatalf("want a Notice of Disconnection, got %v", err)
	}
	if len(p.Children) < 2 || len(p.Children[1].Children) < 1 || p.Children[1].Children[0].Value != int64(ldap.LDAPResultProtocolError) {
		t.Fatalf("want a protocolError notice, got:\n%s", dump(p))
	}
	if r := p.Children[1].Children; len(r) < 4 || r[3].Data.String() != "1.3.6.1.4.1.1466.20036" {
		t.Errorf("the notice lacks its responseName:\n%s", dump(p))
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("after the notice: %v, want EOF", err)
	}
}

func dump(p *ber.Packet) string {
	var b strings.Builder
	ber.WritePacket(&b, p)
	return b.String()
}

func (e *env) stillAnswers() {
	e.t.Helper()
	if err := e.dialTLS().Bind("alice", alicePW); err != nil {
		e.t.Fatalf("the door stopped answering: %v", err)
	}
}

func TestMalformedBERClosesWithNotice(t *testing.T) {
	e := newEnv(t, opts{})
	for name, msg := range map[string][]byte{
		"not a sequence":           {0x04, 0x03, 'a', 'b', 'c'},
		"indefinite length":        {0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00},
		"child longer than parent": {0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x7f},
		"child claims 2 GiB":       {0x30, 0x08, 0x02, 0x01, 0x01, 0x04, 0x84, 0x7f, 0xff, 0xff},
		"not a request":            {0x30, 0x03, 0x02, 0x01, 0x01},
		"bind with no name":        {0x30, 0x08, 0x02, 0x01, 0x01, 0x60, 0x03, 0x02, 0x01, 0x03},
		"LDAPv2 bind":              {0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x02, 0x04, 0x00, 0x80, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			c := rawConn(t, e.addr)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			expectDisconnect(t, c)
		})
	}
	e.stillAnswers()
}

func TestOversizeMessageRefusedBeforeBuffering(t *testing.T) {
	e := newEnv(t, opts{})
	c := rawConn(t, e.addr)
	// Claims 16 MiB; only the header is sent.
	if _, err := c.Write([]byte{0x30, 0x84, 0x01, 0x00, 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	expectDisconnect(t, c)
	e.stillAnswers()
}

func nestedFilter(depth int) string {
	return strings.Repeat("(&", depth) + "(objectClass=*)" + strings.Repeat(")", depth)
}

func TestDeeplyNestedFilterRefused(t *testing.T) {
	e := newEnv(t, opts{})
	c := e.dialTLS()
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	_, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, nestedFilter(40), nil, nil))
	if code(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("40 deep: got %v, want unwillingToPerform", err)
	}
	// Thousands deep: the message itself is refused, and the connection
	// ends with a notice.
	f, err := ldap.CompileFilter(nestedFilter(5000))
	if err != nil {
		t.Fatal(err)
	}
	req := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "id"))
	s := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 3, nil, "Search")
	s.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, base, "base"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "scope"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "size"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "time"))
	s.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "types"))
	s.AppendChild(f)
	s.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attrs"))
	req.AppendChild(s)
	rc := rawConn(t, e.addr)
	if _, err := rc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	expectDisconnect(t, rc)
	e.stillAnswers()
}

func TestStalledHalfMessageTimesOut(t *testing.T) {
	e := newEnv(t, opts{cfg: func(c *ldapproxy.Config) { c.IdleTimeout = 300 * time.Millisecond }})
	c := rawConn(t, e.addr)
	if _, err := c.Write([]byte{0x30, 0x20, 0x02, 0x01}); err != nil {
		t.Fatal(err)
	}
	// The connection's own deadline is 10 s: only the door's idle
	// timeout (300 ms here) can end the read with EOF first.
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("want the door to close the stalled connection, got %v", err)
	}
	e.stillAnswers()
}

func TestUnknownClientAddressRefusedAtConnect(t *testing.T) {
	e := newEnv(t, opts{clientAddr: "127.0.0.2"})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	c := ldap.NewConn(nc, false)
	c.Start()
	if err := c.Bind("alice", alicePW); err == nil {
		t.Fatal("an address that is no LDAP client got an answer")
	}
	// From the client's address it works (it is allowed plain, here via
	// StartTLS).
	d2 := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	nc2, err := d2.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c2 := ldap.NewConn(nc2, false)
	c2.Start()
	defer c2.Close()
	if err := c2.StartTLS(e.tlsConfig()); err != nil {
		t.Fatal(err)
	}
	if err := c2.Bind("alice", alicePW); err != nil {
		t.Fatalf("from the client's address: %v", err)
	}
}

func TestIdleConnectionFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	e := newEnv(t, opts{clientAddr: "127.0.0.0/8", cfg: func(c *ldapproxy.Config) { c.MaxConns = 200; c.MaxConnsPerSource = 50 }})
	const n = 10000
	conns := make(chan net.Conn, n)
	sem := make(chan struct{}, 100)
	for range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 10 * time.Second}
			if c, err := d.Dial("tcp", e.addr); err == nil {
				conns <- c
			} else {
				conns <- nil
			}
		}()
	}
	var open []net.Conn
	for range n {
		if c := <-conns; c != nil {
			open = append(open, c)
		}
	}
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	// Another address still gets in and is answered.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := ldap.NewConn(nc, false)
	c.Start()
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.StartTLS(e.tlsConfig()); err != nil {
		t.Fatalf("StartTLS during the flood: %v", err)
	}
	if err := c.Bind("alice", alicePW); err != nil {
		t.Fatalf("bind during the flood: %v", err)
	}
	// Of the flood, at most the per-source limit stays open. Refused
	// connections are closed as the accept loop reaches them, so count
	// again until it has (a connection still waiting in the kernel's
	// accept queue looks open until then).
	alive := 0
	buf := make([]byte, 1)
	for try := 0; try < 50; try++ {
		alive = 0
		for _, c := range open {
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(buf); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				alive++
			}
		}
		if alive <= 50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if alive > 50 {
		t.Errorf("%d flood connections still open, want at most 50 (the per-source limit)", alive)
	}
	t.Logf("%d connections opened by the flood, %d kept (per-source limit 50)", len(open), alive)
}

func TestAbandonAndUnbindMidSearch(t *testing.T) {
	e := newEnv(t, opts{})
	for i := range 200 {
		if err := e.adm.AddUser(t.Context(), admin.NewUser{Name: fmt.Sprintf("user%03d", i), Groups: []string{"staff"}}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.dialTLS()
	if err := c.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	// SearchAsync + cancel sends an Abandon for a search in progress.
	for range 20 {
		ctx, cancel := contextWithCancel(t)
		r := c.SearchAsync(ctx, ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil), 8)
		cancel()
		for r.Next() {
		}
	}
	if _, err := c.WhoAmI(nil); err != nil {
		t.Fatalf("after abandons: %v", err)
	}
	// Unbind while a search runs.
	c2 := e.dialTLS()
	if err := c2.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	go c2.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	_ = c2.Unbind()
	e.stillAnswers()
}

func contextWithCancel(t *testing.T) (ctx context.Context, cancel func()) {
	return context.WithCancel(t.Context())
}

func TestBindAccountAndUserNamesNeverCollide(t *testing.T) {
	e := newEnv(t, opts{})
	if err := e.adm.AddUser(t.Context(), admin.NewUser{Name: bindName}); err == nil {
		t.Error("a user was added with a bind account's name")
	}
	if _, err := e.adm.AddBindAccount(t.Context(), admin.NewBindAccount{Name: "alice", Networks: []string{"127.0.0.1"}}); err == nil {
		t.Error("a bind account was added with a user's name")
	}
}

func TestShutdownDoesNotWaitForIdleConnections(t *testing.T) {
	// An hour of idle timeout: Shutdown must end the idle connection
	// itself, well inside its context.
	e := newEnv(t, opts{cfg: func(c *ldapproxy.Config) { c.IdleTimeout = time.Hour }})
	c := e.dialTLS()
	if err := c.Bind("alice", alicePW); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an idle connection: %v", err)
	}
}

// TestSilentConnectionsClosedAtTheAuthDeadline: a connection that opens
// and never binds (here: sends nothing at all) is closed at the
// authentication deadline, long before the idle timeout; one that bound
// stays open past it (issue 16, finding 5).
func TestSilentConnectionsClosedAtTheAuthDeadline(t *testing.T) {
	e := newEnv(t, opts{cfg: func(c *ldapproxy.Config) { c.AuthTimeout = 300 * time.Millisecond; c.IdleTimeout = time.Minute }})
	silent, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	bound := e.dialTLS()
	defer bound.Close()
	if err := bound.Bind("alice", alicePW); err != nil {
		t.Fatal(err)
	}
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the silent connection was not closed by the server: %v", err)
	}
	t.Logf("silent connection closed after %v", time.Since(start).Round(10*time.Millisecond))
	time.Sleep(400 * time.Millisecond)
	if _, err := bound.WhoAmI(nil); err != nil {
		t.Fatalf("the bound connection did not outlive the auth deadline: %v", err)
	}
}

// TestOneClientCannotTakeEverySlot: a client spread over many addresses
// (a /24) holds at most its share of the connection limit; another
// client still gets in.
func TestOneClientCannotTakeEverySlot(t *testing.T) {
	e := newEnv(t, opts{clientAddr: "127.0.0.0/8", cfg: func(c *ldapproxy.Config) {
		c.MaxConns, c.MaxConnsPerSource, c.MaxConnsPerClient = 8, 8, 4
	}})
	pol := policy.Default()
	pol.MFA = policy.MFAOff
	if _, err := e.adm.AddClient(t.Context(), admin.NewClient{Door: appliance.DoorLDAP, Name: "billing", Address: "127.0.0.200", Policy: pol}); err != nil {
		t.Fatal(err)
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 12 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%6))}, Timeout: 5 * time.Second}
		if c, err := d.Dial("tcp", e.addr); err == nil {
			open = append(open, c)
		}
	}
	alive := 0
	for try := 0; try < 50; try++ {
		alive = 0
		for _, c := range open {
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
				alive++
			}
		}
		if alive <= 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if alive > 4 {
		t.Fatalf("%d connections of one client kept, want at most its share of 4", alive)
	}
	// Client table: the client is resolved at accept, within a second of
	// being added.
	var err error
	for try := 0; try < 20; try++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 200)}, Timeout: 5 * time.Second}
		var nc net.Conn
		if nc, err = d.Dial("tcp", e.addr); err == nil {
			c := ldap.NewConn(nc, false)
			c.Start()
			c.SetTimeout(5 * time.Second)
			err = c.StartTLS(e.tlsConfig())
			if err == nil {
				err = c.Bind("alice", alicePW)
			}
			c.Close()
		}
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the other client could not bind while the first held its share: %v", err)
}

// TestUserBindReadsOnlyItsOwnEntry: in directory mode a person's bind may
// read their own entry and the root DSE, not every name (issue 16: a user
// bind listed every account, the first step of locking them all out); a
// bind account reads everything; ldap_user_search all restores it for
// people.
func TestUserBindReadsOnlyItsOwnEntry(t *testing.T) {
	e := newEnv(t, opts{})
	if err := e.adm.AddUser(t.Context(), admin.NewUser{Name: "bob", Password: secrets.Secret("bob password 123"), Groups: []string{"nurses"}}); err != nil {
		t.Fatal(err)
	}
	all := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"cn"}, nil)
	names := func(c *ldap.Conn) []string {
		t.Helper()
		res, err := c.Search(all)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, en := range res.Entries {
			out = append(out, en.DN)
		}
		return out
	}
	alice := e.dialTLS()
	if err := alice.Bind("alice", alicePW); err != nil {
		t.Fatal(err)
	}
	got := names(alice)
	if len(got) != 1 || !strings.HasPrefix(strings.ToLower(got[0]), "cn=alice,") {
		t.Fatalf("alice's bind sees %v, want her own entry only", got)
	}
	if res, err := alice.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil)); err != nil || len(res.Entries) != 1 {
		t.Fatalf("the root DSE after a user bind: %v", err)
	}
	svc := e.dialTLS()
	if err := svc.Bind(bindName, bindPW); err != nil {
		t.Fatal(err)
	}
	if got := names(svc); len(got) < 3 {
		t.Fatalf("the bind account sees %v, want every user and group", got)
	}
	if err := e.adm.SetSetting(t.Context(), "ldap_user_search", "all"); err != nil {
		t.Fatal(err)
	}
	for try := 0; ; try++ { // site settings are read at most once a second
		if got := names(alice); len(got) >= 3 {
			break
		} else if try > 30 {
			t.Fatalf("with ldap_user_search all, alice sees %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
