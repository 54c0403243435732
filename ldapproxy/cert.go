package ldapproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
)

// Files of the appliance's own LDAP certificate in the data directory.
const (
	CertFile = "ldap-cert.pem"
	KeyFile  = "ldap-key.pem"
)

// EnsureCertificate returns the paths of the appliance's LDAP certificate
// and key in dir, generating a self-signed ECDSA P-256 pair on first use
// (named for this host and its addresses), and the certificate's SHA-256
// fingerprint for the EHR's trust settings.
//
// A generated pair that no longer loads (a power cut on a file system that
// lost it, a hand edit) is made again rather than leaving the appliance
// unable to start; renewed then says so, for the log: the EHR must be told
// to trust the new certificate.
func EnsureCertificate(dir string) (certPath, keyPath, fingerprint string, renewed bool, err error) {
	certPath, keyPath = filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, statErr := os.Stat(certPath)
	switch {
	case errors.Is(statErr, fs.ErrNotExist):
		err = generate(certPath, keyPath)
	case statErr != nil:
		err = statErr
	default:
		if _, lerr := tls.LoadX509KeyPair(certPath, keyPath); lerr != nil {
			renewed = true
			err = generate(certPath, keyPath)
		}
	}
	if err != nil {
		return "", "", "", false, err
	}
	fp, err := Fingerprint(certPath)
	return certPath, keyPath, fp, renewed, err
}

// Fingerprint is the SHA-256 of the first certificate in a PEM file.
func Fingerprint(certPath string) (string, error) {
	b, err := os.ReadFile(certPath)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", fmt.Errorf("%s holds no PEM certificate", certPath)
	}
	sum := sha256.Sum256(blk.Bytes)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":"), nil
}

func generate(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "clinicgate"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"clinicgate appliance"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{host, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// Self-signed: the certificate is its own CA, so an EHR can be
		// told to trust exactly this file.
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, n.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key first: a cut between the two leaves no certificate, which
	// the next start makes again with a new key.
	if err := atomicfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// TLSConfig loads a certificate and key for LDAPS and StartTLS: TLS 1.2
// or later only.
func TLSConfig(certPath, keyPath string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("LDAP TLS certificate %s / key %s: %w", certPath, keyPath, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}
