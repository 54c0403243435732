package scepserver_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/scepserver"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	core    *appliancetest.Core
	ca      *pki.CA
	clock   *clock
	url     string
	http    *http.Client
	handler http.Handler
	metrics *prometheus.Registry
}

// counted is clinicgate_scep_requests_total for one operation and result.
func (e *env) counted(t *testing.T, op, result string) float64 {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "clinicgate_scep_requests_total" && labels["operation"] == op && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

const crlURL = "https://gate.test:9443/pki/device-ca.crl"

func newEnv(t testing.TB) *env {
	t.Helper()
	clk := &clock{t: time.Now()}
	core := appliancetest.New(t, appliancetest.Options{Now: clk.Now})
	ca, err := core.Admin.DeviceCA(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	enr := &pki.Enroller{Store: core.Admin.Store, Audit: core.Audit, CA: ca, CRLURL: crlURL, Now: clk.Now, Log: log}
	reg := prometheus.NewRegistry()
	srv, err := scepserver.New(scepserver.Config{CA: ca, Enroller: enr, CRL: &pki.CRLCache{Store: core.Admin.Store, CA: ca, Now: clk.Now}, Logger: log, MaxBody: 16 << 10,
		Metrics: scepserver.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{core: core, ca: ca, clock: clk, url: ts.URL + scepserver.PathCGI, http: ts.Client(), handler: srv.Handler(), metrics: reg}
}

func (e *env) challenge(t testing.TB, r admin.SCEPChallengeRequest) string {
	t.Helper()
	ch, err := e.core.Admin.CreateSCEPChallenge(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Challenge
}

// device is a SCEP client's key and its self-signed signer certificate.
type device struct {
	key    crypto.Signer
	signer *x509.Certificate
}

func newDevice(t testing.TB, bits int) device {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return signerFor(t, k)
}

func signerFor(t testing.TB, k crypto.Signer) device {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scep client"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return device{key: k, signer: c}
}

// pkcsReq builds a PKCSReq for cn with challenge; spoil, when set,
// changes the CSR's DER before it is enveloped.
func (e *env) pkcsReq(t testing.TB, d device, cn, challenge string, spoil func([]byte) []byte) []byte {
	t.Helper()
	der, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, ChallengePassword: challenge}, d.key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if spoil != nil {
		csr.Raw = spoil(bytes.Clone(csr.Raw))
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{MessageType: scep.PKCSReq, Recipients: []*x509.Certificate{e.ca.RACert}, SignerKey: d.key, SignerCert: d.signer})
	if err != nil {
		t.Fatal(err)
	}
	return msg.Raw
}

func (e *env) post(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	resp, err := e.http.Post(e.url+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// certRep reads the door's answer: the issued certificate, or the
// failInfo.
func (e *env) certRep(t *testing.T, d device, body []byte) (*x509.Certificate, scep.FailInfo) {
	t.Helper()
	rep, err := scep.ParsePKIMessage(body, scep.WithCACerts([]*x509.Certificate{e.ca.RACert}))
	if err != nil {
		t.Fatalf("the reply is not a CertRep signed by the RA: %v", err)
	}
	if rep.MessageType != scep.CertRep {
		t.Fatalf("got message type %s, want CertRep", rep.MessageType)
	}
	if rep.PKIStatus == scep.FAILURE {
		return nil, rep.FailInfo
	}
	if rep.PKIStatus != scep.SUCCESS {
		t.Fatalf("got pkiStatus %s", rep.PKIStatus)
	}
	if err := rep.DecryptPKIEnvelope(d.signer, d.key); err != nil {
		t.Fatal(err)
	}
	return rep.CertRepMessage.Certificate, ""
}

func (e *env) lastReason(t *testing.T) string {
	t.Helper()
	rows, err := e.core.LastAudit(t.Context(), 1)
	if err != nil || len(rows) == 0 {
		t.Fatalf("audit: %v %d", err, len(rows))
	}
	return rows[0].Reason
}

func (e *env) issued(t *testing.T) int {
	t.Helper()
	cs, err := e.core.Admin.IssuedCerts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

func TestGetCACapsAndCACert(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{scepserver.PathCGI, scepserver.PathSCEP} {
		u := strings.TrimSuffix(e.url, scepserver.PathCGI) + path
		resp, err := e.http.Get(u + "?operation=GetCACaps")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, c := range []string{"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard"} {
			if !strings.Contains(string(b), c+"\n") {
				t.Errorf("%s GetCACaps = %q, want %s", path, b, c)
			}
		}
		resp, err = e.http.Get(u + "?operation=GetCACert&message=x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-x509-ca-ra-cert" {
			t.Errorf("GetCACert content type %q", ct)
		}
		certs, err := scep.CACerts(b)
		if err != nil || len(certs) != 2 {
			t.Fatalf("GetCACert: %d certificates, %v; want the RA and the CA", len(certs), err)
		}
		if !certs[1].Equal(e.ca.Cert) || !certs[0].Equal(e.ca.RACert) {
			t.Errorf("GetCACert gave %q, %q; want the RA then the CA", certs[0].Subject, certs[1].Subject)
		}
	}
}

func TestEnrolIssuesADeviceCertificate(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Admin.AddUser(t.Context(), admin.NewUser{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	ch := e.challenge(t, admin.SCEPChallengeRequest{Device: "front-desk-laptop", User: "alice", MAC: "AA-BB-CC-DD-EE-01", Validity: 90 * 24 * time.Hour})
	d := newDevice(t, 2048)
	status, body := e.post(t, e.pkcsReq(t, d, "ignored-name", ch, nil))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	cert, fail := e.certRep(t, d, body)
	if cert == nil {
		t.Fatalf("refused with failInfo %s", fail)
	}
	if p7, err := pkcs7.Parse(body); err != nil || len(p7.Signers) != 1 || !p7.Signers[0].DigestAlgorithm.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
		t.Errorf("the CertRep is not signed with SHA-256: %v", err)
	}
	if cert.Subject.CommonName != "front-desk-laptop" {
		t.Errorf("CN %q, want the device's name", cert.Subject.CommonName)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.IsCA {
		t.Errorf("EKU %v, CA %v; want clientAuth only, not a CA", cert.ExtKeyUsage, cert.IsCA)
	}
	if n := cert.SerialNumber.BitLen(); n > 128 || n < 100 {
		t.Errorf("serial of %d bits, want a random 128-bit one", n)
	}
	if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != crlURL {
		t.Errorf("CRL distribution points %v, want %s", cert.CRLDistributionPoints, crlURL)
	}
	if got := cert.NotAfter.Sub(e.clock.Now()); got < 89*24*time.Hour || got > 91*24*time.Hour {
		t.Errorf("validity %s, want 90 days", got)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: e.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: e.clock.Now()}); err != nil {
		t.Errorf("the certificate does not chain to the device CA: %v", err)
	}
	if _, err := e.ca.RACert.Verify(x509.VerifyOptions{Roots: e.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the RA's certificate passes as a clientAuth certificate; EAP-TLS would accept it")
	}
	devs, err := e.core.Admin.Store.DevicesByCert(t.Context(), selfcert.FingerprintDER(cert.Raw), cert.SerialNumber.Text(16))
	if err != nil || len(devs) != 1 {
		t.Fatalf("inventory records of the certificate: %d, %v", len(devs), err)
	}
	if dv := devs[0]; dv.Source != "cert" || dv.Description != "front-desk-laptop" || dv.UserName != "alice" || dv.MAC != "aa:bb:cc:dd:ee:01" {
		t.Errorf("inventory record %+v", dv)
	}
	if id, err := e.core.Admin.Store.CertOwner(t.Context(), selfcert.FingerprintDER(cert.Raw)); err != nil || id == 0 {
		t.Errorf("the certificate is not registered to its owner for EAP-TLS: %v", err)
	}
	if r := e.lastReason(t); r != "scep_issued" {
		t.Errorf("audit reason %q, want scep_issued", r)
	}
	if n := e.counted(t, "PKIOperation", "issued"); n != 1 {
		t.Errorf("issued counted %v times, want 1", n)
	}
}

func TestEnrolAttachesToTheNamedInventoryRecord(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Admin.AddUser(t.Context(), admin.NewUser{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.Admin.AddDevice(t.Context(), "aa:bb:cc:00:00:02", "bob", "exam room pc"); err != nil {
		t.Fatal(err)
	}
	ch := e.challenge(t, admin.SCEPChallengeRequest{Device: "exam room pc"})
	d := newDevice(t, 2048)
	_, body := e.post(t, e.pkcsReq(t, d, "x", ch, nil))
	cert, fail := e.certRep(t, d, body)
	if cert == nil {
		t.Fatalf("refused: %s", fail)
	}
	devs, _ := e.core.Admin.Store.DevicesByCert(t.Context(), selfcert.FingerprintDER(cert.Raw), "")
	if len(devs) != 1 || devs[0].Source != "manual" || devs[0].MAC != "aa:bb:cc:00:00:02" {
		t.Fatalf("the certificate belongs to %+v, want the manual record of exam room pc", devs)
	}
}

// TestSCEPRefusesBadRequests: each bad request is refused with a failInfo
// (or an HTTP error when there is nothing to answer), audited, and
// nothing is issued.
func TestSCEPRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	d := newDevice(t, 2048)
	used := e.challenge(t, admin.SCEPChallengeRequest{})
	if _, body := e.post(t, e.pkcsReq(t, d, "first", used, nil)); true {
		if c, f := e.certRep(t, d, body); c == nil {
			t.Fatalf("the first use was refused: %s", f)
		}
	}
	expired := e.challenge(t, admin.SCEPChallengeRequest{TTL: time.Hour})
	fresh := e.challenge(t, admin.SCEPChallengeRequest{TTL: 48 * time.Hour})
	e.clock.Add(2 * time.Hour)
	before := e.issued(t)
	weak := newDevice(t, 1024)
	ecKey, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p224 := signerFor(t, ecKey)
	for _, tc := range []struct {
		name   string
		body   func() []byte
		status int
		fail   scep.FailInfo
		reason string
		dev    device
	}{
		{name: "wrong challenge", body: func() []byte { return e.pkcsReq(t, d, "dev", "not-a-challenge", nil) }, fail: scep.BadRequest, reason: "scep_bad_challenge", dev: d},
		{name: "no challenge", body: func() []byte { return e.pkcsReq(t, d, "dev", "", nil) }, fail: scep.BadRequest, reason: "scep_bad_challenge", dev: d},
		{name: "reused challenge", body: func() []byte { return e.pkcsReq(t, d, "dev", used, nil) }, fail: scep.BadRequest, reason: "scep_challenge_used", dev: d},
		{name: "expired challenge", body: func() []byte { return e.pkcsReq(t, d, "dev", expired, nil) }, fail: scep.BadRequest, reason: "scep_challenge_expired", dev: d},
		{name: "1024-bit RSA key", body: func() []byte { return e.pkcsReq(t, weak, "dev", fresh, nil) }, fail: scep.BadAlg, reason: "scep_bad_key", dev: weak},
		{name: "ECDSA key on P-224", body: func() []byte { return e.pkcsReq(t, p224, "dev", fresh, nil) }, fail: scep.BadAlg, reason: "scep_bad_key", dev: p224},
		{name: "CSR signature does not verify", body: func() []byte {
			return e.pkcsReq(t, d, "dev", fresh, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })
		}, fail: scep.BadMessageCheck, reason: "scep_bad_csr", dev: d},
		{name: "garbage PKCS#7", body: func() []byte { return []byte("\x30\x82\x01\x00garbage that is not PKCS#7") }, status: http.StatusBadRequest, reason: "scep_bad_message"},
		{name: "PKCS#7 that is not SCEP", body: func() []byte {
			deg, _ := scep.DegenerateCertificates([]*x509.Certificate{e.ca.Cert})
			return deg
		}, status: http.StatusBadRequest, reason: "scep_bad_message"},
		{name: "empty body", body: func() []byte { return nil }, status: http.StatusBadRequest, reason: "scep_bad_message"},
		{name: "oversized body", body: func() []byte { return bytes.Repeat([]byte{0x30}, 17<<10) }, status: http.StatusRequestEntityTooLarge, reason: "scep_bad_message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.post(t, tc.body())
			if tc.status != 0 {
				if status != tc.status {
					t.Fatalf("status %d, want %d", status, tc.status)
				}
			} else {
				if status != http.StatusOK {
					t.Fatalf("status %d (%s), want a CertRep", status, body)
				}
				if c, f := e.certRep(t, tc.dev, body); c != nil || f != tc.fail {
					t.Fatalf("got certificate %v, failInfo %q; want failInfo %s", c != nil, f, tc.fail)
				}
			}
			if r := e.lastReason(t); r != tc.reason {
				t.Errorf("audit reason %q, want %q", r, tc.reason)
			}
			if n := e.counted(t, "PKIOperation", tc.reason); n == 0 {
				t.Errorf("clinicgate_scep_requests_total{result=%q} not counted", tc.reason)
			}
			if n := e.issued(t); n != before {
				t.Errorf("%d certificates issued, want %d", n, before)
			}
		})
	}
	// A refused CSR does not spend the challenge: the device can retry
	// with a good key.
	_, body := e.post(t, e.pkcsReq(t, d, "dev", fresh, nil))
	if c, f := e.certRep(t, d, body); c == nil {
		t.Fatalf("the challenge a bad CSR came with no longer works: %s", f)
	}
}

func TestPKIOperationOverGET(t *testing.T) {
	e := newEnv(t)
	d := newDevice(t, 2048)
	msg := e.pkcsReq(t, d, "get-device", e.challenge(t, admin.SCEPChallengeRequest{}), nil)
	resp, err := e.http.Get(e.url + "?operation=PKIOperation&message=" + url.QueryEscape(base64.StdEncoding.EncodeToString(msg)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if c, f := e.certRep(t, d, b); c == nil || c.Subject.CommonName != "get-device" {
		t.Fatalf("GET PKIOperation: %v %s", c, f)
	}
}

func TestRevokedCertificateIsOnTheCRL(t *testing.T) {
	e := newEnv(t)
	d := newDevice(t, 2048)
	_, body := e.post(t, e.pkcsReq(t, d, "lost-tablet", e.challenge(t, admin.SCEPChallengeRequest{}), nil))
	cert, _ := e.certRep(t, d, body)
	if cert == nil {
		t.Fatal("not issued")
	}
	crl := func() *x509.RevocationList {
		resp, err := e.http.Get(strings.TrimSuffix(e.url, scepserver.PathCGI) + scepserver.PathCRL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		l, err := x509.ParseRevocationList(b)
		if err != nil {
			t.Fatalf("the CRL does not parse: %v", err)
		}
		if err := l.CheckSignatureFrom(e.ca.Cert); err != nil {
			t.Fatalf("the CRL is not signed by the device CA: %v", err)
		}
		if l.NextUpdate.Sub(e.clock.Now()) > 25*time.Hour {
			t.Errorf("nextUpdate %s is more than a day away", l.NextUpdate)
		}
		return l
	}
	first := crl()
	if len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("a fresh CRL lists %d certificates", len(first.RevokedCertificateEntries))
	}
	if _, err := e.core.Admin.RevokeCert(t.Context(), cert.SerialNumber.Text(16), "lost"); err != nil {
		t.Fatal(err)
	}
	second := crl()
	if len(second.RevokedCertificateEntries) != 1 || second.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Fatalf("after revoking, the CRL lists %v, want serial %x", second.RevokedCertificateEntries, cert.SerialNumber)
	}
	if second.Number.Cmp(first.Number) <= 0 {
		t.Errorf("CRL number %s did not grow past %s", second.Number, first.Number)
	}
	cs, _ := e.core.Admin.IssuedCerts(t.Context())
	if len(cs) != 1 || cs[0].RevokedAt.IsZero() || cs[0].RevokeReason != "lost" {
		t.Errorf("issued table: %+v, want it marked revoked", cs)
	}
	if _, err := e.core.Admin.Store.Revoked(context.Background(), "", cert.SerialNumber.Text(16)); err != nil {
		t.Errorf("not on the appliance's revocation list EAP-TLS checks: %v", err)
	}
}

// TestStaticChallengeServesItsUsesOnly: a challenge for several devices
// (an MDM's static challenge) serves that many enrolments, then is
// refused; a withdrawn one is refused at once.
func TestStaticChallengeServesItsUsesOnly(t *testing.T) {
	e := newEnv(t)
	if _, err := e.core.Admin.CreateSCEPChallenge(t.Context(), admin.SCEPChallengeRequest{Uses: 2, Device: "one"}); err == nil {
		t.Fatal("a challenge for 2 devices named one device")
	}
	static := e.challenge(t, admin.SCEPChallengeRequest{Uses: 2})
	for i, want := range []scep.FailInfo{"", "", scep.BadRequest} {
		d := newDevice(t, 2048)
		_, body := e.post(t, e.pkcsReq(t, d, fmt.Sprintf("mac-%d", i), static, nil))
		if c, f := e.certRep(t, d, body); f != want || (want == "") != (c != nil) {
			t.Fatalf("enrolment %d: certificate %v, failInfo %q; want failInfo %q", i+1, c != nil, f, want)
		}
	}
	if r := e.lastReason(t); r != "scep_challenge_used" {
		t.Errorf("audit reason %q, want scep_challenge_used", r)
	}
	ch, err := e.core.Admin.CreateSCEPChallenge(t.Context(), admin.SCEPChallengeRequest{Uses: 5})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := e.core.Admin.SCEPChallenges(t.Context())
	if len(list) != 1 || list[0].ID != ch.ID || list[0].UsesLeft != 5 {
		t.Fatalf("usable challenges: %+v", list)
	}
	if err := e.core.Admin.WithdrawSCEPChallenge(t.Context(), ch.ID); err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, 2048)
	_, body := e.post(t, e.pkcsReq(t, d, "late", ch.Challenge, nil))
	if c, f := e.certRep(t, d, body); c != nil || f != scep.BadRequest {
		t.Fatalf("a withdrawn challenge: certificate %v, failInfo %q", c != nil, f)
	}
}

// blockingEnroller holds every enrolment until release is closed.
type blockingEnroller struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingEnroller) Enroll(ctx context.Context, r pki.EnrollRequest) (*x509.Certificate, pki.Refusal, error) {
	b.entered <- struct{}{}
	<-b.release
	return nil, pki.RefuseBadChallenge, nil
}

func (b *blockingEnroller) Refuse(context.Context, string, pki.Refusal, string) error { return nil }

// TestPKIOperationsAreBounded: past MaxConcurrent enrolments in progress,
// the door answers 503 at once instead of queueing work.
func TestPKIOperationsAreBounded(t *testing.T) {
	e := newEnv(t)
	b := &blockingEnroller{entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := scepserver.New(scepserver.Config{CA: e.ca, Enroller: b, CRL: &pki.CRLCache{Store: e.core.Admin.Store, CA: e.ca, Now: time.Now}, Logger: slog.New(slog.DiscardHandler), MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	d := newDevice(t, 2048)
	msg := e.pkcsReq(t, d, "x", "y", nil)
	first := make(chan int, 1)
	go func() {
		resp, err := ts.Client().Post(ts.URL+scepserver.PathSCEP+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(msg))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-b.entered
	resp, err := ts.Client().Post(ts.URL+scepserver.PathSCEP+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second enrolment while one is in progress: status %d, want 503 with Retry-After", resp.StatusCode)
	}
	close(b.release)
	if s := <-first; s != http.StatusOK {
		t.Errorf("the first enrolment: status %d, want a CertRep", s)
	}
}
