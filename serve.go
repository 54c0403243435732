package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/dirsync"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/ldapproxy"
	"github.com/clinicgate/clinicgate/radius"
	"github.com/clinicgate/clinicgate/tui"
)

func (c *cli) serve(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("serve", &co)
	authAddr := fs.String("radius-auth", "", "RADIUS authentication address (overrides the config; \"\" turns it off)")
	acctAddr := fs.String("radius-acct", "", "RADIUS accounting address (overrides the config)")
	ldapAddr := fs.String("ldap", "", "LDAP address, with StartTLS (overrides the config; \"\" turns it off)")
	ldapsAddr := fs.String("ldaps", "", "LDAPS address (overrides the config; \"\" turns it off)")
	httpAddr := fs.String("http", "", "health and metrics address (overrides the config)")
	sshAddr := fs.String("ssh", "", "the console's SSH address (overrides the config; \"\" turns it off)")
	sshIdle := fs.String("ssh-idle-timeout", "", "close a console left alone this long (overrides the config)")
	demo := fs.Bool("demo", false, "on an empty store, add a loopback test client and user and print how to log in")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := co.resolve()
	if err != nil {
		return err
	}
	// A flag given as "" turns that listener off.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "radius-auth":
			cfg.RADIUS.Auth = *authAddr
		case "radius-acct":
			cfg.RADIUS.Acct = *acctAddr
		case "ldap":
			cfg.LDAP.Listen = *ldapAddr
		case "ldaps":
			cfg.LDAP.ListenTLS = *ldapsAddr
		case "http":
			cfg.HTTP = *httpAddr
		case "ssh":
			cfg.SSH = *sshAddr
		case "ssh-idle-timeout":
			cfg.SSHIdleTimeout = *sshIdle
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}
	return c.runDaemon(ctx, cfg, *demo)
}

func newLogger(cfg config.Config, w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// listenTCP opens a TCP listener and explains the usual failures.
func listenTCP(ctx context.Context, addr, what string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			hint = " (another program, such as slapd, already uses it: stop it or pick another port)"
		case errors.Is(err, syscall.EACCES):
			hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
		}
		return nil, fmt.Errorf("cannot listen for %s on %s: %w%s", what, addr, err, hint)
	}
	return ln, nil
}

// listenUDP opens a UDP socket and explains the usual failures.
func listenUDP(ctx context.Context, addr, what string) (net.PacketConn, error) {
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			hint = " (another RADIUS server, such as freeradius, already uses it: stop it or pick another port)"
		case errors.Is(err, syscall.EACCES):
			hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
		}
		return nil, fmt.Errorf("cannot listen for %s on %s: %w%s", what, addr, err, hint)
	}
	return conn, nil
}

func (c *cli) runDaemon(ctx context.Context, cfg config.Config, demo bool) error {
	log := newLogger(cfg, os.Stderr)
	if cfg.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	st, err := store.Open(ctx, cfg.DataDir, store.Options{Create: true})
	if err != nil {
		return err
	}
	defer st.Close()
	alog, err := audit.New(st, nil)
	if err != nil {
		return err
	}
	defer alog.Close()
	hasher, err := passwd.NewHasher(passwd.DefaultParams, cfg.HashConcurrency)
	if err != nil {
		return err
	}
	local, err := upstream.NewLocal(st, hasher)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := appliance.NewMetrics(reg)
	upstreams := upstream.NewRegistry(st, local, nil, log)
	defer upstreams.Close()
	reg.MustRegister(appliance.NewUpstreamCollector(upstreams.Status))
	gate, err := appliance.NewGate(appliance.Config{
		Store: st, Audit: alog, Hasher: hasher, Logger: log, Metrics: metrics,
		Upstreams: map[string]upstream.Verifier{"local": local}, Registry: upstreams,
	})
	if err != nil {
		return err
	}
	defer gate.Close()

	srv := &radius.Server{
		Gate: gate, Clients: appliance.NewClientTable(st, string(appliance.DoorRADIUS), nil),
		Accounting: st, Logger: log, Metrics: metrics,
	}
	g, gctx := errgroup.WithContext(ctx)
	var listening []string
	var listeners []admin.Listener // the same, typed, for the console
	if cfg.RADIUS.Auth != "" {
		conn, err := listenUDP(ctx, cfg.RADIUS.Auth, "RADIUS authentication")
		if err != nil {
			return err
		}
		listening = append(listening, fmt.Sprintf("  RADIUS authentication  %s/udp", conn.LocalAddr()))
		listeners = append(listeners, admin.Listener{Door: admin.ListenRADIUSAuth, Network: "udp", Address: conn.LocalAddr().String()})
		g.Go(func() error { return ignoreClosed(srv.Serve(conn)) })
	}
	if cfg.RADIUS.Acct != "" {
		conn, err := listenUDP(ctx, cfg.RADIUS.Acct, "RADIUS accounting")
		if err != nil {
			return err
		}
		listening = append(listening, fmt.Sprintf("  RADIUS accounting      %s/udp", conn.LocalAddr()))
		listeners = append(listeners, admin.Listener{Door: admin.ListenRADIUSAcct, Network: "udp", Address: conn.LocalAddr().String()})
		g.Go(func() error { return ignoreClosed(srv.ServeAccounting(conn)) })
	}
	var ldapSrv *ldapproxy.Server
	if cfg.LDAP.Listen != "" || cfg.LDAP.ListenTLS != "" {
		certPath, keyPath, fp := cfg.LDAP.CertFile, cfg.LDAP.KeyFile, ""
		if certPath == "" {
			var renewed bool
			if certPath, keyPath, fp, renewed, err = ldapproxy.EnsureCertificate(st.Dir()); err != nil {
				return fmt.Errorf("LDAP certificate: %w", err)
			}
			if renewed {
				log.Warn("the appliance's LDAP certificate was damaged and has been made again; EHRs that trusted the old one must be given the new one", "file", certPath, "sha256", fp)
				_, _ = alog.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "ldap_certificate_renewed", Actor: "daemon", Detail: "the LDAP certificate " + certPath + " was damaged and was made again (SHA-256 " + fp + ")"})
			}
		} else if fp, err = ldapproxy.Fingerprint(certPath); err != nil {
			return fmt.Errorf("ldap.cert_file: %w", err)
		}
		tlsCfg, err := ldapproxy.TLSConfig(certPath, keyPath)
		if err != nil {
			return err
		}
		idle, _ := time.ParseDuration(cfg.LDAP.IdleTimeout)
		ldapSrv, err = ldapproxy.New(ldapproxy.Config{
			Gate: gate, Store: st, Clients: appliance.NewClientTable(st, string(appliance.DoorLDAP), nil),
			Directories: upstreams, TLS: tlsCfg, Logger: log, Metrics: ldapproxy.NewMetrics(reg),
			MaxConns: cfg.LDAP.MaxConns, MaxConnsPerSource: cfg.LDAP.MaxConnsPerSource, IdleTimeout: idle,
		})
		if err != nil {
			return err
		}
		for _, l := range []struct {
			addr, what string
			tls        bool
			door       admin.ListenDoor
		}{{cfg.LDAP.Listen, "LDAP (StartTLS)", false, admin.ListenLDAP}, {cfg.LDAP.ListenTLS, "LDAPS", true, admin.ListenLDAPS}} {
			if l.addr == "" {
				continue
			}
			ln, err := listenTCP(ctx, l.addr, l.what)
			if err != nil {
				return err
			}
			listening = append(listening, fmt.Sprintf("  %-22s %s/tcp", l.what, ln.Addr()))
			listeners = append(listeners, admin.Listener{Door: l.door, Network: "tcp", Address: ln.Addr().String(), CertSHA256: fp})
			serveTLS := l.tls
			g.Go(func() error {
				var err error
				if serveTLS {
					err = ldapSrv.ServeTLS(ln)
				} else {
					err = ldapSrv.Serve(ln)
				}
				if errors.Is(err, ldapproxy.ErrServerClosed) {
					return nil
				}
				return err
			})
		}
		listening = append(listening, fmt.Sprintf("  %-22s %s (SHA-256 %s)", "LDAP certificate", certPath, fp))
	}
	var hs *http.Server
	if cfg.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return fmt.Errorf("cannot listen for health and metrics on %s: %w", cfg.HTTP, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := st.Ping(pctx); err != nil {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		listening = append(listening, fmt.Sprintf("  health and metrics     http://%s/healthz  /metrics", ln.Addr()))
		listeners = append(listeners, admin.Listener{Door: admin.ListenHTTP, Network: "tcp", Address: ln.Addr().String()})
		g.Go(func() error {
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	// The demo is set up only once the ports are ours, so a failed start
	// does not use up the one showing of the demo password.
	var demoInfo *demoSetup
	if demo {
		if demoInfo, err = setupDemo(ctx, st, alog, hasher); err != nil {
			return err
		}
	}
	var sshSrv *tui.SSH
	if cfg.SSH != "" {
		svc, err := admin.New(st, alog, hasher, "ssh")
		if err != nil {
			return err
		}
		idle, _ := time.ParseDuration(cfg.SSHIdleTimeout)
		hostKey := filepath.Join(st.Dir(), tui.HostKeyFile)
		fp, renewed, err := tui.EnsureHostKey(hostKey)
		if err != nil {
			return err
		}
		if renewed {
			log.Warn("the console's SSH host key was damaged and has been made again; admins' SSH clients will warn that it changed", "file", hostKey, "fingerprint", fp)
			_, _ = alog.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "ssh_host_key_renewed", Actor: "daemon", Detail: "the SSH host key " + hostKey + " was damaged and was made again (" + fp + ")"})
		}
		sshSrv, err = tui.NewSSH(tui.SSHConfig{HostKeyPath: hostKey, Keys: svc, Version: version, IdleTimeout: idle, Logger: log,
			AdminFor: func(actor string) tui.Admin { return svc.As(actor) }})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", cfg.SSH)
		if err != nil {
			return fmt.Errorf("cannot listen for the console's SSH on %s: %w", cfg.SSH, err)
		}
		listening = append(listening, fmt.Sprintf("  console over SSH       %s  (host key %s; add admins with 'clinicgate admin add-key NAME < key.pub')", ln.Addr(), fp))
		listeners = append(listeners, admin.Listener{Door: admin.ListenSSH, Network: "tcp", Address: ln.Addr().String(), HostKey: fp})
		g.Go(func() error {
			if err := sshSrv.Serve(ln); !errors.Is(err, tui.ErrSSHClosed) {
				return err
			}
			return nil
		})
	}
	if _, err := alog.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "start", Actor: "daemon", Detail: "clinicgate " + version + " started"}); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "clinicgate %s is running (data: %s). Listening on:\n%s\n", version, st.Dir(), strings.Join(listening, "\n"))
	if demoInfo != nil {
		demoInfo.print(c.out, cfg, st.Dir())
	} else if cs, err := st.Clients(ctx, ""); err == nil && len(cs) == 0 {
		fmt.Fprintf(c.out, "\nNo RADIUS clients yet. Add your Wi-Fi controller or VPN gateway:\n  clinicgate client add office-wifi --address 192.168.1.2 --data %s\n", st.Dir())
	}
	log.Info("started", "version", version, "data", st.Dir())
	sdNotify("READY=1\nSTATUS=answering")
	g.Go(func() error { watchdog(gctx, st.Ping); return nil })

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				log.Info("SIGHUP: users, clients, policies and settings are read from the store on every request and need no reload; listen addresses in the config file take effect at the next restart")
			}
		}
	})
	// Directory sync (Graph, Okta) for upstreams that have it, checked once
	// a minute against each one's interval.
	g.Go(func() error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			dirsync.Due(gctx, st, alog, time.Now, func(up string, stats store.DirStats, err error) {
				if err != nil {
					log.Warn("directory sync failed", "upstream", up, "err", err)
					return
				}
				log.Info("directory sync", "upstream", up, "users", stats.Users, "groups", stats.Groups, "created", stats.Created, "updated", stats.Updated, "disabled", stats.Disabled, "skipped", len(stats.Conflicts))
			})
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	// The daemon's status, for the console: where it listens, since when,
	// and its upstreams' health, written every few seconds.
	statusSvc, err := admin.New(st, alog, hasher, "daemon")
	if err != nil {
		return err
	}
	started := time.Now()
	g.Go(func() error {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			ds := admin.DaemonStatus{Version: version, StartedAt: started, UpdatedAt: time.Now(), Listeners: listeners}
			if hs, err := upstreams.Status(gctx); err == nil {
				for _, h := range hs {
					ds.Upstreams = append(ds.Upstreams, admin.UpstreamStatus{Name: h.Name, Kind: h.Kind, State: string(h.State), Since: h.Since, LastError: h.LastError})
				}
			}
			if err := statusSvc.ReportStatus(gctx, ds); err != nil && gctx.Err() == nil {
				log.Warn("could not record the daemon's status", "err", err)
			}
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	// Upstreams that can be checked without a login are checked in the
	// background, so the console and metrics show an outage before the
	// first nurse meets it.
	g.Go(func() error {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			upstreams.ProbeAll(gctx)
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: finishing requests in progress")
		sdNotify("STOPPING=1")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if ldapSrv != nil {
			err = errors.Join(err, ldapSrv.Shutdown(sctx))
		}
		if hs != nil {
			err = errors.Join(err, hs.Shutdown(sctx))
		}
		if sshSrv != nil {
			err = errors.Join(err, sshSrv.Shutdown(sctx))
		}
		_, aerr := alog.Append(sctx, audit.Entry{Kind: audit.KindSystem, Reason: "stop", Actor: "daemon", Detail: "clinicgate stopped"})
		return errors.Join(err, aerr)
	})
	return g.Wait()
}

func ignoreClosed(err error) error {
	if errors.Is(err, radius.ErrServerClosed) {
		return nil
	}
	return err
}

// ---- demo (make run)

type demoSetup struct {
	client, secret, user, password string
	fresh                          bool
}

// setupDemo adds, on an empty store, a loopback client and a user, so that a
// newcomer can log in within a minute. On a store that already has the demo
// client it gives alice a fresh password (the old one was shown once and is
// stored only as a hash).
func setupDemo(ctx context.Context, st *store.Store, alog *audit.Log, h *passwd.Hasher) (*demoSetup, error) {
	d := &demoSetup{client: "local-test", user: "alice", fresh: true}
	svc, err := admin.New(st, alog, h, "demo")
	if err != nil {
		return nil, err
	}
	pw, err := admin.GenerateSecret(nil)
	if err != nil {
		return nil, err
	}
	d.password = pw[:12]
	if c, err := st.ClientByName(ctx, d.client); err == nil {
		d.secret = string(c.Secret)
		if err := svc.EditUser(ctx, d.user, admin.UserEdit{Password: []byte(d.password), Unlock: true}); err != nil {
			d.fresh = false // alice was removed; the instructions still show the client
		}
		return d, nil
	}
	if cs, err := st.Clients(ctx, ""); err != nil || len(cs) > 0 {
		return nil, errors.New("--demo only sets up an empty store; this one has clients already")
	}
	pol := policy.Default()
	pol.MFA = policy.MFAEnrolled // alice can log in before she enrols a factor
	secret, err := svc.AddClient(ctx, admin.NewClient{Name: d.client, Address: "127.0.0.1", Policy: pol})
	if err != nil {
		return nil, err
	}
	// The LDAP door's demo client: an "EHR" on this machine.
	if _, err := svc.AddClient(ctx, admin.NewClient{Door: appliance.DoorLDAP, Name: "local-ehr", Address: "127.0.0.1", Policy: pol}); err != nil {
		return nil, err
	}
	if err := svc.AddUser(ctx, admin.NewUser{Name: d.user, DisplayName: "Alice (demo)", Groups: []string{"staff"}, Password: []byte(d.password)}); err != nil {
		return nil, err
	}
	d.secret = string(secret)
	return d, nil
}

func (d *demoSetup) print(w interface{ Write([]byte) (int, error) }, cfg config.Config, dir string) {
	host := "127.0.0.1"
	if _, port, err := net.SplitHostPort(cfg.RADIUS.Auth); err == nil && port != "1812" {
		host += ":" + port
	}
	pw := d.password
	if !d.fresh {
		pw = "<alice's password>"
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("\nDemo set-up: RADIUS client %q (127.0.0.1, shared secret %s) and user %q", d.client, d.secret, d.user)
	if d.fresh {
		p(" with password %s (new at every start)", d.password)
	} else {
		p(" (no longer exists; add a user with: bin/clinicgate user add NAME --password-stdin)")
	}
	p(".\n")
	if _, err := exec.LookPath("radtest"); err != nil {
		p("\nFirst install the RADIUS test tools:  sudo apt-get install freeradius-utils oathtool\n")
	}
	p("\nIn another terminal, in this folder:\n")
	p("  export CLINICGATE_DATA=%s\n", dir)
	p("1. Log in with a password:\n")
	p("     radtest %s '%s' %s 0 '%s'            → Access-Accept\n", d.user, pw, host, d.secret)
	p("2. Enrol a second factor (scan the QR code with an authenticator app, or use oathtool):\n")
	p("     bin/clinicgate mfa enroll %s\n", d.user)
	p("     radtest %s '%s' %s 0 '%s'            → Access-Challenge, note its State = 0x...\n", d.user, pw, host, d.secret)
	p("     echo \"User-Name=%s,User-Password=$(oathtool --totp -b SECRET),State=0x...,Message-Authenticator=0x00\" | radclient -x %s auth '%s'\n", d.user, host, d.secret)
	p("                                                              → Access-Accept\n")
	p("   or in one request, code appended to the password (wait 30 s: a code works once):\n")
	p("     radtest %s \"%s,$(oathtool --totp -b SECRET)\" %s 0 '%s'\n", d.user, pw, host, d.secret)
	if cfg.LDAP.Listen != "" {
		p("3. Log in over LDAP, as an EHR would (needs ldap-utils; after step 2 append the code: \"%s,$(oathtool --totp -b SECRET)\"):\n", pw)
		p("     LDAPTLS_CACERT=%s ldapwhoami -x -ZZ -H ldap://%s -D %s -w '%s'   → u:%s\n", filepath.Join(dir, ldapproxy.CertFile), cfg.LDAP.Listen, d.user, pw, d.user)
	}
	p("4. See every decision:  bin/clinicgate audit tail   and   bin/clinicgate audit verify\n")
	p("5. Or watch it live in the console:  bin/clinicgate tui   (over SSH: bin/clinicgate admin add-key me < ~/.ssh/id_ed25519.pub, then ssh -t -p 2222 127.0.0.1)\n")
	p("Stop with Ctrl-C. Start afresh with: make clean run\n")
}
