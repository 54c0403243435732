package admin

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/internal/eapclient"
	"github.com/clinicgate/clinicgate/internal/msgauth"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// A test login sends a real login through the running daemon, from this
// machine, under the policy of a chosen client, and reports the answer and
// the decision's story. The daemon resolves clients by source address, so
// the login goes out as a loopback client: an existing one of the same
// door if the operator has one (its own policy then applies, and the
// result says so), else a temporary client carrying a copy of the chosen
// client's policy, removed afterwards. Both changes are audited like any
// other.
//
// A RADIUS test sends an Access-Request signed with Message-Authenticator:
// a PAP password, or an EAP-TTLS/PAP conversation as a Wi-Fi access point
// and a laptop hold it, whose password goes only inside a tunnel to a
// server certificate that passes the check a device makes: the EAP CA and
// server name the daemon reported.
// An LDAP test is a simple bind that always goes over TLS (StartTLS, or
// LDAPS when the door has no StartTLS listener), and the password is sent
// only to the certificate whose SHA-256 the daemon reported: the
// appliance's certificate is self-signed, so that fingerprint is the
// check, not a CA.

// Names of the temporary clients a test login adds (and removes).
const (
	TestClientName     = "console-test"
	TestLDAPClientName = "console-test-ldap"
)

// daemonFresh is how old the daemon's last report may be for it to count
// as running (it reports every 5 seconds).
const daemonFresh = 20 * time.Second

// pickupDelay is how long a new client takes to reach the daemon (it
// reads clients at most once a second).
const pickupDelay = 1200 * time.Millisecond

var loopback = netip.MustParseAddr("127.0.0.1")

// LoginTest asks for a test login.
type LoginTest struct {
	// Client names the client whose policy applies. Empty: the first
	// client of Door.
	Client string
	// Door is the door of the first client, when Client is empty (default
	// RADIUS).
	Door     appliance.Door
	User     string
	Password secrets.Secret
	// Method is how a RADIUS test sends the password: LoginPAP (the
	// default) or LoginTTLS; TLSVersion the one TLS version EAP-TTLS
	// offers (tls.VersionTLS12 or VersionTLS13; 0: both, the daemon
	// picks).
	Method     LoginMethod
	TLSVersion uint16
}

// LoginMethod is how a RADIUS test login sends the password.
type LoginMethod string

const (
	LoginPAP  LoginMethod = "pap"
	LoginTTLS LoginMethod = "ttls-pap" // 802.1X: EAP-TTLS with PAP inside
)

// String names the method as a contractor knows it.
func (m LoginMethod) String() string {
	if m == LoginTTLS {
		return "EAP-TTLS/PAP"
	}
	return "PAP"
}

// LoginResult is what a test login found.
type LoginResult struct {
	Door appliance.Door
	// Target is where the login went.
	Target Target
	// Client is the client whose policy was chosen; Via the client the
	// login went out as, and Temporary whether Via was a copy of Client's
	// policy added for the test (and removed after it).
	Client, Via string
	Temporary   bool
	// Outcome is the answer in the protocol's words: "Access-Accept",
	// "Access-Reject", "Access-Challenge"; for LDAP the result code's
	// name ("Success", "Invalid Credentials").
	Outcome string
	// Code is the RADIUS packet code or the LDAP result code.
	Code int
	// Accepted: the login would be let in. Challenged: a code was asked
	// for (RADIUS); a NAS would now prompt the user.
	Accepted, Challenged bool
	Took                 time.Duration
	// Method is how the password went (RADIUS); with EAP-TTLS, TLSVersion
	// is the tunnel's ("TLS 1.3"), and KeysMatch says the Accept's MPPE
	// keys were the tunnel's, as an access point needs them.
	Method     LoginMethod
	TLSVersion string
	KeysMatch  bool
	// Reply is what the answer carried for the NAS (RADIUS: Reply-Message,
	// VLAN, Session-Timeout), in order.
	Reply []ReplyAttribute
	// Diagnostic is the LDAP diagnostic message an EHR would show.
	Diagnostic string
	// Story is the decision the daemon recorded for this login (nil: none
	// found in the audit).
	Story *DecisionStory
}

// Note says, in the operator's words, which client's policy applied.
func (r LoginResult) Note() string {
	switch {
	case r.Temporary && r.Door == appliance.DoorLDAP:
		return fmt.Sprintf("Sent as the temporary LDAP client %s with %s's policy.", r.Via, r.Client)
	case r.Temporary:
		return fmt.Sprintf("Sent as the temporary client %s with %s's policy.", r.Via, r.Client)
	case r.Via == r.Client:
		return fmt.Sprintf("Sent from this machine as %s itself.", r.Via)
	}
	return fmt.Sprintf("Sent as the loopback client %s (its policy applies, not %s's).", r.Via, r.Client)
}

// ReplyAttribute is one attribute of an answer, as text.
type ReplyAttribute struct {
	Name, Value string
}

// DecisionStory is a decision as the audit tells it.
type DecisionStory struct {
	Seq     int64
	Outcome string
	Reason  string
	Steps   []audit.Step
	Notes   []string
}

// Target is where a test login goes, from the daemon's report.
type Target struct {
	Door appliance.Door
	// Addr is the listener's address; a wildcard listener is reached on
	// 127.0.0.1.
	Addr netip.AddrPort
	// LDAPS: TLS from the first byte; else StartTLS (LDAP only).
	LDAPS bool
	// CertSHA256 is the certificate the LDAP door must show, as the daemon
	// reports it (upper-case hex pairs).
	CertSHA256 string
}

func (t Target) String() string {
	switch {
	case t.Door != appliance.DoorLDAP:
		return "RADIUS " + t.Addr.String()
	case t.LDAPS:
		return "LDAPS " + t.Addr.String()
	}
	return "LDAP with StartTLS " + t.Addr.String()
}

// LoginTarget finds where a test login through door goes in the daemon's
// last report (reported false: there is none), as of now. Its errors are
// ErrInvalid, in the operator's words.
func LoginTarget(st DaemonStatus, reported bool, door appliance.Door, now time.Time) (Target, error) {
	switch {
	case !reported:
		return Target{}, invalid("the daemon has not reported where it listens; is it running?")
	case now.Sub(st.UpdatedAt) > daemonFresh:
		return Target{}, invalid("the daemon is not answering; start it first")
	case st.OldListeners && len(st.Listeners) == 0:
		return Target{}, invalid("the running daemon is older than this console and does not say where it listens in a form the test can use; restart it (systemctl restart clinicgate)")
	}
	if door != appliance.DoorLDAP {
		l, ok := st.Listener(ListenRADIUSAuth)
		if !ok {
			return Target{}, invalid("the daemon does not listen for RADIUS authentication")
		}
		ap, err := reachable(l.Address)
		if err != nil {
			return Target{}, invalid("the daemon reported a RADIUS address %q that is not host:port", l.Address)
		}
		return Target{Door: appliance.DoorRADIUS, Addr: ap}, nil
	}
	t := Target{Door: appliance.DoorLDAP}
	l, ok := st.Listener(ListenLDAP)
	if !ok {
		l, ok = st.Listener(ListenLDAPS)
		t.LDAPS = true
	}
	if !ok {
		return Target{}, invalid("the daemon does not listen for LDAP (set ldap: listen in its config)")
	}
	ap, err := reachable(l.Address)
	if err != nil {
		return Target{}, invalid("the daemon reported an LDAP address %q that is not host:port", l.Address)
	}
	t.Addr, t.CertSHA256 = ap, strings.ToUpper(l.CertSHA256)
	if !validFingerprint(t.CertSHA256) {
		return Target{}, invalid("the daemon did not report its LDAP certificate's fingerprint, so the test " +
			"cannot tell the appliance from an impostor and does not send the password (restart the daemon with this version)")
	}
	return t, nil
}

// reachable is where a listener at addr is reached from this machine: a
// wildcard listener answers on loopback too.
func reachable(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a := ap.Addr().Unmap()
	if a.IsUnspecified() {
		a = loopback
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// TestLogin performs a test login through the running daemon. A refusal
// is a result, not an error; an error means no test was made (no daemon,
// no answer, the wrong certificate), in the operator's words.
func (s *Service) TestLogin(ctx context.Context, t LoginTest) (LoginResult, error) {
	chosen, err := s.testClient(ctx, t)
	if err != nil {
		return LoginResult{}, err
	}
	door := appliance.Door(chosen.Door)
	if door == "" {
		door = appliance.DoorRADIUS
	}
	if door == appliance.DoorLDAP && (t.User == "" || len(t.Password) == 0) {
		return LoginResult{}, invalid("type a user and a password (an empty one is an anonymous bind, always refused)")
	}
	ttls := door == appliance.DoorRADIUS && t.Method == LoginTTLS
	switch {
	case t.Method != "" && t.Method != LoginPAP && t.Method != LoginTTLS:
		return LoginResult{}, invalid("test logins send PAP or EAP-TTLS/PAP, not %q", t.Method)
	case ttls && t.User == "":
		return LoginResult{}, invalid("type a user: EAP-TTLS sends one inside the tunnel")
	case ttls && t.TLSVersion != 0 && t.TLSVersion != tls.VersionTLS12 && t.TLSVersion != tls.VersionTLS13:
		return LoginResult{}, invalid("EAP-TTLS runs over TLS 1.2 or 1.3")
	}
	st, reported, err := s.Status(ctx)
	if err != nil {
		return LoginResult{}, err
	}
	target, err := LoginTarget(st, reported, door, s.Now())
	if err != nil {
		return LoginResult{}, err
	}
	if ttls && (st.EAP == nil || st.EAP.CAPEM == "" || len(st.EAP.ServerName) == 0) {
		return LoginResult{}, invalid("the daemon did not report its EAP CA and server name, so the test cannot tell " +
			"the appliance from an impostor and does not send the password (is 802.1X on? does the certificate file hold its CA? " +
			"restart the daemon with this version)")
	}
	clients, err := s.Clients(ctx)
	if err != nil {
		return LoginResult{}, err
	}
	temp := TestClientName
	if door == appliance.DoorLDAP {
		temp = TestLDAPClientName
	}
	// A bind to a local address comes from it; a RADIUS request is sent
	// from loopback. Only a client of the same door can send it: an LDAP
	// client at 127.0.0.1 has no shared secret.
	src := loopback
	if door == appliance.DoorLDAP {
		src = target.Addr.Addr()
	}
	r := LoginResult{Door: door, Target: target, Client: chosen.Name}
	var secret secrets.Secret
	since, _, err := s.Store.AuditHead(ctx)
	if err != nil {
		return LoginResult{}, err
	}
	if via := loopbackVia(clients, door, temp, src); via != nil {
		r.Via, secret = via.Name, via.Secret
	} else {
		r.Via, r.Temporary = temp, true
		if door == appliance.DoorRADIUS {
			g, err := GenerateSecret(s.Rand)
			if err != nil {
				return LoginResult{}, err
			}
			secret = secrets.Secret(g)
		}
		_ = s.RemoveClient(ctx, temp) // a leftover from an interrupted test
		if _, err := s.AddClient(ctx, NewClient{Door: door, Name: temp, Address: src.String(), Secret: secret, Policy: chosen.Policy}); err != nil {
			return LoginResult{}, err
		}
		defer s.RemoveClient(context.WithoutCancel(ctx), temp)
		select {
		case <-time.After(pickupDelay):
		case <-ctx.Done():
			return LoginResult{}, ctx.Err()
		}
	}
	start := time.Now()
	switch {
	case door == appliance.DoorLDAP:
		err = ldapTestBind(ctx, target, t.User, t.Password, &r)
	case ttls:
		r.Method = LoginTTLS
		err = ttlsTestLogin(ctx, target, *st.EAP, secret, t.User, t.Password, t.TLSVersion, &r)
	default:
		r.Method = LoginPAP
		wait := 10 * time.Second
		if chosen.Policy.Push.Provider != "" {
			// Long enough for a held push (policy.MaxPushBudget caps it).
			wait = time.Duration(policy.MaxPushBudget+5) * time.Second
		}
		err = radiusTestLogin(ctx, target, secret, t.User, t.Password, wait, &r)
	}
	if err != nil {
		return LoginResult{}, err
	}
	r.Took = time.Since(start).Round(time.Millisecond)
	r.Story = s.story(ctx, since, func(row AuditRow) bool {
		if row.Door != string(door) || row.Client != r.Via {
			return false
		}
		return door == appliance.DoorLDAP || strings.EqualFold(row.User, t.User)
	})
	return r, nil
}

// testClient is the client whose policy a test applies.
func (s *Service) testClient(ctx context.Context, t LoginTest) (Client, error) {
	clients, err := s.Clients(ctx)
	if err != nil {
		return Client{}, err
	}
	door := t.Door
	if door == "" {
		door = appliance.DoorRADIUS
	}
	for _, c := range clients {
		if t.Client != "" && c.Name == t.Client {
			return c, nil
		}
		if t.Client == "" && clientDoor(c) == door && c.Name != TestClientName && c.Name != TestLDAPClientName {
			return c, nil
		}
	}
	if t.Client != "" {
		return Client{}, invalid("there is no client %q", t.Client)
	}
	return Client{}, invalid("there is no %s client to test through yet", strings.ToUpper(string(door)))
}

func clientDoor(c Client) appliance.Door {
	if c.Door == "" {
		return appliance.DoorRADIUS
	}
	return appliance.Door(c.Door)
}

// loopbackVia picks the existing client of door a test login from src
// goes out as (nil: none, a temporary one is added). skip is the
// temporary client's name: a leftover of an interrupted test never counts.
// As the daemon does, the most specific prefix wins.
func loopbackVia(clients []Client, door appliance.Door, skip string, src netip.Addr) *Client {
	var via *Client
	for i := range clients {
		c := &clients[i]
		if clientDoor(*c) == door && c.Prefix.Contains(src) && c.Name != skip {
			if via == nil || c.Prefix.Bits() > via.Prefix.Bits() {
				via = c
			}
		}
	}
	return via
}

// story is the newest decision after seq that match accepts (nil if none).
func (s *Service) story(ctx context.Context, seq int64, match func(AuditRow) bool) *DecisionStory {
	rows, err := s.AuditAfter(ctx, seq, 500)
	if err != nil {
		return nil
	}
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		if r.Kind != audit.KindDecision || !match(r) {
			continue
		}
		st := &DecisionStory{Seq: r.Seq, Outcome: r.Outcome, Reason: r.Reason}
		if d, err := audit.ParseDecisionDetail(r.Detail); err == nil {
			st.Steps, st.Notes = d.Steps, d.Notes
		} else {
			st.Steps = []audit.Step{{Result: r.Detail}}
		}
		return st
	}
	return nil
}

// radiusTestLogin sends one signed Access-Request to t and records the
// answer in r.
func radiusTestLogin(ctx context.Context, t Target, secret secrets.Secret, user string, password secrets.Secret, wait time.Duration, r *LoginResult) error {
	p := radius.New(radius.CodeAccessRequest, secret)
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		return invalid("the user name is too long")
	}
	if err := rfc2865.UserPassword_Set(p, password); err != nil {
		return invalid("the password is too long for RADIUS (128 bytes)")
	}
	_ = rfc2865.NASIdentifier_SetString(p, "clinicgate-console")
	if err := msgauth.SignRequest(p); err != nil {
		return err
	}
	// Sent once: the gate learns a NAS's timer from its resends, and the
	// console is not the NAS.
	xctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	resp, err := (&radius.Client{MaxPacketErrors: 10}).Exchange(xctx, p, t.Addr.String())
	if err != nil {
		return invalid("no answer from %s (%v)", t.Addr, err)
	}
	r.Outcome, r.Code = resp.Code.String(), int(resp.Code)
	r.Accepted = resp.Code == radius.CodeAccessAccept
	r.Challenged = resp.Code == radius.CodeAccessChallenge
	r.Reply = replyAttributes(resp)
	return nil
}

// ttlsTestLogin runs one EAP-TTLS/PAP conversation with t and records the
// answer in r. The server certificate is checked as a Wi-Fi profile makes
// a device check it: a chain to the EAP CA, and the server name.
func ttlsTestLogin(ctx context.Context, t Target, eap EAPStatus, secret secrets.Secret, user string, password secrets.Secret, version uint16, r *LoginResult) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(eap.CAPEM)) {
		return invalid("the daemon reported an EAP CA that is not a PEM certificate; the password was not sent")
	}
	xctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := eapclient.Login(xctx, eapclient.Config{
		Addr: t.Addr.String(), Secret: secret, User: user, Password: password, TLSVersion: version,
		RootCAs: roots, ServerName: eap.ServerName[0], NASIdentifier: "clinicgate-console",
	})
	switch {
	case errors.Is(err, eapclient.ErrServerCert):
		// The error says the password was not sent, and why.
		return invalid("the EAP certificate at %s is not what Wi-Fi devices are told to trust (CA %s, name %s), so something else may have answered: %v",
			t.Addr, eap.CASubject, eap.ServerName[0], err)
	case err != nil && res.Reply == nil:
		return invalid("the EAP-TTLS test with %s did not finish (%v)", t.Addr, err)
	}
	// A TLS failure the daemon answered with a Reject is a result too.
	r.Outcome, r.Code = res.Code.String(), int(res.Code)
	r.Accepted, r.KeysMatch = res.Accepted, res.KeysMatch
	switch res.TLSVersion {
	case tls.VersionTLS12:
		r.TLSVersion = "TLS 1.2"
	case tls.VersionTLS13:
		r.TLSVersion = "TLS 1.3"
	}
	r.Reply = replyAttributes(res.Reply)
	if u := rfc2865.UserName_GetString(res.Reply); r.Accepted && u != "" {
		r.Reply = append(r.Reply, ReplyAttribute{"User-Name", u})
	}
	return nil
}

// replyAttributes is what an answer carried for the NAS, as text.
func replyAttributes(resp *radius.Packet) []ReplyAttribute {
	var out []ReplyAttribute
	if msg := rfc2865.ReplyMessage_GetString(resp); msg != "" {
		out = append(out, ReplyAttribute{"Reply-Message", msg})
	}
	if _, vlan, err := rfc2868.TunnelPrivateGroupID_LookupString(resp); err == nil {
		out = append(out, ReplyAttribute{"VLAN", vlan})
	}
	if st, err := rfc2865.SessionTimeout_Lookup(resp); err == nil {
		out = append(out, ReplyAttribute{"Session-Timeout", strconv.Itoa(int(st)) + " s"})
	}
	return out
}

// ldapTestBind performs one simple bind over TLS pinned to t's certificate
// and records the server's result code and diagnostic message in r; an
// error is a test that could not be made (no connection, the wrong
// certificate).
func ldapTestBind(ctx context.Context, t Target, user string, password secrets.Secret, r *LoginResult) error {
	deadline := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		deadline = min(deadline, time.Until(dl))
	}
	var pinErr error
	pin := pinCertificate(t.CertSHA256)
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain check is off because the certificate is self-signed;
		// VerifyPeerCertificate compares its fingerprint instead.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, chains [][]*x509.Certificate) error {
			pinErr = pin(raw, chains)
			return pinErr
		},
	}
	url := "ldap://" + t.Addr.String()
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: deadline})}
	if t.LDAPS {
		url = "ldaps://" + t.Addr.String()
		opts = append(opts, ldap.DialWithTLSConfig(tc))
	}
	conn, err := ldap.DialURL(url, opts...)
	if pinErr != nil {
		return invalid("%v", pinErr)
	}
	if err != nil {
		return invalid("cannot reach the LDAP door at %s (%v)", t.Addr, ldapCause(err))
	}
	defer conn.Close()
	conn.SetTimeout(deadline)
	if !t.LDAPS {
		if err := conn.StartTLS(tc); err != nil {
			if pinErr != nil {
				return invalid("%v", pinErr)
			}
			return invalid("StartTLS with the LDAP door at %s failed (%v)", t.Addr, ldapCause(err))
		}
	}
	err = conn.Bind(user, string(password))
	var le *ldap.Error
	switch {
	case err == nil:
		r.Code = ldap.LDAPResultSuccess
	case errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork:
		// An answer from the server (client-side codes start at 200).
		r.Code = int(le.ResultCode)
		if le.Err != nil {
			r.Diagnostic = le.Err.Error()
		}
	default:
		return invalid("no answer to the bind from %s (%v)", t.Addr, ldapCause(err))
	}
	r.Accepted = r.Code == ldap.LDAPResultSuccess
	r.Outcome = ldap.LDAPResultCodeMap[uint16(r.Code)]
	if r.Outcome == "" {
		r.Outcome = "result"
	}
	return nil
}

// ldapCause is an ldap error without go-ldap's "LDAP Result Code 200
// \"Network Error\":" prefix.
func ldapCause(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		return le.Err
	}
	return err
}

// validFingerprint: 32 bytes as AA:BB:….
func validFingerprint(fp string) bool {
	b, err := hex.DecodeString(strings.ReplaceAll(fp, ":", ""))
	return err == nil && len(b) == sha256.Size && len(fp) == 3*sha256.Size-1
}

// CertFingerprint is how the daemon reports a certificate: the SHA-256 of
// its DER, upper-case hex in colon-separated pairs.
func CertFingerprint(der []byte) string { return selfcert.FingerprintDER(der) }

// pinCertificate accepts only the certificate with the fingerprint want.
// It is the TLS check of a test bind (tls.Config.VerifyPeerCertificate,
// with the chain check off: the certificate is self-signed).
func pinCertificate(want string) func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if !validFingerprint(want) {
			return errors.New("there is no LDAP certificate fingerprint to check the server against; the password was not sent")
		}
		if len(rawCerts) == 0 {
			return errors.New("the LDAP server showed no certificate; the password was not sent")
		}
		if got := CertFingerprint(rawCerts[0]); got != strings.ToUpper(want) {
			return fmt.Errorf("the LDAP server's certificate is not the appliance's (its SHA-256 is %s, the daemon reported %s); "+
				"something else answered, and the password was not sent", got, want)
		}
		return nil
	}
}
