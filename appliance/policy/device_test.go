package policy

import (
	"errors"
	"testing"
)

func TestNormalizeMAC(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"},
		{"aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"},
		{"aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"},
		{"AABB.CCDD.EEFF", "aa:bb:cc:dd:ee:ff"},
		{"AABBCCDDEEFF", "aa:bb:cc:dd:ee:ff"},
		{"aabbcc-ddeeff", "aa:bb:cc:dd:ee:ff"},
		{"aabb-ccdd-eeff", "aa:bb:cc:dd:ee:ff"},
		{"aa.bb.cc.dd.ee.ff", "aa:bb:cc:dd:ee:ff"},
		{"00-1A-2b-3C-4d-5E", "00:1a:2b:3c:4d:5e"},
		{"  AA-BB-CC-DD-EE-FF\t", "aa:bb:cc:dd:ee:ff"},
		{"AA-BB-CC-DD-EE-FF:ClinicWiFi", "aa:bb:cc:dd:ee:ff"},
		{"AA-BB-CC-DD-EE-FF:Clinic Guest", "aa:bb:cc:dd:ee:ff"},
		{"aa:bb:cc:dd:ee:ff:Clinic", "aa:bb:cc:dd:ee:ff"},
		{"AABBCCDDEEFF:Clinic", "aa:bb:cc:dd:ee:ff"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeMAC(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("NormalizeMAC(%q): got (%q, %v), want (%q, nil)", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestNotAMACRefused keeps anything that is not exactly one MAC address out
// of device binding: a NAS that puts an IP address in Calling-Station-Id
// (VPN gateways do) must not have it read as a MAC.
func TestNotAMACRefused(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"blank", "   "},
		{"11 hex digits", "AABBCCDDEEF"},
		{"13 hex digits", "AABBCCDDEEFF0"},
		{"13 hex digits with dashes", "AA-BB-CC-DD-EE-FF-0"},
		{"five pairs", "aa:bb:cc:dd:ee"},
		{"not hex", "GG-BB-CC-DD-EE-FF"},
		{"leading separator", "-AA-BB-CC-DD-EE-FF"},
		{"doubled separator", "AA--BB-CC-DD-EE-FF"},
		{"mixed separators", "AA-BB:CC-DD:EE-FF"},
		{"quads with colons", "aabb:ccdd:eeff"},
		{"halves with dots", "aabbcc.ddeeff"},
		{"triples", "aab-bcc-dde-eff"},
		{"odd grouping", "A-ABBCCDDEE-FF"},
		{"space inside", "AA BB CC DD EE FF"},
		{"suffix without colon", "AA-BB-CC-DD-EE-FF Clinic"},
		{"suffix after dash", "AA-BB-CC-DD-EE-FF-Clinic"},
		{"IPv4", "192.168.1.10"},
		{"IPv4 long octets", "192.168.100.200"},
		{"IPv4 with port", "10.20.30.40:1812"},
		{"IPv6 loopback", "::1"},
		{"IPv6 link-local", "fe80::1ff:fe23:4567:890a"},
		{"IPv6 global, three full groups", "2a02:1205:5057:3b10::1"},
		{"IPv6 global, full form", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"},
		{"IPv6 documentation prefix", "2001:0db8:0000::1"},
		{"IPv4-mapped IPv6", "::ffff:192.168.1.10"},
		{"user name", "alice@clinic.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeMAC(tt.in)
			if !errors.Is(err, ErrNotMAC) {
				t.Errorf("NormalizeMAC(%q): got (%q, %v), want ErrNotMAC", tt.in, got, err)
			}
		})
	}
}
