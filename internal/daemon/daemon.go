// Package daemon runs the appliance: it opens the store, builds the gate
// and the doors (RADIUS, LDAP, the console over SSH, health and metrics),
// opens every listener or none, serves them and the background jobs under
// one errgroup, and drains them all on shutdown.
//
// It holds no policy and speaks no protocol — the gate decides and the
// doors translate — and it never reads a command line: cmd/clinicgate does
// that and hands it a validated config.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/internal/wifiprofile"
	"github.com/clinicgate/clinicgate/ldapproxy"
	"github.com/clinicgate/clinicgate/radius"
	"github.com/clinicgate/clinicgate/scepserver"
	"github.com/clinicgate/clinicgate/tui"
)

// ErrServerClosed is returned by Listen and Run once the daemon has been
// shut down or closed.
var ErrServerClosed = errors.New("daemon: closed")

// Options are what the daemon needs besides the config.
type Options struct {
	// Version is stamped into the audit, the console and the status.
	Version string
	// Logger receives the daemon's log; nil means a text log on stderr.
	Logger *slog.Logger
	// Reload delivers SIGHUP (nil: none). The daemon reads users, clients
	// and settings from the store on every request, so a reload only says
	// so in the log.
	Reload <-chan os.Signal
	// DrainTimeout bounds how long requests in progress may take to
	// finish at shutdown (default 10 s).
	DrainTimeout time.Duration
}

// Daemon is the running appliance. Build it with Open, then Listen, Run,
// and Shutdown or Close.
type Daemon struct {
	cfg  config.Config
	opts Options
	log  *slog.Logger

	lock      *dirLock // the data directory, held while the daemon lives
	store     *store.Store
	audit     *audit.Log
	hasher    *passwd.Hasher
	upstreams *upstream.Registry
	gate      *appliance.Gate
	metrics   *prometheus.Registry

	radius *radius.Server
	ldap   *ldapproxy.Server
	http   *http.Server
	ssh    *tui.SSH

	// What Listen needs to describe the LDAP certificate and the console's
	// host key in the listing.
	ldapCert, ldapFP, sshFP string
	eapCert, eapFP          string
	eapStatus               *admin.EAPStatus

	// The CA of the appliance's own server certificates, and those of
	// them the daemon keeps (servercert.go; nil: the operator's own).
	serverCA        *pki.ServerCA
	ldapOwn, eapOwn *ownCert
	certMu          sync.Mutex

	// clock is the last clock check (clock.go); clockNow is this
	// machine's clock as the check reads it (tests shift it).
	clock    *admin.ClockStatus
	clockNow func() time.Time
	// logFile is the console's copy of the log (logfile.go).
	logFile *logFile

	// The device CA (nil until made) and the SCEP door (scep.go).
	deviceCA        *pki.CA
	scep            *http.Server
	scepFP, scepURL string
	scepCertFile    string
	scepEnroller    *pki.Enroller

	// Off-box replication (replica.go); nil when off.
	replica                    *replica.Replicator
	replicaVersion, replicaErr string
	restart                    bool // Run returns ErrRestart

	mu        sync.Mutex
	listeners []listener
	listening []string
	stopRun   context.CancelFunc // set while Run runs
	done      chan struct{}      // closed when Run has returned
	shutdown  bool
	closeOnce sync.Once
	closeErr  error
}

// Open builds the appliance from cfg: the store (created if missing), the
// audit log, the gate and every door the config turns on. Nothing listens
// yet. The caller must Close (or Shutdown) the daemon.
func Open(ctx context.Context, cfg config.Config, opts Options) (_ *Daemon, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	d := &Daemon{cfg: cfg, opts: opts, log: opts.Logger}
	defer func() {
		if err != nil {
			d.release()
		}
	}()
	if cfg.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	if err = fixPermissions(cfg.DataDir, d.log); err != nil {
		return nil, err
	}
	if d.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	// The daemon's messages also go to daemon.log, for the console
	// (logfile.go); the file failing to open costs only that.
	if lf, err := openLogFile(cfg.DataDir); err != nil {
		d.log.Warn("the console's copy of the log cannot be written; the journal still has it", "file", LogFile, "err", err)
	} else {
		d.logFile = lf
		d.log = slog.New(teeHandler{main: d.log.Handler(), file: slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	}
	if err := d.installPendingRestore(ctx); err != nil {
		return nil, err
	}
	if d.store, err = store.Open(ctx, cfg.DataDir, store.Options{Create: true}); err != nil {
		return nil, err
	}
	if d.audit, err = audit.New(d.store, nil); err != nil {
		return nil, err
	}
	if err = d.checkAuditHead(ctx); err != nil { // auditfwd.go
		return nil, err
	}
	if d.hasher, err = passwd.NewHasher(passwd.DefaultParams, cfg.HashConcurrency); err != nil {
		return nil, err
	}
	if err := d.startReplica(ctx); err != nil {
		return nil, err
	}
	// Bind-account secrets stored sealed before migration 011 become
	// hashes now, once (issue 16).
	if n, err := d.store.HashBindSecrets(ctx, d.hasher.Hash); err != nil {
		return nil, fmt.Errorf("hashing the bind accounts' secrets: %w", err)
	} else if n > 0 {
		d.log.Info("bind-account secrets are now kept as hashes", "accounts", n)
	}
	local, err := upstream.NewLocal(d.store, d.hasher)
	if err != nil {
		return nil, err
	}
	d.metrics = prometheus.NewRegistry()
	d.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := appliance.NewMetrics(d.metrics)
	d.upstreams = upstream.NewRegistry(d.store, local, nil, d.log)
	d.metrics.MustRegister(appliance.NewUpstreamCollector(d.upstreams.Status))
	d.gate, err = appliance.NewGate(appliance.Config{
		Store: d.store, Audit: d.audit, Hasher: d.hasher, Logger: d.log, Metrics: metrics,
		Upstreams: map[string]upstream.Verifier{"local": local}, Registry: d.upstreams,
		Directories: d.upstreams,
	})
	if err != nil {
		return nil, err
	}
	d.radius = &radius.Server{
		Gate: d.gate, Clients: appliance.NewClientTable(d.store, string(appliance.DoorRADIUS), nil),
		Accounting: d.gate, Logger: d.log, Metrics: metrics,
	}
	if err := d.openDeviceCA(ctx); err != nil {
		return nil, err
	}
	if d.radius.EAP, err = d.openEAP(ctx); err != nil {
		return nil, err
	}
	if cfg.SCEP.Listen != "" {
		if err := d.openSCEP(); err != nil {
			return nil, err
		}
	}
	if cfg.LDAP.Listen != "" || cfg.LDAP.ListenTLS != "" {
		if err := d.openLDAP(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.HTTP != "" {
		d.openHTTP()
	}
	if cfg.SSH != "" {
		if err := d.openSSH(ctx); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// openEAP sets up the EAP server of the RADIUS door with the configured
// certificate, or the appliance's own, generated in the data directory on
// first start.
func (d *Daemon) openEAP(ctx context.Context) (*eap.Server, error) {
	certPath, keyPath := d.cfg.RADIUS.EAPCertFile, d.cfg.RADIUS.EAPKeyFile
	if certPath == "" {
		// A first-wave self-signed EAP certificate is kept: every Wi-Fi
		// profile pins it, and replacing it would lock every device out
		// at the upgrade (docs/security.md says how to move to the CA).
		d.eapOwn = &ownCert{door: "eap", certFile: eap.CertFile, keyFile: eap.KeyFile, opts: pki.LeafOptions{KeepSelfSigned: true}}
		r, err := d.ensureOwnCert(ctx, d.eapOwn)
		if err != nil {
			return nil, err
		}
		certPath, keyPath = r.CertPath, r.KeyPath
		if r.SelfSigned {
			d.log.Info("the EAP certificate is the first wave's self-signed one, kept because Wi-Fi profiles pin it; docs/security.md says how to move to the appliance CA", "file", certPath)
		}
	}
	var get func() *tls.Certificate
	if d.eapOwn != nil {
		get = d.eapOwn.pair.Certificate
	}
	tlsCfg, err := eap.TLSConfigFrom(certPath, keyPath, get)
	if err != nil {
		return nil, err
	}
	if d.eapFP, err = selfcert.Fingerprint(certPath); err != nil {
		return nil, err
	}
	d.eapCert = certPath
	d.eapStatus = eapStatus(certPath)
	srv := &eap.Server{Gate: d.gate, TLS: tlsCfg}
	if err := d.openEAPTLS(ctx, srv); err != nil {
		return nil, err
	}
	return srv, nil
}

// openEAPTLS loads EAP-TLS's trust anchors and CRL, when configured (or
// when the data directory holds eap-client-ca.pem), and logs which
// anchors are in force.
func (d *Daemon) openEAPTLS(ctx context.Context, srv *eap.Server) error {
	caPath := d.cfg.RADIUS.EAPClientCAFile
	if caPath == "" {
		caPath = filepath.Join(d.store.Dir(), eap.ClientCAFile)
		if _, err := os.Stat(caPath); errors.Is(err, os.ErrNotExist) && d.deviceCA != nil {
			caPath = "" // the device CA alone (scep.go)
		} else if errors.Is(err, os.ErrNotExist) {
			if d.cfg.RADIUS.EAPCRLFile != "" {
				return fmt.Errorf("radius.eap_crl_file is set but there are no EAP-TLS trust anchors: set radius.eap_client_ca_file or put %s in the data directory", eap.ClientCAFile)
			}
			d.log.Info("EAP-TLS is off: no trust anchors (set radius.eap_client_ca_file, or put the devices' CA in the data directory as " + eap.ClientCAFile + ")")
			return nil
		}
	}
	pool, anchors := x509.NewCertPool(), []*x509.Certificate(nil)
	if caPath != "" {
		var err error
		if pool, anchors, err = eap.LoadClientCAs(caPath); err != nil {
			return err
		}
	}
	anchors = d.addDeviceCA(pool, anchors)
	for _, c := range anchors {
		from := caPath
		if d.deviceCA != nil && c.Equal(d.deviceCA.Cert) {
			from = "the store (the device CA of SCEP)"
		}
		d.log.Info("EAP-TLS trust anchor", "file", from, "subject", c.Subject.String(), "sha256", selfcert.FingerprintDER(c.Raw), "not_after", c.NotAfter.UTC().Format(time.DateOnly))
		if d.eapStatus != nil {
			fp := selfcert.FingerprintDER(c.Raw)
			d.eapStatus.Anchors = append(d.eapStatus.Anchors, c.Subject.CommonName+" "+fp[:23]+"…")
		}
	}
	srv.ClientCAs = pool
	if p := d.cfg.RADIUS.EAPCRLFile; p != "" {
		f, err := eap.OpenCRLFile(ctx, p, d.log)
		if err != nil {
			return err
		}
		crls, _ := f.CRLs()
		for _, c := range crls {
			d.log.Info("EAP-TLS CRL", "file", p, "issuer", c.Issuer.String(), "revoked", len(c.RevokedCertificateEntries), "next_update", c.NextUpdate.UTC().Format(time.RFC3339))
		}
		srv.CRLs = f.CRLs
	}
	return nil
}

// eapStatus describes the EAP certificate for the console: the CA devices
// must trust and the names they must check. A CA the file lacks leaves
// those empty; the console then says to give devices the issuer.
func eapStatus(certPath string) *admin.EAPStatus {
	st := &admin.EAPStatus{CertFile: certPath}
	server, ca, _ := wifiprofile.Chain(certPath, "")
	if server == nil {
		return st
	}
	st.ServerName, st.NotAfter = wifiprofile.ServerNames(server), server.NotAfter
	if ca != nil {
		st.CAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
		st.CASubject, st.CASHA256, st.CAThumb = ca.Subject.CommonName, selfcert.FingerprintDER(ca.Raw), wifiprofile.Thumbprint(ca)
		if ca.NotAfter.Before(st.NotAfter) {
			st.NotAfter = ca.NotAfter
		}
	}
	return st
}

func (d *Daemon) openLDAP(ctx context.Context) error {
	cfg := d.cfg.LDAP
	certPath, keyPath, fp := cfg.CertFile, cfg.KeyFile, ""
	var get func() *tls.Certificate
	if certPath == "" {
		r, err := d.ownLDAPCert(ctx)
		if err != nil {
			return err
		}
		certPath, keyPath, get = r.CertPath, r.KeyPath, d.ldapOwn.pair.Certificate
		fp = selfcert.FingerprintDER(r.Leaf.Raw)
	} else {
		var err error
		if fp, err = selfcert.Fingerprint(certPath); err != nil {
			return fmt.Errorf("ldap.cert_file: %w", err)
		}
	}
	tlsCfg, err := ldapproxy.TLSConfigFrom(certPath, keyPath, get)
	if err != nil {
		return err
	}
	idle, _ := time.ParseDuration(cfg.IdleTimeout)
	d.ldap, err = ldapproxy.New(ldapproxy.Config{
		Gate: d.gate, Clients: appliance.NewClientTable(d.store, string(appliance.DoorLDAP), nil),
		TLS: tlsCfg, Logger: d.log, Metrics: ldapproxy.NewMetrics(d.metrics),
		MaxConns: cfg.MaxConns, MaxConnsPerSource: cfg.MaxConnsPerSource, IdleTimeout: idle,
	})
	d.ldapCert, d.ldapFP = certPath, fp
	return err
}

func (d *Daemon) openHTTP() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.store.Ping(pctx); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{}))
	if d.cfg.PProf {
		addPProf(mux)
	}
	d.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

func (d *Daemon) openSSH(ctx context.Context) error {
	svc, err := admin.New(d.store, d.audit, d.hasher, "ssh")
	if err != nil {
		return err
	}
	idle, _ := time.ParseDuration(d.cfg.SSHIdleTimeout)
	hostKey := filepath.Join(d.store.Dir(), tui.HostKeyFile)
	fp, renewed, err := tui.EnsureHostKey(hostKey)
	if err != nil {
		return err
	}
	if renewed {
		d.log.Warn("the console's SSH host key was damaged and has been made again; admins' SSH clients will warn that it changed", "file", hostKey, "fingerprint", fp)
		_, _ = d.audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "ssh_host_key_renewed", Actor: "daemon", Detail: "the SSH host key " + hostKey + " was damaged and was made again (" + fp + ")"})
	}
	d.ssh, err = tui.NewSSH(tui.SSHConfig{HostKeyPath: hostKey, Keys: svc, Version: d.opts.Version, IdleTimeout: idle, Logger: d.log,
		DataDir: d.store.Dir(), AdminFor: func(actor string) tui.Admin { return svc.As(actor) }})
	d.sshFP = fp
	return err
}

// Dir is the data directory the daemon's store lives in.
func (d *Daemon) Dir() string { return d.store.Dir() }

// Admin returns the admin service over the daemon's store, acting as
// actor (the demo set-up uses it).
func (d *Daemon) Admin(actor string) (*admin.Service, error) {
	return admin.New(d.store, d.audit, d.hasher, actor)
}

// Listening describes, one line each, where the daemon listens; empty
// before Listen.
func (d *Daemon) Listening() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.listening...)
}

// listener is one open socket and the server that answers on it.
type listener struct {
	desc  string         // the line of the start-up listing
	typed admin.Listener // the same, for the console (zero: not a socket)
	serve func() error   // returns nil once the daemon shuts down
	close func() error
}

// Listen opens every listener the config turns on, or none: when one
// cannot be opened, those already open are closed again and the error
// says which address failed and what to do about it.
func (d *Daemon) Listen(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shutdown {
		return ErrServerClosed
	}
	if d.listeners != nil {
		return errors.New("daemon: Listen called twice")
	}
	var opened []listener
	fail := func(err error) error {
		for _, l := range opened {
			if l.close != nil {
				_ = l.close()
			}
		}
		return fmt.Errorf("%w; clinicgate did not start, and the ports it had opened are closed again", err)
	}
	udp := func(door admin.ListenDoor, addr, what string, serve func(net.PacketConn) error) error {
		conn, err := listenUDP(ctx, addr, what)
		if err != nil {
			return err
		}
		opened = append(opened, listener{desc: fmt.Sprintf("  %-22s %s/udp", what, conn.LocalAddr()),
			typed: admin.Listener{Door: door, Network: "udp", Address: conn.LocalAddr().String()},
			serve: func() error { return ignore(serve(conn), radius.ErrServerClosed) }, close: conn.Close})
		return nil
	}
	tcp := func(typed admin.Listener, addr, what string, desc func(net.Addr) string, serve func(net.Listener) error, closed error) error {
		ln, err := listenTCP(ctx, addr, what)
		if err != nil {
			return err
		}
		typed.Network, typed.Address = "tcp", ln.Addr().String()
		opened = append(opened, listener{desc: desc(ln.Addr()), typed: typed, serve: func() error { return ignore(serve(ln), closed) }, close: ln.Close})
		return nil
	}
	if a := d.cfg.RADIUS.Auth; a != "" {
		if err := udp(admin.ListenRADIUSAuth, a, "RADIUS authentication", d.radius.Serve); err != nil {
			return fail(err)
		}
	}
	if d.cfg.RADIUS.Auth != "" && d.radius.EAP != nil {
		// Not a socket: the listing shows the CA 802.1X devices must trust.
		opened = append(opened, listener{desc: fmt.Sprintf("  %-22s %s (SHA-256 %s)", "EAP certificate", d.eapCert, d.eapFP)})
	}
	if a := d.cfg.RADIUS.Acct; a != "" {
		if err := udp(admin.ListenRADIUSAcct, a, "RADIUS accounting", d.radius.ServeAccounting); err != nil {
			return fail(err)
		}
	}
	if d.ldap != nil {
		for _, l := range []struct {
			door       admin.ListenDoor
			addr, what string
			serve      func(net.Listener) error
		}{{admin.ListenLDAP, d.cfg.LDAP.Listen, "LDAP (StartTLS)", d.ldap.Serve}, {admin.ListenLDAPS, d.cfg.LDAP.ListenTLS, "LDAPS", d.ldap.ServeTLS}} {
			if l.addr == "" {
				continue
			}
			what := l.what
			desc := func(a net.Addr) string { return fmt.Sprintf("  %-22s %s/tcp", what, a) }
			if err := tcp(admin.Listener{Door: l.door, CertSHA256: d.ldapFP}, l.addr, l.what, desc, l.serve, ldapproxy.ErrServerClosed); err != nil {
				return fail(err)
			}
		}
		// Not a socket: the listing shows which certificate EHRs must trust.
		opened = append(opened, listener{desc: fmt.Sprintf("  %-22s %s (SHA-256 %s)", "LDAP certificate", d.ldapCert, d.ldapFP)})
	}
	if d.serverCA != nil && (d.ldapOwn != nil || d.eapOwn != nil && !d.eapOwn.pair.Certificate().Leaf.IsCA) {
		// The CA that EHRs and Wi-Fi profiles trust, which renewals of
		// the certificates above do not change.
		opened = append(opened, listener{desc: fmt.Sprintf("  %-22s %s (SHA-256 %s)", "appliance CA (trust)", filepath.Join(d.store.Dir(), pki.ServerCAFile), selfcert.FingerprintDER(d.serverCA.Cert.Raw))})
	}
	if d.http != nil {
		desc := func(a net.Addr) string {
			return fmt.Sprintf("  health and metrics     http://%s/healthz  /metrics", a)
		}
		if err := tcp(admin.Listener{Door: admin.ListenHTTP}, d.cfg.HTTP, "health and metrics", desc, d.http.Serve, http.ErrServerClosed); err != nil {
			return fail(err)
		}
	}
	if d.scep != nil {
		desc := func(a net.Addr) string {
			d.scepListening(a)
			return fmt.Sprintf("  SCEP (device certs)    https://%s%s  (as %s; certificate SHA-256 %s)", a, scepserver.PathSCEP, d.scepURL, d.scepFP)
		}
		serve := func(ln net.Listener) error { return d.scep.ServeTLS(ln, "", "") }
		if err := tcp(admin.Listener{Door: admin.ListenSCEP, CertSHA256: d.scepFP}, d.cfg.SCEP.Listen, "SCEP", desc, serve, http.ErrServerClosed); err != nil {
			return fail(err)
		}
	}
	if d.ssh != nil {
		desc := func(a net.Addr) string {
			return fmt.Sprintf("  console over SSH       %s  (host key %s; add admins with 'clinicgate admin add-key NAME < key.pub')", a, d.sshFP)
		}
		if err := tcp(admin.Listener{Door: admin.ListenSSH, HostKey: d.sshFP}, d.cfg.SSH, "the console's SSH", desc, d.ssh.Serve, tui.ErrSSHClosed); err != nil {
			return fail(err)
		}
	}
	d.listeners = opened
	d.listening = make([]string, 0, len(opened))
	for _, l := range opened {
		d.listening = append(d.listening, l.desc)
	}
	return nil
}

func ignore(err, closed error) error {
	if errors.Is(err, closed) {
		return nil
	}
	return err
}

// Run answers on the listeners Listen opened and runs the background jobs
// until ctx ends (SIGTERM) or one of them fails; then it drains requests
// in progress, waits for every goroutine and releases the store. It
// returns nil after ctx ended, ErrServerClosed after Shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.shutdown {
		d.mu.Unlock()
		return ErrServerClosed
	}
	if d.stopRun != nil {
		d.mu.Unlock()
		return errors.New("daemon: Run called twice")
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.stopRun, d.done = cancel, make(chan struct{})
	listeners := d.listeners
	d.mu.Unlock()
	defer close(d.done)
	releaseStartupMemory()

	err := d.run(ctx, listeners)
	err = errors.Join(err, d.release())
	d.mu.Lock()
	shut, restart := d.shutdown, d.restart
	d.mu.Unlock()
	if err == nil && restart && !shut && parent.Err() == nil {
		return ErrRestart
	}
	if err == nil && shut {
		return ErrServerClosed
	}
	return err
}

func (d *Daemon) run(ctx context.Context, listeners []listener) error {
	if _, err := d.audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "start", Actor: "daemon", Detail: "clinicgate " + d.opts.Version + " started"}); err != nil {
		if ctx.Err() != nil {
			return nil // told to stop before it started
		}
		return err
	}
	d.log.Info("started", "version", d.opts.Version, "data", d.store.Dir())
	sdNotify("READY=1\nSTATUS=answering")

	jobs, err := d.jobs()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	var stopping atomic.Bool
	for _, l := range listeners {
		if l.serve == nil {
			continue
		}
		g.Go(func() error {
			err := l.serve()
			if err != nil && stopping.Load() {
				// A server that had not reached its accept loop when
				// the shutdown began meets its closed listener instead.
				return nil
			}
			return err
		})
	}
	for _, j := range jobs {
		g.Go(func() error { j.loop(gctx); return nil })
	}
	fwd, err := d.auditForwarder()
	if err != nil {
		return err
	}
	fctx, stopForwarder := context.WithCancel(context.WithoutCancel(ctx))
	defer stopForwarder()
	g.Go(func() error { fwd.Run(fctx); return nil })
	if d.opts.Reload != nil {
		g.Go(func() error {
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-d.opts.Reload:
					d.log.Info("SIGHUP: users, clients, policies and settings are read from the store on every request and need no reload; listen addresses in the config file take effect at the next restart")
				}
			}
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		stopping.Store(true)
		err := d.drain(context.WithoutCancel(ctx))
		stopForwarder() // after the stop entry, so it is forwarded too
		// Some servers (the console's SSH) keep waiting in Accept when
		// their Shutdown came before their Serve: closing every listener
		// ends those waits, so that Run returns in every case.
		for _, l := range listeners {
			if l.close != nil {
				_ = l.close()
			}
		}
		return err
	})
	return g.Wait()
}

// drain stops every server, lets requests in progress finish within the
// drain timeout, and records the stop.
func (d *Daemon) drain(ctx context.Context) error {
	d.log.Info("shutting down: finishing requests in progress")
	d.mu.Lock()
	restart := d.restart && !d.shutdown
	d.mu.Unlock()
	if restart {
		// Starting again in this process (new replication settings, a
		// restore): a reload to systemd, ended by the new daemon's
		// READY=1. STOPPING=1 made systemd kill the process
		// TimeoutStopSec later, mid-work (make image-test found it).
		sdNotify("RELOADING=1\nSTATUS=starting again to apply new settings")
	} else {
		sdNotify("STOPPING=1")
	}
	sctx, cancel := context.WithTimeout(ctx, d.opts.DrainTimeout)
	defer cancel()
	err := d.radius.Shutdown(sctx)
	if d.ldap != nil {
		err = errors.Join(err, d.ldap.Shutdown(sctx))
	}
	if d.http != nil {
		err = errors.Join(err, d.http.Shutdown(sctx))
	}
	if d.scep != nil {
		err = errors.Join(err, d.scep.Shutdown(sctx))
	}
	if d.ssh != nil {
		err = errors.Join(err, d.ssh.Shutdown(sctx))
	}
	_, aerr := d.audit.Append(sctx, audit.Entry{Kind: audit.KindSystem, Reason: "stop", Actor: "daemon", Detail: "clinicgate stopped"})
	return errors.Join(err, aerr)
}

// Shutdown stops a running daemon as SIGTERM does — the servers drain,
// every goroutine ends, the gate's worker included — and returns when all
// of that is done or ctx ends. On a daemon that never ran it releases what
// Open and Listen took.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.shutdown = true
	stop, done := d.stopRun, d.done
	d.mu.Unlock()
	if stop == nil {
		return d.release()
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close is Shutdown without a deadline.
func (d *Daemon) Close() error { return d.Shutdown(context.Background()) }

// release closes, once, everything Open and Listen took, innermost last:
// the sockets, the gate (waiting for its worker), the upstream
// connections, the audit log and the store.
func (d *Daemon) release() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		ls := d.listeners
		d.mu.Unlock()
		for _, l := range ls {
			if l.close != nil {
				_ = l.close() // most are closed already by their server's Shutdown
			}
		}
		if d.gate != nil {
			d.gate.Close()
		}
		if d.upstreams != nil {
			d.upstreams.Close()
		}
		if d.audit != nil {
			d.audit.Close()
		}
		if d.store != nil {
			d.closeErr = errors.Join(d.closeErr, d.store.Close())
		}
		if d.logFile != nil {
			_ = d.logFile.Close()
		}
		// Litestream's descriptor on the database closes only now.
		d.closeErr = errors.Join(d.closeErr, d.closeReplica())
		d.lock.release()
	})
	return d.closeErr
}

// status is the daemon's report for the console.
func (d *Daemon) status(svc *admin.Service, started time.Time) func(context.Context) {
	var addrs []admin.Listener
	d.mu.Lock()
	for _, l := range d.listeners {
		if l.typed.Door != "" {
			addrs = append(addrs, l.typed)
		}
	}
	d.mu.Unlock()
	return func(ctx context.Context) {
		d.mu.Lock()
		eapSt, clockSt := d.eapStatus, d.clock
		d.mu.Unlock()
		ds := admin.DaemonStatus{Version: d.opts.Version, StartedAt: started, UpdatedAt: time.Now(), Listeners: addrs, EAP: eapSt, Clock: clockSt}
		if ds.LDAPCert = d.certStatus(ctx, d.ldapOwn); ds.LDAPCert != nil {
			// A renewed leaf is what a pinning client now sees.
			ls := make([]admin.Listener, len(addrs))
			for i, l := range addrs {
				if l.Door == admin.ListenLDAP || l.Door == admin.ListenLDAPS {
					l.CertSHA256 = ds.LDAPCert.SHA256
				}
				ls[i] = l
			}
			ds.Listeners = ls
		}
		if hs, err := d.upstreams.Status(ctx); err == nil {
			for _, h := range hs {
				ds.Upstreams = append(ds.Upstreams, admin.UpstreamStatus{Name: h.Name, Kind: h.Kind, State: string(h.State), Since: h.Since, LastError: h.LastError})
			}
		}
		ds.Throttled = d.gate.Throttled(ctx, time.Now())
		if d.radius != nil {
			for _, st := range d.radius.Drops() {
				ds.Drops = append(ds.Drops, admin.RADIUSDrop{Cause: st.Cause, Count: st.Count, Client: st.Client, From: st.From, Last: st.Last})
			}
		}
		if fs, err := svc.AuditForwardStatus(ctx); err == nil && fs.Configured {
			ds.AuditForward = &fs
		}
		if d.logFile != nil {
			d.logFile.Flush()
		}
		ds.Replica = d.replicaStatus()
		if d.scep != nil {
			ds.SCEP = &admin.SCEPDoorStatus{URL: d.scepURL, CertFile: d.scepCertFile}
		}
		if err := svc.ReportStatus(ctx, ds); err != nil && ctx.Err() == nil {
			d.log.Warn("could not record the daemon's status", "err", err)
		}
	}
}
