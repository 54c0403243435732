package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/ldapproxy"
)

// ldapsLeaf is the certificate the LDAPS door shows now.
func ldapsLeaf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	var c *tls.Conn
	var err error
	for range 100 { // Run starts serving moments after it is called
		if c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// serve listens and runs d until the test ends, with 127.0.0.1 an LDAP
// client (the door closes other sources' connections at once).
func serve(t *testing.T, d *Daemon) {
	t.Helper()
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddClient(t.Context(), admin.NewClient{Door: appliance.DoorLDAP, Name: "ehr", Address: "127.0.0.1", Policy: policy.Default()}); err != nil {
		t.Fatal(err)
	}
	if err := d.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
		<-ran
	})
}

func listenAddr(t *testing.T, d *Daemon, what string) string {
	t.Helper()
	for _, l := range d.Listening() {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == what {
			return strings.TrimSuffix(f[1], "/tcp")
		}
	}
	t.Fatalf("no %s in %q", what, d.Listening())
	return ""
}

// Finding 6: a first-wave install's LDAP certificate (a self-signed CA)
// becomes a leaf of the appliance CA at the next start, audited and
// reported for the console with its new fingerprint; the EAP one, which
// Wi-Fi profiles pin, is kept.
func TestFirstWaveCertificatesAreMigrated(t *testing.T) {
	cfg := loopback(t)
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, oldFP, _, err := ldapproxy.EnsureCertificate(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	eapCert, _, _, err := eap.EnsureCertificate(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	oldEAP, _ := selfcert.Fingerprint(eapCert)

	d := open(t, cfg)
	serve(t, d)
	leaf := ldapsLeaf(t, listenAddr(t, d, "LDAPS"))
	if leaf.IsCA || selfcert.FingerprintDER(leaf.Raw) == oldFP || selfcert.FingerprintDER(leaf.Raw) != d.ldapFP {
		t.Fatalf("LDAPS shows %s (CA %v); the first-wave certificate was %s", selfcert.FingerprintDER(leaf.Raw), leaf.IsCA, oldFP)
	}
	caFile := filepath.Join(cfg.DataDir, pki.ServerCAFile)
	cas, err := selfcert.ReadCerts(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cas[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("the new LDAP certificate does not verify against %s: %v", pki.ServerCAFile, err)
	}
	if fp, _ := selfcert.Fingerprint(eapCert); fp != oldEAP {
		t.Fatalf("the EAP certificate Wi-Fi profiles pin was replaced: %s, was %s", fp, oldEAP)
	}

	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := svc.AuditTail(t.Context(), "", 20)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || e.Reason == "ldap_certificate_migrated" && strings.Contains(e.Detail, d.ldapFP)
	}
	if !found {
		t.Fatalf("no ldap_certificate_migrated entry naming %s in the audit", d.ldapFP)
	}
	st := d.certStatus(t.Context(), d.ldapOwn)
	if st == nil || st.Changed == nil || st.Changed.Why != pki.LeafMigrated || st.Changed.SHA256 != d.ldapFP || st.CAFile != caFile {
		t.Fatalf("status %+v, want the migration reported", st)
	}
}

// A leaf written over the files (the daily renewal) is served from the
// next handshake on, without a restart.
func TestRenewedLeafIsServedWithoutRestart(t *testing.T) {
	cfg := loopback(t)
	d := open(t, cfg)
	serve(t, d)
	addr := listenAddr(t, d, "LDAPS")
	before := ldapsLeaf(t, addr)
	d.certMu.Lock()
	d.ldapOwn.forceNext = true
	d.certMu.Unlock()
	d.renewOwnCerts(t.Context())
	after := ldapsLeaf(t, addr)
	if after.Equal(before) {
		t.Fatal("LDAPS still shows the old leaf after a renewal")
	}
	if st := d.certStatus(t.Context(), d.ldapOwn); st == nil || st.SHA256 != selfcert.FingerprintDER(after.Raw) || st.Changed == nil || st.Changed.Why != pki.LeafForced {
		t.Fatalf("status %+v after the renewal", st)
	}
	if time.Until(after.NotAfter) < pki.LeafValidity-time.Hour {
		t.Fatalf("renewed leaf ends %v", after.NotAfter)
	}
}
