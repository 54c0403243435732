package posture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/posture"
	"github.com/clinicgate/clinicgate/appliance/posture/mdmtest"
	"github.com/clinicgate/clinicgate/appliance/store"
)

type env struct {
	st  *store.Store
	log *audit.Log
	s   *posture.Syncer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log, err := audit.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(log.Close)
	s, err := posture.NewSyncer(st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, log: log, s: s}
}

func (e *env) user(t *testing.T, name string) int64 {
	t.Helper()
	var id int64
	err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		var err error
		id, err = tx.CreateUser(t.Context(), store.User{Name: name}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// source stores an MDM source and returns its connector.
func (e *env) source(t testing.TB, name string, settings any, secret string) posture.Connector {
	t.Helper()
	b, _ := json.Marshal(settings)
	m := store.MDMSource{Name: name, Settings: string(b), Secret: []byte(secret), Interval: time.Hour, Enabled: true}
	if err := e.st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.PutMDMSource(t.Context(), m, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	m, err := e.st.MDMSourceByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := posture.Build(m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) devices(t *testing.T, source string) map[string]store.Device {
	t.Helper()
	ds, err := e.st.SourceDevices(t.Context(), source)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Device{}
	for _, d := range ds {
		out[d.SourceID] = d
	}
	return out
}

const (
	tenant   = "contoso.onmicrosoft.com"
	clientID = "11111111-2222-3333-4444-555555555555"
	secret   = "graph client secret"
)

func intuneFleet(n int) []mdmtest.GraphDevice {
	out := make([]mdmtest.GraphDevice, n)
	for i := range out {
		out[i] = mdmtest.GraphDevice{
			ID: fmt.Sprintf("dev-%05d", i), DeviceName: fmt.Sprintf("LAPTOP-%05d", i), SerialNumber: fmt.Sprintf("SN%05d", i),
			UserPrincipalName: fmt.Sprintf("user%d@clinic.example", i%50), ComplianceState: "compliant", IsEncrypted: true,
			LastSyncDateTime: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC),
			WiFiMacAddress:   fmt.Sprintf("02%010X", i), AzureADDeviceID: fmt.Sprintf("aad-%d", i),
		}
	}
	return out
}

func newGraph(t testing.TB, devs []mdmtest.GraphDevice) *mdmtest.Graph {
	g := mdmtest.NewGraph(tenant, clientID, secret, devs)
	t.Cleanup(g.Close)
	return g
}

func intuneSettings(g *mdmtest.Graph) posture.IntuneSettings {
	return posture.IntuneSettings{TenantID: tenant, ClientID: clientID, LoginURL: g.URL, GraphURL: g.URL}
}

// TestIntuneSyncBringsDevicesIn: a full sync over several pages puts
// every device in the inventory with canonical MACs (the Ethernet one read
// per device), its owner resolved to a local user, Graph's words as the
// reason, and records the success.
func TestIntuneSyncBringsDevicesIn(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	bob := e.user(t, "bob@clinic.example")
	devs := intuneFleet(250)
	devs[0].UserPrincipalName, devs[0].WiFiMacAddress, devs[0].EthernetMacAddress = "alice@clinic.example", "AA-BB-CC-DD-EE-01", "aabb.ccdd.ee02"
	devs[1].UserPrincipalName, devs[1].ComplianceState, devs[1].IsEncrypted = "BOB@clinic.example", "noncompliant", false
	devs[2].ComplianceState = "inGracePeriod"
	devs[3].ComplianceState = "configManager"
	devs[4].WiFiMacAddress = "not a mac"
	g := newGraph(t, devs)
	c := e.source(t, "intune", intuneSettings(g), secret)
	res, err := e.s.Sync(t.Context(), "intune", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 250 || res.Added != 250 {
		t.Fatalf("got %+v, want 250 devices added", res)
	}
	if n := g.Count("list"); n != 3 {
		t.Errorf("got %d list pages, want 3", n)
	}
	got := e.devices(t, store.SourceIntune)
	d0 := got["dev-00000"]
	if want := []string{"aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"}; !slices.Equal(d0.MACs, want) {
		t.Errorf("dev-00000 MACs: got %v, want %v", d0.MACs, want)
	}
	if d0.UserID != alice || d0.Compliance != store.Compliant || d0.ComplianceReason != "complianceState=compliant, isEncrypted=true" ||
		d0.Serial != "SN00000" || d0.Description != "LAPTOP-00000" || !d0.LastSeen.Equal(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) || d0.SyncedAt.IsZero() {
		t.Errorf("dev-00000: %+v", d0)
	}
	if d1 := got["dev-00001"]; d1.UserID != bob || d1.Compliance != store.Noncompliant || d1.ComplianceReason != "complianceState=noncompliant, isEncrypted=false" {
		t.Errorf("dev-00001: got owner %d %q, %s (%s); want bob, noncompliant", d1.UserID, d1.UserName, d1.Compliance, d1.ComplianceReason)
	}
	if d := got["dev-00002"]; d.Compliance != store.Compliant {
		t.Errorf("inGracePeriod: got %s, want compliant", d.Compliance)
	}
	if d := got["dev-00003"]; d.Compliance != store.Unknown {
		t.Errorf("configManager: got %s, want unknown", d.Compliance)
	}
	if d := got["dev-00004"]; len(d.MACs) != 0 {
		t.Errorf("unreadable MAC kept: %v", d.MACs)
	}
	if d := got["dev-00010"]; d.UserID != 0 || d.UserName != "user10@clinic.example" {
		t.Errorf("unknown owner: got %d %q, want the UPN kept", d.UserID, d.UserName)
	}
	if n := g.Count("get"); n != 200 {
		t.Errorf("got %d single-device reads, want the bound of 200", n)
	}
	src, err := e.st.MDMSourceByName(t.Context(), "intune")
	if err != nil {
		t.Fatal(err)
	}
	if src.LastSuccessAt.IsZero() || src.LastError != "" || src.DeviceCount != 250 {
		t.Errorf("source status: %+v", src)
	}
	// The next sync reads only the devices it has not read one by one.
	if _, err := e.s.Sync(t.Context(), "intune", c); err != nil {
		t.Fatal(err)
	}
	if n := g.Count("get"); n != 250 {
		t.Errorf("after two syncs: got %d single-device reads, want 250", n)
	}
	rs, err := e.st.AuditRows(t.Context(), store.AuditFilter{Limit: 5, Newest: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rs, func(r store.AuditRow) bool {
		return r.Kind == audit.KindSystem && r.Reason == "mdm_sync" && strings.Contains(r.Detail, "250 devices; 250 added")
	}) {
		t.Errorf("no audit entry for the sync: %+v", rs)
	}
}

// TestNoncompliantAndRemovedDevicesQueueEvents: a device that turns
// noncompliant and one the MDM no longer lists each queue a posture event
// with its MACs and owner, in the sync's transaction.
func TestNoncompliantAndRemovedDevicesQueueEvents(t *testing.T) {
	e := newEnv(t)
	e.user(t, "user1")
	devs := intuneFleet(5)
	g := newGraph(t, devs)
	c := e.source(t, "intune", intuneSettings(g), secret)
	if _, err := e.s.Sync(t.Context(), "intune", c); err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(devs[:4])
	changed[1].ComplianceState = "noncompliant"
	g.SetDevices(changed)
	res, err := e.s.Sync(t.Context(), "intune", c)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TurnedNoncompliant) != 1 || len(res.RemovedDevices) != 1 {
		t.Fatalf("got %+v", res)
	}
	evs, err := e.st.PendingPostureEvents(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2: %+v", len(evs), evs)
	}
	nc, rm := evs[0], evs[1]
	if nc.Kind != store.EventDeviceNoncompliant || nc.UserName != "user1" || !slices.Equal(nc.MACs, []string{"02:00:00:00:00:01"}) || !strings.Contains(nc.Detail, "complianceState=noncompliant") {
		t.Errorf("noncompliant event: %+v", nc)
	}
	if rm.Kind != store.EventDeviceRemoved || rm.UserName != "user4@clinic.example" || !slices.Equal(rm.MACs, []string{"02:00:00:00:00:04"}) {
		t.Errorf("removed event: %+v", rm)
	}
}

// TestBadAnswersKeepTheLastGoodData: whatever goes wrong on the second
// page, the sync fails with a clear error, records it, and the records of
// the last good sync stay as they were.
func TestBadAnswersKeepTheLastGoodData(t *testing.T) {
	cases := []struct {
		name  string
		fault func(g *mdmtest.Graph, w http.ResponseWriter)
		want  string
	}{
		{"401 twice", func(g *mdmtest.Graph, w http.ResponseWriter) {
			g.Error(w, 401, "InvalidAuthenticationToken", "Access token validation failure.")
		}, "HTTP 401 InvalidAuthenticationToken: Access token validation failure. (check the tenant"},
		{"403", func(g *mdmtest.Graph, w http.ResponseWriter) {
			g.Error(w, 403, "Forbidden", "Application is not authorized to perform this operation.")
		}, "HTTP 403 Forbidden: Application is not authorized to perform this operation. (the app needs the application permission DeviceManagementManagedDevices.Read.All"},
		{"429 longer than the sync", func(g *mdmtest.Graph, w http.ResponseWriter) { g.Throttle(w, 30) }, "HTTP 429 TooManyRequests"},
		{"500", func(g *mdmtest.Graph, w http.ResponseWriter) {
			g.Error(w, 500, "InternalServerError", "An internal server error occurred.")
		}, "HTTP 500 InternalServerError: An internal server error occurred."},
		{"malformed JSON", func(_ *mdmtest.Graph, w http.ResponseWriter) { mdmtest.WriteMalformed(w) }, "not the JSON expected"},
		{"truncated page", func(_ *mdmtest.Graph, w http.ResponseWriter) {
			mdmtest.WriteTruncated(w, `{"value":[{"id":"dev-x","deviceName":"X","complianceState":"compliant"}]}`)
		}, "truncated page"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			g := newGraph(t, intuneFleet(150))
			c := e.source(t, "intune", intuneSettings(g), secret)
			if _, err := e.s.Sync(t.Context(), "intune", c); err != nil {
				t.Fatal(err)
			}
			before := e.devices(t, store.SourceIntune)
			bad := intuneFleet(150)
			for i := range bad {
				bad[i].ComplianceState = "noncompliant"
			}
			g.SetDevices(bad[:120])
			g.Intercept = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
				// Page 2 of the second sync (list requests 3 and on).
				if kind == "list" && n >= 4 {
					tc.fault(g, w)
					return true
				}
				return false
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := e.s.Sync(ctx, "intune", c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one saying %q", err, tc.want)
			}
			after := e.devices(t, store.SourceIntune)
			if len(after) != 150 {
				t.Fatalf("got %d records after the failed sync, want the 150 of the last good one", len(after))
			}
			for id, d := range after {
				if d.Compliance != before[id].Compliance || !d.SyncedAt.Equal(before[id].SyncedAt) {
					t.Fatalf("%s changed: %+v, was %+v", id, d, before[id])
				}
			}
			src, _ := e.st.MDMSourceByName(t.Context(), "intune")
			if !strings.Contains(src.LastError, tc.want) || src.LastAttemptAt.Before(src.LastSuccessAt) {
				t.Errorf("source status: last error %q, attempt %s, success %s", src.LastError, src.LastAttemptAt, src.LastSuccessAt)
			}
			if evs, _ := e.st.PendingPostureEvents(t.Context(), 10); len(evs) != 0 {
				t.Errorf("a failed sync queued events: %+v", evs)
			}
		})
	}
}

// TestThrottledSyncWaitsAsTold: a 429 with Retry-After is waited out and
// the page asked again.
func TestThrottledSyncWaitsAsTold(t *testing.T) {
	e := newEnv(t)
	g := newGraph(t, intuneFleet(150))
	g.Intercept = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
		if kind == "list" && n == 2 {
			g.Throttle(w, 1)
			return true
		}
		return false
	}
	c := e.source(t, "intune", intuneSettings(g), secret)
	start := time.Now()
	res, err := e.s.Sync(t.Context(), "intune", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 150 || time.Since(start) < time.Second {
		t.Fatalf("got %d devices after %s; want 150 after waiting 1 s", res.Devices, time.Since(start))
	}
}

// TestTokenExpiringMidSyncIsRenewedOnce: a token that expires between two
// pages is replaced once and the page asked again.
func TestTokenExpiringMidSyncIsRenewedOnce(t *testing.T) {
	e := newEnv(t)
	g := newGraph(t, intuneFleet(250))
	g.Intercept = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
		if kind == "list" && n == 2 {
			g.ExpireTokens() // then answered as usual: 401, token expired
		}
		return false
	}
	c := e.source(t, "intune", intuneSettings(g), secret)
	res, err := e.s.Sync(t.Context(), "intune", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 250 || g.Count("token") != 2 {
		t.Fatalf("got %d devices with %d tokens, want 250 with 2", res.Devices, g.Count("token"))
	}
}

// TestWrongSecretIsAClearError: the token endpoint's refusal names the
// cause.
func TestWrongSecretIsAClearError(t *testing.T) {
	e := newEnv(t)
	g := newGraph(t, intuneFleet(3))
	c := e.source(t, "intune", intuneSettings(g), "wrong secret")
	_, err := e.s.Sync(t.Context(), "intune", c)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong secret") {
		t.Fatalf("got %v, want the token endpoint's invalid_client without the secret", err)
	}
}

// TestDeviceListedTwice: one id listed twice keeps one record; two ids
// sharing a MAC both stay, and the gate sees both.
func TestDeviceListedTwice(t *testing.T) {
	e := newEnv(t)
	devs := intuneFleet(3)
	twice := devs[1]
	twice.WiFiMacAddress = "02:00:00:00:99:99"
	devs = append(devs, twice)
	devs[2].WiFiMacAddress = devs[0].WiFiMacAddress
	g := newGraph(t, devs)
	c := e.source(t, "intune", intuneSettings(g), secret)
	res, err := e.s.Sync(t.Context(), "intune", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 3 || res.Duplicates != 1 {
		t.Fatalf("got %+v, want 3 devices, 1 duplicate", res)
	}
	if d := e.devices(t, store.SourceIntune)["dev-00001"]; !slices.Equal(d.MACs, []string{"02:00:00:00:00:01"}) {
		t.Errorf("duplicate: got MACs %v, want the first listing's", d.MACs)
	}
	both, err := e.st.DevicesByMAC(t.Context(), "02:00:00:00:00:00")
	if err != nil || len(both) != 2 {
		t.Errorf("shared MAC: got %d records (%v), want 2", len(both), err)
	}
}

// TestOddMACForms: the forms MDMs and RADIUS use all become aa:bb:cc:dd:ee:ff.
func TestOddMACForms(t *testing.T) {
	e := newEnv(t)
	forms := []string{"AA-BB-CC-DD-EE-01", "aabb.ccdd.ee02", "AA:BB:CC:DD:EE:03", "AABBCCDDEE04", "aa-bb-cc-dd-ee-05:Clinic-Staff", "000000000000", ""}
	devs := intuneFleet(len(forms))
	for i, f := range forms {
		devs[i].WiFiMacAddress = f
	}
	g := newGraph(t, devs)
	c := e.source(t, "intune", intuneSettings(g), secret)
	if _, err := e.s.Sync(t.Context(), "intune", c); err != nil {
		t.Fatal(err)
	}
	got := e.devices(t, store.SourceIntune)
	for i, f := range forms {
		var want []string
		if i < 5 {
			want = []string{fmt.Sprintf("aa:bb:cc:dd:ee:%02x", i+1)}
		}
		if d := got[fmt.Sprintf("dev-%05d", i)]; !slices.Equal(d.MACs, want) {
			t.Errorf("%q: got %v, want %v", f, d.MACs, want)
		}
	}
}

// TestSyncerRunsDueAndRequestedSyncs: the syncer picks up a configured
// source within a poll, syncs it, and serves a "sync now" request.
func TestSyncerRunsDueAndRequestedSyncs(t *testing.T) {
	e := newEnv(t)
	g := newGraph(t, intuneFleet(3))
	e.source(t, "intune", intuneSettings(g), secret)
	e.s.Poll = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return len(e.devices(t, store.SourceIntune)) == 3 })
	g.SetDevices(intuneFleet(5))
	n, err := e.st.RequestMDMSync(t.Context(), "intune")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		src, _ := e.st.MDMSourceByName(t.Context(), "intune")
		return src.SyncServed >= n && src.DeviceCount == 5
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
