package tui

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
	"regexp"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The LDAP test login is the RADIUS one's twin for an LDAP client: a real
// simple bind through the running daemon's LDAP door, from this machine,
// under the chosen client's policy, with the result code, the diagnostic
// message an EHR would show, and the decision's story. The bind always
// goes over TLS (StartTLS, or LDAPS when the door has no StartTLS
// listener), and the password is sent only to the certificate whose
// SHA-256 fingerprint the daemon reported: the appliance's certificate is
// self-signed, so that fingerprint is the check, not a CA.

const testLDAPClientName = "console-test-ldap"

var (
	ldapStartTLSRE = regexp.MustCompile(`^LDAP \(StartTLS\) (\S+)/tcp`)
	ldapsRE        = regexp.MustCompile(`^LDAPS (\S+)/tcp`)
	ldapCertRE     = regexp.MustCompile(`^LDAP certificate .*\(SHA-256 ([0-9A-Fa-f:]+)\)`)
)

// ldapTarget is where a test bind goes and the certificate it must meet.
type ldapTarget struct {
	addr  netip.AddrPort // a wildcard listener is reached on 127.0.0.1
	ldaps bool           // TLS from the first byte; else StartTLS
	// fingerprint is the SHA-256 of the certificate's DER, upper-case hex
	// in colon-separated pairs, as the daemon reports it.
	fingerprint string
}

func (t ldapTarget) how() string {
	if t.ldaps {
		return "LDAPS " + t.addr.String()
	}
	return "LDAP with StartTLS " + t.addr.String()
}

// ldapTargetOf reads the daemon's listeners: the StartTLS listener (else
// LDAPS) and the certificate's fingerprint. Without a fingerprint there is
// nothing to check the certificate against, and no test.
func ldapTargetOf(listeners []string) (ldapTarget, error) {
	var t ldapTarget
	var secure, plain string
	for _, l := range listeners {
		if mm := ldapStartTLSRE.FindStringSubmatch(l); mm != nil {
			plain = mm[1]
		}
		if mm := ldapsRE.FindStringSubmatch(l); mm != nil {
			secure = mm[1]
		}
		if mm := ldapCertRE.FindStringSubmatch(l); mm != nil {
			t.fingerprint = strings.ToUpper(mm[1])
		}
	}
	addr := plain
	if addr == "" {
		addr, t.ldaps = secure, true
	}
	if addr == "" {
		return ldapTarget{}, errors.New("the daemon does not listen for LDAP (set ldap: listen in its config)")
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ldapTarget{}, fmt.Errorf("the daemon reported an LDAP address %q that is not host:port", addr)
	}
	if a := ap.Addr().Unmap(); a.IsUnspecified() {
		// A wildcard listener answers on loopback too.
		ap = netip.AddrPortFrom(loopback, ap.Port())
	} else {
		ap = netip.AddrPortFrom(a, ap.Port())
	}
	t.addr = ap
	if !validFingerprint(t.fingerprint) {
		return ldapTarget{}, errors.New("the daemon did not report its LDAP certificate's fingerprint, so the test " +
			"cannot tell the appliance from an impostor and does not send the password (restart the daemon with this version)")
	}
	return t, nil
}

// validFingerprint: 32 bytes as AA:BB:….
func validFingerprint(fp string) bool {
	b, err := hex.DecodeString(strings.ReplaceAll(fp, ":", ""))
	return err == nil && len(b) == sha256.Size && len(fp) == 3*sha256.Size-1
}

// certFingerprint is how the daemon writes a certificate's fingerprint.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, sha256.Size)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

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
		if got := certFingerprint(rawCerts[0]); got != strings.ToUpper(want) {
			return fmt.Errorf("the LDAP server's certificate is not the appliance's (its SHA-256 is %s, the daemon reported %s); "+
				"something else answered, and the password was not sent", got, want)
		}
		return nil
	}
}

func (m Model) ldapTarget() (ldapTarget, error) {
	if err := m.daemonUp(); err != nil {
		return ldapTarget{}, err
	}
	return ldapTargetOf(m.daemon.Listeners)
}

func (m Model) ldapTestLoginForm(c store.Client) *form {
	return newForm("Test an LDAP login through "+c.Name+"'s policy", func(v []string) tea.Cmd {
		t, terr := m.ldapTarget()
		return m.act(func(ctx context.Context) doneMsg {
			if terr != nil {
				return doneMsg{err: fmt.Errorf("%w: %v", admin.ErrInvalid, terr)}
			}
			report, err := m.ldapTestLogin(ctx, t, c, strings.TrimSpace(v[0]), v[1])
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "LDAP test login sent", show: report}
		})
	},
		field("user", `who to log in as (alice, alice@clinic.local or CLINIC\alice)`, false, 128),
		field("password", "the password (append ,123456 for a code where the policy asks one)", true, 128),
	)
}

func (m Model) ldapTestLogin(ctx context.Context, t ldapTarget, chosen store.Client, user, password string) (string, error) {
	if user == "" || password == "" {
		return "", fmt.Errorf("%w: type a user and a password (an empty one is an anonymous bind, always refused)", admin.ErrInvalid)
	}
	clients, err := m.admin.Clients(ctx)
	if err != nil {
		return "", err
	}
	src := t.addr.Addr() // connecting to a local address, the bind comes from it
	via := loopbackVia(clients, appliance.DoorLDAP, testLDAPClientName, src)
	var note, clientName string
	if via != nil {
		clientName, note = via.Name, viaNote(via.Name, chosen.Name)
	} else {
		_ = m.admin.RemoveClient(ctx, testLDAPClientName) // a leftover from an interrupted test
		if _, err := m.admin.AddClient(ctx, admin.NewClient{Door: appliance.DoorLDAP, Name: testLDAPClientName, Address: src.String(), Policy: chosen.Policy}); err != nil {
			return "", err
		}
		defer m.admin.RemoveClient(context.Background(), testLDAPClientName)
		clientName = testLDAPClientName
		note = fmt.Sprintf("Sent as the temporary LDAP client %s with %s's policy.", testLDAPClientName, chosen.Name)
		// The daemon picks up new clients within a second.
		select {
		case <-time.After(1200 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	sent := time.Now()
	code, diag, err := ldapBind(ctx, t, user, password)
	if err != nil {
		return "", fmt.Errorf("%w: %v", admin.ErrInvalid, err)
	}
	var b strings.Builder
	verdict := ldap.LDAPResultCodeMap[code]
	if verdict == "" {
		verdict = "result"
	}
	fmt.Fprintf(&b, "Test login of %s over %s: %s (%d) in %s\n%s\n", sanitize(user), t.how(), verdict, code,
		time.Since(sent).Round(time.Millisecond), note)
	b.WriteString("The certificate was the appliance's (SHA-256 checked).\n\n")
	if code == ldap.LDAPResultSuccess {
		b.WriteString("  The bind was accepted: the EHR would log this user in.\n")
	}
	if diag != "" {
		fmt.Fprintf(&b, "  Diagnostic:  %s\n", sanitize(diag))
	}
	b.WriteString(m.story(ctx, func(r store.AuditRow) bool { return r.Door == string(appliance.DoorLDAP) && r.Client == clientName }))
	return b.String(), nil
}

// ldapBind performs one simple bind over TLS pinned to t's certificate and
// returns the server's result code and diagnostic message; err is for a
// test that could not be made (no connection, the wrong certificate).
func ldapBind(ctx context.Context, t ldapTarget, user, password string) (code uint16, diag string, err error) {
	deadline := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		deadline = min(deadline, time.Until(dl))
	}
	var pinErr error
	pin := pinCertificate(t.fingerprint)
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
	url := "ldap://" + t.addr.String()
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: deadline})}
	if t.ldaps {
		url = "ldaps://" + t.addr.String()
		opts = append(opts, ldap.DialWithTLSConfig(tc))
	}
	conn, err := ldap.DialURL(url, opts...)
	if pinErr != nil {
		return 0, "", pinErr
	}
	if err != nil {
		return 0, "", fmt.Errorf("cannot reach the LDAP door at %s (%v)", t.addr, ldapCause(err))
	}
	defer conn.Close()
	conn.SetTimeout(deadline)
	if !t.ldaps {
		if err := conn.StartTLS(tc); err != nil {
			if pinErr != nil {
				return 0, "", pinErr
			}
			return 0, "", fmt.Errorf("StartTLS with the LDAP door at %s failed (%v)", t.addr, ldapCause(err))
		}
	}
	err = conn.Bind(user, password)
	var le *ldap.Error
	switch {
	case err == nil:
		return ldap.LDAPResultSuccess, "", nil
	case errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork:
		// An answer from the server (client-side codes start at 200).
		if le.Err != nil {
			diag = le.Err.Error()
		}
		return le.ResultCode, diag, nil
	}
	return 0, "", fmt.Errorf("no answer to the bind from %s (%v)", t.addr, ldapCause(err))
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
