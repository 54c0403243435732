// Package upstreamtest starts real identity servers (FreeRADIUS, OpenLDAP's
// slapd) on 127.0.0.1 for tests and benchmarks, each in a temporary
// directory with a private configuration. Nothing here touches /etc.
//
// A missing server binary fails the test with a hint to run make test-deps;
// it never skips.
package upstreamtest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// RADIUSUser is one account on a test FreeRADIUS.
type RADIUSUser struct {
	Name, Password string
	Reply          []string // reply attributes in users-file syntax, e.g. `Class := "nurses"`
}

// FreeRADIUS is a running FreeRADIUS server.
type FreeRADIUS struct {
	Addr   string // 127.0.0.1:port
	Secret string
	Dir    string
	cmd    *exec.Cmd
	log    *LockedBuffer
	done   chan struct{}
}

// FreeRADIUSOptions configure StartFreeRADIUS.
type FreeRADIUSOptions struct {
	Users  []RADIUSUser
	Secret string // for client 127.0.0.1; default "upstream-secret"
	// RequireMessageAuthenticator makes FreeRADIUS drop requests without
	// one (require_message_authenticator = yes).
	RequireMessageAuthenticator bool
	// ProxyTo, when set, makes this server a proxy that forwards every
	// request to that FreeRADIUS (for benchmarks) instead of answering.
	ProxyTo *FreeRADIUS
	// EAP, when set, turns on its eap module for EAP-TTLS with an inner
	// PAP password checked against Users (for benchmarks).
	EAP *FreeRADIUSEAP
}

// FreeRADIUSEAP configures FreeRADIUS's EAP-TTLS: its server certificate
// and key (PEM files; the certificate is also its CA file) and the TLS
// versions it offers ("1.2", "1.3").
type FreeRADIUSEAP struct {
	CertFile, KeyFile string
	TLSMin, TLSMax    string
	// ClientCAFile, when set, turns on EAP-TLS too, with this PEM bundle
	// as the trust anchors of client certificates.
	ClientCAFile string
	// PEAP turns on PEAPv0 with EAP-MSCHAPv2 inside, checked against the
	// users' cleartext passwords by the inner server's mschap module.
	PEAP bool
}

// LockedBuffer collects a process's output while it runs (safe for the
// process's writers and a test reading it at once).
type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *LockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// peerPort picks a port for a peer that cannot be handed a listener. It
// stays below Linux's ephemeral range (32768 and up), where the kernel
// assigns the local ports of the tests' own connections, so a collision
// needs another test peer on the same port; callers retry then.
func peerPort() int { return 10000 + rand.IntN(22000) }

// Need fails the test when a binary is missing.
func Need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if _, err2 := os.Stat(filepath.Join("/usr/sbin", b)); err2 == nil {
				continue
			}
			t.Fatalf("%s is not installed: run 'make test-deps'", b)
		}
	}
}

func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

// StartFreeRADIUS runs FreeRADIUS with a private copy of Debian's
// configuration: one client (127.0.0.1), the given users, PAP and
// MS-CHAPv2 (checked against each user's Cleartext-Password).
func StartFreeRADIUS(t testing.TB, o FreeRADIUSOptions) *FreeRADIUS {
	t.Helper()
	Need(t, "freeradius")
	if o.Secret == "" {
		o.Secret = "upstream-secret"
	}
	var lastLog string
	for try := 0; try < 5; try++ {
		port := peerPort()
		fr, ok, log := startFreeRADIUS(t, o, port)
		if ok {
			return fr
		}
		lastLog = log
		// A port taken meanwhile is worth another try; anything else
		// (a module or file missing, a config refused) is not.
		if !portTaken(log) {
			t.Fatalf("FreeRADIUS did not start (install what is missing with 'make test-deps'); its log:\n%s", lastLines(log, 30))
		}
	}
	t.Fatalf("FreeRADIUS did not start: its port was taken 5 times; its log:\n%s", lastLines(lastLog, 30))
	return nil
}

func startFreeRADIUS(t testing.TB, o FreeRADIUSOptions, port int) (*FreeRADIUS, bool, string) {
	dir := filepath.Join(t.TempDir(), "raddb")
	if out, err := exec.Command("cp", "-a", "/etc/freeradius/3.0", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy FreeRADIUS config: %v %s", err, out)
	}
	for _, glob := range []string{"sites-enabled/*", "mods-enabled/eap"} {
		matches, _ := filepath.Glob(filepath.Join(dir, glob))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	conf := filepath.Join(dir, "radiusd.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`(?m)^(\s*)(user|group) = freerad`).ReplaceAll(b, []byte("$1#$2 = freerad"))
	write(t, conf, string(b))
	reqMA := "no"
	if o.RequireMessageAuthenticator {
		reqMA = "yes"
	}
	write(t, filepath.Join(dir, "clients.conf"), fmt.Sprintf("client test {\n\tipaddr = 127.0.0.1\n\tsecret = %s\n\trequire_message_authenticator = %s\n}\n", o.Secret, reqMA))
	var users strings.Builder
	for _, u := range o.Users {
		fmt.Fprintf(&users, "%s Cleartext-Password := %q\n", u.Name, u.Password)
		for i, r := range u.Reply {
			sep := ","
			if i == len(u.Reply)-1 {
				sep = ""
			}
			fmt.Fprintf(&users, "\t%s%s\n", r, sep)
		}
		users.WriteString("\n")
	}
	write(t, filepath.Join(dir, "mods-config", "files", "authorize"), users.String())
	site := fmt.Sprintf(`server clinicgate_test {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %d
	}
	authorize {
		files
		mschap
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type MS-CHAP {
			mschap
		}
	}
}
`, port)
	if o.ProxyTo != nil {
		host, p, _ := strings.Cut(o.ProxyTo.Addr, ":")
		site = fmt.Sprintf(`server clinicgate_proxy {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %d
	}
	authorize {
		update control {
			&Proxy-To-Realm := "upstream"
		}
	}
	authenticate {
	}
}
`, port)
		write(t, filepath.Join(dir, "proxy.conf"), fmt.Sprintf(`proxy server {
	default_fallback = no
}
home_server upstream {
	type = auth
	ipaddr = %s
	port = %s
	secret = %s
	require_message_authenticator = yes
	response_window = 5
	status_check = none
}
home_server_pool upstream {
	type = fail-over
	home_server = upstream
}
realm upstream {
	auth_pool = upstream
	nostrip
}
`, host, p, o.ProxyTo.Secret))
	}
	if o.EAP != nil {
		site = eapSite(t, dir, port, *o.EAP)
	}
	write(t, filepath.Join(dir, "sites-enabled", "clinicgate"), site)

	fr := &FreeRADIUS{Addr: fmt.Sprintf("127.0.0.1:%d", port), Secret: o.Secret, Dir: dir, log: &LockedBuffer{}, done: make(chan struct{})}
	fr.cmd = exec.Command(sbin("freeradius"), "-f", "-d", dir, "-l", "stdout")
	pr, pw := io.Pipe()
	fr.cmd.Stdout = io.MultiWriter(fr.log, pw)
	fr.cmd.Stderr = fr.cmd.Stdout
	if err := fr.cmd.Start(); err != nil {
		t.Fatalf("start freeradius: %v", err)
	}
	go func() { fr.cmd.Wait(); pw.Close(); close(fr.done) }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to process requests") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-fr.done
			return nil, false, fr.log.String()
		}
	case <-time.After(30 * time.Second):
		fr.Stop()
		return nil, false, fr.log.String()
	}
	t.Cleanup(fr.Stop)
	return fr, true, ""
}

// eapSite writes the eap module's configuration (TTLS only, no session
// cache, so every login is a full handshake) and returns the sites: the
// outer one, which runs EAP, and the inner one, which checks the
// tunnelled PAP password against the users file.
func eapSite(t testing.TB, dir string, port int, e FreeRADIUSEAP) string {
	if e.TLSMin == "" {
		e.TLSMin = "1.2"
	}
	if e.TLSMax == "" {
		e.TLSMax = "1.3"
	}
	caFile, tlsMethod := e.CertFile, ""
	if e.ClientCAFile != "" {
		// One ca_file serves both: the chain it sends and the anchors
		// it checks client certificates against.
		var bundle []byte
		for _, f := range []string{e.CertFile, e.ClientCAFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			bundle = append(append(bundle, b...), '\n')
		}
		caFile = filepath.Join(dir, "eap-ca-bundle.pem")
		write(t, caFile, string(bundle))
		tlsMethod = "\ttls {\n\t\ttls = tls-common\n\t}\n"
	}
	innerAuthorize, innerAuth := "", ""
	if e.PEAP {
		tlsMethod += `	mschapv2 {
	}
	peap {
		tls = tls-common
		default_eap_type = mschapv2
		copy_request_to_tunnel = no
		use_tunneled_reply = no
		virtual_server = "clinicgate_inner"
	}
`
		// The tunnelled EAP-MSCHAPv2 runs through the inner server's eap
		// module, which asks its mschap module (Auth-Type MS-CHAP).
		innerAuthorize = "\t\teap {\n\t\t\tok = return\n\t\t}\n"
		innerAuth = "\t\tAuth-Type MS-CHAP {\n\t\t\tmschap\n\t\t}\n\t\teap\n"
	}
	write(t, filepath.Join(dir, "mods-enabled", "eap"), fmt.Sprintf(`eap {
	default_eap_type = ttls
	timer_expire = 60
	ignore_unknown_eap_types = no
	max_sessions = 16384
	md5 {
	}
	tls-config tls-common {
		private_key_file = %s
		certificate_file = %s
		ca_file = %s
		cipher_list = "DEFAULT"
		tls_min_version = "%s"
		tls_max_version = "%s"
		cache {
			enable = no
		}
		ocsp {
			enable = no
		}
	}
	ttls {
		tls = tls-common
		default_eap_type = md5
		copy_request_to_tunnel = no
		use_tunneled_reply = no
		virtual_server = "clinicgate_inner"
	}
%s}
`, e.KeyFile, e.CertFile, caFile, e.TLSMin, e.TLSMax, tlsMethod))
	return fmt.Sprintf(`server clinicgate_test {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %d
	}
	authorize {
		eap {
			ok = return
		}
	}
	authenticate {
		eap
	}
}

server clinicgate_inner {
	authorize {
		files
%s		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
%s	}
}
`, port, innerAuthorize, innerAuth)
}

// Pid is the server's process id (for a benchmark's CPU accounting).
func (f *FreeRADIUS) Pid() int { return f.cmd.Process.Pid }

// Stop ends the server (safe to call twice).
func (f *FreeRADIUS) Stop() {
	select {
	case <-f.done:
		return
	default:
	}
	f.cmd.Process.Kill()
	<-f.done
}

// Log returns what the server printed.
func (f *FreeRADIUS) Log() string { return f.log.String() }

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
