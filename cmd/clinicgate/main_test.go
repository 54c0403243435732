package main

// The command line driven in-process: what an operator types, what it
// prints, and what it refuses. The end-to-end tests (e2e/) run the built
// binary against a running daemon.

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// newData makes a data directory as the daemon's first start does.
func newData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	if err := admin.Create(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	return data
}

// cg runs a clinicgate command against data and returns what it printed,
// the error included as main prints it.
func cg(t *testing.T, data, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), append(args, "--data", data), strings.NewReader(stdin), &out, &out)
	if err != nil {
		fmt.Fprintln(&out, "clinicgate:", err)
	}
	return out.String(), err
}

func mustCG(t *testing.T, data, stdin string, args ...string) string {
	t.Helper()
	out, err := cg(t, data, stdin, args...)
	if err != nil {
		t.Fatalf("clinicgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

const secret = "e2e-shared-secret-0123456789"

func TestCLIRefusesBadInput(t *testing.T) {
	data := newData(t)
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"client", "add", "ap", "--address", "10.0.0.300"}, "", "not an IP address"},
		{[]string{"client", "add", "ap", "--address", "10.0.0.1/24"}, "", "host bits"},
		{[]string{"client", "add", "a p", "--address", "10.0.0.1"}, "", "may only use letters"},
		{[]string{"client", "add", "ap", "--address", "10.0.0.1", "--secret-stdin"}, "short", "shorter than 16"},
		{[]string{"client", "add", "ap", "--address", "10.0.0.1", "--mfa", "maybe"}, "", "mfa must be"},
		{[]string{"client", "add", "ap", "--address", "10.0.0.1", "--vlan", "nurses=5000"}, "", "VLAN 5000"},
		{[]string{"user", "add", "bad,name"}, "", "commas"},
		{[]string{"user", "add", "bob", "--password-stdin"}, "short", "shorter than 8"},
		{[]string{"user", "add", "bob", "--hours", "Mon-Fry 9:00-17:00"}, "", "not a day"},
		{[]string{"user", "add", "bob", "--expires", "tomorrow"}, "", "not a date"},
		{[]string{"settings", "set", "timezone", "Mars/Olympus"}, "", "not a known time zone"},
		{[]string{"device", "add", "not-a-mac", "--user", "bob"}, "", "not a MAC address"},
		{[]string{"mfa", "enroll", "ghost"}, "", "no user"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := cg(t, data, tc.stdin, tc.args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("got %v %q, want an error containing %q", err, out, tc.want)
			}
			if strings.Contains(out, "goroutine") || strings.Contains(out, "panic") {
				t.Fatalf("got a crash: %s", out)
			}
		})
	}
	// A generated secret is strong and shown once.
	out := mustCG(t, data, "", "client", "add", "ap", "--address", "10.0.0.0/24")
	if m := regexp.MustCompile(`shown once.*: (\S{32})\n`).FindStringSubmatch(out); m == nil {
		t.Fatalf("no 32-character generated secret in %q", out)
	}
}

func TestFailedClientSetChangesNothing(t *testing.T) {
	data := newData(t)
	mustCG(t, data, secret, "client", "add", "ap", "--address", "10.0.0.1", "--secret-stdin", "--vlan", "nurses=20")
	if out, err := cg(t, data, "", "client", "set", "ap", "--vlan", "nurses=30", "--vlan", "bad"); err == nil {
		t.Fatalf("got success for a bad --vlan: %s", out)
	}
	if out := mustCG(t, data, "", "client", "list"); !strings.Contains(out, "nurses=20") || strings.Contains(out, "nurses=30") {
		t.Fatalf("a refused change was saved:\n%s", out)
	}
	mustCG(t, data, "", "client", "set", "ap", "--vlan", "", "--allow-group", "")
	if out := mustCG(t, data, "", "client", "list"); strings.Contains(out, "nurses") {
		t.Fatalf("--vlan \"\" did not clear the rules:\n%s", out)
	}
}

// TestUserSwitchesSayWhatHappened: disable, enable and remove answer in
// whole words.
func TestUserSwitchesSayWhatHappened(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "", "user", "add", "bob")
	for _, tc := range []struct{ verb, want string }{
		{"disable", "user bob: disabled\n"},
		{"enable", "user bob: enabled\n"},
		{"remove", "user bob: removed\n"},
	} {
		if got := mustCG(t, data, "", "user", tc.verb, "bob"); got != tc.want {
			t.Errorf("user %s: got %q, want %q", tc.verb, got, tc.want)
		}
	}
}

// TestUsageErrors: every command group names its subcommands, and a
// subcommand says which arguments it wants; both are usage errors (exit 2).
func TestUsageErrors(t *testing.T) {
	data := newData(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "frobnicate"}, `user: unknown subcommand "frobnicate"`},
		{[]string{"user", "add"}, "expected one user name"},
		{[]string{"settings", "set", "timezone"}, "expected KEY VALUE"},
		{[]string{"client", "list", "extra"}, "expected no arguments"},
		{[]string{"audit", "show", "x"}, "the entry number is a whole number"},
		{[]string{"upstream", "test", "dc"}, "--user is required"},
		{[]string{"client", "set", "ap"}, "nothing to change"},
	} {
		out, err := cg(t, data, "", tc.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(out, tc.want) {
			t.Errorf("%s: got %v %q, want a usage error containing %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"user"}, strings.NewReader(""), &out, &out)
	if want := "user: add, list, disable, enable, passwd, set or remove?"; err == nil || err.Error() != want {
		t.Errorf("user alone: got %v, want the usage error %q", err, want)
	}
}

// TestUpstreamAddTurnsStartTLSOnForPlainLDAP: the command line stores the
// same settings as the console for the same answers — StartTLS on for an
// ldap:// URL unless turned off on purpose.
func TestUpstreamAddTurnsStartTLSOnForPlainLDAP(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "pw", "upstream", "add", "dc", "--kind", "ldap", "--url", "ldap://127.0.0.1:389", "--base-dn", "dc=clinic,dc=local", "--bind-dn", "cn=svc,dc=clinic,dc=local", "--secret-stdin")
	out := mustCG(t, data, "pw", "upstream", "add", "dc-plain", "--kind", "ldap", "--url", "ldap://127.0.0.1:389", "--starttls=false", "--base-dn", "dc=clinic,dc=local")
	if !strings.Contains(out, "warning:") || !strings.Contains(out, "without StartTLS") {
		t.Errorf("plain LDAP turned off on purpose: got %q, want a warning", out)
	}
	list := mustCG(t, data, "", "upstream", "list")
	if !regexp.MustCompile(`(?m)^dc\s.*"starttls":true`).MatchString(list) || !regexp.MustCompile(`(?m)^dc-plain\s.*"starttls":false`).MatchString(list) {
		t.Fatalf("upstream list:\n%s\nwant starttls on for dc and off for dc-plain", list)
	}
}

// TestExpiryDateIsTheSiteDay: "--expires 2026-12-31" on a Chicago site
// means through 31 December in Chicago, and user list shows that day with
// the zone (before, it was stored as midnight UTC, 18:00 in Chicago).
func TestExpiryDateIsTheSiteDay(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "", "settings", "set", "timezone", "America/Chicago")
	mustCG(t, data, "", "user", "add", "partner", "--expires", "2026-12-31")
	if out := mustCG(t, data, "", "user", "list"); !strings.Contains(out, "2026-12-31 America/Chicago") {
		t.Errorf("user list: want the expiry shown as 2026-12-31 America/Chicago:\n%s", out)
	}
	if out := mustCG(t, data, "", "acct", "list"); !strings.Contains(out, "STARTED (America/Chicago)") {
		t.Errorf("acct list: want its times named in the site's zone:\n%s", out)
	}
	mustCG(t, data, "", "user", "set", "partner", "--expires", "2027-06-30")
	out := mustCG(t, data, "", "audit", "tail")
	if !strings.Contains(out, "expires 2027-07-01T00:00:00-05:00") {
		t.Errorf("audit: want the expiry at midnight Chicago time (2027-07-01T00:00:00-05:00):\n%s", out)
	}
}
