package eap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// EAP-TLS (RFC 5216; TLS 1.3: RFC 9190): the peer proves itself with a
// certificate, checked here against the site's trust anchors, its dates and
// the CRLs; the gate then maps it to a user and decides.

// certError is why a client certificate was refused; its reason goes to
// the audit.
type certError struct {
	reason appliance.Reason
	why    string
}

func (e *certError) Error() string { return "client certificate: " + e.why }

// verifyClientCert checks the peer's chain, the leaf first, and returns
// the leaf. It runs inside the TLS handshake, so a refusal sends the peer
// an alert.
func (s *Server) verifyClientCert(raw [][]byte) (*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, &certError{appliance.ReasonCertUntrusted, "none sent"}
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil, &certError{appliance.ReasonCertUntrusted, "unreadable: " + err.Error()}
	}
	inter := x509.NewCertPool()
	for _, b := range raw[1:] {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, &certError{appliance.ReasonCertUntrusted, "an unreadable certificate in the chain: " + err.Error()}
		}
		inter.AddCert(c)
	}
	now := s.Now()
	subject := sanitize(leaf.Subject.String())
	if now.Before(leaf.NotBefore) {
		return nil, &certError{appliance.ReasonCertExpired, fmt.Sprintf("%s is not valid before %s", subject, leaf.NotBefore.UTC().Format("2006-01-02 15:04"))}
	}
	if now.After(leaf.NotAfter) {
		return nil, &certError{appliance.ReasonCertExpired, fmt.Sprintf("%s expired on %s", subject, leaf.NotAfter.UTC().Format("2006-01-02 15:04"))}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: s.ClientCAs, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, &certError{appliance.ReasonCertExpired, subject + ": a certificate of its chain is expired or not yet valid"}
		}
		return nil, &certError{appliance.ReasonCertUntrusted, subject + ": " + err.Error()}
	}
	if s.CRLs != nil {
		crls, err := s.CRLs()
		if err != nil {
			// Revocation cannot be checked: fail closed.
			return nil, &certError{appliance.ReasonInternal, "the CRL could not be read: " + err.Error()}
		}
		for _, chain := range chains {
			if c := revoked(chain, crls); c != nil {
				return nil, &certError{appliance.ReasonCertRevoked, fmt.Sprintf("%s (serial %x) is revoked by its issuer %s", sanitize(c.Subject.String()), c.SerialNumber, sanitize(c.Issuer.String()))}
			}
		}
	}
	return leaf, nil
}

// revoked returns the first certificate of a verified chain (root left
// out) that a CRL of its issuer lists. A CRL counts only when its
// signature checks against that issuer.
func revoked(chain []*x509.Certificate, crls []*x509.RevocationList) *x509.Certificate {
	for i := 0; i+1 < len(chain); i++ {
		c, issuer := chain[i], chain[i+1]
		for _, crl := range crls {
			if !bytes.Equal(crl.RawIssuer, c.RawIssuer) || crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			for _, e := range crl.RevokedCertificateEntries {
				if e.SerialNumber != nil && e.SerialNumber.Cmp(c.SerialNumber) == 0 {
					return c
				}
			}
		}
	}
	return nil
}

// isNoCertificate: the peer sent no certificate where one is required.
func isNoCertificate(err error) bool {
	return strings.Contains(err.Error(), "didn't provide a certificate")
}

// oidUPN is the Microsoft User Principal Name otherName (SAN).
var oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

// certificate is the gate's view of a verified client certificate.
func certificate(c *x509.Certificate) *appliance.Certificate {
	return &appliance.Certificate{
		Fingerprint: selfcert.FingerprintDER(c.Raw),
		Serial:      fmt.Sprintf("%x", c.SerialNumber),
		Subject:     c.Subject.CommonName,
		Issuer:      c.Issuer.CommonName,
		UPNs:        upns(c),
		Emails:      c.EmailAddresses,
		NotAfter:    c.NotAfter,
	}
}

// upns reads the UPN otherNames of the subject alternative names
// (RFC 5280 §4.2.1.6), which crypto/x509 leaves unparsed.
func upns(c *x509.Certificate) []string {
	var out []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) != 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
			return nil
		}
		for d := seq.Bytes; len(d) > 0; {
			var name asn1.RawValue
			rest, err := asn1.Unmarshal(d, &name)
			if err != nil {
				return out
			}
			d = rest
			if name.Class != asn1.ClassContextSpecific || name.Tag != 0 || !name.IsCompound {
				continue // not an otherName
			}
			// otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
			var oid asn1.ObjectIdentifier
			vrest, err := asn1.Unmarshal(name.Bytes, &oid)
			if err != nil || !oid.Equal(oidUPN) {
				continue
			}
			var wrapped asn1.RawValue
			if _, err := asn1.Unmarshal(vrest, &wrapped); err != nil || wrapped.Class != asn1.ClassContextSpecific || wrapped.Tag != 0 {
				continue
			}
			var upn string
			if _, err := asn1.UnmarshalWithParams(wrapped.Bytes, &upn, "utf8"); err != nil {
				continue
			}
			out = append(out, upn)
		}
	}
	return out
}

// tlsDone asks the gate once the handshake is done. On its Accept, the
// last flight goes out (TLS 1.2: the Finished; TLS 1.3: the commitment
// message of RFC 9190 §2.1.1, one byte 0x00 of application data) and the
// peer's ACK gets EAP-Success; on a Reject, EAP-Failure at once.
func (s *Server) tlsDone(ctx context.Context, r Request, sess *session, id byte, out []byte, st *tls.ConnectionState) Reply {
	if len(st.PeerCertificates) == 0 {
		return s.refuseIn(ctx, r, sess, id, appliance.ReasonCertUntrusted, "EAP-TLS without a client certificate")
	}
	req := s.gateRequest(r, sess, appliance.MethodEAPTLS, sess.outer)
	req.Cert = certificate(st.PeerCertificates[0])
	d, err := s.Gate.Decide(ctx, req)
	if err != nil || d.Outcome != appliance.Accept {
		return s.end(sess, id, d, err)
	}
	sess.decision, sess.phase = d, phaseFinalAck
	if st.Version == tls.VersionTLS13 {
		rep, err := sess.write(id, out, []byte{0})
		if err != nil {
			return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "TLS: "+err.Error())
		}
		return rep
	}
	return sess.send(id, out)
}

// tlsStep: after the last flight, the peer's empty ACK ends it.
func (s *Server) tlsStep(ctx context.Context, r Request, sess *session, id byte, out []byte, app [][]byte) Reply {
	if sess.phase != phaseFinalAck || len(app) != 0 || len(out) != 0 {
		return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, "EAP-TLS: data from the peer after the handshake")
	}
	return s.end(sess, id, sess.decision, nil)
}
