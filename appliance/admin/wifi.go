package admin

import (
	"context"
	"errors"
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
}

var fileSafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// WriteWiFiProfile writes the profile into ExportsDir, for fetching over
// SFTP, and returns its path. The profile pins the EAP server's CA and
// name, as the command's does.
func (s *Service) WriteWiFiProfile(_ context.Context, r WiFiProfileRequest) (string, error) {
	if r.SSID == "" || len(r.SSID) > 32 {
		return "", invalid("the network's name (SSID): 1 to 32 characters")
	}
	if r.CertFile == "" {
		return "", errors.New("the daemon reports no EAP server: is 802.1X on?")
	}
	server, ca, err := wifiprofile.Chain(r.CertFile, "")
	if err != nil {
		return "", invalid("%v", err)
	}
	names := wifiprofile.ServerNames(server)
	if len(names) == 0 {
		return "", invalid("the EAP certificate names no server")
	}
	method := r.Method
	if method == "" {
		method = string(wifiprofile.TTLS)
	}
	switch wifiprofile.Method(method) {
	case wifiprofile.TTLS, wifiprofile.PEAP, wifiprofile.TLS:
	default:
		return "", invalid("method: ttls, peap or tls")
	}
	b, err := wifiprofile.MobileConfig(wifiprofile.Profile{SSID: r.SSID, Method: wifiprofile.Method(method), CA: ca, ServerName: names[0],
		Organization: r.Organization, OuterIdentity: "anonymous", WPA3: r.WPA3})
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.Store.Dir(), ExportsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fileSafe.ReplaceAllString(r.SSID, "_")+"-"+method+".mobileconfig")
	return p, atomicfile.Write(p, b, 0o600)
}
