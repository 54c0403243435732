package eap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
)

// Files of the appliance's own EAP server certificate in the data
// directory. The certificate is self-signed: it is the CA a Wi-Fi profile
// trusts, and its subject name is the server name the profile checks.
const (
	CertFile = "eap-cert.pem"
	KeyFile  = "eap-key.pem"
)

// EnsureCertificate returns the paths of the EAP certificate and key in
// dir, generating a self-signed ECDSA P-256 pair named for this host on
// first use, or again when the pair no longer loads (renewed then says so:
// every Wi-Fi profile must be given the new CA).
func EnsureCertificate(dir string) (certPath, keyPath string, renewed bool, err error) {
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
	return certPath, keyPath, renewed, err
}

// TLSConfig loads the EAP certificate and key.
func TLSConfig(certPath, keyPath string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("EAP certificate %s / key %s: %w", certPath, keyPath, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
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
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{host},
		// Self-signed: the certificate is its own CA, which is what a
		// supplicant is given to trust.
		IsCA:                  true,
		BasicConstraintsValid: true,
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
