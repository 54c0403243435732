package eap

import (
	"crypto/tls"
	"fmt"

	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// Files of the appliance's own EAP server certificate in the data
// directory: a leaf of the appliance CA, which a Wi-Fi profile trusts,
// with the server name the profile checks (or, on an install from before
// the CA, a self-signed certificate that is its own CA).
const (
	CertFile = "eap-cert.pem"
	KeyFile  = "eap-key.pem"
)

// EnsureCertificate returns the paths of a self-signed EAP certificate
// and key in dir, generating an ECDSA P-256 pair named for this host on
// first use, or again when the pair no longer loads (renewed then says
// so). It is for tests and tools without a store: the daemon issues a
// leaf of the appliance CA instead (internal/daemon/servercert.go).
func EnsureCertificate(dir string) (certPath, keyPath string, renewed bool, err error) {
	return selfcert.Ensure(dir, CertFile, KeyFile, selfcert.Names{})
}

// TLSConfig loads the EAP certificate and key; a pair written over the
// files later is served from the next handshake on.
func TLSConfig(certPath, keyPath string) (*tls.Config, error) {
	return TLSConfigFrom(certPath, keyPath, nil)
}

// TLSConfigFrom is TLSConfig serving get's certificate when get is not
// nil (the daemon's own, which it renews itself).
func TLSConfigFrom(certPath, keyPath string, get func() *tls.Certificate) (*tls.Config, error) {
	c, err := selfcert.ServerTLS(certPath, keyPath, get)
	if err != nil {
		return nil, fmt.Errorf("EAP %w", err)
	}
	return c, nil
}
