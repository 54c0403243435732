// Package mfa implements the second factors the gate can ask for. For now:
// TOTP (RFC 6238) over HOTP (RFC 4226), the codes of every authenticator
// app. It only computes and compares codes; replay and lockout state live in
// the store and are enforced by the gate.
package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters every authenticator app understands.
const (
	DefaultDigits    = 6
	DefaultPeriod    = 30
	DefaultAlgorithm = "SHA1"
	SeedBytes        = 20 // RFC 4226 recommends 160 bits
)

// NewSeed returns a fresh random seed.
func NewSeed(rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	seed := make([]byte, SeedBytes)
	if _, err := io.ReadFull(rnd, seed); err != nil {
		return nil, fmt.Errorf("mfa: seed: %w", err)
	}
	return seed, nil
}

// Base32 is the seed as authenticator apps and oathtool take it.
func Base32(seed []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
}

// URI returns the otpauth:// URI for an authenticator app (Key Uri Format).
func URI(issuer, account string, seed []byte, digits, period int, algorithm string) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", Base32(seed))
	q.Set("issuer", issuer)
	// The Key URI format makes these three optional with these defaults;
	// leaving them out shrinks the QR code by a version, so that it and
	// the secret fit a 24-line terminal.
	if !strings.EqualFold(algorithm, DefaultAlgorithm) {
		q.Set("algorithm", algorithm)
	}
	if digits != DefaultDigits {
		q.Set("digits", fmt.Sprint(digits))
	}
	if period != DefaultPeriod {
		q.Set("period", fmt.Sprint(period))
	}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

func hasher(algorithm string) (func() hash.Hash, error) {
	switch strings.ToUpper(algorithm) {
	case "SHA1", "":
		return sha1.New, nil
	case "SHA256":
		return sha256.New, nil
	case "SHA512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("mfa: unknown TOTP algorithm %q", algorithm)
}

// HOTP computes the RFC 4226 code for counter.
func HOTP(seed []byte, counter uint64, digits int, algorithm string) (string, error) {
	h, err := hasher(algorithm)
	if err != nil {
		return "", err
	}
	if digits < 6 || digits > 8 {
		return "", fmt.Errorf("mfa: %d digits: want 6 to 8", digits)
	}
	m := hmac.New(h, seed)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod), nil
}

// Step returns the TOTP time step of t.
func Step(t time.Time, period int) int64 {
	return t.Unix() / int64(period)
}

// Match looks for code among the time steps within window of now and
// returns the step it belongs to. Every candidate is computed and compared
// in constant time, so timing does not tell which step matched.
func Match(seed []byte, code string, now time.Time, window, digits, period int, algorithm string) (int64, bool, error) {
	if len(code) != digits {
		return 0, false, nil
	}
	cur := Step(now, period)
	var found int64
	ok := 0
	for d := -window; d <= window; d++ {
		step := cur + int64(d)
		if step < 0 {
			continue
		}
		want, err := HOTP(seed, uint64(step), digits, algorithm)
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && ok == 0 {
			found, ok = step, 1
		}
	}
	return found, ok == 1, nil
}

// LooksLikeCode reports whether s has the shape of a code: exactly digits
// ASCII digits.
func LooksLikeCode(s string, digits int) bool {
	if len(s) != digits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
