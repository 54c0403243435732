package main

import (
	"crypto/x509"
	"encoding/pem"
	"regexp"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/ldapproxy"
)

func TestSCEPChallengeCAAndProfile(t *testing.T) {
	data := newData(t)
	if out, err := cg(t, data, "", "scep", "challenge", "--user", "nobody"); err == nil || !strings.Contains(out, `no user "nobody"`) {
		t.Fatalf("a challenge for an unknown user: %v\n%s", err, out)
	}
	if out, err := cg(t, data, "", "scep", "challenge", "--ttl", "9000h"); err == nil || !strings.Contains(out, "lifetime") {
		t.Fatalf("a challenge living 9000h: %v\n%s", err, out)
	}
	out := mustCG(t, data, "", "scep", "challenge", "--device", "front desk", "--mac", "AA-BB-CC-DD-EE-FF")
	if !regexp.MustCompile(`(?m)^[a-z2-7]{26}$`).MatchString(out) || !strings.Contains(out, "shown only now") {
		t.Fatalf("scep challenge printed:\n%s", out)
	}
	if out, err := cg(t, data, "", "scep", "challenge", "--uses", "20", "--device", "x"); err == nil || !strings.Contains(out, "cannot name one device") {
		t.Fatalf("a static challenge naming a device: %v\n%s", err, out)
	}
	out = mustCG(t, data, "", "scep", "challenge", "--uses", "20", "--ttl", "720h")
	if !strings.Contains(out, "up to 20 devices") || !strings.Contains(out, "scep withdraw 2") {
		t.Fatalf("a static challenge:\n%s", out)
	}
	if out := mustCG(t, data, "", "scep", "challenges"); !strings.Contains(out, "20 of 20") || !strings.Contains(out, "front desk") {
		t.Fatalf("scep challenges:\n%s", out)
	}
	mustCG(t, data, "", "scep", "withdraw", "2")
	if out, err := cg(t, data, "", "scep", "withdraw", "2"); err == nil || !strings.Contains(out, "no usable SCEP challenge 2") {
		t.Fatalf("withdrawing twice: %v\n%s", err, out)
	}
	out = mustCG(t, data, "", "scep", "ca")
	blk, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	if blk == nil {
		t.Fatalf("no PEM in:\n%s", out)
	}
	if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !c.IsCA || c.Subject.CommonName != "clinicgate device CA" {
		t.Fatalf("scep ca: %v %v", c, err)
	}
	if _, _, _, err := eap.EnsureCertificate(data); err != nil {
		t.Fatal(err)
	}
	if out, err := cg(t, data, "", "wifi", "profile", "--ssid", "Staff", "--method", "tls", "--scep", "https://gate:9443/scep"); err == nil || !strings.Contains(out, "first start") {
		t.Fatalf("a SCEP profile before the daemon made its HTTPS certificate: %v\n%s", err, out)
	}
	if _, _, _, _, err := ldapproxy.EnsureCertificate(data); err != nil {
		t.Fatal(err)
	}
	if out, err := cg(t, data, "", "wifi", "profile", "--ssid", "Staff", "--scep", "https://gate:9443/scep"); err == nil || !strings.Contains(out, "--method tls") {
		t.Fatalf("--scep with ttls: %v\n%s", err, out)
	}
	out = mustCG(t, data, "", "wifi", "profile", "--ssid", "Staff", "--method", "tls", "--scep", "https://gate:9443/scep", "--device", "ipad 3")
	for _, want := range []string{"com.apple.security.scep", "<key>Challenge</key>", "clinicgate-scep-server.cer", "clinicgate-device-ca.cer", "https://gate:9443/scep", "PayloadCertificateUUID", "<string>ipad 3</string>", "usable once"} {
		if !strings.Contains(out, want) {
			t.Errorf("the profile lacks %s:\n%s", want, out)
		}
	}
	out = mustCG(t, data, "", "wifi", "profile", "--ssid", "Staff", "--method", "tls", "--scep", "https://gate:9443/scep", "--challenge", "given-challenge")
	if !strings.Contains(out, "<string>given-challenge</string>") || strings.Contains(out, "usable once") {
		t.Errorf("a given challenge is not used as it is:\n%s", out)
	}
}
