package ldapproxy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicgate/clinicgate/ldapproxy"
)

// After a power cut a generated certificate can be empty; the appliance
// must make a new one, not refuse to start.
func TestDamagedGeneratedCertificateIsMadeAgain(t *testing.T) {
	dir := t.TempDir()
	_, _, fp1, renewed, err := ldapproxy.EnsureCertificate(dir)
	if err != nil || renewed {
		t.Fatalf("first: renewed %v, %v", renewed, err)
	}
	_, _, fp2, renewed, err := ldapproxy.EnsureCertificate(dir)
	if err != nil || renewed || fp2 != fp1 {
		t.Fatalf("second start must keep the certificate: %s vs %s, renewed %v, %v", fp1, fp2, renewed, err)
	}
	for _, f := range []string{ldapproxy.CertFile, ldapproxy.KeyFile} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c, k, fp3, renewed, err := ldapproxy.EnsureCertificate(dir)
		if err != nil || !renewed || fp3 == fp1 {
			t.Fatalf("empty %s: renewed %v, fingerprint %s (was %s), %v", f, renewed, fp3, fp1, err)
		}
		if _, err := ldapproxy.TLSConfig(c, k); err != nil {
			t.Fatalf("the renewed pair does not load: %v", err)
		}
		fp1 = fp3
	}
}
