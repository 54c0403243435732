package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc3079"
)

// MS-CHAPv2 without EAP, as a VPN gateway sends it, by FreeRADIUS's own
// radclient. The response is computed here for a known password (RFC 2759
// §8.1, with layeh's rfc2759), so a right and a wrong password can be
// sent; radclient decrypts the MPPE keys of the answer with the shared
// secret, and they are compared with RFC 3079's derivation.

var (
	msAuthChallenge = []byte("clinicgate e2e!!")
	msPeerChallenge = bytes.Repeat([]byte{0x5c}, 16)
)

const msIdent = 0x17

// mschapAttrs is radclient input for user with the NT response for
// password (the name is hashed without a domain, RFC 2759 §4).
func mschapAttrs(t *testing.T, user, password string) (string, []byte) {
	t.Helper()
	name := user
	if _, u, ok := strings.Cut(user, `\`); ok {
		name = u
	}
	nt, err := rfc2759.GenerateNTResponse(msAuthChallenge, msPeerChallenge, []byte(name), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	resp := append([]byte{msIdent, 0}, msPeerChallenge...)
	resp = append(resp, make([]byte, 8)...)
	resp = append(resp, nt...)
	return fmt.Sprintf("User-Name = %q, MS-CHAP-Challenge = 0x%x, MS-CHAP2-Response = 0x%x, Calling-Station-Id = \"AA-BB-CC-00-11-22\", Message-Authenticator = 0x00",
		user, msAuthChallenge, resp), nt
}

var (
	msSuccessRE = regexp.MustCompile(`MS-CHAP2-Success = 0x([0-9a-f]+)`)
	msErrorRE   = regexp.MustCompile(`MS-CHAP-Error = "([^"]*)"`)
	msRecvRE    = regexp.MustCompile(`MS-MPPE-Recv-Key = 0x([0-9a-f]+)`)
	msSendRE    = regexp.MustCompile(`MS-MPPE-Send-Key = 0x([0-9a-f]+)`)
)

// checkMSCHAPError checks a Reject's MS-CHAP-Error: the Ident (radclient
// shows it as the first character), then E=code, no retry, the challenge
// and version 3 (RFC 2759 §6), and the gate's message.
func checkMSCHAPError(t *testing.T, out string, code int) {
	t.Helper()
	if got := received(out); got != "Access-Reject" {
		t.Fatalf("got %s, want Access-Reject\n%s", got, out)
	}
	m := msErrorRE.FindStringSubmatch(out)
	want := fmt.Sprintf("E=%d R=0 C=%X V=3 M=", code, msAuthChallenge)
	// radclient writes the Ident (0x17) in octal.
	if m == nil || !strings.HasPrefix(m[1], `\027`+want) {
		t.Fatalf("the Reject lacks MS-CHAP-Error %q after the Ident:\n%s", want, out)
	}
	if msSuccessRE.MatchString(out) || msRecvRE.MatchString(out) {
		t.Fatalf("a Reject carries MS-CHAP2-Success or keys:\n%s", out)
	}
}

// TestRadclientMSCHAPv2RefusedWhereNotAllowed: a client that does not
// allow MS-CHAPv2 gets MS-CHAP-Error E=649 (no permission), the right
// password or not, and the audit says method_not_allowed.
func TestRadclientMSCHAPv2RefusedWhereNotAllowed(t *testing.T) {
	data, d := setup(t, "--mfa", "off")
	attrs, _ := mschapAttrs(t, "alice", "correct horse battery")
	checkMSCHAPError(t, radclient(t, d.auth, "auth", secret, attrs), 649)
	if last := mustCG(t, data, "", "audit", "tail", "-n", "1"); !strings.Contains(last, "method_not_allowed") {
		t.Fatalf("audit tail lacks method_not_allowed:\n%s", last)
	}
}

// TestRadclientMSCHAPv2: a client that allows MS-CHAP keeps an NT hash
// when a password is set; then radclient's MS-CHAPv2 login with the right
// password is accepted with MS-CHAP2-Success carrying the authenticator
// response the peer checks, and the MPPE keys of RFC 3079; a wrong one is
// refused with MS-CHAP-Error E=691, which a VPN client shows as "wrong
// password".
func TestRadclientMSCHAPv2(t *testing.T) {
	data, d := setup(t, "--mfa", "off", "--vlan", "staff=20")
	mustCG(t, data, "", "client", "set", "local", "--allow-mschap")
	// The NT hash is kept when the password is set under such a client.
	mustCG(t, data, "correct horse battery", "user", "passwd", "alice", "--password-stdin")
	attrs, nt := mschapAttrs(t, "alice", "correct horse battery")
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		// The daemon sees the client's change within a second.
		if out = radclient(t, d.auth, "auth", secret, attrs); received(out) == "Access-Accept" {
			break
		}
	}
	if got := received(out); got != "Access-Accept" {
		t.Fatalf("right password: got %s, want Access-Accept\n%s\naudit:\n%s", got, out, mustCG(t, data, "", "audit", "tail", "-n", "3"))
	}
	m := msSuccessRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the Accept lacks MS-CHAP2-Success:\n%s", out)
	}
	success, _ := hex.DecodeString(m[1])
	want, err := rfc2759.GenerateAuthenticatorResponse(msAuthChallenge, msPeerChallenge, nt, []byte("alice"), []byte("correct horse battery"))
	if err != nil {
		t.Fatal(err)
	}
	if len(success) != 43 || success[0] != msIdent || string(success[1:]) != want {
		t.Fatalf("got MS-CHAP2-Success %q, want the Ident %#x then %s", success, msIdent, want)
	}
	for _, k := range []struct {
		name   string
		re     *regexp.Regexp
		isSend bool
	}{{"Recv", msRecvRE, false}, {"Send", msSendRE, true}} {
		wantKey, err := rfc3079.MakeKey(nt, []byte("correct horse battery"), k.isSend)
		if err != nil {
			t.Fatal(err)
		}
		m := k.re.FindStringSubmatch(out)
		if m == nil || m[1] != hex.EncodeToString(wantKey) {
			t.Fatalf("MS-MPPE-%s-Key: got %v, want %x (RFC 3079)\n%s", k.name, m, wantKey, out)
		}
	}
	for _, want := range []string{"MS-MPPE-Encryption-Policy = Encryption-Allowed", "MS-MPPE-Encryption-Types = RC4-40or128-bit-Allowed",
		`User-Name = "alice"`, `Tunnel-Private-Group-Id:0 = "20"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the Accept lacks %s:\n%s", want, out)
		}
	}

	// A Windows client sends DOMAIN\user; the response hashes the name
	// without the domain (RFC 2759 §4).
	domain, _ := mschapAttrs(t, `CLINIC\alice`, "correct horse battery")
	if out := radclient(t, d.auth, "auth", secret, domain); received(out) != "Access-Accept" || !msSuccessRE.MatchString(out) {
		t.Fatalf("CLINIC\\alice: want Access-Accept with MS-CHAP2-Success:\n%s", out)
	}

	wrong, _ := mschapAttrs(t, "alice", "wrong horse battery")
	checkMSCHAPError(t, radclient(t, d.auth, "auth", secret, wrong), 691)
	tail := mustCG(t, data, "", "audit", "tail", "-n", "3")
	for _, want := range []string{"accept    ok", "reject    bad_password"} {
		if !strings.Contains(tail, want) {
			t.Fatalf("audit tail lacks %q:\n%s", want, tail)
		}
	}
}
