// Package config reads the small bootstrap file: only what must be known
// before the store opens (listen addresses, data directory, logging).
// Everything else lives in the store.
//
// Loading is: read the file (if any) → apply defaults → validate, and an
// invalid file is an error that names the field and what to write instead.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the bootstrap configuration.
type Config struct {
	// DataDir holds the database and its key file.
	DataDir string `yaml:"data_dir"`
	// RADIUS listen addresses ("host:port"; "" turns a listener off).
	RADIUS struct {
		Auth string `yaml:"auth"`
		Acct string `yaml:"acct"`
		// EAPCertFile/EAPKeyFile: the certificate 802.1X devices check
		// (EAP-TTLS); empty: one generated at first start in the data
		// directory.
		EAPCertFile string `yaml:"eap_cert_file"`
		EAPKeyFile  string `yaml:"eap_key_file"`
		// EAPClientCAFile is a PEM bundle of the CAs whose client
		// certificates EAP-TLS accepts; empty: eap-client-ca.pem in the
		// data directory if it is there. Without anchors EAP-TLS is off.
		EAPClientCAFile string `yaml:"eap_client_ca_file"`
		// EAPCRLFile is a CRL (PEM or DER) of those CAs, read again when
		// it changes; empty: no revocation check.
		EAPCRLFile string `yaml:"eap_crl_file"`
	} `yaml:"radius"`
	// HTTP is the address of /healthz and /metrics. Keep it on loopback.
	// LDAP is the LDAP door for EHR systems (389 and 636 in the appliance
	// image; unprivileged ports in development). An empty address turns
	// that listener off.
	LDAP struct {
		Listen    string `yaml:"listen"`     // LDAP, with StartTLS
		ListenTLS string `yaml:"listen_tls"` // LDAPS
		// CertFile/KeyFile: the server certificate; empty: one generated
		// at first start in the data directory.
		CertFile          string `yaml:"cert_file"`
		KeyFile           string `yaml:"key_file"`
		MaxConns          int    `yaml:"max_conns"`
		MaxConnsPerSource int    `yaml:"max_conns_per_source"`
		IdleTimeout       string `yaml:"idle_timeout"`
	} `yaml:"ldap"`
	HTTP string `yaml:"http"`
	// PProf adds Go's profiler (net/http/pprof, under /debug/pprof/) to
	// the HTTP address above, for diagnosing CPU and memory use. Off by
	// default; it is refused unless HTTP is a loopback address, since a
	// profile shows memory contents and costs CPU to take.
	PProf bool `yaml:"pprof"`
	// SCEP is the device-certificate door (RFC 8894, docs/scep.md), over
	// HTTPS; off unless Listen is set.
	SCEP struct {
		// Listen is the HTTPS address of /scep, /cgi-bin/pkiclient.exe
		// and the device CA's CRL ("" turns it off).
		Listen string `yaml:"listen"`
		// CertFile/KeyFile: the HTTPS certificate; empty: the appliance's
		// LDAP certificate, generated at first start in the data directory.
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
		// PublicURL is how devices reach the door (for example
		// "https://gate.clinic.lan:9443"): the CRL address written into
		// certificates and the SCEP URL of Wi-Fi profiles. Empty: this
		// host's name and the listen port.
		PublicURL string `yaml:"public_url"`
		// MaxConcurrent bounds enrolments at once (0: 4).
		MaxConcurrent int `yaml:"max_concurrent"`
	} `yaml:"scep"`
	// SSH is the console's SSH address ("" turns it off); SSHIdleTimeout
	// closes a console left alone (Go duration, e.g. "15m").
	SSH            string `yaml:"ssh"`
	SSHIdleTimeout string `yaml:"ssh_idle_timeout"`
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	// MemoryLimitMB is the Go runtime's soft memory limit (0: none).
	MemoryLimitMB int `yaml:"memory_limit_mb"`
	// HashConcurrency bounds password hashes at once (0: one per CPU).
	HashConcurrency int `yaml:"hash_concurrency"`
}

// Default returns the built-in configuration (used when no file is given).
func Default() Config {
	var c Config
	c.DataDir = "/var/lib/clinicgate"
	c.RADIUS.Auth = ":1812"
	c.RADIUS.Acct = ":1813"
	c.LDAP.Listen = ":10389"
	c.LDAP.ListenTLS = ":10636"
	c.LDAP.MaxConns = 512
	c.LDAP.MaxConnsPerSource = 64
	c.LDAP.IdleTimeout = "2m"
	c.HTTP = "127.0.0.1:9812"
	c.SSH = ":2222"
	c.SSHIdleTimeout = "15m"
	c.LogLevel = "info"
	c.LogFormat = "text"
	c.MemoryLimitMB = 120
	return c
}

// Load reads path over the defaults. An empty path returns the defaults.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if d, err := time.ParseDuration(c.SSHIdleTimeout); err != nil || d < time.Second || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("ssh_idle_timeout: %q is not a duration from 1s to 24h (for example \"15m\")", c.SSHIdleTimeout))
	}
	if d, err := time.ParseDuration(c.LDAP.IdleTimeout); err != nil || d < time.Second || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("ldap.idle_timeout: %q is not a duration from 1s to 24h (for example \"2m\")", c.LDAP.IdleTimeout))
	}
	if c.LDAP.MaxConns < 1 || c.LDAP.MaxConnsPerSource < 1 || c.LDAP.MaxConnsPerSource > c.LDAP.MaxConns {
		errs = append(errs, fmt.Errorf("ldap: max_conns (%d) and max_conns_per_source (%d) must be at least 1, and per source at most the total", c.LDAP.MaxConns, c.LDAP.MaxConnsPerSource))
	}
	if (c.RADIUS.EAPCertFile == "") != (c.RADIUS.EAPKeyFile == "") {
		errs = append(errs, errors.New("radius: give both eap_cert_file and eap_key_file, or neither (then a certificate is generated)"))
	}
	if (c.LDAP.CertFile == "") != (c.LDAP.KeyFile == "") {
		errs = append(errs, errors.New("ldap: give both cert_file and key_file, or neither (then a certificate is generated)"))
	}
	if (c.SCEP.CertFile == "") != (c.SCEP.KeyFile == "") {
		errs = append(errs, errors.New("scep: give both cert_file and key_file, or neither (then the appliance's LDAP certificate is used)"))
	}
	if u := c.SCEP.PublicURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" {
			errs = append(errs, fmt.Errorf("scep.public_url: %q is not an https:// address without a path (for example \"https://gate.clinic.lan:9443\")", u))
		}
	}
	if c.SCEP.MaxConcurrent < 0 || c.SCEP.MaxConcurrent > 64 {
		errs = append(errs, errors.New("scep.max_concurrent must be from 0 (the default, 4) to 64"))
	}
	for name, a := range map[string]string{"radius.auth": c.RADIUS.Auth, "radius.acct": c.RADIUS.Acct, "http": c.HTTP, "ssh": c.SSH, "ldap.listen": c.LDAP.Listen, "ldap.listen_tls": c.LDAP.ListenTLS, "scep.listen": c.SCEP.Listen} {
		if a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port (for example \":1812\" or \"127.0.0.1:1812\")", name, a))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s: port %q is not a number from 0 to 65535", name, port))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format: %q is not text or json", c.LogFormat))
	}
	if c.PProf && !loopback(c.HTTP) {
		errs = append(errs, fmt.Errorf("pprof: the profiler is served only on a loopback http address (for example \"127.0.0.1:9812\"), not %q", c.HTTP))
	}
	if c.MemoryLimitMB < 0 {
		errs = append(errs, errors.New("memory_limit_mb cannot be negative"))
	}
	if c.HashConcurrency < 0 {
		errs = append(errs, errors.New("hash_concurrency cannot be negative"))
	}
	return errors.Join(errs...)
}

// loopback reports whether addr ("host:port") names a loopback host; an
// empty host (every interface) is not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
