package upstreamtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LDAPUser is one account in a test directory.
type LDAPUser struct {
	UID, Password, CN string
	Groups            []string
}

// Slapd is a running OpenLDAP server seeded with users and groups under
// Base, with people in ou=people and groups (groupOfNames) in ou=groups.
type Slapd struct {
	URL, LDAPS       string // ldap://127.0.0.1:port, ldaps://127.0.0.1:port
	Base             string
	AdminDN, AdminPW string
	CAFile           string // PEM of the CA that signed the server certificate
	WrongCAFile      string // another CA, for refusal tests
	ClientCert       string // a client certificate signed by the CA, and its key
	ClientKey        string
	Dir              string
	cmd              *exec.Cmd
	done             chan struct{}
}

// SlapdOptions configure StartSlapd.
type SlapdOptions struct {
	Users []LDAPUser
	// CertNames are the names in the server certificate (default
	// 127.0.0.1 and localhost).
	CertNames []string
	// RequireClientCert makes slapd demand a client certificate signed by
	// its CA (as Google Secure LDAP does); ClientCert/ClientKey hold one.
	RequireClientCert bool
}

// StartSlapd runs slapd with a private slapd.conf and an mdb database.
func StartSlapd(t testing.TB, o SlapdOptions) *Slapd {
	t.Helper()
	Need(t, "slapd", "slapadd")
	dir := t.TempDir()
	s := &Slapd{Base: "dc=clinic,dc=test", AdminDN: "cn=admin,dc=clinic,dc=test", AdminPW: "admin-secret", Dir: dir, done: make(chan struct{})}
	if len(o.CertNames) == 0 {
		o.CertNames = []string{"127.0.0.1", "localhost"}
	}
	s.CAFile, _ = writeCerts(t, dir, "ca", o.CertNames)
	s.ClientCert, s.ClientKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	clientTLS := ""
	if o.RequireClientCert {
		clientTLS = "TLSCACertificateFile " + s.CAFile + "\nTLSVerifyClient demand\n"
	}
	s.WrongCAFile, _ = writeCerts(t, filepath.Join(dir, "other"), "ca", nil)

	db := filepath.Join(dir, "db")
	os.MkdirAll(db, 0o700)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
TLSProtocolMin 3.3
%[6]ssizelimit 500
database mdb
maxsize 104857600
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[5]s
access to attrs=userPassword by anonymous auth by self write by * none
access to * by * read
`, dir, s.Base, s.AdminDN, s.AdminPW, db, clientTLS)
	write(t, filepath.Join(dir, "slapd.conf"), conf)

	var ldif strings.Builder
	fmt.Fprintf(&ldif, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Test Clinic\ndc: clinic\n\n", s.Base)
	fmt.Fprintf(&ldif, "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n", s.Base)
	fmt.Fprintf(&ldif, "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n", s.Base)
	fmt.Fprintf(&ldif, "dn: cn=ehr-service,%s\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: ehr-service\nsn: service\nuserPassword: %s\n\n", s.Base, ssha("service-secret"))
	groups := map[string][]string{}
	var order []string
	for i, u := range o.Users {
		cn := u.CN
		if cn == "" {
			cn = u.UID
		}
		dn := fmt.Sprintf("uid=%s,ou=people,%s", u.UID, s.Base)
		fmt.Fprintf(&ldif, "dn: %s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: %s\ncn: %s\nsn: %s\nmail: %s@clinic.test\nuidNumber: %d\ngidNumber: 100\nhomeDirectory: /home/%s\nuserPassword: %s\n\n",
			dn, u.UID, cn, cn, u.UID, 10000+i, u.UID, ssha(u.Password))
		for _, g := range u.Groups {
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], dn)
		}
	}
	for _, g := range order {
		fmt.Fprintf(&ldif, "dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n", g, s.Base, g)
		for _, m := range groups[g] {
			fmt.Fprintf(&ldif, "member: %s\n", m)
		}
		ldif.WriteString("\n")
	}
	write(t, filepath.Join(dir, "seed.ldif"), ldif.String())
	if out, err := exec.Command(sbin("slapadd"), "-f", filepath.Join(dir, "slapd.conf"), "-l", filepath.Join(dir, "seed.ldif")).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	slaptest(t, filepath.Join(dir, "slapd.conf"))
	var lastLog string
	for try := 0; try < 5; try++ {
		p1 := peerPort()
		p2 := p1 + 1
		s.URL, s.LDAPS = fmt.Sprintf("ldap://127.0.0.1:%d", p1), fmt.Sprintf("ldaps://127.0.0.1:%d", p2)
		s.cmd = exec.Command(sbin("slapd"), "-f", filepath.Join(dir, "slapd.conf"), "-h", s.URL+"/ "+s.LDAPS+"/", "-d", "0")
		var log LockedBuffer
		s.cmd.Stdout, s.cmd.Stderr = &log, &log
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start slapd: %v", err)
		}
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		s.done = done
		if waitTCP(fmt.Sprintf("127.0.0.1:%d", p1), done) && waitTCP(fmt.Sprintf("127.0.0.1:%d", p2), done) {
			t.Cleanup(s.Stop)
			return s
		}
		exited := isDone(done)
		s.Stop()
		lastLog = log.String()
		if !exited {
			t.Fatalf("slapd did not answer within 20 s; its log:\n%s", lastLines(lastLog, 30))
		}
		// slaptest accepted the config, so an exit is a port taken
		// meanwhile (slapd says nothing at -d 0): try another.
	}
	t.Fatalf("slapd did not start: it exited 5 times (its ports taken?); its log:\n%s", lastLines(lastLog, 30))
	return nil
}

func waitTCP(addr string, done chan struct{}) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Stop ends slapd (safe to call twice).
func (s *Slapd) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

// BackLDAP is a second slapd whose back-ldap database forwards everything
// under the upstream's base to it: slapd's own LDAP proxy, for comparing
// clinicgate's proxy mode with.
type BackLDAP struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartBackLDAP runs slapd with back-ldap in front of up.
func StartBackLDAP(t testing.TB, up *Slapd) *BackLDAP {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_ldap
database ldap
suffix "%[2]s"
uri "%[3]s"
`, dir, up.Base, up.URL)
	write(t, filepath.Join(dir, "slapd.conf"), conf)
	slaptest(t, filepath.Join(dir, "slapd.conf"))
	var lastLog string
	for try := 0; try < 5; try++ {
		p := peerPort()
		b := &BackLDAP{URL: fmt.Sprintf("ldap://127.0.0.1:%d", p), done: make(chan struct{})}
		b.cmd = exec.Command(sbin("slapd"), "-f", filepath.Join(dir, "slapd.conf"), "-h", b.URL+"/", "-d", "0")
		var log LockedBuffer
		b.cmd.Stdout, b.cmd.Stderr = &log, &log
		if err := b.cmd.Start(); err != nil {
			t.Fatalf("start slapd (back-ldap): %v", err)
		}
		go func() { b.cmd.Wait(); close(b.done) }()
		if waitTCP(fmt.Sprintf("127.0.0.1:%d", p), b.done) {
			t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done })
			return b
		}
		exited := isDone(b.done)
		b.cmd.Process.Kill()
		<-b.done
		lastLog = log.String()
		if !exited {
			t.Fatalf("slapd with back-ldap did not answer within 20 s; its log:\n%s", lastLines(lastLog, 30))
		}
	}
	t.Fatalf("slapd with back-ldap did not start: it exited 5 times (its port taken?); its log:\n%s", lastLines(lastLog, 30))
	return nil
}

// slaptest fails the test at once when slapd would refuse its config (a
// schema or module missing): slapd itself says nothing at -d 0, and a
// start that fails for that reason would fail on every port.
func slaptest(t testing.TB, conf string) {
	t.Helper()
	if out, err := exec.Command(sbin("slaptest"), "-u", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("slapd refuses its config (install what is missing with 'make test-deps'): %v\n%s", err, lastLines(string(out), 30))
	}
}

func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// ssha is OpenLDAP's {SSHA}: SHA-1 over password and salt, then the salt.
func ssha(pw string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// writeCerts makes a CA and, when names are given, a server certificate
// for them signed by it, in dir (ca.pem, server.pem, server.key). It
// returns the CA file.
func writeCerts(t testing.TB, dir, _ string, names []string) (string, string) {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clinicgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	write(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	if len(names) == 0 {
		return caFile, ""
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	write(t, filepath.Join(dir, "server.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, filepath.Join(dir, "server.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	// And a client certificate from the same CA.
	ckey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "clinicgate appliance"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cder, err := x509.CreateCertificate(rand.Reader, ctmpl, caCert, &ckey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ckb, _ := x509.MarshalECPrivateKey(ckey)
	write(t, filepath.Join(dir, "client.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cder})))
	write(t, filepath.Join(dir, "client.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ckb})))
	return caFile, filepath.Join(dir, "server.pem")
}

// Pid is slapd's process id (for a benchmark's memory and CPU figures).
func (s *Slapd) Pid() int { return s.cmd.Process.Pid }

// Pid is the back-ldap slapd's process id.
func (b *BackLDAP) Pid() int { return b.cmd.Process.Pid }
