package wifiprofile

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/internal/selfcert"
)

func testCA(t *testing.T) *x509.Certificate {
	t.Helper()
	dir := t.TempDir()
	certPath, _, _, err := selfcert.Ensure(dir, "c.pem", "k.pem", selfcert.Names{DNS: []string{"gate.clinic.example"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// plist reads a profile back with Python's plistlib, an independent
// reader of Apple's format, and returns it as JSON-decoded Go values.
func plist(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed to read the profile back: %v", err)
	}
	f := filepath.Join(t.TempDir(), "p.mobileconfig")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const prog = `import plistlib, json, sys, base64
p = plistlib.load(open(sys.argv[1], "rb"))
def conv(v):
    if isinstance(v, bytes): return base64.b64encode(v).decode()
    if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
print(json.dumps(conv(p)))`
	out, err := exec.Command("python3", "-c", prog, f).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib refused the profile: %v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMobileConfigReadsBack(t *testing.T) {
	ca := testCA(t)
	for _, m := range []struct {
		method Method
		eap    float64
	}{{TTLS, 21}, {PEAP, 25}, {TLS, 13}} {
		t.Run(string(m.method), func(t *testing.T) {
			b, err := MobileConfig(Profile{SSID: "Clinic <Staff>", Method: m.method, CA: ca, ServerName: "gate.clinic.example", Organization: "Dyer & Sons", OuterIdentity: "anonymous"})
			if err != nil {
				t.Fatal(err)
			}
			p := plist(t, b)
			if p["PayloadType"] != "Configuration" || p["PayloadOrganization"] != "Dyer & Sons" {
				t.Fatalf("top level: %v", p)
			}
			content := p["PayloadContent"].([]any)
			caP, wifi := content[0].(map[string]any), content[1].(map[string]any)
			if caP["PayloadType"] != "com.apple.security.root" {
				t.Fatalf("first payload: %v", caP["PayloadType"])
			}
			der, _ := json.Marshal(ca.Raw) // base64, as conv wrote it
			if `"`+caP["PayloadContent"].(string)+`"` != string(der) {
				t.Fatal("the CA payload does not hold the certificate")
			}
			if wifi["SSID_STR"] != "Clinic <Staff>" || wifi["PayloadType"] != "com.apple.wifi.managed" || wifi["EncryptionType"] != "WPA2" {
				t.Fatalf("wifi payload: %v", wifi)
			}
			e := wifi["EAPClientConfiguration"].(map[string]any)
			if got := e["AcceptEAPTypes"].([]any); len(got) != 1 || got[0] != m.eap {
				t.Fatalf("AcceptEAPTypes = %v, want [%v]", got, m.eap)
			}
			if a := e["PayloadCertificateAnchorUUID"].([]any); len(a) != 1 || a[0] != caP["PayloadUUID"] {
				t.Fatalf("the anchor %v is not the CA payload %v", a, caP["PayloadUUID"])
			}
			if n := e["TLSTrustedServerNames"].([]any); len(n) != 1 || n[0] != "gate.clinic.example" {
				t.Fatalf("server names %v", n)
			}
			if _, ok := e["OuterIdentity"]; ok == (m.method == TLS) {
				t.Fatalf("OuterIdentity present=%v for %s", ok, m.method)
			}
			if (e["TTLSInnerAuthentication"] == "PAP") != (m.method == TTLS) {
				t.Fatalf("TTLSInnerAuthentication %v for %s", e["TTLSInnerAuthentication"], m.method)
			}
		})
	}
}

func TestMobileConfigIsStable(t *testing.T) {
	ca := testCA(t)
	p := Profile{SSID: "Staff", Method: TTLS, CA: ca, ServerName: "gate"}
	a, _ := MobileConfig(p)
	b, _ := MobileConfig(p)
	if !bytes.Equal(a, b) {
		t.Fatal("the same profile made twice differs: a device would install it twice")
	}
	p.SSID = "Guests"
	c, _ := MobileConfig(p)
	if bytes.Equal(a, c) || strings.Contains(string(c), "Staff") {
		t.Fatal("another SSID made the same profile")
	}
}

func TestMobileConfigRefuses(t *testing.T) {
	ca := testCA(t)
	for name, p := range map[string]Profile{
		"no ssid":        {Method: TTLS, CA: ca, ServerName: "gate"},
		"long ssid":      {SSID: strings.Repeat("x", 33), Method: TTLS, CA: ca, ServerName: "gate"},
		"method":         {SSID: "s", Method: "md5", CA: ca, ServerName: "gate"},
		"no ca":          {SSID: "s", Method: TTLS, ServerName: "gate"},
		"no server name": {SSID: "s", Method: TTLS, CA: ca},
	} {
		if _, err := MobileConfig(p); err == nil {
			t.Errorf("%s: made a profile", name)
		}
	}
}

func TestThumbprintAndNames(t *testing.T) {
	ca := testCA(t)
	if got := Thumbprint(ca); len(got) != 40 || strings.ToUpper(got) != got {
		t.Fatalf("thumbprint %q", got)
	}
	if n := ServerNames(ca); len(n) == 0 || n[0] == "" {
		t.Fatalf("server names %v", n)
	}
}

func TestMobileConfigWithSCEPReadsBack(t *testing.T) {
	ca, deviceCA, server := testCA(t), testCA(t), testCA(t)
	b, err := MobileConfig(Profile{SSID: "Staff", Method: TLS, CA: ca, ServerName: "gate.clinic.example",
		SCEP: &SCEP{URL: "https://gate.clinic.example:9443/scep", Challenge: "abc&def", Subject: "front desk", DeviceCA: deviceCA, ServerCA: server}})
	if err != nil {
		t.Fatal(err)
	}
	p := plist(t, b)
	byType := map[string][]map[string]any{}
	for _, c := range p["PayloadContent"].([]any) {
		m := c.(map[string]any)
		byType[m["PayloadType"].(string)] = append(byType[m["PayloadType"].(string)], m)
	}
	if n := len(byType["com.apple.security.root"]); n != 3 {
		t.Fatalf("%d root payloads, want the EAP CA, the device CA and the SCEP server's certificate", n)
	}
	sc := byType["com.apple.security.scep"]
	if len(sc) != 1 {
		t.Fatalf("SCEP payloads: %v", sc)
	}
	c := sc[0]["PayloadContent"].(map[string]any)
	for k, want := range map[string]any{"URL": "https://gate.clinic.example:9443/scep", "Challenge": "abc&def", "Keysize": float64(2048), "Key Type": "RSA", "Key Usage": float64(5)} {
		if c[k] != want {
			t.Errorf("SCEP %s = %v, want %v", k, c[k], want)
		}
	}
	if subj, _ := json.Marshal(c["Subject"]); string(subj) != `[[["CN","front desk"]]]` {
		t.Errorf("SCEP Subject = %s", subj)
	}
	if c["CAFingerprint"] == nil || c["CAFingerprint"] == "" {
		t.Error("no CAFingerprint")
	}
	wifi := byType["com.apple.wifi.managed"][0]
	if wifi["PayloadCertificateUUID"] != sc[0]["PayloadUUID"] {
		t.Errorf("the Wi-Fi identity %v is not the SCEP payload %v", wifi["PayloadCertificateUUID"], sc[0]["PayloadUUID"])
	}
	if _, err := MobileConfig(Profile{SSID: "Staff", Method: TTLS, CA: ca, ServerName: "x", SCEP: &SCEP{URL: "https://x/scep", Challenge: "c", DeviceCA: deviceCA}}); err == nil {
		t.Error("a SCEP payload on a TTLS profile was accepted")
	}
	if _, err := MobileConfig(Profile{SSID: "Staff", Method: TLS, CA: ca, ServerName: "x", SCEP: &SCEP{URL: "http://x/scep", Challenge: "c", DeviceCA: deviceCA}}); err == nil {
		t.Error("an http:// SCEP URL was accepted")
	}
}
