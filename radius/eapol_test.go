package radius

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/eap/eaptest"
)

// The EAP methods against wpa_supplicant's own eapol_test, over real UDP,
// with eaptest.Decider as the gate: it checks MS-CHAPv2 with RFC 2759's
// maths and maps a client certificate's CN. The gate's own checks are
// tested with the gate; this proves the EAP server's side of the wire and
// its keys ("MPPE keys OK": eapol_test derives them itself).

const eapolPassword = "correct horse battery"

// eapolRig is a RADIUS door with an EAP server that trusts ca for
// EAP-TLS, served on 127.0.0.1.
type eapolRig struct {
	f        *fixture
	gate     *eaptest.Decider
	port     string
	serverCA string // the EAP server's certificate, for ca_cert
}

func newEapolRig(t *testing.T, ca *eaptest.CA, crls ...*x509.RevocationList) *eapolRig {
	t.Helper()
	if _, err := exec.LookPath("eapol_test"); err != nil {
		t.Fatal("eapol_test is not installed: run 'make test-deps'")
	}
	f := loopbackServer(t)
	gate := &eaptest.Decider{Users: map[string]string{"alice": eapolPassword}}
	f.s.Gate = gate
	dir := t.TempDir()
	cp, kp, _, err := eap.EnsureCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := eap.TLSConfig(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	f.s.EAP = &eap.Server{Gate: gate, TLS: cfg, ClientCAs: ca.Pool(), CRLs: func() ([]*x509.RevocationList, error) { return crls, nil }}
	addr, _ := listen(t, f.s.Serve)
	return &eapolRig{f: f, gate: gate, port: fmt.Sprint(addr.Port), serverCA: cp}
}

// run runs eapol_test with one network block and returns its output and
// whether it printed SUCCESS.
func (r *eapolRig) run(t *testing.T, lines ...string) (string, bool) {
	t.Helper()
	lines = append([]string{`ssid="clinic"`, `key_mgmt=WPA-EAP`, fmt.Sprintf("ca_cert=%q", r.serverCA)}, lines...)
	conf := filepath.Join(t.TempDir(), "net.conf")
	if err := os.WriteFile(conf, []byte("network={\n\t"+strings.Join(lines, "\n\t")+"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("eapol_test", "-c", conf, "-a", "127.0.0.1", "-p", r.port, "-s", testSecret,
		"-r", "0", "-t", "15", "-M", "02:00:00:00:00:01").CombinedOutput()
	return string(out), err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), "SUCCESS")
}

const (
	phase1TLS12 = "tls_disable_tlsv1_3=1"
	// OpenSSL offers no version above a disabled one, so 1.0 to 1.2 all go.
	phase1TLS13 = "tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0"
)

func peapLines(identity, password, phase1 string, extra ...string) []string {
	return append([]string{`eap=PEAP`, `identity="` + identity + `"`, `anonymous_identity="anonymous"`,
		`password="` + password + `"`, fmt.Sprintf("phase1=%q", "peapver=0 "+phase1), `phase2="auth=MSCHAPV2"`}, extra...)
}

func tlsLines(leaf eaptest.Leaf, phase1 string, extra ...string) []string {
	return append([]string{`eap=TLS`, `identity="alice"`, fmt.Sprintf("client_cert=%q", leaf.CertFile),
		fmt.Sprintf("private_key=%q", leaf.KeyFile), fmt.Sprintf("phase1=%q", phase1)}, extra...)
}

func wantEapolSuccess(t *testing.T, out string, ok bool) {
	t.Helper()
	if !ok || !strings.Contains(out, "MPPE keys OK: 1  mismatch: 0") {
		t.Fatalf("eapol_test did not succeed with matching MPPE keys:\n%s", tailOf(out, 4000))
	}
}

func wantEapolFailure(t *testing.T, out string, ok bool) {
	t.Helper()
	if ok || !strings.HasSuffix(strings.TrimSpace(out), "FAILURE") || strings.Contains(out, "MPPE keys OK: 1") {
		t.Fatalf("eapol_test did not end in FAILURE without keys:\n%s", tailOf(out, 4000))
	}
}

func tailOf(s string, n int) string {
	if os.Getenv("EAPOL_FULL") != "" {
		return s
	}
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func hasNote(req appliance.Request, note string) bool { return slices.Contains(req.Notes, note) }

func TestPEAPWithEapolTest(t *testing.T) {
	r := newEapolRig(t, eaptest.NewCA(t, "Clinic Devices CA"))
	for _, tc := range []struct {
		name, phase1, note string
		extra              []string
	}{
		{"tls1.2", phase1TLS12, "eap_peap_tls12", nil},
		{"tls1.3", phase1TLS13, "eap_peap_tls13", nil},
		{"tls1.2 fragment_size=100", phase1TLS12, "eap_peap_tls12", []string{"fragment_size=100"}},
		{"tls1.3 fragment_size=100", phase1TLS13, "eap_peap_tls13", []string{"fragment_size=100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := r.run(t, peapLines(`CLINIC\alice`, eapolPassword, tc.phase1, tc.extra...)...)
			wantEapolSuccess(t, out, ok)
			req := r.gate.Last(t)
			if req.Method != appliance.MethodPEAP || req.User != "alice" || req.MSCHAP == nil || req.MSCHAP.Name != `CLINIC\alice` ||
				req.OuterIdentity != "anonymous" || !hasNote(req, tc.note) {
				t.Fatalf("the gate got method %q user %q MSCHAP %+v outer %q notes %q", req.Method, req.User, req.MSCHAP, req.OuterIdentity, req.Notes)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		out, ok := r.run(t, peapLines("alice", "wrong horse battery", phase1TLS13)...)
		wantEapolFailure(t, out, ok)
		if !strings.Contains(out, "E=691") {
			t.Fatalf("the peer saw no MS-CHAPv2 failure E=691:\n%s", tailOf(out, 4000))
		}
		if req := r.gate.Last(t); req.Method != appliance.MethodPEAP || req.Invalid != "" {
			t.Fatalf("the last decision was on %q invalid %q, want the PEAP refusal itself", req.Method, req.Invalid)
		}
	})
}

func TestEAPTLSWithEapolTest(t *testing.T) {
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	revoked := ca.Issue(t, "mallory-laptop", "", "", time.Time{}, time.Time{})
	crl, _ := ca.CRL(t, revoked.Cert)
	r := newEapolRig(t, ca, crl)
	alice := ca.Issue(t, "alice", "alice@clinic.example", "", time.Time{}, time.Time{})
	for _, tc := range []struct {
		name, phase1, note string
		extra              []string
	}{
		{"tls1.2", phase1TLS12, "eap_tls_tls12", nil},
		{"tls1.3", phase1TLS13, "eap_tls_tls13", nil},
		{"tls1.2 fragment_size=100", phase1TLS12, "eap_tls_tls12", []string{"fragment_size=100"}},
		{"tls1.3 fragment_size=100", phase1TLS13, "eap_tls_tls13", []string{"fragment_size=100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := r.run(t, tlsLines(alice, tc.phase1, tc.extra...)...)
			wantEapolSuccess(t, out, ok)
			req := r.gate.Last(t)
			if req.Method != appliance.MethodEAPTLS || req.User != "alice" || req.Cert == nil || req.Cert.Subject != "alice" ||
				!slices.Equal(req.Cert.UPNs, []string{"alice@clinic.example"}) || req.Cert.Issuer != "Clinic Devices CA" || !hasNote(req, tc.note) {
				t.Fatalf("the gate got method %q user %q cert %+v notes %q", req.Method, req.User, req.Cert, req.Notes)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		leaf   eaptest.Leaf
		reason appliance.Reason
	}{
		{"revoked", revoked, appliance.ReasonCertRevoked},
		{"another CA", eaptest.NewCA(t, "Someone Else CA").Issue(t, "alice", "", "", time.Time{}, time.Time{}), appliance.ReasonCertUntrusted},
		{"expired", ca.Issue(t, "alice", "", "", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)), appliance.ReasonCertExpired},
	} {
		for _, v := range []struct{ name, phase1 string }{{"tls1.2", phase1TLS12}, {"tls1.3", phase1TLS13}} {
			t.Run(tc.name+" "+v.name, func(t *testing.T) {
				out, ok := r.run(t, tlsLines(tc.leaf, v.phase1)...)
				wantEapolFailure(t, out, ok)
				if !strings.Contains(out, "alert") {
					t.Errorf("the peer got no TLS alert:\n%s", tailOf(out, 4000))
				}
				if req := r.gate.Last(t); req.Invalid != tc.reason || req.Method != appliance.MethodEAP {
					t.Fatalf("the gate got invalid %q method %q notes %q, want %s", req.Invalid, req.Method, req.Notes, tc.reason)
				}
			})
		}
	}
}
