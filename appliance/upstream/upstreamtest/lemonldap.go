package upstreamtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// LemonLDAP is a running LemonLDAP::NG portal acting as an OpenID Provider
// with one relying party that may use the password grant. Its users are
// LemonLDAP's demo accounts: dwho/dwho (groups timelords, users) and
// rtyler/rtyler (users).
type LemonLDAP struct {
	Issuer       string // http://127.0.0.1:port
	ClientID     string
	ClientSecret string
	// Key signs the provider's ID tokens (for tests that forge tokens).
	Key   *rsa.PrivateKey
	KeyID string
	Dir   string
	cmd   *exec.Cmd
	log   *LockedBuffer
	done  chan struct{}
}

// StartLemonLDAP runs the portal with plackup on 127.0.0.1.
func StartLemonLDAP(t testing.TB) *LemonLDAP {
	t.Helper()
	Need(t, "plackup")
	psgi := "/usr/share/lemonldap-ng/portal/htdocs/index.psgi"
	if _, err := os.Stat(psgi); err != nil {
		t.Fatalf("LemonLDAP::NG is not installed (%s missing): run 'make test-deps'", psgi)
	}
	base, err := os.ReadFile("/var/lib/lemonldap-ng/conf/lmConf-1.json")
	if err != nil {
		t.Fatalf("LemonLDAP::NG default configuration: %v (run 'make test-deps')", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"conf", "sessions/lock", "psessions/lock", "cache"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	var lastLog string
	for try := 0; try < 5; try++ {
		port := peerPort()
		l := &LemonLDAP{Issuer: fmt.Sprintf("http://127.0.0.1:%d", port), ClientID: "clinicgate", ClientSecret: "rp-secret-0123456789",
			Key: key, KeyID: "test-key-1", Dir: dir, log: &LockedBuffer{}, done: make(chan struct{})}
		var conf map[string]any
		if err := json.Unmarshal(base, &conf); err != nil {
			t.Fatal(err)
		}
		conf["portal"] = l.Issuer + "/"
		conf["domain"] = "127.0.0.1"
		conf["globalStorageOptions"] = map[string]any{"Directory": filepath.Join(dir, "sessions"), "LockDirectory": filepath.Join(dir, "sessions/lock"),
			"generateModule": "Lemonldap::NG::Common::Apache::Session::Generate::SHA256"}
		conf["persistentStorageOptions"] = map[string]any{"Directory": filepath.Join(dir, "psessions"), "LockDirectory": filepath.Join(dir, "psessions/lock")}
		conf["issuerDBOpenIDConnectActivation"] = 1
		conf["oidcServiceMetaDataIssuer"] = l.Issuer
		conf["oidcServicePrivateKeySig"] = string(privPEM)
		conf["oidcServicePublicKeySig"] = string(pubPEM)
		conf["oidcServiceKeyIdSig"] = "test-key-1"
		conf["oidcRPMetaDataOptions"] = map[string]any{"clinicgate": map[string]any{
			"oidcRPMetaDataOptionsClientID":           l.ClientID,
			"oidcRPMetaDataOptionsClientSecret":       l.ClientSecret,
			"oidcRPMetaDataOptionsAllowPasswordGrant": 1,
			"oidcRPMetaDataOptionsIDTokenSignAlg":     "RS256",
			"oidcRPMetaDataOptionsBypassConsent":      1,
			"oidcRPMetaDataOptionsIDTokenForceClaims": 1,
			"oidcRPMetaDataOptionsRedirectUris":       "http://127.0.0.1/callback",
			"oidcRPMetaDataOptionsExtraClaims":        map[string]any{"groups": "groups"},
		}}
		conf["oidcRPMetaDataExportedVars"] = map[string]any{"clinicgate": map[string]any{
			"email": "mail", "name": "cn", "preferred_username": "uid", "groups": "groups",
		}}
		b, _ := json.MarshalIndent(conf, "", " ")
		write(t, filepath.Join(dir, "conf", "lmConf-1.json"), string(b))
		ini := fmt.Sprintf(`[all]
logLevel = warn
[configuration]
type = File
dirName = %s
localStorage = Cache::FileCache
localStorageOptions = { 'namespace' => 'lemonldap-ng-config', 'default_expires_in' => 600, 'cache_root' => '%s', 'cache_depth' => 3 }
[portal]
staticPrefix = /static
templateDir = /usr/share/lemonldap-ng/portal/templates
languages = en
`, filepath.Join(dir, "conf"), filepath.Join(dir, "cache"))
		write(t, filepath.Join(dir, "lemonldap-ng.ini"), ini)
		l.cmd = exec.Command("plackup", "-s", "HTTP::Server::PSGI", "--host", "127.0.0.1", "--port", fmt.Sprint(port), psgi)
		l.cmd.Env = append(os.Environ(), "LLNG_DEFAULTCONFFILE="+filepath.Join(dir, "lemonldap-ng.ini"))
		l.cmd.Stdout, l.cmd.Stderr = l.log, l.log
		if err := l.cmd.Start(); err != nil {
			t.Fatalf("start plackup: %v", err)
		}
		go func() { l.cmd.Wait(); close(l.done) }()
		why := l.waitReady()
		if why == "" {
			t.Cleanup(l.Stop)
			return l
		}
		l.Stop()
		lastLog = l.log.String()
		if !portTaken(lastLog) {
			if m := missingPerlModule.FindString(lastLog); m != "" {
				why += "; " + m
			}
			t.Fatalf("LemonLDAP::NG did not start: %s (install what is missing with 'make test-deps'); its log:\n%s", why, lastLines(lastLog, 30))
		}
	}
	t.Fatalf("LemonLDAP::NG did not start: its port was taken 5 times; its log:\n%s", lastLines(lastLog, 30))
	return nil
}

// missingPerlModule finds Perl's own words for a module that is not
// installed (a Debian "recommends" the portal needs, typically).
var missingPerlModule = regexp.MustCompile(`Can't locate \S+\.pm`)

// waitReady waits for the portal's discovery document and says why it is
// not there: the portal exited, answered with a server error (a Perl
// module missing, say: that will not mend itself), or never answered.
func (l *LemonLDAP) waitReady() string {
	deadline := time.Now().Add(60 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	serverErrors := 0
	for time.Now().Before(deadline) {
		select {
		case <-l.done:
			return "plackup exited"
		default:
		}
		resp, err := c.Get(l.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				return ""
			case resp.StatusCode >= 500:
				// Three in a row: the portal loaded and fails on every
				// request.
				if serverErrors++; serverErrors >= 3 {
					return fmt.Sprintf("the portal answers HTTP %d to its discovery URL", resp.StatusCode)
				}
			default:
				return fmt.Sprintf("the portal answers HTTP %d to its discovery URL", resp.StatusCode)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "no answer within 60 s"
}

// Stop ends the portal (safe to call twice).
func (l *LemonLDAP) Stop() {
	select {
	case <-l.done:
		return
	default:
	}
	l.cmd.Process.Kill()
	<-l.done
}

// Log returns what the portal printed.
func (l *LemonLDAP) Log() string { return l.log.String() }
