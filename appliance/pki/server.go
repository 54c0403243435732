package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The server CA issues the appliance's own TLS server certificates (the
// LDAP door's, the EAP server's). The first wave made each of them a
// self-signed CA, valid for ten years, whose key sat in a file: with that
// file anyone could sign a certificate for any host name that every EHR
// told to trust it would accept (issue 16, finding 6). Now:
//
//   - the CA's key is sealed in the store like the other secrets;
//   - the CA is name-constrained to this host's names and to private and
//     loopback addresses, so even its key cannot make a certificate a
//     client accepts for a bank or a cloud service;
//   - the files hold leaves (CA:FALSE, serverAuth only, about a year),
//     renewed before they end without touching the clients, which trust
//     the CA (ServerCAFile).

// ServerCAFile is the server CA's certificate in the data directory: what
// an EHR or a Wi-Fi profile is told to trust.
const ServerCAFile = "appliance-ca.pem"

// Lifetimes of the server CA and its leaves, and how long before its end
// a leaf is renewed.
const (
	serverCAValidity = 20 * 365 * 24 * time.Hour
	LeafValidity     = 398 * 24 * time.Hour
	LeafRenewBefore  = 30 * 24 * time.Hour
)

// ServerCA is the CA of the appliance's TLS server certificates.
type ServerCA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// String keeps the key out of any log line.
func (c *ServerCA) String() string {
	return "ServerCA(" + c.Cert.Subject.CommonName + ", key REDACTED)"
}

// privateRanges are the addresses a server certificate may name: an
// appliance answers on the clinic's private network or on loopback.
var privateRanges = func() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10", "::1/128", "fc00::/7"} {
		_, n, _ := net.ParseCIDR(s)
		out = append(out, n)
	}
	return out
}()

// EnsureServerCA reads the server CA, making it first when the store has
// none, constrained to host (and its subdomains), localhost and the
// private address ranges, plus whichever of addrs lie outside those (an
// appliance given a public address). Two processes making it at once
// keep the one stored first.
func EnsureServerCA(ctx context.Context, st *store.Store, host string, addrs []net.IP, now time.Time) (*ServerCA, error) {
	ca, err := LoadServerCA(ctx, st)
	if !errors.Is(err, store.ErrNotFound) {
		return ca, err
	}
	rec, err := generateServerCA(rand.Reader, host, addrs, now)
	if err != nil {
		return nil, fmt.Errorf("server CA: %w", err)
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateServerCA(ctx, rec, now) })
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	return LoadServerCA(ctx, st)
}

// LoadServerCA reads the server CA; store.ErrNotFound before it is made.
func LoadServerCA(ctx context.Context, st *store.Store) (*ServerCA, error) {
	rec, err := st.ServerCA(ctx)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("server CA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(rec.Key)
	if err != nil {
		return nil, fmt.Errorf("server CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("server CA key: %T, want ECDSA", k)
	}
	return &ServerCA{Cert: cert, Key: key}, nil
}

func generateServerCA(rnd io.Reader, host string, addrs []net.IP, now time.Time) (store.ServerCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return store.ServerCA{}, err
	}
	serial, err := randomSerial(rnd)
	if err != nil {
		return store.ServerCA{}, err
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	dns := []string{"localhost"}
	if host != "" && host != "localhost" {
		dns = append(dns, host)
		if !strings.Contains(host, ".") {
			dns = append(dns, host+".local") // mDNS, as a Mac names it
		}
	}
	ips := slices.Clone(privateRanges)
	for _, a := range addrs {
		if !inRanges(a, ips) {
			bits := 8 * len(a.To16())
			if a.To4() != nil {
				a, bits = a.To4(), 32
			}
			ips = append(ips, &net.IPNet{IP: a, Mask: net.CIDRMask(bits, bits)})
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "clinicgate appliance CA (" + host + ")", Organization: []string{"clinicgate"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(serverCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
		// Critical, so a client that cannot read them refuses the chain
		// instead of ignoring the limit (RFC 5280 4.2.1.10).
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         dns,
		PermittedIPRanges:           ips,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return store.ServerCA{}, err
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return store.ServerCA{}, err
	}
	return store.ServerCA{Cert: der, Key: k}, nil
}

func inRanges(ip net.IP, r []*net.IPNet) bool {
	for _, n := range r {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Pool is a pool holding the server CA.
func (c *ServerCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// PEM is the CA's certificate, PEM.
func (c *ServerCA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// WriteFile writes the CA's certificate to ServerCAFile in dir (0644: it
// is public), unless it already holds it.
func (c *ServerCA) WriteFile(dir string) (string, error) {
	path := filepath.Join(dir, ServerCAFile)
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, c.PEM()) {
		return path, nil
	}
	return path, atomicfile.Write(path, c.PEM(), 0o644)
}

// LeafNames are what a server certificate names.
type LeafNames struct {
	CommonName string
	DNS        []string
	IPs        []net.IP
}

// Why a leaf was (re)issued; "" when the one on disk was kept.
const (
	LeafNew      = "new"      // there was none
	LeafDamaged  = "damaged"  // the pair no longer loads
	LeafMigrated = "migrated" // it was the first wave's self-signed CA
	LeafOtherCA  = "other_ca" // not issued by this CA
	LeafExpiring = "expiring" // less than LeafRenewBefore left
	LeafRenamed  = "names"    // it lacks a name this host now has
	LeafForced   = "renewed"  // the operator asked for a new one
)

// LeafOptions tune EnsureLeaf.
type LeafOptions struct {
	// KeepSelfSigned keeps a first-wave self-signed certificate instead
	// of replacing it (the EAP server's: every Wi-Fi profile pins it, so
	// it is replaced only when the operator chooses; docs/security.md).
	KeepSelfSigned bool
	// Force issues a new leaf whatever the old one is.
	Force bool
}

// LeafResult says what EnsureLeaf did.
type LeafResult struct {
	CertPath, KeyPath string
	// Reason is why a new leaf was issued ("" when the old one was kept).
	Reason string
	// SelfSigned is set when a kept certificate is a self-signed one
	// (LeafOptions.KeepSelfSigned).
	SelfSigned bool
	// Leaf is the certificate now in CertPath.
	Leaf *x509.Certificate
}

// EnsureLeaf keeps certFile/keyFile in dir a leaf of c naming n, issuing a
// new one when there is none, when it no longer loads, when it is a
// self-signed CA (a first-wave install: migrated), when c did not issue
// it, when it ends within LeafRenewBefore, or when it lacks one of n's
// names. The file holds the leaf and then the CA, so a client given the
// file as its trust anchors still finds the CA in it.
func (c *ServerCA) EnsureLeaf(dir, certFile, keyFile string, n LeafNames, o LeafOptions, now time.Time) (LeafResult, error) {
	r := LeafResult{CertPath: filepath.Join(dir, certFile), KeyPath: filepath.Join(dir, keyFile)}
	reason := ""
	switch pair, err := tls.LoadX509KeyPair(r.CertPath, r.KeyPath); {
	case o.Force:
		reason = LeafForced
	case errors.Is(err, os.ErrNotExist):
		if _, serr := os.Stat(r.CertPath); serr == nil {
			reason = LeafDamaged // a certificate without its key
		} else {
			reason = LeafNew
		}
	case err != nil:
		reason = LeafDamaged
	default:
		leaf := pair.Leaf
		switch {
		case leaf.IsCA || bytes.Equal(leaf.RawIssuer, leaf.RawSubject):
			if o.KeepSelfSigned {
				r.SelfSigned, r.Leaf = true, leaf
				return r, nil
			}
			reason = LeafMigrated
		case leaf.CheckSignatureFrom(c.Cert) != nil:
			reason = LeafOtherCA
		case leaf.NotAfter.Sub(now) < LeafRenewBefore:
			reason = LeafExpiring
		case !c.covers(leaf, n):
			reason = LeafRenamed
		default:
			r.Leaf = leaf
			return r, nil
		}
	}
	leaf, certPEM, keyPEM, err := c.issueLeaf(rand.Reader, n, now)
	if err != nil {
		return r, err
	}
	// The key first: a cut between the two leaves a pair that does not
	// load, which the next start issues again.
	if err := atomicfile.Write(r.KeyPath, keyPEM, 0o600); err != nil {
		return r, err
	}
	if err := atomicfile.Write(r.CertPath, certPEM, 0o644); err != nil {
		return r, err
	}
	r.Reason, r.Leaf = reason, leaf
	return r, nil
}

// issueLeaf makes a new key and a serverAuth leaf for it naming what n
// names that the CA's constraints permit (a name outside them would make
// every client refuse the whole certificate).
func (c *ServerCA) issueLeaf(rnd io.Reader, n LeafNames, now time.Time) (*x509.Certificate, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, nil, nil, err
	}
	notAfter := now.Add(LeafValidity)
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: n.CommonName, Organization: []string{"clinicgate appliance"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	for _, d := range n.DNS {
		if d = strings.ToLower(d); c.permitsDNS(d) && !slices.Contains(tmpl.DNSNames, d) {
			tmpl.DNSNames = append(tmpl.DNSNames, d)
		}
	}
	for _, ip := range n.IPs {
		if inRanges(ip, c.Cert.PermittedIPRanges) && !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rnd, tmpl, c.Cert, &key.PublicKey, c.Key)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.PEM()...)
	return leaf, certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// permitsDNS applies RFC 5280's rule for a dNSName constraint: the name
// itself or any name under it.
func (c *ServerCA) permitsDNS(name string) bool {
	name = strings.ToLower(name)
	for _, p := range c.Cert.PermittedDNSDomains {
		if name == p || strings.HasSuffix(name, "."+p) {
			return true
		}
	}
	return false
}

// covers says whether leaf names everything n names that the CA permits
// (a name it does not permit can never be in a leaf).
func (c *ServerCA) covers(leaf *x509.Certificate, n LeafNames) bool {
	for _, d := range n.DNS {
		if c.permitsDNS(d) && !slices.Contains(leaf.DNSNames, strings.ToLower(d)) {
			return false
		}
	}
	for _, ip := range n.IPs {
		if inRanges(ip, c.Cert.PermittedIPRanges) && !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}
