package appliance_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The request's Calling-Station-Id in env.decide is AA-BB-CC-DD-EE-01.
const deskMAC = "aa:bb:cc:dd:ee:01"

// putDevices makes the inventory of one MDM source exactly ds, as a sync does.
func (e *env) putDevices(source string, ds ...store.Device) {
	e.t.Helper()
	err := e.st.WithTx(e.t.Context(), func(tx *store.Tx) error {
		_, err := tx.ReplaceSourceDevices(e.t.Context(), source, ds, e.clock.Now())
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) userID(name string) int64 {
	e.t.Helper()
	u, err := e.st.UserByName(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

func postureClient(rule policy.Posture) store.Client {
	return client(func(p *policy.Policy) {
		mfaOff(p)
		p.Posture = rule
		p.Rules = []policy.Rule{{Group: "staff", VLAN: 20, Class: "staff"}}
	})
}

func stepSays(d appliance.Decision, words ...string) bool {
	for _, s := range d.Steps {
		all := true
		for _, w := range words {
			all = all && strings.Contains(s.Result, w)
		}
		if all {
			return true
		}
	}
	return false
}

func TestPostureKnownDevice(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse", "staff")
	c := postureClient(policy.Posture{Device: policy.DeviceKnown})
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Reject, appliance.ReasonDeviceUnknown)
	e.putDevices(store.SourceJamf, store.Device{SourceID: "42", Description: "MBP-FRONT", MACs: []string{deskMAC}, Compliance: store.Noncompliant, SyncedAt: e.clock.Now()})
	// Known is enough, whatever its health.
	d := e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !stepSays(d, "MBP-FRONT", "jamf 42") {
		t.Fatalf("the story does not name the device: %v", d.Steps)
	}
	// No MAC and no certificate: nothing to find the device by.
	d2, err := e.gate.Decide(t.Context(), appliance.Request{Door: appliance.DoorRADIUS, Client: c, User: "alice", Password: secrets.Secret("correct horse"), Method: appliance.MethodPAP})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, d2, appliance.Reject, appliance.ReasonDeviceMissing)
}

func TestPostureCompliantDevice(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse", "staff")
	c := postureClient(policy.Posture{Device: policy.DeviceCompliant, StaleGrace: 3600})
	synced := e.clock.Now()
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", Description: "LAPTOP-7", MACs: []string{deskMAC}, Compliance: store.Compliant, ComplianceReason: "complianceState=compliant", SyncedAt: synced})
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)

	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", Description: "LAPTOP-7", MACs: []string{deskMAC}, Compliance: store.Noncompliant, ComplianceReason: "isEncrypted=false", SyncedAt: synced})
	d := e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Reject, appliance.ReasonDeviceNoncompliant)
	// The story names the device, the MDM's reason and its last sync.
	if !stepSays(d, "LAPTOP-7", "isEncrypted=false", synced.UTC().Format(time.RFC3339)) || d.Message != appliance.MsgDeviceHealth {
		t.Fatalf("story %v, message %q", d.Steps, d.Message)
	}

	// Compliant, but read from Intune longer ago than the grace period.
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", Description: "LAPTOP-7", MACs: []string{deskMAC}, Compliance: store.Compliant, SyncedAt: synced})
	e.clock.Add(2 * time.Hour)
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Reject, appliance.ReasonDeviceStale)

	// A MAC bound by hand says nothing of health.
	e.putDevices(store.SourceIntune)
	if _, err := e.adm.AddDevice(t.Context(), deskMAC, "alice", "desk"); err != nil {
		t.Fatal(err)
	}
	d = e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Reject, appliance.ReasonDeviceNoncompliant)
	if !stepSays(d, "no MDM reports") {
		t.Fatalf("story %v", d.Steps)
	}
}

func TestPostureOverrideDecidesUntilItExpires(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse", "staff")
	c := postureClient(policy.Posture{Device: policy.DeviceCompliant})
	e.putDevices(store.SourceGoogle, store.Device{SourceID: "g1", MACs: []string{deskMAC}, Compliance: store.Noncompliant, SyncedAt: e.clock.Now()})
	ds, _ := e.st.DevicesByMAC(t.Context(), deskMAC)
	err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.SetDeviceOverride(t.Context(), ds[0].ID, store.Compliant, e.clock.Now().Add(time.Hour), "admin", "patched by hand", e.clock.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	d := e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !stepSays(d, "override by admin", "patched by hand") {
		t.Fatalf("story %v", d.Steps)
	}
	e.clock.Add(61 * time.Minute)
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Reject, appliance.ReasonDeviceNoncompliant)
}

func TestPostureOwnDevice(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse", "staff")
	e.addUser("bob", "battery staple", "staff")
	c := postureClient(policy.Posture{Owner: true})
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, UserName: "bob@clinic.example", Compliance: store.Compliant, SyncedAt: e.clock.Now()})
	d := e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Reject, appliance.ReasonDeviceNotUsers)
	if !stepSays(d, "belongs to bob@clinic.example") {
		t.Fatalf("story %v", d.Steps)
	}
	// The MDM's UPN names the local user bob.
	expect(t, e.decide(c, "bob", "battery staple", nil), appliance.Accept, appliance.ReasonOK)
	// A shared workstation is anyone's.
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, Shared: true, Compliance: store.Compliant, SyncedAt: e.clock.Now()})
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	// By local id as well as by name.
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, UserID: e.userID("alice"), Compliance: store.Compliant, SyncedAt: e.clock.Now()})
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	expect(t, e.decide(c, "bob", "battery staple", nil), appliance.Reject, appliance.ReasonDeviceNotUsers)
}

func TestPostureQuarantine(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse", "staff")
	c := postureClient(policy.Posture{Device: policy.DeviceCompliant, OnFail: policy.OnFailQuarantine, QuarantineVLAN: 99, QuarantineFilterID: "quarantine"})
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, Compliance: store.Noncompliant, SyncedAt: e.clock.Now()})
	d := e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if d.Attributes.VLAN != 99 || d.Attributes.FilterID != "quarantine" || d.Attributes.Class != "" {
		t.Fatalf("quarantine attributes: %+v", d.Attributes)
	}
	if !slicesContains(d.Notes, "quarantine:device_noncompliant") {
		t.Fatalf("notes %v", d.Notes)
	}
	// Healthy again: the group's VLAN.
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, Compliance: store.Compliant, SyncedAt: e.clock.Now()})
	d = e.decide(c, "alice", "correct horse", nil)
	if d.Attributes.VLAN != 20 || d.Attributes.FilterID != "" {
		t.Fatalf("healthy attributes: %+v", d.Attributes)
	}
}

func slicesContains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// TestPostureLDAPBindFromSessionAddress: an LDAP bind's device is the
// one whose Wi-Fi/VPN session holds the bind's address.
func TestPostureLDAPBindFromSessionAddress(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse", "staff")
	e.addUser("bob", "battery staple", "staff")
	ehr := func(rule policy.Posture) store.Client {
		p := policy.Default()
		p.MFA, p.Posture, p.AllowPlainLDAP = policy.MFAOff, rule, true
		return store.Client{Name: "ehr", Door: "ldap", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Policy: p}
	}
	bind := func(c store.Client, user, pw string) appliance.Decision {
		return e.decideReq(appliance.Request{Door: appliance.DoorLDAP, Method: appliance.MethodLDAPBind, Client: c,
			User: user, Password: secrets.Secret(pw), Source: netip.MustParseAddr("10.0.0.5")})
	}
	rule := policy.Posture{Device: policy.DeviceCompliant, SameUser: true}
	d := bind(ehr(rule), "alice", "correct horse")
	expect(t, d, appliance.Reject, appliance.ReasonDeviceUnknown)
	if !stepSays(d, "no active Wi-Fi/VPN session", "10.0.0.5") {
		t.Fatalf("story %v", d.Steps)
	}
	now := e.clock.Now()
	err := e.st.UpsertAcct(t.Context(), store.AcctSession{Client: "ap", SessionID: "s1", UserName: "alice@clinic.example",
		CallingStation: "AA-BB-CC-DD-EE-01:Clinic", FramedAddress: "10.0.0.5", Status: store.AcctActive, StartedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, Compliance: store.Compliant, SyncedAt: now})
	expect(t, bind(ehr(rule), "alice", "correct horse"), appliance.Accept, appliance.ReasonOK)
	d = bind(ehr(rule), "bob", "battery staple")
	expect(t, d, appliance.Reject, appliance.ReasonDeviceNotUsers)
	// Quarantine is a RADIUS answer: an LDAP bind that fails is refused.
	e.putDevices(store.SourceIntune, store.Device{SourceID: "d1", MACs: []string{deskMAC}, Compliance: store.Noncompliant, SyncedAt: now})
	q := rule
	q.OnFail, q.QuarantineVLAN = policy.OnFailQuarantine, 99
	expect(t, bind(ehr(q), "alice", "correct horse"), appliance.Reject, appliance.ReasonDeviceNoncompliant)
	// The session ended: the address is no one's.
	err = e.st.UpsertAcct(t.Context(), store.AcctSession{Client: "ap", SessionID: "s1", Status: store.AcctStopped, StartedAt: now, UpdatedAt: now, StoppedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, bind(ehr(policy.Posture{SameUser: true}), "alice", "correct horse"), appliance.Reject, appliance.ReasonDeviceUnknown)
}
