package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClientEAPSwitches: --eap, --allow-mschap and --eap-identity are
// stored, shown by client show and list, and refused when wrong.
func TestClientEAPSwitches(t *testing.T) {
	data := newData(t)
	mustCG(t, data, secret, "client", "add", "ap", "--address", "10.0.0.1", "--secret-stdin")
	want := func(when string, fields map[string]string) {
		t.Helper()
		show := showFields(mustCG(t, data, "", "client", "show", "ap"))
		for k, v := range fields {
			if show[k] != v {
				t.Fatalf("%s: client show says %s %q, want %q", when, k, show[k], v)
			}
		}
	}
	want("a new client", map[string]string{"eap": "ttls,peap,tls", "allow-mschap": "false", "eap-identity": "any"})
	mustCG(t, data, "", "client", "set", "ap", "--eap", "peap,tls", "--allow-mschap", "--eap-identity", "match")
	want("after set", map[string]string{"eap": "peap,tls", "allow-mschap": "true", "eap-identity": "match"})
	if list := mustCG(t, data, "", "client", "list"); !regexp.MustCompile(`\bpeap,tls\s+on\s+match\b`).MatchString(list) {
		t.Fatalf("client list does not show the EAP settings:\n%s", list)
	}
	// --allow-mschap=false turns it off again; the other settings stay.
	mustCG(t, data, "", "client", "set", "ap", "--allow-mschap=false")
	want("after --allow-mschap=false", map[string]string{"eap": "peap,tls", "allow-mschap": "false", "eap-identity": "match"})
	for _, args := range [][]string{
		{"client", "set", "ap", "--eap", "ttls,leap"},
		{"client", "set", "ap", "--eap", "ttls,ttls"},
		{"client", "set", "ap", "--eap", ","},
		{"client", "set", "ap", "--eap-identity", "same"},
	} {
		if out, err := cg(t, data, "", args...); err == nil {
			t.Errorf("%s: got success %q, want a refusal", strings.Join(args, " "), out)
		}
	}
	want("after refused changes", map[string]string{"eap": "peap,tls", "eap-identity": "match"})
}

// showFields reads client show's FIELD VALUE table.
func showFields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestCertCommands: register by fingerprint or file, revoke by
// fingerprint or serial, list both, each change audited.
func TestCertCommands(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "", "user", "add", "alice")
	pemFile, fp := testCert(t)
	out := mustCG(t, data, "", "cert", "register", "alice", "--file", pemFile)
	if !strings.Contains(out, fp) {
		t.Fatalf("register --file: got %q, want the fingerprint %s", out, fp)
	}
	other := strings.Repeat("ab", 32)
	mustCG(t, data, "", "cert", "register", "alice", other)
	if out, err := cg(t, data, "", "cert", "register", "alice", strings.ToUpper(other)); err == nil || !strings.Contains(out, "already registered") {
		t.Fatalf("registering twice: got %v %q", err, out)
	}
	if out, err := cg(t, data, "", "cert", "register", "ghost", strings.Repeat("cd", 32)); err == nil || !strings.Contains(out, "no user") {
		t.Fatalf("registering to nobody: got %v %q", err, out)
	}
	if out, err := cg(t, data, "", "cert", "register", "alice"); err == nil {
		t.Fatalf("no fingerprint: got success %q", out)
	}
	mustCG(t, data, "", "cert", "revoke", other, "--reason", "laptop stolen")
	mustCG(t, data, "", "cert", "revoke", "00:1F:2a")
	if out, err := cg(t, data, "", "cert", "revoke", "zz"); err == nil {
		t.Fatalf("revoking nonsense: got success %q", out)
	}
	list := mustCG(t, data, "", "cert", "list")
	for _, want := range []string{"registered  " + fp, "revoked     fingerprint " + strings.ToUpper(other[:2]), "laptop stolen", "revoked     serial 1f2a"} {
		if !strings.Contains(list, want) {
			t.Fatalf("cert list: want %q in\n%s", want, list)
		}
	}
	tail := mustCG(t, data, "", "audit", "tail", "-n", "10")
	for _, want := range []string{"cert_register", "cert_revoke"} {
		if !strings.Contains(tail, want) {
			t.Fatalf("audit: want %q in\n%s", want, tail)
		}
	}
}

// testCert writes a client certificate to a PEM file and returns its path
// and fingerprint.
func testCert(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "alice.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var pairs []string
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return path, strings.Join(pairs, ":")
}
