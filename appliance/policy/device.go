package policy

import (
	"errors"
	"slices"
	"strings"
)

// ErrNotMAC means a string does not hold a 48-bit MAC address.
var ErrNotMAC = errors.New("not a MAC address (want six hex pairs like aa:bb:cc:dd:ee:ff)")

// NormalizeMAC returns the canonical lowercase colon form of a MAC address as
// NASes send it in Calling-Station-Id: "AA-BB-CC-DD-EE-FF",
// "aabb.ccdd.eeff", "AABBCCDDEEFF", and the Wi-Fi form with the SSID
// appended, "AA-BB-CC-DD-EE-FF:Clinic". The digits must be grouped like a
// MAC address (pairs, Cisco's groups of four, HP's halves) with one kind of
// separator, so an IP address ("192.168.100.200", "2a02:1205:5057::1") is
// not mistaken for one.
func NormalizeMAC(s string) (string, error) {
	s = strings.TrimSpace(s)
	var hex []byte
	var seps []int // how many digits come before each separator
	var sep byte
	i := 0
	for ; i < len(s) && len(hex) < 12; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			hex = append(hex, c)
		case c >= 'A' && c <= 'F':
			hex = append(hex, c+'a'-'A')
		case c == '-' || c == ':' || c == '.':
			if len(hex) == 0 || (sep != 0 && c != sep) {
				return "", ErrNotMAC
			}
			sep = c
			seps = append(seps, len(hex))
		default:
			return "", ErrNotMAC
		}
	}
	if len(hex) != 12 || !macLayout(seps, sep) {
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

// macLayout reports whether separators after the given digit counts form a
// MAC address layout: none, "aa-bb-cc-dd-ee-ff" (any separator),
// "aabb.ccdd.eeff" or "aabb-ccdd-eeff" (not colons: that is IPv6), or
// "aabbcc-ddeeff".
func macLayout(seps []int, sep byte) bool {
	switch {
	case len(seps) == 0:
		return true
	case slices.Equal(seps, []int{2, 4, 6, 8, 10}):
		return true
	case slices.Equal(seps, []int{4, 8}):
		return sep == '.' || sep == '-'
	case slices.Equal(seps, []int{6}):
		return sep == '-'
	}
	return false
}
