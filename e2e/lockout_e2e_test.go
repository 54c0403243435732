package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestLockoutStormFromOneStationLeavesUserIn is issue 16's finding 2 with
// real tools: wrong passwords for alice from one Wi-Fi station (radclient,
// Calling-Station-Id of the attacker) get that station refused, even with
// the right password, while alice still logs in from her own station and,
// through the LDAP door, with OpenLDAP's ldapwhoami.
func TestLockoutStormFromOneStationLeavesUserIn(t *testing.T) {
	need(t, "ldapwhoami")
	data, d := setup(t, "--mfa", "off")
	mustCG(t, data, "", "client", "add", "ehr", "--door", "ldap", "--address", "127.0.0.1", "--mfa", "off")
	hostile := func(pw string) string {
		return received(radclient(t, d.auth, "auth", secret, fmt.Sprintf("User-Name = alice, User-Password = %q, Calling-Station-Id = \"02-66-66-66-66-66\", Message-Authenticator = 0x00", pw)))
	}
	for i := range 12 {
		if got := hostile(fmt.Sprintf("guess-%d", i)); got != "Access-Reject" {
			t.Fatalf("guess %d: %s", i, got)
		}
	}
	if got := hostile("correct horse battery"); got != "Access-Reject" {
		t.Fatalf("the attacking station with the right password: %s, want it refused", got)
	}
	if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "correct horse battery"))); got != "Access-Accept" {
		t.Fatalf("alice from her own station: %s, want Access-Accept", got)
	}
	out, rc := ldapTool(t, data, "ldapwhoami", "-x", "-H", "ldap://"+d.ldap, "-ZZ", "-D", "alice", "-w", "correct horse battery")
	if rc != 0 || !strings.Contains(out, "u:alice") {
		t.Fatalf("ldapwhoami as alice after the storm: rc %d\n%s", rc, out)
	}
	// The audit tells the two apart: the station refused, the account not
	// locked.
	story := mustCG(t, data, "", "audit", "tail", "-n", "30", "--user", "alice")
	if !strings.Contains(story, "locked_out") {
		t.Fatalf("no locked_out refusal in the audit:\n%s", story)
	}
}
