package policy

import (
	"encoding/hex"
	"errors"
	"strings"
)

// NormalizeFingerprint reads a certificate's SHA-256 fingerprint in any of
// the forms tools print it (colons, spaces or none; either case) and
// returns it as the appliance names certificates: upper-case hex in
// colon-separated pairs.
func NormalizeFingerprint(s string) (string, error) {
	h := strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	h = strings.TrimPrefix(strings.TrimPrefix(h, "sha256="), "SHA256=")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return "", errors.New("not a SHA-256 fingerprint (64 hex digits, with or without colons)")
	}
	h = strings.ToUpper(hex.EncodeToString(b))
	parts := make([]string, 0, 32)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":"), nil
}

// NormalizeSerial reads a certificate serial number in hex (colons or
// spaces allowed, either case) and returns it in lower-case hex without
// leading zeros, so that "00:1A" and "1a" name the same certificate.
func NormalizeSerial(s string) (string, error) {
	h := strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
	h = strings.TrimPrefix(h, "0x")
	if h == "" || len(h) > 80 {
		return "", errors.New("not a serial number (1 to 40 bytes of hex)")
	}
	if _, err := hex.DecodeString(h + strings.Repeat("0", len(h)%2)); err != nil {
		return "", errors.New("not a serial number (hex digits only)")
	}
	h = strings.TrimLeft(h, "0")
	if h == "" {
		h = "0"
	}
	return h, nil
}
