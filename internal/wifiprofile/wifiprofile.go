// Package wifiprofile writes the files a Wi-Fi client is given so that it
// trusts the appliance's EAP server and no other: an Apple configuration
// profile (.mobileconfig) for macOS, iOS and iPadOS, and the facts every
// other platform asks for by hand (the CA, the server name and the SHA-1
// thumbprint Windows shows).
//
// It only writes: it reads no secret and holds no key. A profile carries
// the server's certificate (public) and never a password.
package wifiprofile

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// Method is the EAP method a profile sets up.
type Method string

const (
	TTLS Method = "ttls" // EAP-TTLS with an inner PAP password (type 21)
	PEAP Method = "peap" // PEAPv0 with EAP-MSCHAPv2 (type 25)
	TLS  Method = "tls"  // EAP-TLS with a client certificate (type 13)
)

// Profile is what one Wi-Fi profile says.
type Profile struct {
	SSID   string
	Method Method
	// CA is the certificate the client must trust: the appliance's own
	// self-signed EAP certificate, or the CA that issued the clinic's.
	CA *x509.Certificate
	// ServerName is the name the client checks in the server's
	// certificate (TLSTrustedServerNames).
	ServerName string
	// Organization names the clinic in the profile's description.
	Organization string
	// OuterIdentity, when set, is sent in clear before the tunnel in
	// place of the user's name (TTLS and PEAP).
	OuterIdentity string
	// WPA3 asks for WPA3-Enterprise; otherwise WPA2 (which a WPA2/WPA3
	// transition SSID also accepts).
	WPA3 bool
	// SCEP, for an EAP-TLS profile, adds a SCEP payload: the device asks
	// the appliance for its own certificate and joins the network with
	// it, with no MDM.
	SCEP *SCEP
}

// SCEP is what a profile's SCEP payload (com.apple.security.scep) says.
type SCEP struct {
	URL string // the appliance's SCEP URL (https://…/scep)
	// Challenge is a one-time challenge password: the profile enrols one
	// device, once. The profile holds it in clear, so it is made for this
	// profile and expires.
	Challenge string
	// Subject is the common name the device asks for (the appliance
	// names the certificate after the device the challenge was made for).
	Subject string
	KeySize int // RSA bits; 0: 2048
	// DeviceCA is the device CA the certificate will chain to; ServerCA
	// the certificate of the SCEP URL's HTTPS server, when the device
	// would not trust it otherwise (the appliance's self-signed one).
	DeviceCA *x509.Certificate
	ServerCA *x509.Certificate
}

// ServerNames lists the names in a certificate a client can be told to
// check: its DNS names, else its common name.
func ServerNames(c *x509.Certificate) []string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames
	}
	if c.Subject.CommonName != "" {
		return []string{c.Subject.CommonName}
	}
	return nil
}

// Thumbprint is a certificate's SHA-1 in the form Windows shows in its
// certificate dialog and asks for in a WLAN profile's TrustedRootCA. It
// names a certificate the administrator already trusts; it is not used to
// check anything here.
func Thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func (p Profile) check() error {
	var errs []error
	if p.SSID == "" || len(p.SSID) > 32 {
		errs = append(errs, errors.New("the SSID must be 1 to 32 bytes"))
	}
	switch p.Method {
	case TTLS, PEAP, TLS:
	default:
		errs = append(errs, fmt.Errorf("method must be ttls, peap or tls, not %q", p.Method))
	}
	if p.CA == nil {
		errs = append(errs, errors.New("no CA certificate"))
	}
	if p.ServerName == "" {
		errs = append(errs, errors.New("no server name: the client could not tell the appliance from any other server the CA vouches for"))
	}
	if s := p.SCEP; s != nil {
		if p.Method != TLS {
			errs = append(errs, errors.New("a SCEP payload is for an EAP-TLS profile (method tls)"))
		}
		if !strings.HasPrefix(s.URL, "https://") {
			errs = append(errs, fmt.Errorf("the SCEP URL %q must start with https://", s.URL))
		}
		if s.Challenge == "" {
			errs = append(errs, errors.New("no SCEP challenge: make one with 'clinicgate scep challenge'"))
		}
		if s.KeySize != 0 && s.KeySize != 2048 && s.KeySize != 4096 {
			errs = append(errs, fmt.Errorf("SCEP key size %d: Apple devices make 2048- or 4096-bit RSA keys", s.KeySize))
		}
		if s.DeviceCA == nil {
			errs = append(errs, errors.New("no device CA for the SCEP payload"))
		}
	}
	return errors.Join(errs...)
}

// rootPayload is a com.apple.security.root payload.
func rootPayload(c *x509.Certificate, file, display, ident, id string) dict {
	ca := dict{}
	ca.add("PayloadCertificateFileName", str(file))
	ca.add("PayloadContent", data(c.Raw))
	ca.add("PayloadDisplayName", str(display))
	ca.add("PayloadIdentifier", str(ident))
	ca.add("PayloadType", str("com.apple.security.root"))
	ca.add("PayloadUUID", str(id))
	ca.add("PayloadVersion", integer(1))
	return ca
}

// scepPayload is a com.apple.security.scep payload, with the keys of
// Apple's Device Management reference (SCEP, SCEP.PayloadContent): the
// key names "Key Type" and "Key Usage" have a space; Key Usage 5 is
// signing and encryption; CAFingerprint is the SHA-1 of the CA
// certificate GetCACert returns, which the device checks.
func scepPayload(s *SCEP, ident, id string) dict {
	bits := s.KeySize
	if bits == 0 {
		bits = 2048
	}
	subject := s.Subject
	if subject == "" {
		subject = "clinicgate device"
	}
	fp := sha1.Sum(s.DeviceCA.Raw)
	c := dict{}
	c.add("URL", str(s.URL))
	c.add("Name", str("clinicgate"))
	c.add("Subject", array{array{array{str("CN"), str(subject)}}})
	c.add("Challenge", str(s.Challenge))
	c.add("Keysize", integer(bits))
	c.add("Key Type", str("RSA"))
	c.add("Key Usage", integer(5))
	c.add("CAFingerprint", data(fp[:]))
	c.add("Retries", integer(3))
	c.add("RetryDelay", integer(10))
	p := dict{}
	p.add("PayloadContent", c)
	p.add("PayloadDisplayName", str("Device certificate ("+subject+")"))
	p.add("PayloadIdentifier", str(ident))
	p.add("PayloadType", str("com.apple.security.scep"))
	p.add("PayloadUUID", str(id))
	p.add("PayloadVersion", integer(1))
	return p
}

// uuid derives a stable UUID (version 8, RFC 9562 §5.8) from the profile's
// parts, so that a profile made again for the same SSID and certificate
// replaces the one installed instead of adding a second.
func uuid(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	x := strings.ToUpper(hex.EncodeToString(b))
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// MobileConfig writes an Apple configuration profile with two payloads:
// the CA (com.apple.security.root) and the Wi-Fi network
// (com.apple.wifi.managed) whose EAPClientConfiguration trusts only that
// CA and only ServerName. Keys follow Apple's Configuration Profile
// Reference (WiFi and Certificate Root payloads). An EAP-TLS profile
// carries no identity, unless p.SCEP adds a SCEP payload for it: without
// one the device's certificate comes from the MDM's own SCEP or PKCS#12
// payload, which the profile cannot know.
func MobileConfig(p Profile) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(p.CA.Raw)
	fp := hex.EncodeToString(sum[:])
	top := uuid("profile", p.SSID, fp)
	caID := uuid("ca", p.SSID, fp)
	wifiID := uuid("wifi", p.SSID, fp)
	ident := "clinicgate.wifi." + strings.ToLower(top)
	wifiIdentity := ""
	org := p.Organization
	if org == "" {
		org = "clinicgate"
	}

	eap := dict{}
	switch p.Method {
	case TTLS:
		eap.add("AcceptEAPTypes", array{integer(21)})
		eap.add("TTLSInnerAuthentication", str("PAP"))
	case PEAP:
		eap.add("AcceptEAPTypes", array{integer(25)})
	case TLS:
		eap.add("AcceptEAPTypes", array{integer(13)})
	}
	if p.OuterIdentity != "" && p.Method != TLS {
		eap.add("OuterIdentity", str(p.OuterIdentity))
	}
	var scepID string
	if p.SCEP != nil {
		// The identity the device presents is the SCEP payload's.
		scepID = uuid("scep", p.SSID, fp, p.SCEP.URL)
		wifiIdentity = scepID
	}
	eap.add("PayloadCertificateAnchorUUID", array{str(caID)})
	eap.add("TLSTrustedServerNames", array{str(p.ServerName)})
	eap.add("TLSMinimumVersion", str("1.2"))

	enc := "WPA2"
	if p.WPA3 {
		enc = "WPA3"
	}
	wifi := dict{}
	wifi.add("AutoJoin", boolean(true))
	wifi.add("EAPClientConfiguration", eap)
	wifi.add("EncryptionType", str(enc))
	wifi.add("HIDDEN_NETWORK", boolean(false))
	if wifiIdentity != "" {
		wifi.add("PayloadCertificateUUID", str(wifiIdentity))
	}
	wifi.add("PayloadDisplayName", str("Wi-Fi "+p.SSID))
	wifi.add("PayloadIdentifier", str(ident+".wifi"))
	wifi.add("PayloadType", str("com.apple.wifi.managed"))
	wifi.add("PayloadUUID", str(wifiID))
	wifi.add("PayloadVersion", integer(1))
	wifi.add("SSID_STR", str(p.SSID))

	ca := rootPayload(p.CA, "clinicgate-eap-ca.cer", "Wi-Fi server CA ("+p.CA.Subject.CommonName+")", ident+".ca", caID)
	payloads := array{ca}
	if s := p.SCEP; s != nil {
		payloads = append(payloads, rootPayload(s.DeviceCA, "clinicgate-device-ca.cer", "Device CA ("+s.DeviceCA.Subject.CommonName+")", ident+".device-ca", uuid("device-ca", p.SSID, fp)))
		if s.ServerCA != nil && !s.ServerCA.Equal(p.CA) {
			payloads = append(payloads, rootPayload(s.ServerCA, "clinicgate-scep-server.cer", "Certificate server ("+s.ServerCA.Subject.CommonName+")", ident+".scep-server", uuid("scep-server", p.SSID, fp)))
		}
		payloads = append(payloads, scepPayload(s, ident+".scep", scepID))
	}
	payloads = append(payloads, wifi)

	root := dict{}
	root.add("PayloadContent", payloads)
	root.add("PayloadDescription", str("Joins "+p.SSID+" and trusts only "+org+"'s Wi-Fi login server ("+p.ServerName+")."))
	root.add("PayloadDisplayName", str(org+" Wi-Fi ("+p.SSID+")"))
	root.add("PayloadIdentifier", str(ident))
	root.add("PayloadOrganization", str(org))
	root.add("PayloadType", str("Configuration"))
	root.add("PayloadUUID", str(top))
	root.add("PayloadVersion", integer(1))

	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	root.write(&b, 0)
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

// A property list, just the kinds a profile needs.
type (
	value interface {
		write(b *bytes.Buffer, depth int)
	}
	dict struct {
		keys []string
		vals []value
	}
	array   []value
	str     string
	integer int
	boolean bool
	data    []byte
)

func (d *dict) add(k string, v value) { d.keys, d.vals = append(d.keys, k), append(d.vals, v) }

func indent(b *bytes.Buffer, depth int) { b.WriteString(strings.Repeat("\t", depth)) }

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (d dict) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<dict>\n")
	for i, k := range d.keys {
		indent(b, depth+1)
		b.WriteString("<key>" + escape(k) + "</key>\n")
		d.vals[i].write(b, depth+1)
	}
	indent(b, depth)
	b.WriteString("</dict>\n")
}

func (a array) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<array>\n")
	for _, v := range a {
		v.write(b, depth+1)
	}
	indent(b, depth)
	b.WriteString("</array>\n")
}

func (s str) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<string>" + escape(string(s)) + "</string>\n")
}

func (n integer) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	fmt.Fprintf(b, "<integer>%d</integer>\n", int(n))
}

func (t boolean) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	if t {
		b.WriteString("<true/>\n")
	} else {
		b.WriteString("<false/>\n")
	}
}

func (d data) write(b *bytes.Buffer, depth int) {
	indent(b, depth)
	b.WriteString("<data>\n")
	s := base64.StdEncoding.EncodeToString(d)
	for len(s) > 0 {
		n := min(len(s), 64)
		indent(b, depth)
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	indent(b, depth)
	b.WriteString("</data>\n")
}
