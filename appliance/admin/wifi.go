package admin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
	"github.com/clinicgate/clinicgate/internal/wifiprofile"
)

// WiFiProfileRequest is what the console's Wi-Fi pane asks for: an Apple
// configuration profile for a network ('clinicgate wifi profile').
type WiFiProfileRequest struct {
	SSID, Method, Organization string
	WPA3                       bool
	// CertFile is the EAP server's certificate, as the daemon reports it.
	CertFile string
	// SCEP, with Method tls, adds a SCEP payload: the device enrols its
	// own certificate from the appliance with no MDM ('wifi profile
	// --scep'). Nil: the certificate comes from elsewhere.
	SCEP *WiFiSCEP
}

// WiFiSCEP is a profile's SCEP payload as asked for.
type WiFiSCEP struct {
	URL string // the SCEP door's public URL (https://HOST:PORT/scep)
	// CertFile is the SCEP door's HTTPS certificate, as the daemon
	// reports it: the device is told to trust its CA.
	CertFile string
	// Challenge is one made earlier ('scep challenge'); empty: a one-time
	// challenge is made now for Device, and returned once.
	Challenge string
	Device    SCEPChallengeRequest
}

// WiFiProfileFile is a profile written for fetching over SFTP.
type WiFiProfileFile struct {
	Path string
	// Challenge is the one-time SCEP challenge made for it (nil: none was
	// made). The profile holds it in clear: it goes to one device.
	Challenge *SCEPChallenge
}

var fileSafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// WriteWiFiProfile writes the profile into ExportsDir, for fetching over
// SFTP. The profile pins the EAP server's CA and name, as the command's
// does. Everything is checked before a SCEP challenge is made, so a
// refused profile spends none.
func (s *Service) WriteWiFiProfile(ctx context.Context, r WiFiProfileRequest) (WiFiProfileFile, error) {
	if r.SSID == "" || len(r.SSID) > 32 {
		return WiFiProfileFile{}, invalid("the network's name (SSID): 1 to 32 characters")
	}
	if r.CertFile == "" {
		return WiFiProfileFile{}, errors.New("the daemon reports no EAP server: is 802.1X on?")
	}
	server, ca, err := wifiprofile.Chain(r.CertFile, "")
	if err != nil {
		return WiFiProfileFile{}, invalid("%v", err)
	}
	names := wifiprofile.ServerNames(server)
	if len(names) == 0 {
		return WiFiProfileFile{}, invalid("the EAP certificate names no server")
	}
	method := r.Method
	if method == "" {
		method = string(wifiprofile.TTLS)
	}
	switch wifiprofile.Method(method) {
	case wifiprofile.TTLS, wifiprofile.PEAP, wifiprofile.TLS:
	default:
		return WiFiProfileFile{}, invalid("method: ttls, peap or tls")
	}
	p := wifiprofile.Profile{SSID: r.SSID, Method: wifiprofile.Method(method), CA: ca, ServerName: names[0],
		Organization: r.Organization, OuterIdentity: "anonymous", WPA3: r.WPA3}
	name := fileSafe.ReplaceAllString(r.SSID, "_") + "-" + method
	var out WiFiProfileFile
	if r.SCEP != nil {
		if p.Method != wifiprofile.TLS {
			return WiFiProfileFile{}, invalid("a SCEP payload needs the method tls (the certificate is the device's EAP-TLS identity)")
		}
		if p.SCEP, out.Challenge, err = s.SCEPPayload(ctx, *r.SCEP); err != nil {
			return WiFiProfileFile{}, err
		}
		// One profile per device: each holds its own challenge.
		name += "-scep"
		if out.Challenge != nil {
			name += fmt.Sprintf("-%d", out.Challenge.ID)
		}
	}
	b, err := wifiprofile.MobileConfig(p)
	if err != nil {
		return WiFiProfileFile{}, err
	}
	dir := filepath.Join(s.Store.Dir(), ExportsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return WiFiProfileFile{}, err
	}
	out.Path = filepath.Join(dir, name+".mobileconfig")
	return out, atomicfile.Write(out.Path, b, 0o600)
}

// SCEPPayload gathers a profile's SCEP payload: the device CA, the SCEP
// door's HTTPS CA and a challenge, made now (and returned, to say so
// once) unless one is given. The console and 'wifi profile --scep' share
// it.
func (s *Service) SCEPPayload(ctx context.Context, r WiFiSCEP) (*wifiprofile.SCEP, *SCEPChallenge, error) {
	u, err := url.Parse(r.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, nil, invalid("the SCEP URL must be https://HOST:PORT/scep (the appliance's SCEP door), not %q", r.URL)
	}
	if r.CertFile == "" {
		return nil, nil, errors.New("the daemon reports no SCEP door: set scep.listen (docs/scep.md)")
	}
	ca, err := s.DeviceCA(ctx)
	if err != nil {
		return nil, nil, err
	}
	p := &wifiprofile.SCEP{URL: r.URL, Challenge: r.Challenge, Subject: r.Device.Device, DeviceCA: ca.Cert}
	// The device must trust the door's certificate: the self-signed one,
	// or the CA in the file. A certificate without its CA is taken to be
	// one the device already trusts (a public CA's).
	if _, sca, err := wifiprofile.Chain(r.CertFile, ""); sca != nil {
		p.ServerCA = sca
	} else if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return nil, nil, fmt.Errorf("the SCEP HTTPS certificate: %w", err)
	}
	if r.Challenge != "" {
		return p, nil, nil
	}
	ch, err := s.CreateSCEPChallenge(ctx, r.Device)
	if err != nil {
		return nil, nil, err
	}
	p.Challenge = ch.Challenge
	return p, &ch, nil
}
