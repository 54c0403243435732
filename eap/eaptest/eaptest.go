// Package eaptest helps test the EAP server and what runs it: a small PKI
// (a CA, client certificates, CRLs, written as files a supplicant reads)
// and a Decider that checks TTLS passwords, MS-CHAPv2 responses and client
// certificates against a known user list, as the gate would.
//
// It is for tests only: its keys are made on the fly and its decider is no
// gate (no policy, no audit).
package eaptest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius/rfc2759"

	"github.com/clinicgate/clinicgate/appliance"
)

// CA is a certificate authority for client certificates.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
	// File is the CA certificate in PEM.
	File   string
	serial int64
}

// NewCA makes a CA named name, its files in a test directory.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name, Organization: []string{"clinicgate test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, key: key, dir: t.TempDir(), serial: 100}
	ca.File = writePEM(t, ca.dir, "ca.pem", "CERTIFICATE", der)
	return ca
}

// Pool is a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is an issued client certificate and its files.
type Leaf struct {
	Cert              *x509.Certificate
	CertFile, KeyFile string
}

// Issue makes a client certificate for cn, with the UPN and e-mail SANs
// given (empty: none), valid from notBefore to notAfter (zero: an hour ago
// to a day ahead).
func (ca *CA) Issue(t testing.TB, cn, upn, email string, notBefore, notAfter time.Time) Leaf {
	t.Helper()
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if email != "" {
		tmpl.EmailAddresses = []string{email}
	}
	if upn != "" {
		tmpl.ExtraExtensions = []pkix.Extension{sanUPN(t, upn, email)}
		tmpl.EmailAddresses = nil // in the extension above
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := strings.ReplaceAll(cn, " ", "_") + "-" + cert.SerialNumber.String()
	return Leaf{
		Cert:     cert,
		CertFile: writePEM(t, ca.dir, base+".pem", "CERTIFICATE", der),
		KeyFile:  writePEM(t, ca.dir, base+"-key.pem", "PRIVATE KEY", pk),
	}
}

// sanUPN is a subject alternative name extension with a UPN otherName
// (1.3.6.1.4.1.311.20.2.3) and, when given, an rfc822Name.
func sanUPN(t testing.TB, upn, email string) pkix.Extension {
	t.Helper()
	utf8, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	value, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8})
	if err != nil {
		t.Fatal(err)
	}
	other, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, value...)})
	if err != nil {
		t.Fatal(err)
	}
	names := other
	if email != "" {
		e, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(email)})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e...)
	}
	seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: names})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: seq}
}

// CRL is a revocation list of the CA naming certs, and its DER file.
func (ca *CA) CRL(t testing.TB, certs ...*x509.Certificate) (*x509.RevocationList, string) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(time.Now().UnixNano()), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(ca.dir, "crl-"+crl.Number.String()+".der")
	if err := os.WriteFile(f, der, 0o600); err != nil {
		t.Fatal(err)
	}
	return crl, f
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Decider stands in for the gate: it accepts a TTLS password, an MS-CHAPv2
// response computed with the password (RFC 2759), or a client certificate
// whose subject CN or UPN names a user of Users. Anything with Invalid set
// is refused with that reason. It records every request.
type Decider struct {
	Users map[string]string // name → password

	mu   sync.Mutex
	reqs []appliance.Request
}

// Decide answers as described on Decider.
func (d *Decider) Decide(_ context.Context, req appliance.Request) (appliance.Decision, error) {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	d.mu.Unlock()
	reject := appliance.Decision{Outcome: appliance.Reject, Reason: appliance.ReasonBadPassword, Message: appliance.MsgDenied}
	if req.Invalid != "" {
		reject.Reason = req.Invalid
		return reject, nil
	}
	accept := appliance.Decision{Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: req.User}
	switch req.Method {
	case appliance.MethodTTLSPAP:
		if pw, ok := d.Users[req.User]; ok && pw == string(req.Password) {
			return accept, nil
		}
	case appliance.MethodPEAP:
		m := req.MSCHAP
		pw, ok := d.Users[req.User]
		if !ok || m == nil {
			return reject, nil
		}
		// RFC 2759 §8.2: the user name hashed is the one without its domain.
		name := m.Name
		if _, n, ok := strings.Cut(name, "\\"); ok {
			name = n
		}
		want, err := rfc2759.GenerateNTResponse(m.AuthenticatorChallenge[:], m.PeerChallenge[:], []byte(name), []byte(pw))
		if err != nil || string(want) != string(m.NTResponse[:]) {
			return reject, nil
		}
		auth, err := rfc2759.GenerateAuthenticatorResponse(m.AuthenticatorChallenge[:], m.PeerChallenge[:], m.NTResponse[:], []byte(name), []byte(pw))
		if err != nil {
			return reject, nil
		}
		accept.MSCHAP = &appliance.MSCHAPResult{AuthenticatorResponse: auth}
		return accept, nil
	case appliance.MethodEAPTLS:
		c := req.Cert
		if c == nil {
			return reject, nil
		}
		for _, n := range append([]string{c.Subject}, c.UPNs...) {
			if _, ok := d.Users[n]; ok {
				accept.User = n
				return accept, nil
			}
		}
		reject.Reason = appliance.ReasonUnknownUser
	}
	return reject, nil
}

// Requests are the requests asked so far.
func (d *Decider) Requests() []appliance.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

// Last is the last request asked, or fails the test.
func (d *Decider) Last(t testing.TB) appliance.Request {
	t.Helper()
	r := d.Requests()
	if len(r) == 0 {
		t.Fatal("the gate was never asked")
	}
	return r[len(r)-1]
}
