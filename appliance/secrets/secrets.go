// Package secrets seals the secrets clinicgate keeps at rest (RADIUS shared
// secrets, TOTP seeds, upstream credentials) with AES-256-GCM under one key
// kept in a 0600 file beside the database.
//
// It must not invent a key silently: a data directory that already holds a
// database but has lost its key file is an error the operator has to see,
// because a fresh key would make every sealed secret unreadable.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the name of the key file inside the data directory.
const KeyFile = "clinicgate.key"

// ErrNoKey means the key file is missing where one must exist.
var ErrNoKey = errors.New("secrets: key file missing")

// ErrOpen means a sealed value could not be opened: wrong key, wrong
// context, or a damaged value.
var ErrOpen = errors.New("secrets: sealed value cannot be opened (wrong key or damaged)")

const sealVersion = 1

// Sealer seals and opens small secrets. Its zero value is not usable; build
// it with Load or New.
type Sealer struct {
	aead cipher.AEAD
	key  [32]byte
	rand io.Reader
}

// String keeps the key out of any log line.
func (s *Sealer) String() string { return "Sealer(REDACTED)" }

// New builds a Sealer from a 32-byte key. rnd supplies nonces; nil means
// crypto/rand.
func New(key []byte, rnd io.Reader) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secrets: key must be 32 bytes, got %d", len(key))
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	s := &Sealer{aead: aead, rand: rnd}
	copy(s.key[:], key)
	return s, nil
}

// Load reads the key file in dir. When create is true and the file does not
// exist, a new key is generated and written with mode 0600; otherwise a
// missing file is ErrNoKey.
func Load(dir string, create bool) (*Sealer, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, serr := os.Stat(path)
		if serr == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("secrets: key file %s is readable by others (mode %v); run: chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		key, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) != 32 {
			return nil, fmt.Errorf("secrets: key file %s is damaged (want 64 hex digits)", path)
		}
		return New(key, nil)
	case errors.Is(err, fs.ErrNotExist) && create:
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("secrets: generate key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("secrets: write key file: %w", err)
		}
		if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets: write key file: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("secrets: write key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("secrets: write key file: %w", err)
		}
		return New(key, nil)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s (restore it from your backup; without it the stored secrets cannot be read)", ErrNoKey, path)
	default:
		return nil, fmt.Errorf("secrets: read key file: %w", err)
	}
}

// Seal encrypts plaintext. context binds the value to its use (for example
// "client-secret:office-ap"), so a sealed value copied into another row does
// not open there.
func (s *Sealer) Seal(plaintext []byte, context string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+s.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte(context)), nil
}

// Open decrypts a value made by Seal with the same context.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Derive returns a 32-byte subkey for a named purpose (for example the audit
// chain's MAC key), independent of the sealing key itself.
func (s *Sealer) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s.key[:], nil, "clinicgate/"+purpose, 32)
	if err != nil {
		// hkdf.Key fails only for lengths beyond 255*32 bytes.
		panic(err)
	}
	return k
}

// Secret is plaintext secret material in memory. It prints and logs as
// REDACTED, so a careless log line or %v is harmless.
type Secret []byte

// String implements fmt.Stringer.
func (Secret) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return "REDACTED" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Format implements fmt.Formatter: every verb (%x, %d, %q too) prints
// REDACTED.
func (Secret) Format(f fmt.State, _ rune) { f.Write([]byte("REDACTED")) }

// MarshalText implements encoding.TextMarshaler, so JSON (slog's JSON
// handler logging a struct that holds a Secret), YAML and XML print
// REDACTED instead of the plaintext in base64. Code that must write the
// secret converts it to []byte first.
func (Secret) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }
