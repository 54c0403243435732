package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2868"

	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/eap/eaptest"
	"github.com/clinicgate/clinicgate/internal/eapclient"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// eapolTest runs wpa_supplicant's eapol_test against the daemon with one
// EAP-TTLS/PAP network block (extra lines added to it) and returns its
// output and whether it reported success.
func eapolTest(t *testing.T, data string, d *daemon, identity, password string, extra ...string) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("eapol_test"); err != nil {
		t.Fatalf("eapol_test is not installed: run 'make test-deps'")
	}
	host, port, err := net.SplitHostPort(d.auth)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "net.conf")
	lines := []string{
		`ssid="clinic"`, `key_mgmt=WPA-EAP`, `eap=TTLS`,
		fmt.Sprintf("identity=%q", identity), `anonymous_identity="anonymous"`,
		fmt.Sprintf("password=%q", password),
		fmt.Sprintf("ca_cert=%q", filepath.Join(data, eap.CertFile)),
		`phase2="auth=PAP"`,
	}
	// extra may replace ca_cert, and may hold eapol_test flags ("-N...").
	var flags []string
	extra = slices.DeleteFunc(slices.Clone(extra), func(l string) bool {
		switch {
		case strings.HasPrefix(l, "ca_cert="):
			lines[6] = l
		case strings.HasPrefix(l, "-"):
			flags = append(flags, l)
		default:
			return false
		}
		return true
	})
	lines = append(lines, extra...)
	return eapolNetwork(t, conf, host, port, lines, flags...)
}

// eapolNetwork runs eapol_test with one network block against host:port.
func eapolNetwork(t *testing.T, conf, host, port string, lines []string, flags ...string) (string, bool) {
	t.Helper()
	if err := os.WriteFile(conf, []byte("network={\n\t"+strings.Join(lines, "\n\t")+"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("eapol_test", append([]string{"-c", conf, "-a", host, "-p", port, "-s", secret, "-r", "0", "-t", "15", "-M", "02:00:00:00:00:01"}, flags...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), "SUCCESS")
}

// TestEAPTTLSWithEapolTest: 802.1X with EAP-TTLS and an inner PAP
// password, under TLS 1.2 and TLS 1.3, checked by wpa_supplicant's own
// eapol_test, which derives the MPPE keys itself and compares them with
// the Access-Accept's.
func TestEAPTTLSWithEapolTest(t *testing.T) {
	data, d := setup(t, "--mfa", "off", "--vlan", "staff=20")
	for _, tc := range []struct {
		name    string
		extra   []string
		version string
	}{
		{"tls1.2", []string{`phase1="tls_disable_tlsv1_3=1"`}, "eap_ttls_tls12"},
		{"tls1.3", []string{tls13}, "eap_ttls_tls13"},
		// The peer fragments at 100 bytes; a second Framed-MTU of 300
		// (the smaller one counts) makes clinicgate fragment its own
		// flights too, at 290 bytes.
		{"tls1.2 fragment_size=100", []string{`phase1="tls_disable_tlsv1_3=1"`, `fragment_size=100`, "-N12:d:300"}, "eap_ttls_tls12"},
		{"tls1.3 fragment_size=100", []string{tls13, `fragment_size=100`, "-N12:d:300"}, "eap_ttls_tls13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := eapolTest(t, data, d, "alice", "correct horse battery", tc.extra...)
			if strings.Contains(tc.name, "fragment") && (!strings.Contains(out, "Flags 0xc0") || !strings.Contains(out, "SSL: Building ACK")) {
				t.Errorf("clinicgate sent no fragments (L and M flags) for the peer to acknowledge:\n%s", tail(out, 3000))
			}
			if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
				seq := strings.Fields(mustCG(t, data, "", "audit", "tail", "-n", "1"))[0]
				t.Fatalf("eapol_test did not succeed with matching MPPE keys:\n%s\nlast audit entry:\n%s", tail(out, 3000), mustCG(t, data, "", "audit", "show", seq))
			}
			// The Accept carries the gate's VLAN and the user's name, as PAP's does.
			accept := out[strings.LastIndex(out, "(Access-Accept)"):]
			for _, re := range []*regexp.Regexp{vlanRE, userNameRE} {
				if !re.MatchString(accept) {
					t.Errorf("the Access-Accept lacks %s:\n%s", re, tail(accept, 2000))
				}
			}
			seq := strings.Fields(mustCG(t, data, "", "audit", "tail", "-n", "1"))[0]
			show := mustCG(t, data, "", "audit", "show", seq)
			for _, want := range []string{"ok", "alice", tc.version, "outer_identity:anonymous", "over TLS 1."} {
				if !strings.Contains(show, want) {
					t.Fatalf("audit entry lacks %q:\n%s", want, show)
				}
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		out, ok := eapolTest(t, data, d, "alice", "wrong horse battery")
		if ok || !strings.HasSuffix(strings.TrimSpace(out), "FAILURE") {
			t.Fatalf("a wrong password did not end in FAILURE:\n%s", tail(out, 4000))
		}
		if strings.Contains(out, "MPPE keys OK: 1") {
			t.Fatalf("keys were sent with a reject:\n%s", tail(out, 4000))
		}
		if last := mustCG(t, data, "", "audit", "tail", "-n", "1"); !strings.Contains(last, "bad_password") {
			t.Fatalf("audit tail lacks bad_password:\n%s", last)
		}
	})

	t.Run("peer trusts another CA", func(t *testing.T) {
		other, _, _, err := eap.EnsureCertificate(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		out, ok := eapolTest(t, data, d, "alice", "correct horse battery", fmt.Sprintf("ca_cert=%q", other))
		if ok || strings.Contains(out, "MPPE keys OK: 1") {
			t.Fatalf("a peer that does not trust the server's certificate succeeded:\n%s", tail(out, 4000))
		}
		seq := strings.Fields(mustCG(t, data, "", "audit", "tail", "-n", "1"))[0]
		if show := mustCG(t, data, "", "audit", "show", seq); !strings.Contains(show, "bad_request") || !strings.Contains(show, "TLS") {
			t.Fatalf("the last audit entry does not say the TLS handshake failed:\n%s", show)
		}
	})
}

// TestEAPTTLSMFAAppend: inside the tunnel, as over PAP, a code typed after
// the password and a comma is the second factor; TTLS has no challenge
// round, so without the code the login is refused with mfa_required.
func TestEAPTTLSMFAAppend(t *testing.T) {
	data, d := setup(t, "--mfa", "required")
	seed := enroll(t, data, "alice")
	out, ok := eapolTest(t, data, d, "alice", "correct horse battery")
	if ok {
		t.Fatalf("no code, yet SUCCESS:\n%s", tail(out, 4000))
	}
	if last := mustCG(t, data, "", "audit", "tail", "-n", "1"); !strings.Contains(last, "mfa_required") {
		t.Fatalf("audit tail lacks mfa_required:\n%s", last)
	}
	code := oathtool(t, seed, time.Now())
	out, ok = eapolTest(t, data, d, "alice", "correct horse battery,"+code)
	if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
		t.Fatalf("password,code did not succeed:\n%s", tail(out, 4000))
	}
}

var (
	vlanRE     = regexp.MustCompile(`Attribute 81 \(Tunnel-Private-Group-Id\) length=4\s+Value: 3230`) // "20"
	userNameRE = regexp.MustCompile(`Attribute 1 \(User-Name\) length=7\s+Value: 'alice'`)
)

// tls13 makes eapol_test offer TLS 1.3 only. OpenSSL offers no version
// above a disabled one, so 1.0 to 1.2 all go.
const tls13 = `phase1="tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0"`

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// eapol runs eapol_test against the daemon with the network block lines
// (ssid, key_mgmt and the server's CA added).
func eapol(t *testing.T, data string, d *daemon, lines ...string) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("eapol_test"); err != nil {
		t.Fatalf("eapol_test is not installed: run 'make test-deps'")
	}
	host, port, err := net.SplitHostPort(d.auth)
	if err != nil {
		t.Fatal(err)
	}
	lines = append([]string{`ssid="clinic"`, `key_mgmt=WPA-EAP`, fmt.Sprintf("ca_cert=%q", filepath.Join(data, eap.CertFile))}, lines...)
	return eapolNetwork(t, filepath.Join(t.TempDir(), "net.conf"), host, port, lines)
}

func lastAudit(t *testing.T, data string) string {
	t.Helper()
	seq := strings.Fields(mustCG(t, data, "", "audit", "tail", "-n", "1"))[0]
	return mustCG(t, data, "", "audit", "show", seq)
}

// TestEAPPEAPWithEapolTest: PEAPv0 with EAP-MSCHAPv2 through the real
// daemon and gate, checked against the NT hash the gate keeps for a client
// that allows MS-CHAPv2 (captured here by a TTLS login first).
//
// It needs the gate's MS-CHAPv2 verification (the gate branch of issue 11):
// before that lands, the gate refuses PEAP and this test fails.
func TestEAPPEAPWithEapolTest(t *testing.T) {
	data, d := setup(t, "--mfa", "off", "--vlan", "staff=20", "--allow-mschap")
	// The NT hash is kept at the next password login through a client
	// that allows MS-CHAPv2.
	if out, ok := eapolTest(t, data, d, "alice", "correct horse battery", `phase1="tls_disable_tlsv1_3=1"`); !ok {
		t.Fatalf("the TTLS login that keeps the NT hash failed:\n%s", tail(out, 3000))
	}
	peap := func(password, phase1 string, extra ...string) []string {
		return append([]string{`eap=PEAP`, `identity="alice"`, `anonymous_identity="anonymous"`, `password="` + password + `"`,
			`phase1="peapver=0 ` + phase1 + `"`, `phase2="auth=MSCHAPV2"`}, extra...)
	}
	for _, tc := range []struct {
		name, phase1, note string
		extra              []string
	}{
		{"tls1.2", "tls_disable_tlsv1_3=1", "eap_peap_tls12", nil},
		{"tls1.3", strings.Trim(strings.TrimPrefix(tls13, "phase1="), `"`), "eap_peap_tls13", nil},
		{"tls1.3 fragment_size=100", strings.Trim(strings.TrimPrefix(tls13, "phase1="), `"`), "eap_peap_tls13", []string{"fragment_size=100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := eapol(t, data, d, peap("correct horse battery", tc.phase1, tc.extra...)...)
			if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
				t.Fatalf("eapol_test did not succeed with matching MPPE keys:\n%s\nlast audit entry:\n%s", tail(out, 3000), lastAudit(t, data))
			}
			accept := out[strings.LastIndex(out, "(Access-Accept)"):]
			for _, re := range []*regexp.Regexp{vlanRE, userNameRE} {
				if !re.MatchString(accept) {
					t.Errorf("the Access-Accept lacks %s:\n%s", re, tail(accept, 2000))
				}
			}
			show := lastAudit(t, data)
			for _, want := range []string{"ok", "alice", tc.note, "anonymous"} {
				if !strings.Contains(show, want) {
					t.Fatalf("audit entry lacks %q:\n%s", want, show)
				}
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		out, ok := eapol(t, data, d, peap("wrong horse battery", "")...)
		if ok || !strings.HasSuffix(strings.TrimSpace(out), "FAILURE") || strings.Contains(out, "MPPE keys OK: 1") {
			t.Fatalf("a wrong password did not end in FAILURE without keys:\n%s", tail(out, 4000))
		}
		if show := lastAudit(t, data); !strings.Contains(show, "bad_password") {
			t.Fatalf("the last audit entry lacks bad_password:\n%s", show)
		}
	})
}

// TestEAPTLSWithEapolTestThroughDaemon: EAP-TLS through the real daemon,
// with the devices' CA as eap-client-ca.pem in the data directory and a
// CRL from the bootstrap file. A certificate from another CA, an expired
// one and a revoked one are refused and the reason audited.
//
// The Accepts need the gate's certificate mapping (the gate branch of
// issue 11; here the subject CN names the user alice); the refusals are
// the EAP server's alone and pass without it.
func TestEAPTLSWithEapolTestThroughDaemon(t *testing.T) {
	need(t, "radclient", "radtest", "oathtool")
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	alice := ca.Issue(t, "alice", "", "", time.Time{}, time.Time{})
	stolen := ca.Issue(t, "alice", "", "", time.Time{}, time.Time{})
	_, crl := ca.CRL(t, stolen.Cert)
	data := t.TempDir()
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, eap.ClientCAFile), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "clinicgate.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("data_dir: %q\nradius:\n  eap_crl_file: %q\n", data, crl)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, data, "--config", conf)
	mustCG(t, data, secret, "client", "add", "local", "--address", "127.0.0.1", "--secret-stdin", "--mfa", "off", "--vlan", "staff=20")
	mustCG(t, data, "correct horse battery", "user", "add", "alice", "--group", "staff", "--password-stdin")
	tlsNet := func(leaf eaptest.Leaf, phase1 string, extra ...string) []string {
		return append([]string{`eap=TLS`, `identity="alice"`, fmt.Sprintf("client_cert=%q", leaf.CertFile),
			fmt.Sprintf("private_key=%q", leaf.KeyFile), `phase1="` + phase1 + `"`}, extra...)
	}
	tls12, tls13only := "tls_disable_tlsv1_3=1", strings.Trim(strings.TrimPrefix(tls13, "phase1="), `"`)
	for _, tc := range []struct {
		name   string
		leaf   eaptest.Leaf
		reason string
	}{
		{"another CA", eaptest.NewCA(t, "Someone Else CA").Issue(t, "alice", "", "", time.Time{}, time.Time{}), "cert_untrusted"},
		{"expired", ca.Issue(t, "alice", "", "", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)), "cert_expired"},
		{"revoked", stolen, "cert_revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := eapol(t, data, d, tlsNet(tc.leaf, tls13only)...)
			if ok || strings.Contains(out, "MPPE keys OK: 1") {
				t.Fatalf("a refused certificate succeeded:\n%s", tail(out, 4000))
			}
			if show := lastAudit(t, data); !strings.Contains(show, tc.reason) || !strings.Contains(show, "eap_tls") {
				t.Fatalf("the last audit entry lacks %s and the method:\n%s", tc.reason, show)
			}
		})
	}
	for _, tc := range []struct {
		name, phase1, note string
		extra              []string
	}{
		{"tls1.2", tls12, "eap_tls_tls12", nil},
		{"tls1.3", tls13only, "eap_tls_tls13", nil},
		{"tls1.3 fragment_size=100", tls13only, "eap_tls_tls13", []string{"fragment_size=100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := eapol(t, data, d, tlsNet(alice, tc.phase1, tc.extra...)...)
			if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
				t.Fatalf("eapol_test did not succeed with matching MPPE keys:\n%s\nlast audit entry:\n%s", tail(out, 3000), lastAudit(t, data))
			}
			if show := lastAudit(t, data); !strings.Contains(show, "ok") || !strings.Contains(show, tc.note) {
				t.Fatalf("audit entry lacks ok and %q:\n%s", tc.note, show)
			}
		})
	}
	// clinicgate's own client (the benchmark's driver) does EAP-TLS too,
	// and derives the same keys as the Accept's.
	pair, err := tls.LoadX509KeyPair(alice.CertFile, alice.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := selfcert.Fingerprint(filepath.Join(data, eap.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		r, err := eapclient.Login(t.Context(), eapclient.Config{Addr: d.auth, Secret: []byte(secret), Identity: "alice", Method: eapclient.MethodTLS,
			Certificates: []tls.Certificate{pair}, TLSVersion: ver, PinSHA256: fp})
		if err != nil || !r.Accepted || !r.KeysMatch || r.TLSVersion != ver {
			t.Fatalf("eapclient EAP-TLS %x: accepted %v, keys match %v, version %x, %v\n%s", ver, r.Accepted, r.KeysMatch, r.TLSVersion, err, lastAudit(t, data))
		}
	}
}

// TestEAPClientAgainstDaemon: clinicgate's own EAP-TTLS/PAP client (the
// console's test login, the benchmark's driver) through the running
// daemon, under TLS 1.2 and 1.3, pinned to the daemon's certificate or
// trusting it as a CA; the MPPE keys of the Accept are the ones the
// client derives from its tunnel.
func TestEAPClientAgainstDaemon(t *testing.T) {
	data, d := setup(t, "--mfa", "off", "--vlan", "staff=20")
	certPath := filepath.Join(data, eap.CertFile)
	fp, err := selfcert.Fingerprint(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for _, tc := range []struct {
		name    string
		version uint16
		cfg     eapclient.Config
	}{
		{"tls1.2 pinned", tls.VersionTLS12, eapclient.Config{PinSHA256: fp}},
		{"tls1.3 pinned", tls.VersionTLS13, eapclient.Config{PinSHA256: fp}},
		{"tls1.3 CA, 100-byte fragments", tls.VersionTLS13, eapclient.Config{RootCAs: roots, FragmentSize: 100, FramedMTU: 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Addr, c.Secret, c.User, c.Password, c.TLSVersion = d.auth, []byte(secret), "alice", []byte("correct horse battery"), tc.version
			r, err := eapclient.Login(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Accepted || r.TLSVersion != tc.version {
				t.Fatalf("got %v over TLS %x, want Access-Accept over %x", r.Code, r.TLSVersion, tc.version)
			}
			if !r.KeysMatch {
				t.Fatalf("the daemon's MPPE keys Recv %x Send %x are not the client's MSK %x", r.RecvKey, r.SendKey, r.MSK)
			}
			if _, vlan, _ := rfc2868.TunnelPrivateGroupID_LookupString(r.Reply); vlan != "20" {
				t.Errorf("got VLAN %q in the Accept, want 20", vlan)
			}
		})
	}
	r, err := eapclient.Login(t.Context(), eapclient.Config{Addr: d.auth, Secret: []byte(secret), User: "alice", Password: []byte("wrong"), PinSHA256: fp})
	if err != nil || r.Accepted || r.Code != radius.CodeAccessReject {
		t.Fatalf("wrong password: got %v %v, want an Access-Reject", r.Code, err)
	}
	if last := mustCG(t, data, "", "audit", "tail", "-n", "1"); !strings.Contains(last, "bad_password") {
		t.Fatalf("audit tail lacks bad_password:\n%s", last)
	}
}

// TestConsoleTTLSTestLogin: the console's test login, at 80x24, sends an
// EAP-TTLS/PAP login through the running daemon (checking its certificate
// against the EAP CA and server name the daemon reports, as a device
// does) and shows the TLS version, the keys' check, the reply and the
// story.
func TestConsoleTTLSTestLogin(t *testing.T) {
	need(t, "tmux")
	data := t.TempDir()
	startDaemon(t, data)
	mustCG(t, data, secret, "client", "add", "office-wifi", "--address", "10.9.0.0/24", "--secret-stdin", "--mfa", "off", "--vlan", "staff=30")
	mustCG(t, data, "correct horse battery", "user", "add", "alice", "--group", "staff", "--password-stdin")
	term := inTmux(t, 80, 24, binPath+" tui --data "+data)
	capture := term.screen
	keys := term.keys
	waitFor(t, "the console", func() bool { return strings.Contains(capture(), "daemon") })
	keys("Tab", "Tab", "Tab")
	waitFor(t, "the clients pane", func() bool { return strings.Contains(capture(), "office-wifi") })
	keys("l", "Up", "ttls1.2", "Enter", "alice", "Enter", "correct horse battery", "Enter")
	waitFor(t, "the test login's answer", func() bool {
		s := capture()
		return strings.Contains(s, "over EAP-TTLS/PAP (TLS 1.2): Access-Accept") && strings.Contains(s, "keys (MPPE) match") &&
			strings.Contains(s, "VLAN:           30") && strings.Contains(s, "verified by local")
	})
	seq := strings.Fields(mustCG(t, data, "", "audit", "tail", "-n", "1", "--user", "alice"))[0]
	if show := mustCG(t, data, "", "audit", "show", seq); !strings.Contains(show, "eap_ttls_tls12") || !strings.Contains(show, "console-test") {
		t.Fatalf("the decision is not the console's EAP-TTLS login:\n%s", show)
	}
}
