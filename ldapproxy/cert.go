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

// EnsureCertificate returns the paths of a self-signed LDAP certificate
// and key in dir, generating an ECDSA P-256 pair on first use (named for
// this host and its addresses), and its SHA-256 fingerprint. It is for
// tests and tools without a store: the daemon serves a leaf of the
// appliance CA instead (internal/daemon/servercert.go).
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
// or later only. A pair written over the files later (a renewal) is
// served from the next handshake on.
func TLSConfig(certPath, keyPath string) (*tls.Config, error) {
	return TLSConfigFrom(certPath, keyPath, nil)
}

// TLSConfigFrom is TLSConfig serving get's certificate when get is not
// nil (the daemon's own, which it renews itself).
func TLSConfigFrom(certPath, keyPath string, get func() *tls.Certificate) (*tls.Config, error) {
	c, err := selfcert.ServerTLS(certPath, keyPath, get)
	if err != nil {
		return nil, fmt.Errorf("LDAP TLS %w", err)
	}
	return c, nil
}
