package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

var ldapUsers = []upstreamtest.LDAPUser{
	{UID: "alice", Password: "alice pw 1", CN: "Alice Nurse", Groups: []string{"nurses", "staff"}},
	{UID: "bob", Password: "bob pw 1", Groups: []string{"staff"}},
}

func ldapConn(t *testing.T, s *upstreamtest.Slapd, mut func(*upstream.LDAPConfig)) *upstream.LDAP {
	t.Helper()
	c := upstream.LDAPConfig{
		URLs: []string{s.URL}, StartTLS: true, CAFile: s.CAFile,
		BindDN: "cn=ehr-service," + s.Base, BaseDN: "ou=people," + s.Base,
		UserAttribute: "uid", GroupBaseDN: "ou=groups," + s.Base, TimeoutMS: 1000,
	}
	if mut != nil {
		mut(&c)
	}
	b, _ := json.Marshal(c)
	l, err := upstream.NewLDAP("slapd", string(b), secrets.Secret("service-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func TestLDAPUpstreamAgainstSlapd(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	for name, mut := range map[string]func(*upstream.LDAPConfig){
		"starttls": nil,
		"ldaps":    func(c *upstream.LDAPConfig) { c.URLs, c.StartTLS = []string{s.LDAPS}, false },
	} {
		t.Run(name, func(t *testing.T) {
			l := ldapConn(t, s, mut)
			for range 3 { // pooled connections are reused
				id, err := l.Verify(t.Context(), "alice", secrets.Secret("alice pw 1"))
				if err != nil {
					t.Fatal(err)
				}
				if id.Name != "alice" || !slices.Equal(id.Groups, []string{"nurses", "staff"}) {
					t.Fatalf("got %+v, want alice in nurses and staff", id)
				}
			}
			if _, err := l.Verify(t.Context(), "alice", secrets.Secret("wrong")); !errors.Is(err, upstream.ErrBadCredentials) {
				t.Fatalf("wrong password: got %v", err)
			}
			if _, err := l.Verify(t.Context(), "carol", secrets.Secret("whatever")); !errors.Is(err, upstream.ErrUnknownUser) {
				t.Fatalf("unknown user: got %v", err)
			}
			// The pool still works after refusals.
			if _, err := l.Verify(t.Context(), "bob", secrets.Secret("bob pw 1")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEmptyPasswordNeverBinds(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	l := ldapConn(t, s, nil)
	// RFC 4513 §5.1.2: a DN with an empty password is an unauthenticated
	// bind that many servers report as success.
	if _, err := l.Verify(t.Context(), "alice", nil); !errors.Is(err, upstream.ErrBadCredentials) {
		t.Fatalf("got %v, want ErrBadCredentials", err)
	}
}

func TestLDAPFilterInjectionRefused(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	l := ldapConn(t, s, nil)
	for _, user := range []string{"*", "*)(uid=*", "alice)(|(uid=*", "al*", `alice\`, "alice\x00", "\xff\xfe", "(uid=alice)"} {
		t.Run(user, func(t *testing.T) {
			// With the password of a real user: an unescaped filter would
			// find alice and bind.
			if _, err := l.Verify(t.Context(), user, secrets.Secret("alice pw 1")); !errors.Is(err, upstream.ErrUnknownUser) {
				t.Fatalf("got %v, want ErrUnknownUser", err)
			}
		})
	}
}

func TestLDAPUnknownCARefused(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	for name, mut := range map[string]func(*upstream.LDAPConfig){
		"starttls": func(c *upstream.LDAPConfig) { c.CAFile = s.WrongCAFile },
		"ldaps":    func(c *upstream.LDAPConfig) { c.CAFile, c.URLs, c.StartTLS = s.WrongCAFile, []string{s.LDAPS}, false },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ldapConn(t, s, mut).Verify(t.Context(), "alice", secrets.Secret("alice pw 1"))
			if !errors.Is(err, upstream.ErrUnreachable) || !strings.Contains(err.Error(), "unknown authority") {
				t.Fatalf("got %v, want a refusal naming the unknown authority", err)
			}
		})
	}
}

func TestLDAPCertificateForWrongNameRefused(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers, CertNames: []string{"ldap.elsewhere.test"}})
	_, err := ldapConn(t, s, nil).Verify(t.Context(), "alice", secrets.Secret("alice pw 1"))
	if !errors.Is(err, upstream.ErrUnreachable) || !strings.Contains(err.Error(), "another name") {
		t.Fatalf("got %v, want a refusal naming the certificate's name", err)
	}
}

func TestLDAPFailoverToSecondServer(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	// Port 1 on loopback refuses connections.
	l := ldapConn(t, s, func(c *upstream.LDAPConfig) { c.URLs = []string{"ldap://127.0.0.1:1", s.URL} })
	if _, err := l.Verify(t.Context(), "alice", secrets.Secret("alice pw 1")); err != nil {
		t.Fatalf("got %v, want the second server to answer", err)
	}
}

func TestLDAPServiceAccountRefused(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	c := upstream.LDAPConfig{URLs: []string{s.URL}, StartTLS: true, CAFile: s.CAFile, BindDN: "cn=ehr-service," + s.Base, BaseDN: s.Base}
	b, _ := json.Marshal(c)
	l, err := upstream.NewLDAP("slapd", string(b), secrets.Secret("wrong service secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Verify(t.Context(), "alice", secrets.Secret("alice pw 1")); !errors.Is(err, upstream.ErrUpstreamRefused) || !strings.Contains(err.Error(), "service account") {
		t.Fatalf("got %v, want the service account's refusal explained", err)
	}
}

func TestLDAPServerThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	c := upstream.LDAPConfig{URLs: []string{"ldap://" + ln.Addr().String()}, BaseDN: "dc=x", BindDN: "cn=s,dc=x", TimeoutMS: 300}
	b, _ := json.Marshal(c)
	l, err := upstream.NewLDAP("silent", string(b), secrets.Secret("pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	if _, err := l.Verify(t.Context(), "alice", secrets.Secret("pw")); !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("took %v with a 300 ms timeout", el)
	}
}

func TestLDAPConfigRefusesNonsense(t *testing.T) {
	for name, c := range map[string]upstream.LDAPConfig{
		"no urls":          {BaseDN: "dc=x"},
		"http url":         {URLs: []string{"http://x"}, BaseDN: "dc=x"},
		"no base":          {URLs: []string{"ldaps://x:636"}},
		"bad attr":         {URLs: []string{"ldaps://x:636"}, BaseDN: "dc=x", UserAttribute: "uid)(x"},
		"bad filter":       {URLs: []string{"ldaps://x:636"}, BaseDN: "dc=x", UserFilter: "(objectClass=person"},
		"skip verify":      {URLs: []string{"ldaps://x:636"}, BaseDN: "dc=x", InsecureSkipVerify: true},
		"cert without key": {URLs: []string{"ldaps://x:636"}, BaseDN: "dc=x", ClientCertFile: "/x.pem"},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := json.Marshal(c)
			if _, err := upstream.NewLDAP("x", string(b), nil); err == nil {
				t.Fatal("got no error")
			}
		})
	}
}

// TestLDAPClientCertificate is Google Secure LDAP's setup: the server
// demands a client certificate; with it the appliance gets in, without it
// it is refused at the TLS handshake and told so.
func TestLDAPClientCertificate(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers, RequireClientCert: true})
	with := ldapConn(t, s, func(c *upstream.LDAPConfig) {
		c.URLs, c.StartTLS = []string{s.LDAPS}, false
		c.ClientCertFile, c.ClientKeyFile = s.ClientCert, s.ClientKey
	})
	if _, err := with.Verify(t.Context(), "alice", secrets.Secret("alice pw 1")); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	without := ldapConn(t, s, func(c *upstream.LDAPConfig) { c.URLs, c.StartTLS = []string{s.LDAPS}, false })
	if _, err := without.Verify(t.Context(), "alice", secrets.Secret("alice pw 1")); !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("without a client certificate: got %v, want the handshake refused", err)
	}
}

// A caller waiting for a connection must take one returned to its pool,
// even while the other pool's idle connections hold every slot; before,
// it waited for a free slot only, until its context ended.
func TestIdlePoolConnectionsDoNotStarveTheOtherPool(t *testing.T) {
	s := upstreamtest.StartSlapd(t, upstreamtest.SlapdOptions{Users: ldapUsers})
	l := ldapConn(t, s, func(c *upstream.LDAPConfig) { c.Pool = 1; c.LookupCacheSeconds = -1 })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := l.Verify(ctx, "alice", secrets.Secret("alice pw 1")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := l.NameForDN(cctx, "uid=bob,ou=people,"+s.Base)
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent lookups with a pool of one: %v", err)
	}
}
