package admin

import (
	"os"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/internal/selfcert"
)

func TestWriteWiFiProfile(t *testing.T) {
	s := newService(t)
	cert, _, _, err := selfcert.Ensure(t.TempDir(), "eap-cert.pem", "eap-key.pem", selfcert.Names{DNS: []string{"gate.clinic.lan"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.WriteWiFiProfile(t.Context(), WiFiProfileRequest{SSID: "Clinic Staff", Method: "ttls", Organization: "Dyer", CertFile: cert})
	if err != nil {
		t.Fatal(err)
	}
	p := f.Path
	b, _ := os.ReadFile(p)
	if !strings.HasSuffix(p, "exports/Clinic_Staff-ttls.mobileconfig") || !strings.Contains(string(b), "<string>Clinic Staff</string>") || !strings.Contains(string(b), "TLSTrustedServerNames") {
		t.Fatalf("%s:\n%s", p, b)
	}
	if _, err := s.WriteWiFiProfile(t.Context(), WiFiProfileRequest{SSID: "x", Method: "leap", CertFile: cert}); err == nil {
		t.Fatal("LEAP accepted")
	}
	pem, err := s.DeviceCAPEM(t.Context())
	if err != nil || !strings.Contains(pem, "BEGIN CERTIFICATE") {
		t.Fatalf("device CA: %v", err)
	}
}

// TestWiFiProfileSCEPPayload: the console's profile with a SCEP payload
// is the command's: the door's CA, the device CA and a one-time
// challenge made for it; a refused profile spends no challenge.
func TestWiFiProfileSCEPPayload(t *testing.T) {
	s := newService(t)
	dir := t.TempDir()
	cert, _, _, err := selfcert.Ensure(dir, "eap-cert.pem", "eap-key.pem", selfcert.Names{DNS: []string{"gate.clinic.lan"}})
	if err != nil {
		t.Fatal(err)
	}
	door, _, _, err := selfcert.Ensure(dir, "ldap-cert.pem", "ldap-key.pem", selfcert.Names{DNS: []string{"gate.clinic.lan"}})
	if err != nil {
		t.Fatal(err)
	}
	scep := &WiFiSCEP{URL: "https://gate.clinic.lan:9443/scep", CertFile: door, Device: SCEPChallengeRequest{Device: "ipad 3"}}
	for _, bad := range []WiFiProfileRequest{
		{SSID: "Staff", Method: "ttls", CertFile: cert, SCEP: scep},
		{SSID: "Staff", Method: "tls", CertFile: cert, SCEP: &WiFiSCEP{URL: "http://gate/scep", CertFile: door}},
		{SSID: "Staff", Method: "tls", CertFile: cert, SCEP: &WiFiSCEP{URL: "https://gate/scep"}},
	} {
		if _, err := s.WriteWiFiProfile(t.Context(), bad); err == nil {
			t.Errorf("%+v (SCEP %+v) accepted", bad, bad.SCEP)
		}
	}
	if chs, err := s.SCEPChallenges(t.Context()); err != nil || len(chs) != 0 {
		t.Fatalf("refused profiles made %d challenges (%v)", len(chs), err)
	}
	f, err := s.WriteWiFiProfile(t.Context(), WiFiProfileRequest{SSID: "Staff", Method: "tls", CertFile: cert, SCEP: scep})
	if err != nil {
		t.Fatal(err)
	}
	if f.Challenge == nil || f.Challenge.Challenge == "" || f.Challenge.Uses != 1 {
		t.Fatalf("got challenge %+v, want a one-time challenge made", f.Challenge)
	}
	b, _ := os.ReadFile(f.Path)
	for _, want := range []string{"com.apple.security.scep", "<string>" + f.Challenge.Challenge + "</string>", "https://gate.clinic.lan:9443/scep",
		"clinicgate-scep-server.cer", "clinicgate-device-ca.cer", "<string>ipad 3</string>"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", f.Path, want)
		}
	}
	if chs, err := s.SCEPChallenges(t.Context()); err != nil || len(chs) != 1 || chs[0].DeviceName != "ipad 3" {
		t.Fatalf("got challenges %+v (%v), want the one for ipad 3", chs, err)
	}
	given := *scep
	given.Challenge = "given-challenge"
	f2, err := s.WriteWiFiProfile(t.Context(), WiFiProfileRequest{SSID: "Staff", Method: "tls", CertFile: cert, SCEP: &given})
	if err != nil || f2.Challenge != nil || f2.Path == f.Path {
		t.Fatalf("a given challenge: %+v, %v (the first profile at %s)", f2, err, f.Path)
	}
	if b, _ := os.ReadFile(f2.Path); !strings.Contains(string(b), "<string>given-challenge</string>") {
		t.Errorf("the given challenge is not in %s", f2.Path)
	}
}
