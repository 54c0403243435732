package main

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

func TestWifiCAAndProfile(t *testing.T) {
	data := newData(t)
	if out, err := cg(t, data, "", "wifi", "ca"); err == nil || !strings.Contains(out, "first start") {
		t.Fatalf("wifi ca before the daemon made a certificate: %v\n%s", err, out)
	}
	certPath, _, _, err := eap.EnsureCertificate(data)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := selfcert.Fingerprint(certPath)
	if err != nil {
		t.Fatal(err)
	}
	out := mustCG(t, data, "", "wifi", "ca")
	if !strings.Contains(out, fp) || !strings.Contains(out, "Windows thumbprint") {
		t.Fatalf("wifi ca does not show the fingerprint %s:\n%s", fp, out)
	}
	blk, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	if blk == nil {
		t.Fatalf("no PEM in:\n%s", out)
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil || selfcert.FingerprintDER(blk.Bytes) != fp {
		t.Fatalf("the PEM is not the EAP certificate: %v", err)
	}

	if out, err := cg(t, data, "", "wifi", "profile"); err == nil || !strings.Contains(out, "--ssid is required") {
		t.Fatalf("profile without --ssid: %v\n%s", err, out)
	}
	if out, err := cg(t, data, "", "wifi", "profile", "--ssid", "Staff", "--method", "md5"); err == nil || !strings.Contains(out, "ttls, peap or tls") {
		t.Fatalf("profile with a bad method: %v\n%s", err, out)
	}
	out = mustCG(t, data, "", "wifi", "profile", "--ssid", "Staff", "--method", "peap", "--org", "Dyer Clinic")
	for _, want := range []string{"<string>Staff</string>", "<integer>25</integer>", "com.apple.security.root", "TLSTrustedServerNames"} {
		if !strings.Contains(out, want) {
			t.Errorf("profile lacks %s", want)
		}
	}
}
