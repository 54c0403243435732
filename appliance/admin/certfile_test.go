package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// TestRegisterCertFromUploadedFile: the console registers a certificate
// uploaded into incoming/ (PEM or DER) by its name; anything else, or a
// name that leaves incoming/, is refused and registers nothing.
func TestRegisterCertFromUploadedFile(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	if err := s.AddUser(ctx, NewUser{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(cn string) []byte {
		tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	in := filepath.Join(s.Store.Dir(), IncomingDir)
	if err := os.MkdirAll(in, 0o750); err != nil {
		t.Fatal(err)
	}
	pemDER, derDER := mk("laptop-1"), mk("laptop-2")
	os.WriteFile(filepath.Join(in, "laptop1.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pemDER}), 0o600)
	os.WriteFile(filepath.Join(in, "laptop2.cer"), derDER, 0o600)
	os.WriteFile(filepath.Join(in, "notes.txt"), []byte("not a certificate"), 0o600)
	for file, der := range map[string][]byte{"laptop1.pem": pemDER, "laptop2.cer": derDER} {
		fp, err := s.RegisterCertFile(ctx, "alice", file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if want := selfcert.FingerprintDER(der); fp != want {
			t.Errorf("%s: registered %s, want %s", file, fp, want)
		}
	}
	for _, bad := range []string{"notes.txt", "missing.pem", "../key.pem", ".hidden"} {
		if _, err := s.RegisterCertFile(ctx, "alice", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want a refusal", bad, err)
		}
	}
	if _, err := s.RegisterCertFile(ctx, "nobody", "laptop1.pem"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown user: %v", err)
	}
	certs, _, err := s.Certs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 {
		t.Errorf("%d certificates registered, want 2: %+v", len(certs), certs)
	}
}
