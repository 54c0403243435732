package wifiprofile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
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
func ReadCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}
