package daemon

// The device CA and the SCEP door: the CA is an EAP-TLS trust anchor
// whenever it exists, so a certificate it issued passes EAP-TLS with no
// file to copy; the door is an HTTPS server of its own, off unless
// scep.listen is set.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/scepserver"
)

// openDeviceCA loads the device CA, making it when the SCEP door is on
// (its first use); without the door, a CA made earlier (by 'clinicgate
// scep challenge') is still loaded, for EAP-TLS.
func (d *Daemon) openDeviceCA(ctx context.Context) error {
	var err error
	if d.cfg.SCEP.Listen != "" {
		d.deviceCA, err = pki.Ensure(ctx, d.store, time.Now())
	} else if d.deviceCA, err = pki.Load(ctx, d.store); errors.Is(err, store.ErrNotFound) {
		d.deviceCA, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("device CA: %w", err)
	}
	return nil
}

// addDeviceCA puts the device CA among EAP-TLS's trust anchors.
func (d *Daemon) addDeviceCA(pool *x509.CertPool, anchors []*x509.Certificate) []*x509.Certificate {
	if d.deviceCA == nil {
		return anchors
	}
	pool.AddCert(d.deviceCA.Cert)
	return append(anchors, d.deviceCA.Cert)
}

// scepPublicURL is the configured public URL, or https://HOSTNAME:PORT
// of the listen address.
func scepPublicURL(publicURL, listen string) string {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		port = scepserver.DefaultPort
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

// openSCEP builds the SCEP door's HTTPS server.
func (d *Daemon) openSCEP() error {
	cfg := d.cfg.SCEP
	certPath, keyPath := cfg.CertFile, cfg.KeyFile
	var get func() *tls.Certificate
	if certPath == "" {
		r, err := d.ownLDAPCert(context.Background())
		if err != nil {
			return fmt.Errorf("SCEP HTTPS certificate: %w", err)
		}
		certPath, keyPath, get = r.CertPath, r.KeyPath, d.ldapOwn.pair.Certificate
	}
	tlsCfg, err := selfcert.ServerTLS(certPath, keyPath, get)
	if err != nil {
		return fmt.Errorf("SCEP HTTPS certificate: %w", err)
	}
	if d.scepFP, err = selfcert.Fingerprint(certPath); err != nil {
		return err
	}
	base := scepPublicURL(cfg.PublicURL, cfg.Listen)
	enr := &pki.Enroller{Store: d.store, Audit: d.audit, CA: d.deviceCA, CRLURL: base + scepserver.PathCRL, Now: time.Now, Log: d.log}
	srv, err := scepserver.New(scepserver.Config{CA: d.deviceCA, Enroller: enr, CRL: &pki.CRLCache{Store: d.store, CA: d.deviceCA, Now: time.Now},
		Logger: d.log, MaxConcurrent: cfg.MaxConcurrent, Metrics: scepserver.NewMetrics(d.metrics)})
	if err != nil {
		return err
	}
	d.scepURL, d.scepEnroller, d.scepCertFile = base+scepserver.PathSCEP, enr, certPath
	d.scep = &http.Server{
		Handler: srv.Handler(), TLSConfig: tlsCfg,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: 128 << 10,
		// Failed TLS handshakes (scanners, devices that do not trust the
		// certificate yet) are routine on a door devices reach: debug.
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// scepListening fixes the URLs once the port is known, when the config
// gives no public URL and the listen address left the port to the kernel
// (":0", in tests). It runs in Listen, before anything is served.
func (d *Daemon) scepListening(a net.Addr) {
	if d.cfg.SCEP.PublicURL != "" {
		return
	}
	if _, port, err := net.SplitHostPort(d.cfg.SCEP.Listen); err != nil || port != "0" {
		return
	}
	base := scepPublicURL("", a.String())
	d.scepURL, d.scepEnroller.CRLURL = base+scepserver.PathSCEP, base+scepserver.PathCRL
}
