package ldapproxy

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// Files of the appliance's own LDAP certificate in the data directory.
const (
	CertFile = "ldap-cert.pem"
	KeyFile  = "ldap-key.pem"
)

// EnsureCertificate returns the paths of the appliance's LDAP certificate
// and key in dir, generating a self-signed ECDSA P-256 pair on first use
// (named for this host and its addresses), and the certificate's SHA-256
// fingerprint for the EHR's trust settings. renewed says a pair that no
// longer loaded was made again: the EHR must be told to trust the new one.
func EnsureCertificate(dir string) (certPath, keyPath, fingerprint string, renewed bool, err error) {
	certPath, keyPath, renewed, err = selfcert.Ensure(dir, CertFile, KeyFile, selfcert.Names{
		DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, LocalAddrs: true,
	})
	if err != nil {
		return "", "", "", false, err
	}
	fp, err := selfcert.Fingerprint(certPath)
	return certPath, keyPath, fp, renewed, err
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
