package config

import (
	"strings"
	"testing"
)

func TestSCEPSettingsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string // "" for valid
	}{
		{"off by default", func(*Config) {}, ""},
		{"on", func(c *Config) { c.SCEP.Listen, c.SCEP.PublicURL = ":9443", "https://gate.clinic.lan:9443" }, ""},
		{"bad address", func(c *Config) { c.SCEP.Listen = "9443" }, "scep.listen"},
		{"http public URL", func(c *Config) { c.SCEP.PublicURL = "http://gate:9443" }, "scep.public_url"},
		{"public URL with a path", func(c *Config) { c.SCEP.PublicURL = "https://gate:9443/scep" }, "scep.public_url"},
		{"certificate without key", func(c *Config) { c.SCEP.CertFile = "/etc/c.pem" }, "cert_file and key_file"},
		{"too many at once", func(c *Config) { c.SCEP.MaxConcurrent = 1000 }, "max_concurrent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestProfilerOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		http string
		ok   bool
	}{{"127.0.0.1:9812", true}, {"[::1]:9812", true}, {"localhost:9812", true}, {":9812", false}, {"0.0.0.0:9812", false}, {"192.0.2.1:9812", false}, {"", false}} {
		c := Default()
		c.HTTP, c.PProf = tc.http, true
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("pprof on http %q: got %v, want ok=%v", tc.http, err, tc.ok)
		}
	}
}
