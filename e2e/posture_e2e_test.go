package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// Device posture through the running daemon, by the real peers: radclient
// for a Wi-Fi/VPN login (PAP with Calling-Station-Id) and for the
// accounting that says which session holds an address, ldapwhoami for an
// EHR's bind from that address. The device's compliance is written as an
// MDM sync writes it.

const postureMAC = "AA-BB-CC-00-11-22" // pap()'s Calling-Station-Id

// mdmSays makes the Intune source of the inventory one device with
// postureMAC, owned by alice, compliant or not.
func mdmSays(t *testing.T, data string, c store.Compliance) {
	t.Helper()
	st, err := store.Open(context.Background(), data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	err = st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.ReplaceSourceDevices(t.Context(), store.SourceIntune, []store.Device{{SourceID: "6d1f-e2e", Description: "LAPTOP-E2E",
			UserName: "alice@clinic.example", MACs: []string{postureMAC}, Compliance: c, ComplianceReason: "complianceState=" + string(c), SyncedAt: now}}, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually retries check until it returns "" (the daemon reads client
// changes within a second), or fails with its last complaint.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	var last string
	for range 30 {
		if last = check(); last == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal(last)
}

func TestRadclientPostureCompliantOrQuarantined(t *testing.T) {
	data, d := setup(t, "--mfa", "off", "--vlan", "staff=20", "--posture", "compliant", "--posture-owner",
		"--on-fail", "quarantine", "--quarantine-vlan", "99", "--quarantine-role", "quarantine")
	// Not in the inventory: quarantined, with the reason in the audit.
	out := radclient(t, d.auth, "auth", secret, pap("alice", "correct horse battery"))
	if received(out) != "Access-Accept" || !strings.Contains(out, `Tunnel-Private-Group-Id:0 = "99"`) || !strings.Contains(out, `Filter-Id = "quarantine"`) {
		t.Fatalf("an unknown device: want an Accept into VLAN 99, role quarantine:\n%s", out)
	}
	if a := lastAudit(t, data); !strings.Contains(a, "quarantine:device_unknown") {
		t.Fatalf("the audit does not say why it was quarantined:\n%s", a)
	}
	mdmSays(t, data, store.Compliant)
	out = radclient(t, d.auth, "auth", secret, pap("alice", "correct horse battery"))
	if received(out) != "Access-Accept" || !strings.Contains(out, `Tunnel-Private-Group-Id:0 = "20"`) || strings.Contains(out, "Filter-Id") {
		t.Fatalf("a compliant device: want the group's VLAN 20:\n%s", out)
	}
	mdmSays(t, data, store.Noncompliant)
	out = radclient(t, d.auth, "auth", secret, pap("alice", "correct horse battery"))
	if !strings.Contains(out, `Tunnel-Private-Group-Id:0 = "99"`) {
		t.Fatalf("a noncompliant device: want VLAN 99:\n%s", out)
	}
	// Reject instead of quarantine: the person reads why, the audit has the code.
	mustCG(t, data, "", "client", "set", "local", "--on-fail", "reject")
	eventually(t, func() string {
		out := radclient(t, d.auth, "auth", secret, pap("alice", "correct horse battery"))
		if received(out) != "Access-Reject" || !strings.Contains(out, "does not meet the clinic's security requirements") {
			return "after --on-fail reject, a noncompliant device:\n" + out
		}
		return ""
	})
	if a := lastAudit(t, data); !strings.Contains(a, "device_noncompliant") {
		t.Fatalf("audit:\n%s", a)
	}
	// The device is alice's, not bob's.
	mustCG(t, data, "battery staple horse", "user", "add", "bob", "--group", "staff", "--password-stdin")
	mdmSays(t, data, store.Compliant)
	if out := radclient(t, d.auth, "auth", secret, pap("bob", "battery staple horse")); received(out) != "Access-Reject" {
		t.Fatalf("bob on alice's laptop:\n%s", out)
	}
	if a := lastAudit(t, data); !strings.Contains(a, "device_not_users") {
		t.Fatalf("audit:\n%s", a)
	}
}

// TestLDAPBindFromCompliantSession: an EHR bind is allowed from an address
// whose Wi-Fi/VPN session (RADIUS accounting) is the same user's, on a
// compliant device, and refused otherwise.
func TestLDAPBindFromCompliantSession(t *testing.T) {
	need(t, "radclient")
	data, d, _ := ldapSetup(t, "--mfa", "off", "--posture", "compliant", "--posture-same-user")
	mustCG(t, data, secret, "client", "add", "wifi", "--address", "127.0.0.1", "--secret-stdin")
	uri := "ldap://" + d.ldap
	bind := func(user, pw string) (string, int) {
		return ldapTool(t, data, "ldapwhoami", "-x", "-ZZ", "-H", uri, "-D", user, "-w", pw)
	}
	// No session holds 127.0.0.1 yet.
	if out, rc := bind("alice", "correct horse battery"); rc != 49 {
		t.Fatalf("a bind from an address no session holds: exit %d, want 49\n%s", rc, out)
	}
	if a := lastAudit(t, data); !strings.Contains(a, "device_unknown") {
		t.Fatalf("audit:\n%s", a)
	}
	start := `Acct-Status-Type = Start, Acct-Session-Id = "W-1", User-Name = "alice@clinic.example", Calling-Station-Id = "` + postureMAC + `:Clinic-Staff", Framed-IP-Address = 127.0.0.1`
	eventually(t, func() string {
		if got := received(radclient(t, d.acct, "acct", secret, start)); got != "Accounting-Response" {
			return "accounting start: " + got
		}
		return ""
	})
	mdmSays(t, data, store.Compliant)
	if out, rc := bind("alice", "correct horse battery"); rc != 0 {
		t.Fatalf("alice from her compliant laptop's address: exit %d\n%s", rc, out)
	}
	mustCG(t, data, "battery staple horse", "user", "add", "bob", "--password-stdin")
	if out, rc := bind("bob", "battery staple horse"); rc != 49 {
		t.Fatalf("bob binding from alice's session: exit %d\n%s", rc, out)
	}
	if a := lastAudit(t, data); !strings.Contains(a, "device_not_users") {
		t.Fatalf("audit:\n%s", a)
	}
	mdmSays(t, data, store.Noncompliant)
	if out, rc := bind("alice", "correct horse battery"); rc != 49 {
		t.Fatalf("alice from a noncompliant laptop: exit %d\n%s", rc, out)
	}
	if a := lastAudit(t, data); !strings.Contains(a, "device_noncompliant") {
		t.Fatalf("audit:\n%s", a)
	}
}
