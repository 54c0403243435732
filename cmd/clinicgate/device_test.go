package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestDeviceInventoryCLI: a device an MDM listed is found by number, MAC
// or serial; an override needs a reason and a bounded time, and one to
// noncompliant queues a posture event for the CoA worker.
func TestDeviceInventoryCLI(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "pw-alice-123\n", "user", "add", "alice", "--password-stdin")
	mustCG(t, data, "", "device", "add", "AA-BB-CC-DD-EE-01", "--user", "alice", "--description", "desk")
	st, err := store.Open(context.Background(), data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.ReplaceSourceDevices(t.Context(), store.SourceIntune, []store.Device{{SourceID: "abc-123", Description: "LAPTOP-7", Serial: "5CG123",
			UserName: "alice@clinic.example", MACs: []string{"aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"}, Compliance: store.Noncompliant,
			ComplianceReason: "isEncrypted=false", SyncedAt: now}}, now)
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out := mustCG(t, data, "", "device", "list")
	for _, want := range []string{"manual", "desk", "intune", "LAPTOP-7", "aa:bb:cc:dd:ee:01 +1", "noncompliant"} {
		if !strings.Contains(out, want) {
			t.Fatalf("device list lacks %q:\n%s", want, out)
		}
	}
	out = mustCG(t, data, "", "device", "show", "5cg123")
	for _, want := range []string{"intune abc-123", "isEncrypted=false", "aa:bb:cc:dd:ee:02", "alice"} {
		if !strings.Contains(out, want) {
			t.Fatalf("device show lacks %q:\n%s", want, out)
		}
	}
	// The MAC matches two records: an override needs the number.
	if _, err := cg(t, data, "", "device", "override", "AA-BB-CC-DD-EE-01", "compliant", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "matches 2 devices") {
		t.Fatalf("an ambiguous override: %v", err)
	}
	if _, err := cg(t, data, "", "device", "override", "5CG123", "compliant"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("an override without a reason: %v", err)
	}
	if _, err := cg(t, data, "", "device", "override", "5CG123", "compliant", "--reason", "x", "--for", "2000h"); err == nil {
		t.Fatal("an override of 2000h was accepted")
	}
	mustCG(t, data, "", "device", "override", "5CG123", "compliant", "--reason", "repaired at the desk", "--for", "2h")
	if out := mustCG(t, data, "", "device", "show", "5CG123"); !strings.Contains(out, "compliant (override by") || !strings.Contains(out, "repaired at the desk") {
		t.Fatalf("override not shown:\n%s", out)
	}
	mustCG(t, data, "", "device", "override", "5CG123", "noncompliant", "--reason", "stolen")
	if out := mustCG(t, data, "", "audit", "tail", "-n", "3"); !strings.Contains(out, "device_override") {
		t.Fatalf("the override is not audited:\n%s", out)
	}
	st, err = store.Open(context.Background(), data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, err := st.PendingPostureEvents(t.Context(), 10)
	if err != nil || len(ev) != 1 || ev[0].Kind != store.EventDeviceNoncompliant || len(ev[0].MACs) != 2 {
		t.Fatalf("posture events: %+v %v", ev, err)
	}
}

func TestClientPostureFlags(t *testing.T) {
	data := newData(t)
	mustCG(t, data, secret+"\n", "client", "add", "wifi", "--address", "10.0.0.0/24", "--secret-stdin",
		"--posture", "compliant", "--on-fail", "quarantine", "--quarantine-vlan", "99", "--coa", "disconnect", "--stale-grace", "2h")
	out := mustCG(t, data, "", "client", "show", "wifi")
	for _, want := range []string{"compliant device, else quarantine VLAN 99", "2h0m0s", "disconnect to port 3799"} {
		if !strings.Contains(out, want) {
			t.Fatalf("client show lacks %q:\n%s", want, out)
		}
	}
	if _, err := cg(t, data, "", "client", "set", "wifi", "--quarantine-vlan", "0"); err == nil || !strings.Contains(err.Error(), "quarantine needs a VLAN") {
		t.Fatalf("quarantine without a VLAN: %v", err)
	}
	mustCG(t, data, "", "client", "set", "wifi", "--posture", "off", "--on-fail", "reject", "--coa", "off")
	out = mustCG(t, data, "", "client", "show", "wifi")
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "posture" || f[0] == "coa") && f[len(f)-1] != "off" {
			t.Fatalf("%s not off:\n%s", f[0], out)
		}
	}
}
