package main

import (
	"strings"
	"testing"
)

// TestMDMCommandsKeepSecretsOut: set, list and remove an MDM; the secret
// never shows in the listing or the audit, the Jamf rule does.
func TestMDMCommandsKeepSecretsOut(t *testing.T) {
	data := newData(t)
	const graphSecret = "intune-client-secret-value"
	mustCG(t, data, graphSecret+"\n", "mdm", "set", "intune", "--tenant", "contoso.onmicrosoft.com", "--client-id", "app-1", "--secret-stdin", "--interval", "30m")
	mustCG(t, data, "jamf-secret-value\n", "mdm", "set", "jamf", "--url", "https://clinic.jamfcloud.com", "--client-id", "jc", "--secret-stdin", "--rule", "filevault,firewall,os>=14.4")
	out := mustCG(t, data, "", "mdm", "list")
	for _, want := range []string{"intune", "tenant contoso.onmicrosoft.com, client app-1", "30m0s", "never", "YES", "jamf", "filevault,firewall,os>=14.4"} {
		if !strings.Contains(out, want) {
			t.Errorf("mdm list lacks %q:\n%s", want, out)
		}
	}
	audit := mustCG(t, data, "", "audit", "tail", "-n", "20")
	for _, s := range []string{out, audit} {
		if strings.Contains(s, graphSecret) || strings.Contains(s, "jamf-secret-value") {
			t.Fatalf("a secret is shown:\n%s", s)
		}
	}
	if !strings.Contains(audit, "mdm_set") {
		t.Errorf("the change is not audited:\n%s", audit)
	}
	// Changing the interval alone keeps the stored secret.
	mustCG(t, data, "", "mdm", "set", "intune", "--tenant", "contoso.onmicrosoft.com", "--client-id", "app-1", "--interval", "1h")
	if out := mustCG(t, data, "", "mdm", "list"); !strings.Contains(out, "1h0m0s") {
		t.Errorf("interval not changed:\n%s", out)
	}
	if out := mustCG(t, data, "", "mdm", "remove", "jamf"); !strings.Contains(out, "jamf removed") {
		t.Errorf("remove: %s", out)
	}
	if out := mustCG(t, data, "", "mdm", "list"); strings.Contains(out, "jamf") {
		t.Errorf("jamf still listed:\n%s", out)
	}
}

func TestMDMSetRefusesBadSettings(t *testing.T) {
	data := newData(t)
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"mdm", "set", "intune", "--tenant", "t", "--client-id", "c"}, "", "no secret stored yet"},
		{[]string{"mdm", "set", "jamf", "--url", "http://jamf.example", "--client-id", "c", "--secret-stdin", "--rule", "firewall"}, "s\n", "must start with https://"},
		{[]string{"mdm", "set", "jamf", "--url", "https://jamf.example", "--client-id", "c", "--secret-stdin", "--rule", "antivirus"}, "s\n", "is not smart-group:ID"},
		{[]string{"mdm", "set", "kandji"}, "", "is not one of intune, jamf, google"},
		{[]string{"mdm", "set", "intune", "--tenant", "t", "--client-id", "c", "--secret-stdin", "--interval", "10s"}, "s\n", "outside 1m-24h"},
		{[]string{"mdm", "sync", "intune"}, "", "there is no MDM"},
	}
	for _, tc := range cases {
		out, err := cg(t, data, tc.stdin, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: got %v %q, want an error containing %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
