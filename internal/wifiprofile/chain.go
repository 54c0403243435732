package wifiprofile

import (
	"crypto/x509"
	"fmt"

	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// Chain reads the EAP server's certificate file and returns the server
// certificate and the CA a device must trust: the certificate itself when
// it is self-signed (the appliance's own), else the CA in caFile when
// given, else the last CA certificate in the file. ca is nil when none of
// these holds it, and err says why.
func Chain(certFile, caFile string) (server, ca *x509.Certificate, err error) {
	certs, err := ReadCerts(certFile)
	if err != nil {
		return nil, nil, err
	}
	server = certs[0]
	switch {
	case caFile != "":
		cas, err := ReadCerts(caFile)
		if err != nil {
			return server, nil, err
		}
		ca = cas[0]
	case server.CheckSignatureFrom(server) == nil:
		return server, server, nil
	default:
		for _, c := range certs[1:] {
			if c.IsCA {
				ca = c
			}
		}
	}
	if ca == nil {
		return server, nil, fmt.Errorf("%s is issued by %q, which the file does not hold: give that CA", certFile, server.Issuer.CommonName)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return server, nil, fmt.Errorf("%s does not chain to the CA %q: %v", certFile, ca.Subject.CommonName, err)
	}
	return server, ca, nil
}

// ReadCerts reads every certificate of a PEM file, in order.
func ReadCerts(path string) ([]*x509.Certificate, error) { return selfcert.ReadCerts(path) }
