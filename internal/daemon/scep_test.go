package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/ldapproxy"
	"github.com/clinicgate/clinicgate/scepserver"
)

// TestSCEPDoorAndDeviceCAAnchor: with scep.listen set, the daemon makes
// the device CA, trusts it for EAP-TLS with no anchor file, lists the
// door and answers SCEP on it over HTTPS until it shuts down.
func TestSCEPDoorAndDeviceCAAnchor(t *testing.T) {
	cfg := loopback(t)
	cfg.SCEP.Listen = "127.0.0.1:0"
	d := open(t, cfg)
	if d.deviceCA == nil || d.radius.EAP.ClientCAs == nil {
		t.Fatal("the SCEP door is on but there is no device CA among EAP-TLS's anchors")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tablet"}, PublicKey: &key.PublicKey}
	leaf, err := d.deviceCA.Issue(rand.Reader, csr, pki.IssueOptions{Name: "tablet", Validity: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: d.radius.EAP.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a device CA certificate does not verify against EAP-TLS's anchors: %v", err)
	}
	if err := d.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, l := range d.Listening() {
		if strings.Contains(l, "SCEP (device certs)") {
			addr = strings.Fields(l)[3]
		}
	}
	if addr == "" {
		t.Fatalf("no SCEP line in the listing:\n%s", strings.Join(d.Listening(), "\n"))
	}
	if !strings.HasPrefix(d.scepEnroller.CRLURL, "https://127.0.0.1:") || strings.Contains(d.scepEnroller.CRLURL, ":0/") {
		t.Errorf("the CRL URL %q is not the port the door listens on", d.scepEnroller.CRLURL)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	pem, err := os.ReadFile(filepath.Join(cfg.DataDir, ldapproxy.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	var body []byte
	for i := 0; ; i++ {
		resp, err := hc.Get(addr + "?operation=GetCACaps")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if i > 50 {
			t.Fatalf("GetCACaps: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(body), "SCEPStandard") {
		t.Fatalf("GetCACaps = %q", body)
	}
	// The console's Wi-Fi profile learns the door's URL and HTTPS
	// certificate from the daemon's status report.
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		st, ok, err := svc.Status(t.Context())
		if err == nil && ok && st.SCEP != nil {
			want := admin.SCEPDoorStatus{URL: strings.TrimSuffix(d.scepEnroller.CRLURL, scepserver.PathCRL) + scepserver.PathSCEP, CertFile: filepath.Join(cfg.DataDir, ldapproxy.CertFile)}
			if *st.SCEP != want {
				t.Errorf("the status reports the SCEP door as %+v, want %+v", *st.SCEP, want)
			}
			break
		}
		if i > 300 {
			t.Fatalf("no SCEP door in the daemon's status (%v, %v)", ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ran; err != ErrServerClosed {
		t.Errorf("Run: %v, want ErrServerClosed", err)
	}
}

// TestDeviceCAMadeByTheCLIIsAnAnchor: a device CA made earlier (by
// 'clinicgate scep challenge') is trusted for EAP-TLS even with the SCEP
// door off; without one, and without an anchor file, EAP-TLS stays off.
func TestDeviceCAMadeByTheCLIIsAnAnchor(t *testing.T) {
	cfg := loopback(t)
	d := open(t, cfg)
	if d.deviceCA != nil || d.radius.EAP.ClientCAs != nil {
		t.Fatal("a device CA was made, or EAP-TLS turned on, with the SCEP door off")
	}
	if _, err := pki.Ensure(t.Context(), d.store, time.Now()); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = open(t, cfg)
	if d.deviceCA == nil || d.radius.EAP.ClientCAs == nil {
		t.Fatal("the device CA in the store is not among EAP-TLS's anchors")
	}
}
