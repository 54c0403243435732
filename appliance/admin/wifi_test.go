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
	p, err := s.WriteWiFiProfile(t.Context(), WiFiProfileRequest{SSID: "Clinic Staff", Method: "ttls", Organization: "Dyer", CertFile: cert})
	if err != nil {
		t.Fatal(err)
	}
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
