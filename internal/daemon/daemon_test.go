package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// loopback is a config with every door on a port the kernel picks.
func loopback(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.RADIUS.Auth, cfg.RADIUS.Acct = "127.0.0.1:0", "127.0.0.1:0"
	cfg.LDAP.Listen, cfg.LDAP.ListenTLS = "127.0.0.1:0", "127.0.0.1:0"
	cfg.HTTP, cfg.SSH = "127.0.0.1:0", "127.0.0.1:0"
	cfg.MemoryLimitMB = 0
	return cfg
}

func open(t *testing.T, cfg config.Config) *Daemon {
	t.Helper()
	d, err := Open(t.Context(), cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestListenOpensAllOrNone: when one port is taken, the ports already
// opened are closed again and the error says which one failed.
func TestListenOpensAllOrNone(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := loopback(t)
	cfg.SSH = taken.Addr().String() // the last listener opened
	d := open(t, cfg)
	before := openFDs(t)
	err = d.Listen(t.Context())
	if err == nil {
		t.Fatal("Listen succeeded on a port in use")
	}
	for _, want := range []string{"cannot listen for the console's SSH on " + cfg.SSH, "already uses it", "did not start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("got %d open files after a failed Listen, want %d as before: the other listeners were left open", after, before)
	}
	if l := d.Listening(); len(l) != 0 {
		t.Errorf("a failed Listen reports listeners: %q", l)
	}
}

// TestShutdownWaitsForEveryGoroutine: Shutdown returns once every server,
// job and worker has ended and the store is closed.
func TestShutdownWaitsForEveryGoroutine(t *testing.T) {
	baseline := runtime.NumGoroutine()
	d := open(t, loopback(t))
	if err := d.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	var httpAddr string
	for _, l := range d.Listening() {
		if f := strings.Fields(l); len(f) > 3 && f[0] == "health" {
			httpAddr = strings.TrimSuffix(strings.TrimPrefix(f[3], "http://"), "/healthz")
		}
	}
	if httpAddr == "" {
		t.Fatalf("no health address in %q", d.Listening())
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	var resp *http.Response
	var err error
	for range 50 { // Run starts serving moments after it is called
		if resp, err = http.Get("http://" + httpAddr + "/healthz"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()

	// The console reads where the daemon listens as typed values.
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	var st admin.DaemonStatus
	for ok := false; !ok; {
		if st, ok, err = svc.Status(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // the status job reports at once when Run starts
	}
	if l, ok := st.Listener(admin.ListenHTTP); !ok || l.Address != httpAddr || l.Network != "tcp" {
		t.Errorf("reported http listener %+v, want tcp %s", l, httpAddr)
	}
	if l, ok := st.Listener(admin.ListenLDAPS); !ok || l.CertSHA256 != d.ldapFP || l.CertSHA256 == "" {
		t.Errorf("reported LDAPS listener %+v, want the certificate's fingerprint %s", l, d.ldapFP)
	}
	if l, ok := st.Listener(admin.ListenSSH); !ok || !strings.HasPrefix(l.HostKey, "SHA256:") {
		t.Errorf("reported SSH listener %+v, want its host key", l)
	}
	// The EAP certificate is a leaf of the appliance CA: the CA is what
	// devices trust, shown with the fingerprint of appliance-ca.pem.
	caFP, err := selfcert.Fingerprint(filepath.Join(d.Dir(), pki.ServerCAFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.EAP == nil || st.EAP.CASHA256 != caFP || d.eapFP == "" || d.eapFP == caFP || !strings.Contains(st.EAP.CAPEM, "BEGIN CERTIFICATE") || len(st.EAP.ServerName) == 0 || len(st.EAP.CAThumb) != 40 {
		t.Errorf("reported EAP %+v, want the appliance CA %s as its CA", st.EAP, caFP)
	}
	if c := st.LDAPCert; c == nil || c.SHA256 != d.ldapFP || c.CASHA256 != caFP || c.SelfSigned || c.Changed != nil {
		t.Errorf("reported LDAP certificate %+v, want the leaf %s of the CA %s", c, d.ldapFP, caFP)
	}
	if len(st.Listeners) != 6 {
		t.Errorf("reported %d listeners, want 6: %+v", len(st.Listeners), st.Listeners)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Run's work is over when Shutdown returns (its deferred close is
	// what Shutdown waits for); the return itself, and this test's
	// goroutine handing it over, may come a moment later. What is still
	// running is counted below.
	select {
	case err := <-ran:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Run after Shutdown: got %v, want ErrServerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Shutdown")
	}
	// The test's own goroutine that called Run may still be on its way
	// out after handing over Run's result.
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > baseline; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Shutdown, %d before Open:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
	if _, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		t.Error("the health port still answers after Shutdown")
	}
	if err := d.Listen(t.Context()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Listen after Shutdown: got %v, want ErrServerClosed", err)
	}
}

// TestShutdownEndsAServerThatMissedIt: a server whose Serve began after
// its Shutdown (the console's SSH then waits in Accept forever) is ended
// by its closed listener, so a SIGTERM right after the start still stops
// the daemon.
func TestShutdownEndsAServerThatMissedIt(t *testing.T) {
	cfg := loopback(t)
	cfg.RADIUS.Auth, cfg.RADIUS.Acct, cfg.LDAP.Listen, cfg.LDAP.ListenTLS, cfg.HTTP, cfg.SSH = "", "", "", "", "", ""
	d := open(t, cfg)
	if err := d.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.listeners = append(d.listeners, listener{desc: "deaf", close: ln.Close, serve: func() error {
		for {
			c, err := ln.Accept() // never told about the shutdown
			if err != nil {
				return err
			}
			c.Close()
		}
	}})
	d.mu.Unlock()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	for running := false; !running; {
		d.mu.Lock()
		running = d.stopRun != nil
		d.mu.Unlock()
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (a server still waits in Accept)", err)
	}
	if err := <-ran; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Run: got %v, want ErrServerClosed", err)
	}
}

// TestEAPCertificate: generated in the data directory at first start, or
// the configured one.
func TestEAPCertificate(t *testing.T) {
	cfg := loopback(t)
	d := open(t, cfg)
	if want := filepath.Join(cfg.DataDir, eap.CertFile); d.eapCert != want || d.eapFP == "" || d.radius.EAP == nil {
		t.Fatalf("EAP certificate %q (SHA-256 %q), want %s generated", d.eapCert, d.eapFP, want)
	}
	own := t.TempDir()
	cp, kp, _, err := eap.EnsureCertificate(own)
	if err != nil {
		t.Fatal(err)
	}
	cfg = loopback(t)
	cfg.RADIUS.EAPCertFile, cfg.RADIUS.EAPKeyFile = cp, kp
	d = open(t, cfg)
	if d.eapCert != cp {
		t.Fatalf("EAP certificate %q, want the configured %s", d.eapCert, cp)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, eap.CertFile)); err == nil {
		t.Fatal("a certificate was generated although one is configured")
	}
}

// TestProfilerOffByDefault: /debug/pprof/ answers only when the bootstrap
// file turns it on.
func TestProfilerOffByDefault(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("pprof=", on), func(t *testing.T) {
			cfg := loopback(t)
			cfg.RADIUS.Auth, cfg.RADIUS.Acct, cfg.LDAP.Listen, cfg.LDAP.ListenTLS, cfg.SSH = "", "", "", "", ""
			cfg.PProf = on
			d := open(t, cfg)
			if err := d.Listen(t.Context()); err != nil {
				t.Fatal(err)
			}
			var httpAddr string
			for _, l := range d.Listening() {
				if f := strings.Fields(l); len(f) > 3 && f[0] == "health" {
					httpAddr = strings.TrimSuffix(strings.TrimPrefix(f[3], "http://"), "/healthz")
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			ran := make(chan error, 1)
			go func() { ran <- d.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-ran })
			var resp *http.Response
			var err error
			for range 50 {
				if resp, err = http.Get("http://" + httpAddr + "/debug/pprof/"); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			http.DefaultClient.CloseIdleConnections()
			if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want {
				t.Errorf("GET /debug/pprof/ with pprof %v: got %d, want %d", on, resp.StatusCode, want)
			}
		})
	}
}
