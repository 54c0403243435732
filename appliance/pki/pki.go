// Package pki is the appliance's device CA: an ECDSA P-256 CA made on
// first use and kept in the store (its key sealed like the other secrets),
// the RSA registration authority SCEP needs, the issuing of device
// certificates against one-time challenges, and the CRL of the ones
// revoked.
//
// It speaks no protocol: the SCEP door (scepserver) decodes the wire and
// hands it a CSR and a challenge. It must never issue without consuming a
// valid challenge, never issue a CA certificate, and never hold a key
// outside the store but in memory.
package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// CA is the device CA with its keys, and the SCEP registration authority
// (RA) it certified: SCEP encrypts each request to an RSA key, which an
// ECDSA CA does not have.
type CA struct {
	Cert   *x509.Certificate
	Key    *ecdsa.PrivateKey
	RACert *x509.Certificate
	RAKey  *rsa.PrivateKey
}

// String keeps the keys out of any log line.
func (c *CA) String() string { return "DeviceCA(" + c.Cert.Subject.CommonName + ", keys REDACTED)" }

// Lifetimes of the CA and its RA.
const (
	caValidity = 20 * 365 * 24 * time.Hour
	raValidity = 10 * 365 * 24 * time.Hour
)

// oidCertRequestAgent is the "Certificate Request Agent" extended key
// usage SCEP RAs carry: it also keeps the RA certificate from passing as
// a device's EAP-TLS certificate, which needs clientAuth.
var oidCertRequestAgent = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 1}

// Load reads the device CA from the store; store.ErrNotFound before it is
// made.
func Load(ctx context.Context, st *store.Store) (*CA, error) {
	rec, err := st.DeviceCA(ctx)
	if err != nil {
		return nil, err
	}
	return parse(rec)
}

// Ensure reads the device CA, making it first when the store has none.
// Two processes making it at once keep the one stored first.
func Ensure(ctx context.Context, st *store.Store, now time.Time) (*CA, error) {
	ca, err := Load(ctx, st)
	if !errors.Is(err, store.ErrNotFound) {
		return ca, err
	}
	rec, err := generate(rand.Reader, now)
	if err != nil {
		return nil, fmt.Errorf("device CA: %w", err)
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateDeviceCA(ctx, rec, now) })
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	return Load(ctx, st)
}

func parse(rec store.DeviceCA) (*CA, error) {
	var ca CA
	var err error
	if ca.Cert, err = x509.ParseCertificate(rec.Cert); err != nil {
		return nil, fmt.Errorf("device CA certificate: %w", err)
	}
	if ca.RACert, err = x509.ParseCertificate(rec.RACert); err != nil {
		return nil, fmt.Errorf("device CA's SCEP RA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(rec.Key)
	if err != nil {
		return nil, fmt.Errorf("device CA key: %w", err)
	}
	var ok bool
	if ca.Key, ok = k.(*ecdsa.PrivateKey); !ok {
		return nil, fmt.Errorf("device CA key: %T, want ECDSA", k)
	}
	if k, err = x509.ParsePKCS8PrivateKey(rec.RAKey); err != nil {
		return nil, fmt.Errorf("device CA's SCEP RA key: %w", err)
	}
	if ca.RAKey, ok = k.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("device CA's SCEP RA key: %T, want RSA", k)
	}
	return &ca, nil
}

func generate(rnd io.Reader, now time.Time) (store.DeviceCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return store.DeviceCA{}, err
	}
	serial, err := randomSerial(rnd)
	if err != nil {
		return store.DeviceCA{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "clinicgate device CA", Organization: []string{"clinicgate"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	caDER, err := x509.CreateCertificate(rnd, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return store.DeviceCA{}, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	raKey, err := rsa.GenerateKey(rnd, 2048)
	if err != nil {
		return store.DeviceCA{}, err
	}
	if serial, err = randomSerial(rnd); err != nil {
		return store.DeviceCA{}, err
	}
	raTmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "clinicgate SCEP RA", Organization: []string{"clinicgate"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(raValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidCertRequestAgent},
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(&raKey.PublicKey),
	}
	raDER, err := x509.CreateCertificate(rnd, raTmpl, caCert, &raKey.PublicKey, key)
	if err != nil {
		return store.DeviceCA{}, err
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return store.DeviceCA{}, err
	}
	rk, err := x509.MarshalPKCS8PrivateKey(raKey)
	if err != nil {
		return store.DeviceCA{}, err
	}
	return store.DeviceCA{Cert: caDER, Key: k, RACert: raDER, RAKey: rk}, nil
}

// randomSerial is a random positive 128-bit serial number.
func randomSerial(rnd io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, err
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// keyID is RFC 5280's method 1: the SHA-1 of the public key bits.
func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil
	}
	h := sha1.Sum(spki.PublicKey.Bytes)
	return h[:]
}

// Pool is a pool holding the device CA, for EAP-TLS's trust anchors.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// Key sizes a device key may have.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// ErrKey is a device key the CA does not certify.
var ErrKey = errors.New("unsupported key")

// CheckKey accepts RSA keys of 2048 to 8192 bits and ECDSA keys on P-256
// or P-384, and refuses anything else, saying what it got.
func CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("%w: an RSA key of %d bits (want %d to %d)", ErrKey, n, MinRSABits, MaxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return fmt.Errorf("%w: an RSA key with public exponent %d", ErrKey, k.E)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			return nil
		}
		return fmt.Errorf("%w: an ECDSA key on curve %s (want P-256 or P-384)", ErrKey, k.Curve.Params().Name)
	default:
		return fmt.Errorf("%w: a key of type %T (want RSA of at least %d bits, or ECDSA P-256/P-384)", ErrKey, pub, MinRSABits)
	}
}

// IssueOptions are what a device certificate says besides its key.
type IssueOptions struct {
	Name     string        // the subject's common name: the device's name
	Validity time.Duration // from now; capped at the CA's own end
	CRLURL   string        // the CRL distribution point, if any
}

// Issue signs a clientAuth certificate for the key of csr, whose
// signature and key the caller has checked. Nothing of the CSR but its
// key is copied: the names come from the appliance.
func (c *CA) Issue(rnd io.Reader, csr *x509.CertificateRequest, o IssueOptions, now time.Time) (*x509.Certificate, error) {
	if err := CheckKey(csr.PublicKey); err != nil {
		return nil, err
	}
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(o.Validity)
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	ku := x509.KeyUsageDigitalSignature
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.Name},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(csr.PublicKey),
	}
	if o.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{o.CRLURL}
	}
	der, err := x509.CreateCertificate(rnd, tmpl, c.Cert, csr.PublicKey, c.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// CRLValidity is how long a published CRL stays current: short, so a
// verifier that caches it learns of a revocation within a day.
const CRLValidity = 24 * time.Hour

// CRL signs a revocation list of the given certificates.
func (c *CA) CRL(rnd io.Reader, number int64, revoked []store.IssuedCert, now time.Time) ([]byte, error) {
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(CRLValidity),
	}
	for _, r := range revoked {
		sn, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("CRL: serial %q is not hex", r.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: r.RevokedAt})
	}
	return x509.CreateRevocationList(rnd, tmpl, c.Cert, c.Key)
}
