package policy

import (
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate(): got %v, want nil", err)
	}
}

// TestDefaultFailsClosed pins the settings a new client starts with.
func TestDefaultFailsClosed(t *testing.T) {
	p := Default()
	if p.MFA != MFARequired {
		t.Errorf("MFA: got %q, want %q", p.MFA, MFARequired)
	}
	if p.Failmode != FailSecure {
		t.Errorf("Failmode: got %q, want %q", p.Failmode, FailSecure)
	}
	if !p.RequireMessageAuthenticator {
		t.Errorf("RequireMessageAuthenticator: got false, want true")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Policy)
		want []string // substrings of the error; nil: valid
	}{
		{"default", func(*Policy) {}, nil},
		{"mfa enrolled", func(p *Policy) { p.MFA = MFAEnrolled }, nil},
		{"mfa off", func(p *Policy) { p.MFA = MFAOff }, nil},
		{"style challenge", func(p *Policy) { p.Style = StyleChallenge }, nil},
		{"style append", func(p *Policy) { p.Style = StyleAppend }, nil},
		{"good rules", func(p *Policy) {
			p.SessionTimeout = 3600
			p.Rules = []Rule{{Group: "nurses", VLAN: 20, SessionTimeout: 600, Class: "n"}, {Group: "admins", VLAN: MaxVLAN}}
		}, nil},
		{"rule with class of 253 bytes", func(p *Policy) { p.Rules = []Rule{{Group: "g", Class: strings.Repeat("c", 253)}} }, nil},

		{"named upstream", func(p *Policy) { p.Upstream = "clinic-ad" }, nil},
		{"cached failmode with an upstream", func(p *Policy) { p.Upstream, p.Failmode = "clinic-ad", FailCached }, nil},

		{"empty upstream", func(p *Policy) { p.Upstream = "" }, []string{"upstream is empty"}},
		{"blank upstream", func(p *Policy) { p.Upstream = "  " }, []string{"upstream is empty"}},
		{"unknown mfa", func(p *Policy) { p.MFA = "sometimes" }, []string{`mfa must be`}},
		{"empty mfa", func(p *Policy) { p.MFA = "" }, []string{`mfa must be`}},
		{"mfa wrong case", func(p *Policy) { p.MFA = "Required" }, []string{`mfa must be`}},
		{"unknown style", func(p *Policy) { p.Style = "sms" }, []string{`mfa style`}},
		{"cached failmode for local users", func(p *Policy) { p.Failmode = FailCached }, []string{"failmode cached only applies to an upstream"}},
		{"failmode empty", func(p *Policy) { p.Failmode = "" }, []string{`failmode must be secure or cached, not ""`}},
		{"failmode open", func(p *Policy) { p.Failmode = "open" }, []string{`failmode must be secure or cached, not "open"`}},
		{"negative session timeout", func(p *Policy) { p.SessionTimeout = -1 }, []string{"session timeout cannot be negative"}},
		{"rule without group", func(p *Policy) { p.Rules = []Rule{{Group: " "}} }, []string{"rule 1 has no group"}},
		{"rule VLAN too high", func(p *Policy) { p.Rules = []Rule{{Group: "g"}, {Group: "h", VLAN: 4095}} }, []string{"rule 2: VLAN 4095"}},
		{"rule VLAN negative", func(p *Policy) { p.Rules = []Rule{{Group: "g", VLAN: -1}} }, []string{"rule 1: VLAN -1"}},
		{"rule negative timeout", func(p *Policy) { p.Rules = []Rule{{Group: "g", SessionTimeout: -5}} }, []string{"rule 1: session timeout"}},
		{"rule class too long", func(p *Policy) { p.Rules = []Rule{{Group: "g", Class: strings.Repeat("c", 254)}} }, []string{"rule 1: class"}},
		{"every problem reported at once", func(p *Policy) {
			p.Upstream, p.MFA, p.Style, p.Failmode = "", "x", "x", "x"
			p.SessionTimeout = -1
			p.Rules = []Rule{{VLAN: 5000}}
		}, []string{"upstream is empty", `mfa must be`, `mfa style`, `failmode must be secure or cached, not "x"`, "session timeout cannot be negative", "rule 1 has no group", "rule 1: VLAN 5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			tt.edit(&p)
			err := p.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate(): got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(): got nil, want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(): got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestRuleFor(t *testing.T) {
	p := Default()
	p.Rules = []Rule{
		{Group: "Doctors", VLAN: 10},
		{Group: "nurses", VLAN: 20},
		{Group: "staff", VLAN: 30},
	}
	tests := []struct {
		name     string
		groups   []string
		wantVLAN int
		wantOK   bool
	}{
		{"one group", []string{"nurses"}, 20, true},
		{"case-insensitive", []string{"NURSES"}, 20, true},
		{"case-insensitive rule name", []string{"doctors"}, 10, true},
		{"first rule wins, not first group", []string{"staff", "doctors"}, 10, true},
		{"first rule wins over later rules", []string{"nurses", "staff"}, 20, true},
		{"unmatched groups skipped", []string{"billing", "staff"}, 30, true},
		{"no match", []string{"billing"}, 0, false},
		{"no groups", nil, 0, false},
		{"no substring match", []string{"nurse"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := p.RuleFor(tt.groups)
			if ok != tt.wantOK || r.VLAN != tt.wantVLAN {
				t.Errorf("RuleFor(%q): got (VLAN %d, %v), want (VLAN %d, %v)", tt.groups, r.VLAN, ok, tt.wantVLAN, tt.wantOK)
			}
		})
	}
	if r, ok := Default().RuleFor([]string{"nurses"}); ok {
		t.Errorf("RuleFor without rules: got (%+v, true), want false", r)
	}
}

func TestGroupAllowed(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		groups  []string
		want    bool
	}{
		{"no list allows everyone", nil, nil, true},
		{"no list allows members", nil, []string{"staff"}, true},
		{"member", []string{"nurses", "doctors"}, []string{"doctors"}, true},
		{"case-insensitive", []string{"Nurses"}, []string{"NURSES"}, true},
		{"one of several groups", []string{"doctors"}, []string{"staff", "doctors"}, true},
		{"not a member", []string{"doctors"}, []string{"staff"}, false},
		{"no groups", []string{"doctors"}, nil, false},
		{"no substring match", []string{"doctors"}, []string{"doctor"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			p.AllowedGroups = tt.allowed
			if got := p.GroupAllowed(tt.groups); got != tt.want {
				t.Errorf("GroupAllowed(%q) with allowed %q: got %v, want %v", tt.groups, tt.allowed, got, tt.want)
			}
		})
	}
}
