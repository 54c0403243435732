package e2e

import (
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

	"github.com/clinicgate/clinicgate/eap"
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
			for _, want := range []string{"ok", "alice", tc.version, "outer_identity=anonymous"} {
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
