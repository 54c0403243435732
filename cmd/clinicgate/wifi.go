package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/internal/wifiprofile"
	"github.com/clinicgate/clinicgate/ldapproxy"
)

// wifi gives the contractor what Wi-Fi clients must be told about the
// EAP server: its CA and name, and an Apple profile.
func (c *cli) wifi(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "wifi", "wifi: ca or profile?", args, subcommands{
		"ca":      c.wifiCA,
		"profile": c.wifiProfile,
	})
}

// eapChain reads the EAP server's certificate: the one given with
// --cert, the configured one, or the one the daemon generated in the data
// directory.
func eapChain(cfg config.Config, certFile, caFile string) (server, ca *x509.Certificate, err error) {
	path := certFile
	if path == "" {
		path = cfg.RADIUS.EAPCertFile
	}
	if path == "" {
		path = filepath.Join(cfg.DataDir, eap.CertFile)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && certFile == "" {
		return nil, nil, fmt.Errorf("no EAP certificate at %s yet: the daemon makes one at its first start", path)
	}
	server, ca, err = wifiprofile.Chain(path, caFile)
	if err != nil && ca == nil && server != nil {
		err = fmt.Errorf("%w (--ca FILE)", err)
	}
	return server, ca, err
}

func (c *cli) wifiCA(fs *flag.FlagSet) action {
	certFile := fs.String("cert", "", "the EAP certificate (PEM) to read, instead of the appliance's: for a machine other than the appliance")
	caFile := fs.String("ca", "", "the CA that issued a certificate the clinic supplied, if the certificate file lacks it")
	return action{offline: func(cfg config.Config, _ []string) error {
		server, ca, err := eapChain(cfg, *certFile, *caFile)
		if err != nil {
			return err
		}
		// The facts go to stderr, the PEM to stdout: "wifi ca > ca.pem".
		fmt.Fprintf(c.errw, "server name:  %s\n", strings.Join(wifiprofile.ServerNames(server), ", "))
		fmt.Fprintf(c.errw, "CA:           %s, valid until %s\n", ca.Subject.CommonName, ca.NotAfter.Format("2006-01-02"))
		fmt.Fprintf(c.errw, "SHA-256:      %s\n", selfcert.FingerprintDER(ca.Raw))
		fmt.Fprintf(c.errw, "SHA-1 (Windows thumbprint): %s\n", wifiprofile.Thumbprint(ca))
		return pem.Encode(c.out, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	}}
}

func (c *cli) wifiProfile(fs *flag.FlagSet) action {
	ssid := fs.String("ssid", "", "the Wi-Fi network's name (required)")
	method := fs.String("method", "ttls", "ttls (password, and password,code for MFA), peap or tls (device certificate)")
	name := fs.String("server-name", "", "the name devices check in the server certificate (default: the certificate's first name)")
	org := fs.String("org", "", "the clinic's name, shown on the profile")
	outer := fs.String("outer-identity", "anonymous", "the name sent in clear before the tunnel (ttls, peap); empty sends the user's")
	wpa3 := fs.Bool("wpa3", false, "WPA3-Enterprise only (default WPA2, which a WPA2/WPA3 network also accepts)")
	certFile := fs.String("cert", "", "the EAP certificate (PEM) to read, instead of the appliance's: for a machine other than the appliance")
	caFile := fs.String("ca", "", "the CA that issued a certificate the clinic supplied, if the certificate file lacks it")
	scepURL := fs.String("scep", "", "with --method tls: the appliance's SCEP URL (https://HOST:PORT/scep); the device gets its certificate from it, with no MDM")
	challenge := fs.String("challenge", "", "with --scep: a challenge from 'clinicgate scep challenge' (default: one is made now, with --device, --user, --mac, --ttl, --validity)")
	chReq := scepChallengeFlags(fs)
	return action{
		check: func([]string) error {
			if *ssid == "" {
				return usageError{"wifi profile: --ssid is required"}
			}
			if *scepURL != "" && *method != string(wifiprofile.TLS) {
				return usageError{"wifi profile: --scep needs --method tls (the certificate is the device's EAP-TLS identity)"}
			}
			if *challenge != "" && *scepURL == "" {
				return usageError{"wifi profile: --challenge goes with --scep URL"}
			}
			return nil
		},
		offline: func(cfg config.Config, _ []string) error {
			server, ca, err := eapChain(cfg, *certFile, *caFile)
			if err != nil {
				return err
			}
			sn := *name
			if sn == "" {
				names := wifiprofile.ServerNames(server)
				if len(names) == 0 {
					return errors.New("the EAP certificate names no server: give --server-name")
				}
				sn = names[0]
			}
			p := wifiprofile.Profile{
				SSID: *ssid, Method: wifiprofile.Method(*method), CA: ca, ServerName: sn,
				Organization: *org, OuterIdentity: *outer, WPA3: *wpa3,
			}
			if *scepURL != "" {
				if p.SCEP, err = c.scepPayload(cfg, *scepURL, *challenge, *chReq); err != nil {
					return err
				}
			}
			b, err := wifiprofile.MobileConfig(p)
			if err != nil {
				return err
			}
			_, err = c.out.Write(b)
			return err
		}}
}

// scepPayload gathers a profile's SCEP payload through the admin
// service (the console's Wi-Fi pane makes the same): the device CA, the
// SCEP server's certificate (self-signed unless the clinic supplied one)
// and a challenge, made now unless one is given.
func (c *cli) scepPayload(cfg config.Config, url, challenge string, r admin.SCEPChallengeRequest) (*wifiprofile.SCEP, error) {
	ctx := context.Background()
	svc, done, err := openAdmin(ctx, cfg.DataDir, actor())
	if err != nil {
		return nil, err
	}
	defer done()
	certPath := cfg.SCEP.CertFile
	if certPath == "" {
		certPath = filepath.Join(cfg.DataDir, ldapproxy.CertFile)
	}
	if _, err := os.Stat(certPath); errors.Is(err, os.ErrNotExist) && cfg.SCEP.CertFile == "" {
		return nil, fmt.Errorf("no SCEP HTTPS certificate at %s yet: the daemon makes it at its first start (with scep.listen set)", certPath)
	}
	s, ch, err := svc.SCEPPayload(ctx, admin.WiFiSCEP{URL: url, CertFile: certPath, Challenge: challenge, Device: r})
	if err != nil {
		return nil, err
	}
	if ch != nil {
		fmt.Fprintf(c.errw, "the profile holds a one-time SCEP challenge, usable once until %s: give it to one device only\n", ch.ExpiresAt.Local().Format("2006-01-02 15:04"))
	}
	return s, nil
}
