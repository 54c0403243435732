package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	s, err := New(bytes.Repeat([]byte{0x42}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := newSealer(t)
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"shared secret", []byte("testing123")},
		{"empty", []byte{}},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe}},
		{"long", bytes.Repeat([]byte("x"), 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(tt.plaintext, "client-secret:radius:office-ap")
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.plaintext) > 0 && bytes.Contains(sealed, tt.plaintext) {
				t.Errorf("sealed value %x contains the plaintext", sealed)
			}
			got, err := s.Open(sealed, "client-secret:radius:office-ap")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open: got %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	s := newSealer(t)
	a, err := s.Seal([]byte("same"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal([]byte("same"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same value are equal: %x", a)
	}
}

// TestSealedSecretCopiedToAnotherRowDoesNotOpen: the context binds a value
// to its row, so copying one client's sealed secret onto another client
// (or onto a TOTP seed) yields ErrOpen, not the other secret.
func TestSealedSecretCopiedToAnotherRowDoesNotOpen(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("office-secret"), "client-secret:radius:office-ap")
	if err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []string{
		"client-secret:radius:guest-ap",
		"client-secret:radius:Office-AP",
		"client-secret:radius:office-ap ",
		"totp-seed:1",
		"",
	} {
		t.Run(ctx, func(t *testing.T) {
			got, err := s.Open(sealed, ctx)
			if !errors.Is(err, ErrOpen) {
				t.Errorf("Open with context %q: got (%q, %v), want ErrOpen", ctx, got, err)
			}
		})
	}
}

func TestTamperedSealedValueRefused(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.Seal([]byte("testing123"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name  string
		value []byte
	}{
		{"version byte", flip(0)},
		{"nonce", flip(1)},
		{"ciphertext", flip(1 + 12)},
		{"tag", flip(len(sealed) - 1)},
		{"truncated", sealed[:len(sealed)-1]},
		{"shorter than nonce and tag", sealed[:1+12+15]},
		{"extended", append(bytes.Clone(sealed), 0)},
		{"only the version", sealed[:1]},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(tt.value, "ctx")
			if !errors.Is(err, ErrOpen) {
				t.Errorf("Open: got (%q, %v), want ErrOpen", got, err)
			}
		})
	}
}

func TestOtherKeyCannotOpen(t *testing.T) {
	s := newSealer(t)
	other, err := New(bytes.Repeat([]byte{0x43}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("testing123"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.Open(sealed, "ctx"); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with another key: got (%q, %v), want ErrOpen", got, err)
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := New(make([]byte, n), nil); err == nil {
			t.Errorf("New with a %d-byte key: got nil error, want an error", n)
		}
	}
}

func TestSealFailsWithoutRandomness(t *testing.T) {
	boom := errors.New("boom")
	s, err := New(make([]byte, 32), iotest.ErrReader(boom))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Seal([]byte("x"), "ctx"); !errors.Is(err, boom) {
		t.Errorf("Seal: got (%x, %v), want %v", got, err, boom)
	}
}

func TestDerive(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	s := newSealer(t)
	a1, a2, b := s.Derive("audit-chain-v1"), s.Derive("audit-chain-v1"), s.Derive("key-check")
	if len(a1) != 32 {
		t.Fatalf("Derive length: got %d, want 32", len(a1))
	}
	if !bytes.Equal(a1, a2) {
		t.Errorf("Derive is not deterministic: %x then %x", a1, a2)
	}
	if bytes.Equal(a1, b) {
		t.Errorf("two purposes derive the same key %x", a1)
	}
	if bytes.Equal(a1, key) || bytes.Equal(b, key) {
		t.Errorf("a derived key equals the sealing key")
	}
	other, err := New(bytes.Repeat([]byte{0x43}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Derive("audit-chain-v1"), a1) {
		t.Errorf("two keys derive the same subkey")
	}
}

func TestLoadCreatesPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode: got %v, want -rw-------", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if key, err := hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(key) != 32 {
		t.Errorf("key file: got %q, want 64 hex digits", b)
	}

	// The key survives: a second Load (with or without create) opens what
	// the first sealed, and does not replace the file.
	sealed, err := s.Seal([]byte("testing123"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{false, true} {
		again, err := Load(dir, create)
		if err != nil {
			t.Fatalf("Load(create=%v): %v", create, err)
		}
		if got, err := again.Open(sealed, "ctx"); err != nil || string(got) != "testing123" {
			t.Errorf("Load(create=%v).Open: got (%q, %v), want (testing123, nil)", create, got, err)
		}
		if b2, _ := os.ReadFile(path); !bytes.Equal(b2, b) {
			t.Errorf("Load(create=%v) rewrote the key file", create)
		}
	}
}

// TestMissingKeyIsNotReplaced: without create, a missing key file is
// ErrNoKey and no new key appears.
func TestMissingKeyIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir, false)
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("Load(create=false) on an empty directory: got (%v, %v), want ErrNoKey", s, err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file after a failed Load: got %v, want it not to exist", err)
	}
}

// TestReadableKeyFileRefused: a key file others can read is refused, with
// the command that fixes it.
func TestReadableKeyFileRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(path, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			for _, create := range []bool{false, true} {
				s, err := Load(dir, create)
				if err == nil {
					t.Fatalf("Load(create=%v) with mode %v: got %v, want an error", create, mode, s)
				}
				if !strings.Contains(err.Error(), "chmod 600") {
					t.Errorf("error: got %q, want it to say chmod 600", err)
				}
			}
		})
	}
}

func TestDamagedKeyFileRefused(t *testing.T) {
	tests := []struct {
		name, content string
	}{
		{"empty", ""},
		{"not hex", strings.Repeat("zz", 32)},
		{"too short", strings.Repeat("ab", 31)},
		{"too long", strings.Repeat("ab", 33)},
		{"odd length", strings.Repeat("ab", 32) + "a"},
		{"raw bytes", string(bytes.Repeat([]byte{0x42}, 32))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, create := range []bool{false, true} {
				s, err := Load(dir, create)
				if err == nil || !strings.Contains(err.Error(), "damaged") {
					t.Errorf("Load(create=%v): got (%v, %v), want a 'damaged' error", create, s, err)
				}
			}
		})
	}
}

func TestKeyFileWithSurroundingSpaceLoads(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0x42}, 32)
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("  "+hex.EncodeToString(key)+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := newSealer(t).Seal([]byte("testing123"), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(sealed, "ctx"); err != nil || string(got) != "testing123" {
		t.Errorf("Open with the loaded key: got (%q, %v), want (testing123, nil)", got, err)
	}
}

// TestSecretPrintsRedacted: a careless %v or log line never shows the
// plaintext.
func TestSecretPrintsRedacted(t *testing.T) {
	const plain = "hunter2-very-secret"
	s := Secret(plain)
	type holder struct {
		Name   string
		Secret Secret
	}
	h := holder{Name: "office-ap", Secret: s}
	tests := []struct {
		name string
		got  string
	}{
		{"String", s.String()},
		{"GoString", s.GoString()},
		{"%v", fmt.Sprintf("%v", s)},
		{"%s", fmt.Sprintf("%s", s)},
		{"%+v", fmt.Sprintf("%+v", s)},
		{"%#v", fmt.Sprintf("%#v", s)},
		{"%q", fmt.Sprintf("%q", s)},
		{"%x", fmt.Sprintf("%x", s)},
		{"Sprint", fmt.Sprint(s)},
		{"Sprintln", fmt.Sprintln(s)},
		{"in a struct %v", fmt.Sprintf("%v", h)},
		{"in a struct %+v", fmt.Sprintf("%+v", h)},
		{"in a struct %#v", fmt.Sprintf("%#v", h)},
		{"in a pointer to a struct", fmt.Sprintf("%+v", &h)},
		{"in a slice", fmt.Sprintf("%v", []Secret{s})},
		{"in a map", fmt.Sprintf("%v", map[string]Secret{"k": s})},
		{"LogValue", s.LogValue().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.got, plain) || strings.Contains(tt.got, hex.EncodeToString([]byte(plain))) {
				t.Errorf("got %q, want no plaintext", tt.got)
			}
			if !strings.Contains(tt.got, "REDACTED") && !strings.Contains(tt.got, hex.EncodeToString([]byte("REDACTED"))) {
				t.Errorf("got %q, want REDACTED", tt.got)
			}
		})
	}
}

func TestSecretLogsRedacted(t *testing.T) {
	const plain = "hunter2-very-secret"
	s := Secret(plain)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			var handler slog.Handler = slog.NewJSONHandler(&buf, nil)
			if format == "text" {
				handler = slog.NewTextHandler(&buf, nil)
			}
			log := slog.New(handler)
			log.Info("client added", "secret", s)
			log.Info("client added", slog.Any("secret", s))
			log.With("secret", s).Info("client added")
			log.Info("client added", slog.Group("client", "name", "office-ap", "secret", s))
			out := buf.String()
			if strings.Contains(out, plain) {
				t.Errorf("log output contains the plaintext:\n%s", out)
			}
			if got := strings.Count(out, "REDACTED"); got != 4 {
				t.Errorf("REDACTED appears %d times, want 4:\n%s", got, out)
			}
		})
	}
}

// TestSecretInAStructLogsRedacted: slog's JSON handler encodes a struct
// with encoding/json, which would print a []byte in base64.
func TestSecretInAStructLogsRedacted(t *testing.T) {
	const plain = "hunter2-very-secret"
	type client struct {
		Name   string
		Secret Secret
	}
	c := client{Name: "office-ap", Secret: Secret(plain)}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("client added", "client", c, "ptr", &c)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(b)
	out := buf.String()
	for _, leak := range []string{plain, base64.StdEncoding.EncodeToString([]byte(plain)), base64.StdEncoding.EncodeToString([]byte(plain))[:20]} {
		if strings.Contains(out, leak) {
			t.Errorf("output contains %q:\n%s", leak, out)
		}
	}
	if got := strings.Count(out, `"Secret":"REDACTED"`); got != 3 {
		t.Errorf("%q appears %d times, want 3:\n%s", `"Secret":"REDACTED"`, got, out)
	}
}

func TestSealerPrintsRedacted(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	s := newSealer(t)
	for _, got := range []string{s.String(), fmt.Sprintf("%v", s), fmt.Sprint(s)} {
		if strings.Contains(got, hex.EncodeToString(key)) || strings.Contains(got, string(key)) {
			t.Errorf("got %q, want no key", got)
		}
	}
}
