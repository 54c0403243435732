package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/ldapproxy"
	"github.com/clinicgate/clinicgate/scepserver"
)

// scepSubmit is certmonger's SCEP helper (Debian's certmonger package).
const scepSubmit = "/usr/lib/certmonger/scep-submit"

var (
	scepRE      = regexp.MustCompile(`SCEP \(device certs\)\s+(https://\S+/scep)\s`)
	challengeRE = regexp.MustCompile(`(?m)^[a-z2-7]{26}$`)
)

// pemCerts reads every certificate of a PEM text (a command's output),
// with the one PEM reader of the tree.
func pemCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	f := filepath.Join(t.TempDir(), "certs.pem")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	certs, err := selfcert.ReadCerts(f)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return certs
}

// certmongerRun runs the certmonger daemon on a private socket and state
// directory, runs script (sh) under it with getcert, and returns the
// daemon's log and the script's output.
//
// certmonger's scep-submit checks the HTTPS certificate against -R only
// for GetCACaps and GetCACert; for the PKIOperation it uses libcurl's
// default bundle (certmonger 0.79, src/scep.c). A device trusts the
// appliance's self-signed certificate by putting it in the system's
// bundle; the test does that in a mount namespace of its own, over a copy
// of /etc/ssl/certs, so the machine's trust is left alone.
func certmongerRun(t *testing.T, serverCert, script string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"requests", "cas", "tmp", "local", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat("/etc/ssl/certs"); err != nil {
		t.Fatalf("/etc/ssl/certs is missing (the openssl package makes it): %v", err)
	}
	bundle, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	own, err := os.ReadFile(serverCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "certs", "ca-certificates.crt"), append(bundle, own...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("set -x\n"+script), 0o600); err != nil {
		t.Fatal(err)
	}
	// The listening socket's path must be short (a test's TempDir, named
	// after the test, can pass the 108 bytes a socket path may have).
	sockDir, err := os.MkdirTemp("", "cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	inner := fmt.Sprintf("mount --bind %s /etc/ssl/certs && exec certmonger -n -L -P %s -c 'sh %s'",
		filepath.Join(dir, "certs"), filepath.Join(sockDir, "sock"), filepath.Join(dir, "run.sh"))
	args := []string{"-m", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append([]string{"-r"}, args...) // a user namespace lets a non-root user bind-mount
	}
	cmd := exec.Command("unshare", append(args, "sh", "-c", inner)...)
	cmd.Env = append(os.Environ(), "CERTMONGER_REQUESTS_DIR="+filepath.Join(dir, "requests"), "CERTMONGER_CAS_DIR="+filepath.Join(dir, "cas"),
		"CERTMONGER_TMPDIR="+filepath.Join(dir, "tmp"), "CERTMONGER_LOCAL_CA_DIR="+filepath.Join(dir, "local"))
	done := make(chan struct{})
	timer := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill(); close(done) })
	out, err := cmd.CombinedOutput()
	if !timer.Stop() {
		<-done
		t.Fatalf("certmonger did not finish in 3 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("certmonger could not run: %v\n%s", err, out)
	}
	return string(out)
}

// certmongerEnrol enrols a certificate from the daemon d (started with
// --scep) with certmonger, a key made by openssl and a challenge made with
// challengeFlags ('clinicgate scep challenge ...'), and returns the
// certificate and key files.
func certmongerEnrol(t *testing.T, data string, d *daemon, cn string, challengeFlags ...string) (certFile, keyFile string) {
	t.Helper()
	need(t, "openssl", "certmonger", "getcert", "unshare", scepSubmit)
	m := scepRE.FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("the daemon lists no SCEP door (start it with --scep):\n%s", d.stdout)
	}
	url, serverCert := m[1], filepath.Join(data, ldapproxy.CertFile)
	challenge := challengeRE.FindString(mustCG(t, data, "", append([]string{"scep", "challenge"}, challengeFlags...)...))
	if challenge == "" {
		t.Fatal("scep challenge printed no challenge")
	}
	work := t.TempDir()
	keyFile, certFile = filepath.Join(work, "device.key"), filepath.Join(work, "device.crt")
	if out, err := exec.Command("openssl", "genrsa", "-out", keyFile, "2048").CombinedOutput(); err != nil {
		t.Fatalf("openssl genrsa: %v\n%s", err, out)
	}
	log := certmongerRun(t, serverCert, fmt.Sprintf(`getcert add-scep-ca -c clinicgate -u %q -R %q || exit 1
i=0; while ! getcert list-cas -c clinicgate | grep -q 'SCEP CA certificate thumbprint'; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.2; done
getcert request -c clinicgate -f %q -k %q -L %q -N CN=%s -w -v
`, url, serverCert, certFile, keyFile, challenge, cn))
	if _, err := os.Stat(certFile); err != nil {
		t.Fatalf("certmonger saved no certificate: %v\n%s", err, log)
	}
	return certFile, keyFile
}

// TestSCEPEnrolmentWithCertmonger: certmonger, a real SCEP client, gets
// the device CA from the running daemon, enrols a device certificate with
// a one-time challenge (and is refused when it uses the challenge again);
// the certificate chains to the device CA, is in the inventory, passes
// EAP-TLS through eapol_test, and once revoked is on the CRL and refused
// at the next handshake.
func TestSCEPEnrolmentWithCertmonger(t *testing.T) {
	need(t, "radclient", "openssl", "eapol_test", "certmonger", "getcert", "unshare", scepSubmit)
	data := t.TempDir()
	d := startDaemon(t, data, "--scep", "127.0.0.1:0")
	m := scepRE.FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("the daemon lists no SCEP door:\n%s", d.stdout)
	}
	url, serverCert := m[1], filepath.Join(data, ldapproxy.CertFile)

	// The helper alone first: when it cannot run, its own words say why.
	out, err := exec.Command(scepSubmit, "-u", url, "-R", serverCert, "-c").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SCEPStandard") {
		t.Fatalf("scep-submit -c (GetCACaps) failed: %v\n%s", err, out)
	}
	out, err = exec.Command(scepSubmit, "-u", url, "-R", serverCert, "-C").CombinedOutput()
	if err != nil {
		t.Fatalf("scep-submit -C (GetCACert) failed: %v\n%s", err, out)
	}
	got := pemCerts(t, out)
	caPEM := mustCG(t, data, "", "scep", "ca")
	deviceCA := pemCerts(t, []byte(caPEM))[0]
	if len(got) != 2 || !got[1].Equal(deviceCA) || got[0].Subject.CommonName != "clinicgate SCEP RA" {
		t.Fatalf("scep-submit -C printed %d certificates, want the RA then the device CA:\n%s", len(got), out)
	}

	mustCG(t, data, secret, "client", "add", "local", "--address", "127.0.0.1", "--secret-stdin", "--mfa", "off")
	mustCG(t, data, "correct horse battery", "user", "add", "alice", "--password-stdin")
	challenge := challengeRE.FindString(mustCG(t, data, "", "scep", "challenge", "--device", "cm-laptop", "--user", "alice", "--mac", "02:00:00:00:00:01"))
	if challenge == "" {
		t.Fatal("scep challenge printed no challenge")
	}
	work := t.TempDir()
	key, crt := filepath.Join(work, "dev.key"), filepath.Join(work, "dev.crt")
	if out, err := exec.Command("openssl", "genrsa", "-out", key, "2048").CombinedOutput(); err != nil {
		t.Fatalf("openssl genrsa: %v\n%s", err, out)
	}
	// The second request reuses the challenge with another key: the
	// appliance refuses it (failInfo badRequest) and certmonger says so.
	log := certmongerRun(t, serverCert, fmt.Sprintf(`getcert add-scep-ca -c clinicgate -u %q -R %q || exit 1
i=0; while ! getcert list-cas -c clinicgate | grep -q 'SCEP CA certificate thumbprint'; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.2; done
getcert request -c clinicgate -I good -f %q -k %q -L %q -N CN=cm-laptop -w -v
getcert request -c clinicgate -I reused -f %q -k %q -L %q -N CN=intruder -w -v
getcert list
`, url, serverCert, crt, key, challenge, filepath.Join(work, "again.crt"), filepath.Join(work, "again.key"), challenge))
	for _, l := range strings.Split(log, "\n") {
		// What getcert says, for the record (-v): the daemon's debug lines are many.
		if strings.Contains(l, "State ") || strings.Contains(l, "status:") || strings.Contains(l, "ca-error") || strings.Contains(l, "signing request \"") {
			t.Log("certmonger:", strings.TrimSpace(l))
		}
	}
	if _, err := os.Stat(crt); err != nil {
		t.Fatalf("certmonger saved no certificate: %v\n%s", err, log)
	}
	if !strings.Contains(log, "CA_REJECTED") || !strings.Contains(log, "not permitted") {
		t.Errorf("certmonger's second request, with the used challenge, was not rejected:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(work, "again.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a certificate was issued for a reused challenge")
	}
	cert := pemCerts(t, mustRead(t, crt))[0]
	pool := x509.NewCertPool()
	pool.AddCert(deviceCA)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the issued certificate does not chain to the device CA: %v", err)
	}
	if cert.Subject.CommonName != "cm-laptop" {
		t.Errorf("CN %q, want cm-laptop", cert.Subject.CommonName)
	}
	serial, fp := cert.SerialNumber.Text(16), selfcert.FingerprintDER(cert.Raw)
	db := openDB(t, data)
	var source, name, mac string
	if err := db.QueryRow(`SELECT i.source, i.name, COALESCE((SELECT mac FROM inventory_macs WHERE device_id = i.id), '') FROM inventory_certs c JOIN inventory i ON i.id = c.device_id WHERE c.fingerprint = ? AND c.serial = ?`, fp, serial).
		Scan(&source, &name, &mac); err != nil {
		t.Fatalf("the certificate is not in the inventory: %v", err)
	}
	if source != "cert" || name != "cm-laptop" || mac != "02:00:00:00:00:01" {
		t.Errorf("inventory record: source %s, name %s, mac %s", source, name, mac)
	}
	var reused int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit WHERE reason = 'scep_challenge_used' AND outcome = 'refused'`).Scan(&reused); err != nil || reused != 1 {
		t.Errorf("the reused challenge's refusal is audited %d times (%v), want once", reused, err)
	}
	if list := mustCG(t, data, "", "scep", "list"); !strings.Contains(list, serial) || !strings.Contains(list, "valid") {
		t.Errorf("scep list lacks %s:\n%s", serial, list)
	}

	tlsNet := []string{`eap=TLS`, `identity="alice"`, fmt.Sprintf("client_cert=%q", crt), fmt.Sprintf("private_key=%q", key)}
	out2, ok := eapol(t, data, d, tlsNet...)
	if !ok || !strings.Contains(out2, "MPPE keys OK: 1  mismatch: 0") {
		t.Fatalf("EAP-TLS with the SCEP certificate did not succeed with matching MPPE keys:\n%s\nlast audit entry:\n%s", tail(out2, 3000), lastAudit(t, data))
	}
	if show := lastAudit(t, data); !strings.Contains(show, "alice") || !strings.Contains(show, "eap_tls") {
		t.Fatalf("the audit entry is not alice's EAP-TLS login:\n%s", show)
	}

	mustCG(t, data, "", "cert", "revoke", serial, "--reason", "laptop lost")
	out2, ok = eapol(t, data, d, tlsNet...)
	if ok || strings.Contains(out2, "MPPE keys OK: 1") {
		t.Fatalf("the revoked certificate still passes EAP-TLS:\n%s", tail(out2, 3000))
	}
	if show := lastAudit(t, data); !strings.Contains(show, "cert_revoked") {
		t.Fatalf("the refusal is not audited as cert_revoked:\n%s", show)
	}
	// The revocation also queued the posture event that ends the device's
	// sessions at a NAS that takes CoA (docs/coa.md): found by its MAC.
	var macs string
	if err := db.QueryRow(`SELECT macs FROM posture_events WHERE kind = 'cert_revoked' ORDER BY id DESC LIMIT 1`).Scan(&macs); err != nil || !strings.Contains(macs, "02:00:00:00:00:01") {
		t.Errorf("no cert_revoked posture event for the device's MAC (got %q, %v)", macs, err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(mustRead(t, serverCert))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := hc.Get(strings.TrimSuffix(url, scepserver.PathSCEP) + scepserver.PathCRL)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("the published CRL does not parse: %v", err)
	}
	if err := crl.CheckSignatureFrom(deviceCA); err != nil {
		t.Fatalf("the CRL is not signed by the device CA: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Fatalf("the CRL lists %v, want serial %s", crl.RevokedCertificateEntries, serial)
	}
	if cdp := cert.CRLDistributionPoints; len(cdp) != 1 || !strings.HasSuffix(cdp[0], scepserver.PathCRL) || !strings.HasPrefix(url, strings.TrimSuffix(cdp[0], scepserver.PathCRL)) {
		t.Errorf("the certificate's CRL distribution point %v is not the daemon's CRL", cdp)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
