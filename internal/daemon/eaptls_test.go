package daemon

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/eap/eaptest"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// TestEAPTLSTrustAnchors: EAP-TLS is off without anchors; the configured
// bundle, or eap-client-ca.pem in the data directory, turns it on, and the
// log names each anchor by subject and fingerprint, never a key.
func TestEAPTLSTrustAnchors(t *testing.T) {
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	revoked := ca.Issue(t, "old-laptop", "", "", time.Time{}, time.Time{})
	_, crlFile := ca.CRL(t, revoked.Cert)

	d := open(t, loopback(t))
	if d.radius.EAP.ClientCAs != nil || d.radius.EAP.CRLs != nil {
		t.Fatal("EAP-TLS trust anchors set up without any configured")
	}

	var logs bytes.Buffer
	cfg := loopback(t)
	cfg.RADIUS.EAPClientCAFile, cfg.RADIUS.EAPCRLFile = ca.File, crlFile
	d, err := Open(t.Context(), cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if d.radius.EAP.ClientCAs == nil || d.radius.EAP.CRLs == nil {
		t.Fatal("the configured anchors or CRL are not in force")
	}
	crls, err := d.radius.EAP.CRLs()
	if err != nil || len(crls) != 1 || len(crls[0].RevokedCertificateEntries) != 1 {
		t.Fatalf("CRLs %v, %v: want the one list with one entry", crls, err)
	}
	for _, want := range []string{"EAP-TLS trust anchor", "Clinic Devices CA", selfcert.FingerprintDER(ca.Cert.Raw), "EAP-TLS CRL"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatal("a key in the log")
	}

	// The data directory's default file.
	cfg = loopback(t)
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, eap.ClientCAFile), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if d := open(t, cfg); d.radius.EAP.ClientCAs == nil {
		t.Fatalf("%s in the data directory was not taken", eap.ClientCAFile)
	}
}

// TestEAPTLSBadAnchorsRefuseToStart: a device certificate given as an
// anchor, an unreadable CRL, or a CRL without anchors stop the start with
// a message that says what to fix.
func TestEAPTLSBadAnchorsRefuseToStart(t *testing.T) {
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	leaf := ca.Issue(t, "alice", "", "", time.Time{}, time.Time{})
	garbage := filepath.Join(t.TempDir(), "crl.pem")
	if err := os.WriteFile(garbage, []byte("not a CRL"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ca, crl, want string
	}{
		{"device certificate as anchor", leaf.CertFile, "", "not a CA certificate"},
		{"missing anchor file", filepath.Join(t.TempDir(), "none.pem"), "", "no such file"},
		{"unreadable CRL", ca.File, garbage, "CRL"},
		{"CRL without anchors", "", garbage, "no EAP-TLS trust anchors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loopback(t)
			cfg.RADIUS.EAPClientCAFile, cfg.RADIUS.EAPCRLFile = tc.ca, tc.crl
			d, err := Open(t.Context(), cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err == nil {
				d.Close()
				t.Fatal("the daemon started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}
