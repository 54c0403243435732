package mfa

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// RFC 4226 Appendix D.
func TestHOTPRFC4226(t *testing.T) {
	seed := []byte("12345678901234567890")
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, w := range want {
		t.Run(fmt.Sprint(counter), func(t *testing.T) {
			got, err := HOTP(seed, uint64(counter), 6, "SHA1")
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("HOTP(counter %d): got %s, want %s", counter, got, w)
			}
		})
	}
}

// RFC 6238 Appendix B: each algorithm with the seed of its own hash size.
func TestTOTPRFC6238(t *testing.T) {
	seeds := map[string][]byte{
		"SHA1":   []byte("12345678901234567890"),
		"SHA256": []byte("12345678901234567890123456789012"),
		"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	tests := []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"},
		{59, "SHA256", "46119246"},
		{59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"},
		{1111111109, "SHA256", "68084774"},
		{1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"},
		{1111111111, "SHA256", "67062674"},
		{1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"},
		{1234567890, "SHA256", "91819424"},
		{1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"},
		{2000000000, "SHA256", "90698825"},
		{2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"},
		{20000000000, "SHA256", "77737706"},
		{20000000000, "SHA512", "47863826"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.alg, tt.unix), func(t *testing.T) {
			at := time.Unix(tt.unix, 0)
			got, err := HOTP(seeds[tt.alg], uint64(Step(at, 30)), 8, tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("TOTP %s at %d: got %s, want %s", tt.alg, tt.unix, got, tt.want)
			}
			// Match finds the same code at that time and returns its step.
			step, ok, err := Match(seeds[tt.alg], tt.want, at, 0, 8, 30, tt.alg)
			if err != nil || !ok || step != tt.unix/30 {
				t.Errorf("Match at %d: got (%d, %v, %v), want (%d, true, nil)", tt.unix, step, ok, err, tt.unix/30)
			}
		})
	}
}

func TestHOTPAlgorithmNames(t *testing.T) {
	seed := []byte("12345678901234567890")
	for _, alg := range []string{"", "sha1", "Sha1"} {
		got, err := HOTP(seed, 1, 6, alg)
		if err != nil || got != "287082" {
			t.Errorf("HOTP with algorithm %q: got (%s, %v), want (287082, nil)", alg, got, err)
		}
	}
}

func TestHOTPBadParameters(t *testing.T) {
	seed := []byte("12345678901234567890")
	tests := []struct {
		name   string
		digits int
		alg    string
	}{
		{"5 digits", 5, "SHA1"},
		{"9 digits", 9, "SHA1"},
		{"0 digits", 0, "SHA1"},
		{"MD5", 6, "MD5"},
		{"SHA3", 6, "SHA3-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := HOTP(seed, 0, tt.digits, tt.alg); err == nil {
				t.Errorf("HOTP(digits %d, %q): got (%q, nil), want an error", tt.digits, tt.alg, got)
			}
			if _, ok, err := Match(seed, strings.Repeat("0", tt.digits), time.Unix(1e9, 0), 1, tt.digits, 30, tt.alg); err == nil || ok {
				t.Errorf("Match(digits %d, %q): got (%v, %v), want (false, error)", tt.digits, tt.alg, ok, err)
			}
		})
	}
}

// needOathtool fails, never skips: `make test` installs oathtool.
func needOathtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatalf("oathtool is not installed: run make test-deps (%v)", err)
	}
	return path
}

// TestTOTPMatchesOathtool compares our codes with OATH Toolkit's, the
// reference implementation authenticator apps agree with.
func TestTOTPMatchesOathtool(t *testing.T) {
	oathtool := needOathtool(t)
	seed, err := NewSeed(nil)
	if err != nil {
		t.Fatal(err)
	}
	seed256 := append(bytes.Clone(seed), seed[:12]...) // 32 bytes
	times := []int64{0, 29, 30, 59, 1111111109, 1234567890, 1780000015, 2000000000, 4102444800}
	tests := []struct {
		flag   string
		alg    string
		seed   []byte
		digits int
	}{
		{"--totp", "SHA1", seed, 6},
		{"--totp=sha256", "SHA256", seed256, 6},
		{"--totp=sha512", "SHA512", seed, 8},
	}
	for _, tt := range tests {
		for _, unix := range times {
			t.Run(fmt.Sprintf("%s/%d", tt.alg, unix), func(t *testing.T) {
				cmd := exec.CommandContext(t.Context(), oathtool, tt.flag, "--digits", fmt.Sprint(tt.digits), "-b", Base32(tt.seed), "-N", fmt.Sprintf("@%d", unix))
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%v: %v", cmd.Args, err)
				}
				want := strings.TrimSpace(string(out))
				got, err := HOTP(tt.seed, uint64(Step(time.Unix(unix, 0), 30)), tt.digits, tt.alg)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("seed %s at %d: got %s, want %s (oathtool)", Base32(tt.seed), unix, got, want)
				}
			})
		}
	}
}

func TestMatchWindow(t *testing.T) {
	seed := []byte("12345678901234567890")
	// 15 s into a step, so ±30 s is exactly ±1 step.
	now := time.Unix(1780000000-1780000000%30+15, 0)
	cur := Step(now, 30)
	codeAt := func(d time.Duration) string {
		c, err := HOTP(seed, uint64(Step(now.Add(d), 30)), 6, "SHA1")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		code     string
		window   int
		wantStep int64
		wantOK   bool
	}{
		{"now", codeAt(0), 1, cur, true},
		{"30s ago", codeAt(-30 * time.Second), 1, cur - 1, true},
		{"30s ahead", codeAt(30 * time.Second), 1, cur + 1, true},
		{"60s ago, window 1", codeAt(-60 * time.Second), 1, 0, false},
		{"60s ahead, window 1", codeAt(60 * time.Second), 1, 0, false},
		{"90s ago, window 1", codeAt(-90 * time.Second), 1, 0, false},
		{"90s ahead, window 1", codeAt(90 * time.Second), 1, 0, false},
		{"90s ago, window 3", codeAt(-90 * time.Second), 3, cur - 3, true},
		{"30s ago, window 0", codeAt(-30 * time.Second), 0, 0, false},
		{"now, window 0", codeAt(0), 0, cur, true},
		{"5 digits", codeAt(0)[:5], 1, 0, false},
		{"7 digits", codeAt(0) + "0", 1, 0, false},
		{"empty", "", 1, 0, false},
		{"code with a space", " " + codeAt(0)[1:], 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok, err := Match(seed, tt.code, now, tt.window, 6, 30, "SHA1")
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || (ok && step != tt.wantStep) {
				t.Errorf("Match(%q, window %d): got (%d, %v), want (%d, %v)", tt.code, tt.window, step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

// TestMatchWrongSeedRefused: a code from another enrolment does not match.
func TestMatchWrongSeedRefused(t *testing.T) {
	now := time.Unix(1780000015, 0)
	other := []byte("09876543210987654321")
	code, err := HOTP(other, uint64(Step(now, 30)), 6, "SHA1")
	if err != nil {
		t.Fatal(err)
	}
	seed := []byte("12345678901234567890")
	for d := int64(-1); d <= 1; d++ {
		if c, _ := HOTP(seed, uint64(Step(now, 30)+d), 6, "SHA1"); c == code {
			t.Fatalf("test seeds collide at step offset %d; pick other seeds", d)
		}
	}
	if step, ok, err := Match(seed, code, now, 1, 6, 30, "SHA1"); ok || err != nil {
		t.Errorf("Match with another seed's code: got (%d, %v, %v), want (0, false, nil)", step, ok, err)
	}
}

func TestMatchNearEpoch(t *testing.T) {
	seed := []byte("12345678901234567890")
	code, err := HOTP(seed, 0, 6, "SHA1")
	if err != nil {
		t.Fatal(err)
	}
	step, ok, err := Match(seed, code, time.Unix(10, 0), 2, 6, 30, "SHA1")
	if err != nil || !ok || step != 0 {
		t.Errorf("Match at 10s: got (%d, %v, %v), want (0, true, nil)", step, ok, err)
	}
}

func TestURI(t *testing.T) {
	seed := []byte("12345678901234567890")
	raw := URI("Clinic Gate", "alice@clinic.example", seed, 6, 30, "SHA1")
	if !strings.HasPrefix(raw, "otpauth://totp/") {
		t.Fatalf("URI: got %q, want prefix otpauth://totp/", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("URI %q does not parse: %v", raw, err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" {
		t.Errorf("scheme and type: got %s://%s, want otpauth://totp", u.Scheme, u.Host)
	}
	if got, want := u.Path, "/Clinic Gate:alice@clinic.example"; got != want {
		t.Errorf("label: got %q, want %q", got, want)
	}
	if strings.Contains(raw, " ") {
		t.Errorf("URI %q contains a raw space", raw)
	}
	q := u.Query()
	// SHA1, 6 digits and 30 s are the Key URI format's defaults: left
	// out, the QR code is a version smaller.
	want := map[string]string{
		"secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		"issuer": "Clinic Gate",
	}
	for k, w := range want {
		if got := q.Get(k); got != w {
			t.Errorf("parameter %s: got %q, want %q", k, got, w)
		}
	}
	if len(q) != len(want) {
		t.Errorf("parameters: got %v, want exactly %v", q, want)
	}
}

func TestURIEscapesLabel(t *testing.T) {
	raw := URI("A:B/C?", "x y#z", []byte("12345678901234567890"), 8, 60, "SHA256")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("URI %q does not parse: %v", raw, err)
	}
	if u.Fragment != "" {
		t.Errorf("fragment: got %q, want none (the account's # must be escaped)", u.Fragment)
	}
	if got, want := u.Query().Get("digits"), "8"; got != want {
		t.Errorf("digits: got %q, want %q", got, want)
	}
	if got, want := u.Query().Get("issuer"), "A:B/C?"; got != want {
		t.Errorf("issuer: got %q, want %q", got, want)
	}
}

func TestBase32RoundTrip(t *testing.T) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for n := 0; n <= 64; n++ {
		seed := make([]byte, n)
		for i := range seed {
			seed[i] = byte(i*37 + n)
		}
		s := Base32(seed)
		if strings.ContainsAny(s, "=abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("Base32(%d bytes): got %q, want upper case without padding", n, s)
		}
		back, err := enc.DecodeString(s)
		if err != nil {
			t.Fatalf("decode Base32(%d bytes) %q: %v", n, s, err)
		}
		if !bytes.Equal(back, seed) {
			t.Errorf("round trip of %d bytes: got %x, want %x", n, back, seed)
		}
	}
	if got, want := Base32([]byte("12345678901234567890")), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; got != want {
		t.Errorf("Base32(RFC seed): got %s, want %s", got, want)
	}
}

func TestNewSeed(t *testing.T) {
	a, err := NewSeed(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSeed(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != SeedBytes || len(b) != SeedBytes {
		t.Fatalf("seed lengths: got %d and %d, want %d", len(a), len(b), SeedBytes)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two seeds are equal: %x", a)
	}
	fixed := bytes.Repeat([]byte{7}, SeedBytes)
	c, err := NewSeed(bytes.NewReader(fixed))
	if err != nil || !bytes.Equal(c, fixed) {
		t.Errorf("NewSeed(fixed reader): got (%x, %v), want (%x, nil)", c, err, fixed)
	}
}

// TestShortRandomnessRefused: a seed is never padded out of a reader that
// ran dry or failed.
func TestShortRandomnessRefused(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		rnd  func() *bytes.Reader
	}{
		{"empty", func() *bytes.Reader { return bytes.NewReader(nil) }},
		{"short", func() *bytes.Reader { return bytes.NewReader(make([]byte, SeedBytes-1)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewSeed(tt.rnd()); err == nil {
				t.Errorf("NewSeed: got (%x, nil), want an error", s)
			}
		})
	}
	if s, err := NewSeed(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("NewSeed(failing reader): got (%x, %v), want %v", s, err, boom)
	}
}

func TestLooksLikeCode(t *testing.T) {
	tests := []struct {
		s      string
		digits int
		want   bool
	}{
		{"123456", 6, true},
		{"000000", 6, true},
		{"12345678", 8, true},
		{"12345", 6, false},
		{"1234567", 6, false},
		{"12345a", 6, false},
		{"12 456", 6, false},
		{"-12345", 6, false},
		{"１２３４５６", 6, false}, // full-width digits
		{"", 6, false},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			if got := LooksLikeCode(tt.s, tt.digits); got != tt.want {
				t.Errorf("LooksLikeCode(%q, %d): got %v, want %v", tt.s, tt.digits, got, tt.want)
			}
		})
	}
}
