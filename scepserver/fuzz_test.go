package scepserver_test

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/smallstep/scep"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// FuzzPKIOperation feeds PKIOperation bodies to the door: whatever the
// bytes, it answers a CertRep or a 4xx, never panics, and issues nothing
// (the seeds are a real request with a wrong challenge, one spoilt, and
// PKCS#7 that is not SCEP).
func FuzzPKIOperation(f *testing.F) {
	e := newEnv(f)
	d := newDevice(f, 2048)
	f.Add(e.pkcsReq(f, d, "fuzz", "wrong-challenge", nil))
	f.Add(e.pkcsReq(f, d, "fuzz", e.challenge(f, admin.SCEPChallengeRequest{}), func(b []byte) []byte { b[len(b)/2] ^= 1; return b }))
	deg, _ := scep.DegenerateCertificates([]*x509.Certificate{e.ca.Cert, e.ca.RACert})
	f.Add(deg)
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80})
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/scep?operation=PKIOperation", bytes.NewReader(body)))
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			rep, err := scep.ParsePKIMessage(w.Body.Bytes(), scep.WithCACerts([]*x509.Certificate{e.ca.RACert}))
			if err != nil || rep.PKIStatus != scep.FAILURE {
				t.Fatalf("a fuzzed request got a reply that is not a failure: %v", err)
			}
		}
		cs, err := e.core.Admin.IssuedCerts(t.Context())
		if err != nil || len(cs) != 0 {
			t.Fatalf("%d certificates issued from fuzzed input (%v)", len(cs), err)
		}
	})
}
