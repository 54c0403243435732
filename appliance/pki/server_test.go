package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

var ldapNames = pki.LeafNames{CommonName: "gate", DNS: []string{"gate", "localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(192, 168, 1, 20)}}

func serverCA(t *testing.T) (*pki.ServerCA, string) {
	t.Helper()
	core := appliancetest.New(t, appliancetest.Options{})
	ca, err := pki.EnsureServerCA(t.Context(), core.Admin.Store, "gate", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca, core.Dir
}

func TestServerCAIsMadeOnceConstrainedAndSealed(t *testing.T) {
	core := appliancetest.New(t, appliancetest.Options{})
	a, err := pki.EnsureServerCA(t.Context(), core.Admin.Store, "Gate", []net.IP{net.ParseIP("203.0.113.7")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.EnsureServerCA(t.Context(), core.Admin.Store, "other", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cert.Equal(b.Cert) || !a.Key.Equal(b.Key) {
		t.Fatal("a second EnsureServerCA made another CA")
	}
	if !a.Cert.IsCA || !a.Cert.MaxPathLenZero || !a.Cert.PermittedDNSDomainsCritical {
		t.Fatalf("IsCA %v MaxPathLenZero %v critical %v", a.Cert.IsCA, a.Cert.MaxPathLenZero, a.Cert.PermittedDNSDomainsCritical)
	}
	if got := strings.Join(a.Cert.PermittedDNSDomains, ","); got != "localhost,gate,gate.local" {
		t.Fatalf("permitted DNS %s", got)
	}
	public := false
	for _, r := range a.Cert.PermittedIPRanges {
		public = public || r.String() == "203.0.113.7/32"
	}
	if !public {
		t.Fatalf("the host's public address is not permitted: %v", a.Cert.PermittedIPRanges)
	}
	key, _ := x509.MarshalPKCS8PrivateKey(a.Key)
	db, err := sql.Open("sqlite", filepath.Join(core.Dir, "clinicgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var k []byte
	if err := db.QueryRow(`SELECT key FROM server_ca`).Scan(&k); err != nil {
		t.Fatal(err)
	}
	if len(k) == 0 || bytes.Contains(k, key[len(key)-32:]) {
		t.Fatal("the server CA's key is stored in the clear")
	}
}

func TestLeafIsAServerLeafOfTheCA(t *testing.T) {
	ca, dir := serverCA(t)
	r, err := ca.EnsureLeaf(dir, "ldap-cert.pem", "ldap-key.pem", ldapNames, pki.LeafOptions{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Reason != pki.LeafNew {
		t.Fatalf("reason %q", r.Reason)
	}
	leaf := r.Leaf
	if leaf.IsCA || !leaf.BasicConstraintsValid || leaf.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Fatalf("leaf IsCA %v basic %v usage %v", leaf.IsCA, leaf.BasicConstraintsValid, leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("EKU %v", leaf.ExtKeyUsage)
	}
	if d := time.Until(leaf.NotAfter); d > pki.LeafValidity || d < pki.LeafValidity-time.Hour {
		t.Fatalf("leaf valid for %v", d)
	}
	for _, name := range []string{"gate", "localhost", "127.0.0.1", "192.168.1.20"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st, _ := os.Stat(r.KeyPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	// The file holds the leaf then the CA: tools given it as their trust
	// anchors (LDAPTLS_CACERT) still find the CA.
	certs, err := selfcert.ReadCerts(r.CertPath)
	if err != nil || len(certs) != 2 || !certs[1].Equal(ca.Cert) {
		t.Fatalf("cert file holds %d certificates (%v)", len(certs), err)
	}
	// A second call keeps it.
	again, err := ca.EnsureLeaf(dir, "ldap-cert.pem", "ldap-key.pem", ldapNames, pki.LeafOptions{}, time.Now())
	if err != nil || again.Reason != "" || !again.Leaf.Equal(leaf) {
		t.Fatalf("second EnsureLeaf: reason %q, err %v", again.Reason, err)
	}
}

// rogue signs a certificate for a bank's name with key, issued by parent.
func rogue(t *testing.T, parent *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "bank.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"bank.example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func writePEM(t *testing.T, path string, certs ...*x509.Certificate) {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// opensslVerify runs `openssl verify -purpose sslserver` as an EHR's
// trust store would judge the certificate; err is nil when accepted.
func opensslVerify(t *testing.T, caFile, untrusted, cert string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed (make test installs it): ", err)
	}
	args := []string{"verify", "-purpose", "sslserver", "-CAfile", caFile}
	if untrusted != "" {
		args = append(args, "-untrusted", untrusted)
	}
	out, err := exec.Command(bin, append(args, cert)...).CombinedOutput()
	return string(out), err
}

// Finding 6: with the first wave's ldap-key.pem, a certificate for any
// host name was signed and accepted. Now the file's key is a leaf's, and
// even the CA's own key cannot certify a name outside its constraints.
func TestRogueCertificatesAreRefused(t *testing.T) {
	ca, dir := serverCA(t)
	r, err := ca.EnsureLeaf(dir, "ldap-cert.pem", "ldap-key.pem", ldapNames, pki.LeafOptions{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(r.CertPath, r.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	// The genuine leaf passes, so a refusal below is the rogue's own.
	if out, err := opensslVerify(t, caFile, "", r.CertPath); err != nil {
		t.Fatalf("openssl refuses the appliance's own leaf: %v\n%s", err, out)
	}

	byLeaf := rogue(t, r.Leaf, pair.PrivateKey.(*ecdsa.PrivateKey))
	inter := x509.NewCertPool()
	inter.AddCert(r.Leaf)
	if _, err := byLeaf.Verify(x509.VerifyOptions{DNSName: "bank.example.com", Roots: ca.Pool(), Intermediates: inter}); err == nil {
		t.Fatal("a certificate signed with the LDAP key verified")
	}
	rogueFile := filepath.Join(dir, "rogue.pem")
	writePEM(t, rogueFile, byLeaf)
	if out, err := opensslVerify(t, caFile, r.CertPath, rogueFile); err == nil {
		t.Fatalf("openssl accepted a certificate signed with the LDAP key:\n%s", out)
	}

	byCA := rogue(t, ca.Cert, ca.Key)
	if _, err := byCA.Verify(x509.VerifyOptions{DNSName: "bank.example.com", Roots: ca.Pool()}); err == nil {
		t.Fatal("the CA's key certified a name outside its constraints")
	}
	writePEM(t, rogueFile, byCA)
	if out, err := opensslVerify(t, caFile, "", rogueFile); err == nil {
		t.Fatalf("openssl accepted a name outside the CA's constraints:\n%s", out)
	}
}

func TestLeafIsReissuedWhenItMust(t *testing.T) {
	ca, dir := serverCA(t)
	now := time.Now()
	ensure := func(o pki.LeafOptions, at time.Time, n pki.LeafNames) pki.LeafResult {
		t.Helper()
		r, err := ca.EnsureLeaf(dir, "ldap-cert.pem", "ldap-key.pem", n, o, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A first-wave install: a self-signed CA certificate in the file.
	if _, _, _, err := selfcert.Ensure(dir, "ldap-cert.pem", "ldap-key.pem", selfcert.Names{}); err != nil {
		t.Fatal(err)
	}
	if r := ensure(pki.LeafOptions{KeepSelfSigned: true}, now, ldapNames); r.Reason != "" || !r.SelfSigned {
		t.Fatalf("KeepSelfSigned: reason %q self-signed %v", r.Reason, r.SelfSigned)
	}
	if r := ensure(pki.LeafOptions{}, now, ldapNames); r.Reason != pki.LeafMigrated || r.Leaf.IsCA {
		t.Fatalf("first-wave certificate: reason %q", r.Reason)
	}
	if r := ensure(pki.LeafOptions{}, now.Add(pki.LeafValidity-pki.LeafRenewBefore+time.Hour), ldapNames); r.Reason != pki.LeafExpiring {
		t.Fatalf("a month before its end: reason %q", r.Reason)
	}
	more := ldapNames
	more.IPs = append(append([]net.IP(nil), more.IPs...), net.IPv4(10, 1, 2, 3))
	if r := ensure(pki.LeafOptions{}, now, more); r.Reason != pki.LeafRenamed {
		t.Fatalf("a new address: reason %q", r.Reason)
	}
	// A name the CA may not certify does not make it reissue forever.
	public := more
	public.IPs = append(append([]net.IP(nil), public.IPs...), net.ParseIP("198.51.100.1"))
	if r := ensure(pki.LeafOptions{}, now, public); r.Reason != "" {
		t.Fatalf("an address outside the constraints: reason %q", r.Reason)
	}
	if err := os.WriteFile(filepath.Join(dir, "ldap-key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ensure(pki.LeafOptions{}, now, more); r.Reason != pki.LeafDamaged {
		t.Fatalf("damaged key: reason %q", r.Reason)
	}
	if r := ensure(pki.LeafOptions{Force: true}, now, more); r.Reason != pki.LeafForced {
		t.Fatalf("forced: reason %q", r.Reason)
	}
	// Issued by another CA (the store was replaced).
	other, otherDir := serverCA(t)
	if _, err := other.EnsureLeaf(otherDir, "x.pem", "x-key.pem", ldapNames, pki.LeafOptions{}, now); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{"x.pem", "ldap-cert.pem"}, {"x-key.pem", "ldap-key.pem"}} {
		b, _ := os.ReadFile(filepath.Join(otherDir, f[0]))
		if err := os.WriteFile(filepath.Join(dir, f[1]), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := ensure(pki.LeafOptions{}, now, more); r.Reason != pki.LeafOtherCA {
		t.Fatalf("another CA's leaf: reason %q", r.Reason)
	}
}
