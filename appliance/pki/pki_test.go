package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/pki"
)

func TestDeviceCAIsMadeOnceAndItsKeyIsSealed(t *testing.T) {
	core := appliancetest.New(t, appliancetest.Options{})
	a, err := pki.Ensure(t.Context(), core.Admin.Store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.Ensure(t.Context(), core.Admin.Store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cert.Equal(b.Cert) || !a.Key.Equal(b.Key) {
		t.Fatal("a second Ensure made another CA")
	}
	if pub, ok := a.Cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() || !a.Cert.IsCA {
		t.Fatalf("CA key %T, IsCA %v; want an ECDSA P-256 CA", a.Cert.PublicKey, a.Cert.IsCA)
	}
	if err := a.RACert.CheckSignatureFrom(a.Cert); err != nil {
		t.Fatalf("the RA is not certified by the CA: %v", err)
	}
	key, _ := x509.MarshalPKCS8PrivateKey(a.Key)
	raKey, _ := x509.MarshalPKCS8PrivateKey(a.RAKey)
	db, err := sql.Open("sqlite", filepath.Join(core.Dir, "clinicgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var k, rk []byte
	if err := db.QueryRow(`SELECT key, ra_key FROM device_ca`).Scan(&k, &rk); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(k, key[len(key)-32:]) || bytes.Contains(rk, raKey[len(raKey)-32:]) || len(k) == 0 {
		t.Fatal("the device CA's keys are stored in the clear")
	}
}

func TestCheckKey(t *testing.T) {
	gen := func(bits int) *rsa.PublicKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	ec := func(c elliptic.Curve) *ecdsa.PublicKey {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		return &k.PublicKey
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		key  any
		ok   bool
	}{
		{"RSA 1024", gen(1024), false},
		{"RSA 2048", gen(2048), true},
		{"ECDSA P-256", ec(elliptic.P256()), true},
		{"ECDSA P-384", ec(elliptic.P384()), true},
		{"ECDSA P-224", ec(elliptic.P224()), false},
		{"Ed25519", edPub, false},
	} {
		err := pki.CheckKey(tc.key)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, pki.ErrKey)) {
			t.Errorf("%s: got %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestRefusalFloodDoesNotFillTheAudit: past 20 refusals a second, the
// rest are counted, and the next one audited says how many were not.
func TestRefusalFloodDoesNotFillTheAudit(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	core := appliancetest.New(t, appliancetest.Options{Now: clock})
	e := &pki.Enroller{Store: core.Admin.Store, Audit: core.Audit, Now: clock}
	for range 25 {
		if err := e.Refuse(t.Context(), "192.0.2.9", pki.RefuseBadMessage, "garbage"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := core.LastAudit(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if r.Reason == string(pki.RefuseBadMessage) {
			n++
		}
	}
	if n != 20 {
		t.Fatalf("%d refusals audited in one second, want 20", n)
	}
	now = now.Add(time.Second)
	if err := e.Refuse(t.Context(), "192.0.2.9", pki.RefuseBadMessage, "garbage"); err != nil {
		t.Fatal(err)
	}
	rows, _ = core.LastAudit(t.Context(), 1)
	if !strings.Contains(rows[0].Detail, "5 refusals before this one were not audited") {
		t.Fatalf("the next refusal does not count the ones held back: %q", rows[0].Detail)
	}
}
