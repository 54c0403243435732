package policy

import (
	"strings"
	"testing"
)

func TestNormalizeFingerprint(t *testing.T) {
	want := strings.TrimSuffix(strings.Repeat("AB:", 31)+"AB", ":")
	for _, in := range []string{strings.Repeat("ab", 32), strings.Repeat("AB:", 31) + "AB", " " + strings.Repeat("ab ", 32), "sha256=" + strings.Repeat("Ab", 32)} {
		if got, err := NormalizeFingerprint(in); err != nil || got != want {
			t.Errorf("NormalizeFingerprint(%q): got %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ab", strings.Repeat("ab", 20), strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		if got, err := NormalizeFingerprint(in); err == nil {
			t.Errorf("NormalizeFingerprint(%q): got %q, want an error", in, got)
		}
	}
}

func TestNormalizeSerial(t *testing.T) {
	for in, want := range map[string]string{"0A:1B": "a1b", "a1b": "a1b", "00 00 01": "1", "0x1F2A": "1f2a", "0": "0", "000": "0"} {
		if got, err := NormalizeSerial(in); err != nil || got != want {
			t.Errorf("NormalizeSerial(%q): got %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "xyz", "1g", strings.Repeat("1", 81)} {
		if got, err := NormalizeSerial(in); err == nil {
			t.Errorf("NormalizeSerial(%q): got %q, want an error", in, got)
		}
	}
}
