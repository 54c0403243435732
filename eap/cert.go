package eap

import (
	"crypto/tls"
	"fmt"

	"github.com/clinicgate/clinicgate/internal/selfcert"
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
	return selfcert.Ensure(dir, CertFile, KeyFile, selfcert.Names{})
}

// TLSConfig loads the EAP certificate and key.
func TLSConfig(certPath, keyPath string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("EAP certificate %s / key %s: %w", certPath, keyPath, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}
