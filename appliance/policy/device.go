package policy

import (
	"errors"
	"strings"
)

// ErrNotMAC means a string does not hold a 48-bit MAC address.
var ErrNotMAC = errors.New("not a MAC address (want six hex pairs like aa:bb:cc:dd:ee:ff)")

// NormalizeMAC returns the canonical lowercase colon form of a MAC address as
// NASes send it in Calling-Station-Id: "AA-BB-CC-DD-EE-FF",
// "aabb.ccdd.eeff", "AABBCCDDEEFF", and the Wi-Fi form with the SSID
// appended, "AA-BB-CC-DD-EE-FF:Clinic".
func NormalizeMAC(s string) (string, error) {
	s = strings.TrimSpace(s)
	var hex []byte
	i := 0
	for ; i < len(s) && len(hex) < 12; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			hex = append(hex, c)
		case c >= 'A' && c <= 'F':
			hex = append(hex, c+'a'-'A')
		case c == '-' || c == ':' || c == '.':
			if len(hex) == 0 {
				return "", ErrNotMAC
			}
		default:
			return "", ErrNotMAC
		}
	}
	if len(hex) != 12 {
		return "", ErrNotMAC
	}
	if rest := s[i:]; rest != "" && rest[0] != ':' {
		return "", ErrNotMAC
	}
	var b strings.Builder
	for j := 0; j < 12; j += 2 {
		if j > 0 {
			b.WriteByte(':')
		}
		b.Write(hex[j : j+2])
	}
	return b.String(), nil
}
