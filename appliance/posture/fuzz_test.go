package posture

import "testing"

// FuzzParseJamfRule: a rule typed by a contractor never panics, and one
// that parses names at least one check.
func FuzzParseJamfRule(f *testing.F) {
	for _, s := range []string{"smart-group:12", "filevault,firewall,os>=14.4", "os>=14.10.1", "FileVault", "os>=", "smart-group:", ",", "os>=1.-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseJamfRule(s)
		if err != nil {
			return
		}
		if r.SmartGroup == "" && !r.FileVault && !r.Firewall && r.MinOS == nil {
			t.Fatalf("%q parsed to an empty rule", s)
		}
		if r.MinOS != nil && !versionAtLeast(r.MinOS, r.MinOS) {
			t.Fatalf("%q: a version is not at least itself", s)
		}
	})
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{{"14.4", "14.4", true}, {"14.10", "14.4", true}, {"14.3.1", "14.4", false}, {"15", "14.4", true}, {"14.4.0", "14.4", true}, {"14", "14.0.1", false}} {
		h, _ := parseVersion(tc.have)
		w, _ := parseVersion(tc.want)
		if got := versionAtLeast(h, w); got != tc.ok {
			t.Errorf("%s >= %s: got %t, want %t", tc.have, tc.want, got, tc.ok)
		}
	}
}
