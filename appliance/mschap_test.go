package appliance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc3079"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// response is what an MS-CHAPv2 peer sends for password, hashed over
// name (RFC 2759 §8.1).
func response(t *testing.T, name, password string) *appliance.MSCHAPv2 {
	t.Helper()
	m := &appliance.MSCHAPv2{Name: name, Ident: 9}
	rand.Read(m.AuthenticatorChallenge[:])
	rand.Read(m.PeerChallenge[:])
	bare := name[strings.LastIndexByte(name, '\\')+1:]
	nt, err := rfc2759.GenerateNTResponse(m.AuthenticatorChallenge[:], m.PeerChallenge[:], []byte(bare), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	copy(m.NTResponse[:], nt)
	return m
}

func (e *env) decideReq(req appliance.Request) appliance.Decision {
	e.t.Helper()
	if req.Door == "" {
		req.Door = appliance.DoorRADIUS
	}
	req.Source = netip.MustParseAddr("10.0.0.5")
	if req.Device == "" {
		req.Device = "AA-BB-CC-DD-EE-01"
	}
	d, err := e.gate.Decide(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Decide: %v", err)
	}
	return d
}

func (e *env) mschap(c store.Client, method appliance.Method, user string, m *appliance.MSCHAPv2) appliance.Decision {
	e.t.Helper()
	return e.decideReq(appliance.Request{Client: c, User: user, Method: method, MSCHAP: m})
}

func allowMSCHAP(p *policy.Policy) { p.MFA, p.AllowMSCHAP = policy.MFAOff, true }

// addMSCHAPClient stores a client that allows MS-CHAPv2, so that a
// password set from then on keeps an NT hash.
func (e *env) addMSCHAPClient() {
	e.t.Helper()
	p := policy.Default()
	allowMSCHAP(&p)
	if _, err := e.adm.AddClient(e.t.Context(), admin.NewClient{Name: "vpn", Address: "10.9.0.1", Policy: p}); err != nil {
		e.t.Fatal(err)
	}
}

func stepsSay(d appliance.Decision, text string) bool {
	return slices.ContainsFunc(d.Steps, func(s appliance.Step) bool { return strings.Contains(s.Result, text) })
}

// TestMSCHAPv2AgainstKeptNTHash: a response made with the password is
// accepted, with the proof and MPPE keys the peer derives itself (RFC 2759
// §8.7, RFC 3079: the server's Send-Key is the peer's receive key); the
// DOMAIN\ prefix is not part of the hashed name.
func TestMSCHAPv2AgainstKeptNTHash(t *testing.T) {
	e := newEnv(t)
	e.addMSCHAPClient()
	e.addUser("alice", "correct horse")
	for _, tc := range []struct {
		method     appliance.Method
		user, name string
	}{
		{appliance.MethodMSCHAPv2, "alice", "alice"},
		{appliance.MethodPEAP, "alice", "alice"},
		{appliance.MethodMSCHAPv2, `CLINIC\alice`, `CLINIC\alice`},
		{appliance.MethodMSCHAPv2, "alice", `CLINIC\alice`},
	} {
		t.Run(string(tc.method)+" "+tc.name, func(t *testing.T) {
			m := response(t, tc.name, "correct horse")
			d := e.mschap(client(allowMSCHAP), tc.method, tc.user, m)
			expect(t, d, appliance.Accept, appliance.ReasonOK)
			if d.User != "alice" || d.MSCHAP == nil {
				t.Fatalf("got user %q result %+v, want alice with an MS-CHAPv2 result", d.User, d.MSCHAP)
			}
			want, _ := rfc2759.GenerateAuthenticatorResponse(m.AuthenticatorChallenge[:], m.PeerChallenge[:], m.NTResponse[:], []byte("alice"), []byte("correct horse"))
			send, _ := rfc3079.MakeKey(m.NTResponse[:], []byte("correct horse"), true)
			recv, _ := rfc3079.MakeKey(m.NTResponse[:], []byte("correct horse"), false)
			if d.MSCHAP.AuthenticatorResponse != want || !bytes.Equal(d.MSCHAP.SendKey, send) || !bytes.Equal(d.MSCHAP.RecvKey, recv) {
				t.Fatalf("got %s send %x recv %x, want %s send %x recv %x", d.MSCHAP.AuthenticatorResponse, d.MSCHAP.SendKey, d.MSCHAP.RecvKey, want, send, recv)
			}
		})
	}
}

func TestMSCHAPv2WrongPasswordCountsTowardsLockout(t *testing.T) {
	e := newEnv(t)
	e.addMSCHAPClient()
	e.addUser("alice", "correct horse")
	c := client(allowMSCHAP)
	for i := range 5 {
		d := e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "wrong horse"))
		expect(t, d, appliance.Reject, appliance.ReasonBadPassword)
		if d.MSCHAP != nil {
			t.Fatalf("attempt %d: a refusal carries an MS-CHAPv2 result", i)
		}
	}
	// Locked now: the response is not even checked, and the right one is
	// refused too, as for PAP.
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "wrong horse")), appliance.Reject, appliance.ReasonLockedOut)
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "correct horse")), appliance.Reject, appliance.ReasonLockedOut)
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Reject, appliance.ReasonLockedOut)
}

// TestMSCHAPv2NeverFakesSuccess: with no NT hash and no upstream that
// checks MS-CHAPv2 the answer is nt_hash_missing, with the fix; a PAP
// login through a client that allows MS-CHAPv2 keeps one, one through a
// client that does not keeps none.
func TestMSCHAPv2NeverFakesSuccess(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse") // no client allows MS-CHAPv2 yet
	e.addUser("bob", "battery staple")
	c := client(allowMSCHAP)
	d := e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "correct horse"))
	expect(t, d, appliance.Reject, appliance.ReasonNTHashMissing)
	if !stepsSay(d, "--allow-mschap") || !stepsSay(d, "RADIUS upstream") || d.MSCHAP != nil {
		t.Fatalf("got steps %v result %+v, want the fix and no result", d.Steps, d.MSCHAP)
	}
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "nobody", response(t, "nobody", "x")), appliance.Reject, appliance.ReasonUnknownUser)

	expect(t, e.decide(client(mfaOff), "bob", "battery staple", nil), appliance.Accept, appliance.ReasonOK)
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "bob", response(t, "bob", "battery staple")), appliance.Reject, appliance.ReasonNTHashMissing)

	d = e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !slices.Contains(d.Notes, "nt_hash_kept") {
		t.Fatalf("got notes %v, want nt_hash_kept", d.Notes)
	}
	if d := e.decide(c, "alice", "correct horse", nil); slices.Contains(d.Notes, "nt_hash_kept") {
		t.Fatal("the same password was written again")
	}
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "correct horse")), appliance.Accept, appliance.ReasonOK)
	// EAP-TTLS keeps one too.
	d = e.decideReq(appliance.Request{Client: c, User: "bob", Password: secrets.Secret("battery staple"), Method: appliance.MethodTTLSPAP})
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	expect(t, e.mschap(c, appliance.MethodPEAP, "bob", response(t, "bob", "battery staple")), appliance.Accept, appliance.ReasonOK)
}

// TestPasswordResetReplacesNTHash: the hash follows the password at a
// reset, is dropped with it when no client allows MS-CHAPv2, and every
// hash goes once the last client allowing MS-CHAPv2 does.
func TestPasswordResetReplacesNTHash(t *testing.T) {
	e := newEnv(t)
	e.addMSCHAPClient()
	e.addUser("alice", "correct horse")
	c := client(allowMSCHAP)
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Password: secrets.Secret("new horse 2")}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "correct horse")), appliance.Reject, appliance.ReasonBadPassword)
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "new horse 2")), appliance.Accept, appliance.ReasonOK)
	u, _ := e.st.UserByName(t.Context(), "alice")

	// The last client allowing MS-CHAPv2 turns it off: no hash is kept.
	if err := e.adm.EditClient(t.Context(), "vpn", admin.ClientEdit{Policy: func(p *policy.Policy) error { p.AllowMSCHAP = false; return nil }}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "new horse 2")), appliance.Reject, appliance.ReasonNTHashMissing)
	rows, _ := e.st.AuditRows(t.Context(), store.AuditFilter{Limit: 3, Newest: true})
	if !slices.ContainsFunc(rows, func(r store.AuditRow) bool {
		return r.Reason == "nt_hash_drop" && strings.Contains(r.Detail, "1 NT hash")
	}) {
		t.Fatalf("got audit %+v, want the NT hashes' deletion audited", rows)
	}

	// A hash left behind (kept by a login a moment before) goes at the
	// next password reset.
	nt := passwd.NTHash([]byte("new horse 2"))
	if _, err := e.st.KeepNTHash(t.Context(), u.ID, nt[:], e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Password: secrets.Secret("third horse 3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.NTHash(t.Context(), u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want the old NT hash gone", err)
	}

	// Removing the last such client drops them too.
	if err := e.adm.EditClient(t.Context(), "vpn", admin.ClientEdit{Policy: func(p *policy.Policy) error { p.AllowMSCHAP = true; return nil }}); err != nil {
		t.Fatal(err)
	}
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Password: secrets.Secret("fourth horse 4")}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "fourth horse 4")), appliance.Accept, appliance.ReasonOK)
	if err := e.adm.RemoveClient(t.Context(), "vpn"); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.st.CountNTHashes(t.Context()); n != 0 {
		t.Fatalf("got %d NT hashes after the last MS-CHAPv2 client went, want none", n)
	}
}

// TestMSCHAPv2CannotCarryACode: where a code would be asked for, the
// refusal says MS-CHAPv2 cannot carry one, unless a code was verified
// recently for the same user and address.
func TestMSCHAPv2CannotCarryACode(t *testing.T) {
	e := newEnv(t)
	e.addMSCHAPClient()
	e.addUser("alice", "correct horse")
	e.addUser("bob", "battery staple")
	seed := e.enroll("alice")
	with := func(mode policy.MFA, remember int) store.Client {
		return client(func(p *policy.Policy) { p.AllowMSCHAP, p.MFA, p.MFARemember = true, mode, remember })
	}
	for _, tc := range []struct {
		mode   policy.MFA
		user   string
		pw     string
		reason appliance.Reason
	}{
		{policy.MFARequired, "alice", "correct horse", appliance.ReasonMFAUnavailable},
		{policy.MFAEnrolled, "alice", "correct horse", appliance.ReasonMFAUnavailable},
		{policy.MFARequired, "bob", "battery staple", appliance.ReasonMFAUnavailable},
		{policy.MFAEnrolled, "bob", "battery staple", appliance.ReasonOK},
	} {
		d := e.mschap(with(tc.mode, 0), appliance.MethodMSCHAPv2, tc.user, response(t, tc.user, tc.pw))
		want := appliance.Reject
		if tc.reason == appliance.ReasonOK {
			want = appliance.Accept
		}
		expect(t, d, want, tc.reason)
		if want == appliance.Reject && (!stepsSay(d, "EAP-TTLS") || d.MSCHAP != nil) {
			t.Fatalf("%s %s: got steps %v, want the way out and no result", tc.mode, tc.user, d.Steps)
		}
	}
	// A code verified from the same address within mfa_remember stands.
	c := with(policy.MFARequired, 600)
	expect(t, e.decide(c, "alice", "correct horse,"+e.code(seed, e.clock.Now()), nil), appliance.Accept, appliance.ReasonOK)
	expect(t, e.mschap(c, appliance.MethodMSCHAPv2, "alice", response(t, "alice", "correct horse")), appliance.Accept, appliance.ReasonOK)
}

func TestMethodNotAllowedSaysWhichSwitch(t *testing.T) {
	e := newEnv(t)
	e.addMSCHAPClient()
	e.addUser("alice", "correct horse")
	cert := &appliance.Certificate{Subject: "alice"}
	for _, tc := range []struct {
		name string
		pol  func(*policy.Policy)
		req  appliance.Request
		want string
	}{
		{"mschap off", mfaOff, appliance.Request{Method: appliance.MethodMSCHAPv2, MSCHAP: response(t, "alice", "correct horse")}, "client set ap --allow-mschap"},
		{"peap with mschap off", func(p *policy.Policy) { p.MFA = policy.MFAOff; p.EAPMethods = []string{"peap"} }, appliance.Request{Method: appliance.MethodPEAP, MSCHAP: response(t, "alice", "correct horse")}, "--allow-mschap"},
		{"peap not listed", func(p *policy.Policy) { allowMSCHAP(p); p.EAPMethods = []string{"ttls"} }, appliance.Request{Method: appliance.MethodPEAP, MSCHAP: response(t, "alice", "correct horse")}, "--eap ttls,peap"},
		{"tls not listed", func(p *policy.Policy) { p.MFA = policy.MFAOff; p.EAPMethods = []string{"ttls", "peap"} }, appliance.Request{Method: appliance.MethodEAPTLS, Cert: cert}, "--eap ttls,peap,tls"},
		{"ttls not listed", func(p *policy.Policy) { p.MFA = policy.MFAOff; p.EAPMethods = []string{"tls"} }, appliance.Request{Method: appliance.MethodTTLSPAP, Password: secrets.Secret("correct horse")}, "--eap tls,ttls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Client, req.User = client(tc.pol), "alice"
			d := e.decideReq(req)
			expect(t, d, appliance.Reject, appliance.ReasonMethodNotAllowed)
			if !stepsSay(d, tc.want) {
				t.Fatalf("got steps %v, want one saying %q", d.Steps, tc.want)
			}
		})
	}
	// MS-CHAPv2 needs its response and nothing else.
	for _, req := range []appliance.Request{
		{Method: appliance.MethodMSCHAPv2},
		{Method: appliance.MethodMSCHAPv2, MSCHAP: response(t, "alice", "x"), Password: secrets.Secret("x")},
		{Method: appliance.MethodEAPTLS},
		{Method: appliance.MethodPAP, Password: secrets.Secret("correct horse"), Cert: cert},
	} {
		req.Client, req.User = client(allowMSCHAP), "alice"
		expect(t, e.decideReq(req), appliance.Reject, appliance.ReasonBadRequest)
	}
}

// TestOuterIdentityMustMatchWhenPolicySaysSo: the audit shows both names
// either way.
func TestOuterIdentityMustMatchWhenPolicySaysSo(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	match := client(func(p *policy.Policy) { p.MFA, p.EAPIdentity = policy.MFAOff, policy.EAPIdentityMatch })
	ttls := func(c store.Client, outer string) appliance.Decision {
		return e.decideReq(appliance.Request{Client: c, User: "alice", Password: secrets.Secret("correct horse"), Method: appliance.MethodTTLSPAP, OuterIdentity: outer})
	}
	d := ttls(match, "bob")
	expect(t, d, appliance.Reject, appliance.ReasonIdentityMismatch)
	if !stepsSay(d, "--eap-identity any") {
		t.Fatalf("got steps %v, want the switch that allows it", d.Steps)
	}
	rows, err := e.st.AuditRows(t.Context(), store.AuditFilter{Limit: 1, Newest: true})
	if err != nil || len(rows) != 1 || rows[0].User != "alice" || !strings.Contains(rows[0].Detail, "outer_identity:bob") {
		t.Fatalf("got audit %+v %v, want user alice with the outer identity bob", rows, err)
	}
	for _, outer := range []string{"", "alice", "ALICE", "anonymous", "anonymous@clinic.example"} {
		expect(t, ttls(match, outer), appliance.Accept, appliance.ReasonOK)
	}
	d = e.decideReq(appliance.Request{Client: client(mfaOff), User: "alice", Password: secrets.Secret("correct horse"), Method: appliance.MethodTTLSPAP, OuterIdentity: "bob", TLS: "TLS 1.3"})
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !slices.Contains(d.Notes, "outer_identity:bob") {
		t.Fatalf("got notes %v, want the outer identity", d.Notes)
	}
	// The story names the method, its TLS and both names.
	if !stepsSay(d, `EAP-TTLS with PAP inside over TLS 1.3; outer identity "bob", inner identity "alice"`) {
		t.Fatalf("got steps %v, want the method's step", d.Steps)
	}
}

// msUpstream is a directory whose server checks MS-CHAPv2 itself.
type msUpstream struct {
	fakeUpstream
	proof upstream.MSCHAPProof
	err   error
	got   *upstream.MSCHAPv2
}

func (m *msUpstream) VerifyMSCHAPv2(_ context.Context, user string, r upstream.MSCHAPv2) (upstream.Identity, upstream.MSCHAPProof, error) {
	*m.got = r
	if m.err != nil {
		return upstream.Identity{}, upstream.MSCHAPProof{}, m.err
	}
	return upstream.Identity{Name: user, Groups: []string{"corp-staff"}}, m.proof, nil
}

func corpMSCHAP(p *policy.Policy) { corp(p); p.AllowMSCHAP = true }

// TestMSCHAPv2RelayedToUpstream: an upstream that checks MS-CHAPv2 is
// asked (with the name as the peer sent it) and its proof passed on; its
// refusal counts like a wrong password.
func TestMSCHAPv2RelayedToUpstream(t *testing.T) {
	up := &msUpstream{fakeUpstream: fakeUpstream{users: map[string]string{"dana": "dana pw"}}, got: new(upstream.MSCHAPv2),
		proof: upstream.MSCHAPProof{AuthenticatorResponse: "S=0123456789ABCDEF0123456789ABCDEF01234567", SendKey: bytes.Repeat([]byte{1}, 16), RecvKey: bytes.Repeat([]byte{2}, 16)}}
	e := newEnvWithUpstream(t, up)
	m := response(t, `CLINIC\dana`, "dana pw")
	d := e.mschap(client(corpMSCHAP), appliance.MethodMSCHAPv2, `CLINIC\dana`, m)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if d.User != "dana" || d.MSCHAP == nil || d.MSCHAP.AuthenticatorResponse != up.proof.AuthenticatorResponse || !bytes.Equal(d.MSCHAP.SendKey, up.proof.SendKey) {
		t.Fatalf("got user %q result %+v, want dana with the upstream's proof", d.User, d.MSCHAP)
	}
	if up.got.Name != `CLINIC\dana` || up.got.NTResponse != m.NTResponse {
		t.Fatalf("the upstream got %+v, want the response as the peer sent it", up.got)
	}
	up.err = upstream.ErrBadCredentials
	expect(t, e.mschap(client(corpMSCHAP), appliance.MethodMSCHAPv2, "dana", m), appliance.Reject, appliance.ReasonBadPassword)
	up.err = upstream.ErrUnreachable
	expect(t, e.mschap(client(corpMSCHAP), appliance.MethodMSCHAPv2, "dana", m), appliance.Reject, appliance.ReasonUpstreamDown)
}

// TestNTHashCapturedFromUpstreamAndDroppedOnRefusal: a directory that
// cannot check MS-CHAPv2 lets the gate keep the NT hash of the password it
// verified, until it refuses that password.
func TestNTHashCapturedFromUpstreamAndDroppedOnRefusal(t *testing.T) {
	up := fakeUpstream{users: map[string]string{"dana": "dana pw"}}
	e := newEnvWithUpstream(t, up)
	c := client(corpMSCHAP)
	expect(t, e.mschap(c, appliance.MethodPEAP, "dana", response(t, "dana", "dana pw")), appliance.Reject, appliance.ReasonNTHashMissing)
	expect(t, e.decide(c, "dana", "dana pw", nil), appliance.Accept, appliance.ReasonOK)
	d := e.mschap(c, appliance.MethodPEAP, "dana", response(t, "dana", "dana pw"))
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !slices.Contains(d.Groups, "corp-staff") && d.User != "dana" {
		t.Fatalf("got %q %v", d.User, d.Groups)
	}
	// The directory's password changed: the old one is refused, and its
	// NT hash goes with it.
	up.users["dana"] = "dana new pw"
	expect(t, e.decide(c, "dana", "dana pw", nil), appliance.Reject, appliance.ReasonBadPassword)
	expect(t, e.mschap(c, appliance.MethodPEAP, "dana", response(t, "dana", "dana pw")), appliance.Reject, appliance.ReasonNTHashMissing)
}

// ---- EAP-TLS

func tlsClient(p *policy.Policy) { p.MFA = policy.MFARequired }

func (e *env) tls(c store.Client, identity string, cert appliance.Certificate) appliance.Decision {
	e.t.Helper()
	return e.decideReq(appliance.Request{Client: c, User: identity, Method: appliance.MethodEAPTLS, Cert: &cert})
}

const fpA = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"

func TestEAPTLSMapsCertificateToUser(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.addUser("bob", "battery staple")
	e.addUser("carol@clinic.example", "carol pw 123")
	if _, err := e.adm.RegisterCert(t.Context(), "bob", strings.ToLower(strings.ReplaceAll(fpA, ":", ""))); err != nil {
		t.Fatal(err)
	}
	c := client(tlsClient) // MFA required, nobody enrolled: the key is the factor
	for _, tc := range []struct {
		name string
		cert appliance.Certificate
		user string
		step string
	}{
		{"registered fingerprint beats the names", appliance.Certificate{Fingerprint: fpA, Subject: "alice", UPNs: []string{"alice@clinic.example"}}, "bob", "registered certificate"},
		{"UPN as is", appliance.Certificate{UPNs: []string{"carol@clinic.example"}, Subject: "alice"}, "carol@clinic.example", "SAN UPN"},
		{"UPN before @", appliance.Certificate{UPNs: []string{"alice@clinic.example"}, Emails: []string{"bob@clinic.example"}}, "alice", "SAN UPN \"alice@clinic.example\": the part before '@'"},
		{"e-mail", appliance.Certificate{UPNs: []string{"nobody@clinic.example"}, Emails: []string{"bob@mail.example"}, Subject: "alice"}, "bob", "SAN e-mail"},
		{"common name", appliance.Certificate{Subject: "Alice"}, "alice", "subject CN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.tls(c, "", tc.cert)
			expect(t, d, appliance.Accept, appliance.ReasonOK)
			if d.User != tc.user || !stepsSay(d, tc.step) || !stepsSay(d, "private key") {
				t.Fatalf("got %q with steps %v, want %s by %s and the key as second factor", d.User, d.Steps, tc.user, tc.step)
			}
		})
	}
	d := e.tls(c, "laptop-7", appliance.Certificate{Subject: "mallory", UPNs: []string{"mallory@clinic.example"}})
	expect(t, d, appliance.Reject, appliance.ReasonUnknownUser)
	// The audit names the EAP identity when no user was found, and the
	// user when one was.
	d = e.tls(c, "", appliance.Certificate{Subject: "alice"})
	rows, _ := e.st.AuditRows(t.Context(), store.AuditFilter{Limit: 1, Newest: true})
	if len(rows) != 1 || rows[0].User != "alice" {
		t.Fatalf("got audit %+v, want user alice", rows)
	}
}

func TestRevokedCertificateRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	if _, err := e.adm.RegisterCert(t.Context(), "alice", fpA); err != nil {
		t.Fatal(err)
	}
	c := client(tlsClient)
	expect(t, e.tls(c, "alice", appliance.Certificate{Fingerprint: fpA, Serial: "0a1b"}), appliance.Accept, appliance.ReasonOK)
	if _, err := e.adm.RevokeCert(t.Context(), "00:0A:1B", "laptop stolen"); err != nil {
		t.Fatal(err)
	}
	d := e.tls(c, "alice", appliance.Certificate{Fingerprint: fpA, Serial: "0a1b"})
	expect(t, d, appliance.Reject, appliance.ReasonCertRevoked)
	if !stepsSay(d, "laptop stolen") {
		t.Fatalf("got steps %v, want the revocation's reason", d.Steps)
	}
	other := strings.Repeat("12:", 31) + "12"
	expect(t, e.tls(c, "alice", appliance.Certificate{Fingerprint: other, Subject: "alice"}), appliance.Accept, appliance.ReasonOK)
	if _, err := e.adm.RevokeCert(t.Context(), other, ""); err != nil {
		t.Fatal(err)
	}
	expect(t, e.tls(c, "alice", appliance.Certificate{Fingerprint: other, Subject: "alice"}), appliance.Reject, appliance.ReasonCertRevoked)
}

// TestEAPTLSAccountRulesStillApply: the certificate replaces the
// password, not the account checks.
func TestEAPTLSAccountRulesStillApply(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.addUser("bob", "battery staple")
	if err := e.adm.EditUser(t.Context(), "bob", admin.UserEdit{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.tls(client(tlsClient), "", appliance.Certificate{Subject: "bob"}), appliance.Reject, appliance.ReasonDisabled)
	dev := client(func(p *policy.Policy) { p.RequireDevice = true })
	expect(t, e.tls(dev, "", appliance.Certificate{Subject: "alice"}), appliance.Reject, appliance.ReasonDeviceUnknown)
	if _, err := e.adm.AddDevice(t.Context(), "AA-BB-CC-DD-EE-01", "alice", "laptop"); err != nil {
		t.Fatal(err)
	}
	expect(t, e.tls(dev, "", appliance.Certificate{Subject: "alice"}), appliance.Accept, appliance.ReasonOK)
	// Failed passwords from one station block that station only (smart
	// lockout, issue 16): the certificate still works.
	for range 5 {
		e.decide(client(mfaOff), "alice", "wrong", nil)
	}
	expect(t, e.tls(dev, "", appliance.Certificate{Subject: "alice"}), appliance.Accept, appliance.ReasonOK)
	// From three stations the account itself locks: for certificates too.
	for _, station := range []string{"02-00-00-00-00-0A", "02-00-00-00-00-0B", "02-00-00-00-00-0C"} {
		for range 5 {
			e.decideReq(appliance.Request{Client: client(mfaOff), User: "alice", Password: secrets.Secret("wrong"), Method: appliance.MethodPAP,
				Source: netip.MustParseAddr("10.0.0.5"), Device: station})
		}
	}
	expect(t, e.tls(dev, "", appliance.Certificate{Subject: "alice"}), appliance.Reject, appliance.ReasonLockedOut)
	e.clock.Add(time.Hour)
	expect(t, e.tls(dev, "", appliance.Certificate{Subject: "alice"}), appliance.Accept, appliance.ReasonOK)
}
