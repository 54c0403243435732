package posture_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/posture"
	"github.com/clinicgate/clinicgate/appliance/posture/mdmtest"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func jamfFleet(n int) []mdmtest.JamfComputer {
	out := make([]mdmtest.JamfComputer, n)
	for i := range out {
		out[i] = mdmtest.JamfComputer{ID: i + 1, Name: fmt.Sprintf("Mac-%03d", i+1), Serial: fmt.Sprintf("C02X%04d", i+1),
			MAC: fmt.Sprintf("02:00:00:00:%02X:%02X", i/256, i%256), LastContact: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
			FileVaultState: "ENCRYPTED", FirewallEnabled: yes(), OSVersion: "14.5", Email: fmt.Sprintf("user%d@clinic.example", i)}
	}
	return out
}

// TestJamfChecksRule: FileVault, firewall and the OS version decide, each
// named in the reason; a missing field is unknown, not compliant.
func TestJamfChecksRule(t *testing.T) {
	e := newEnv(t)
	cs := jamfFleet(450) // three pages of 200
	cs[1].FileVaultState = "UNENCRYPTED"
	cs[2].FirewallEnabled = no()
	cs[3].OSVersion = "14.3.1"
	cs[4].OSVersion = "14.10"
	cs[5].FirewallEnabled = nil
	cs[6].MAC, cs[6].AltMAC = "aabb.ccdd.ee06", "AA-BB-CC-DD-EE-07"
	j := mdmtest.NewJamf("jamf-client", "jamf secret", cs)
	t.Cleanup(j.Close)
	c := e.source(t, "jamf", posture.JamfSettings{URL: j.URL, ClientID: "jamf-client", Rule: "filevault,firewall,os>=14.4"}, "jamf secret")
	res, err := e.s.Sync(t.Context(), "jamf", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 450 || j.Count("list") != 3 {
		t.Fatalf("got %d devices in %d pages, want 450 in 3", res.Devices, j.Count("list"))
	}
	got := e.devices(t, store.SourceJamf)
	want := map[string]struct {
		c      store.Compliance
		reason string
	}{
		"1": {store.Compliant, "partitionFileVault2State=ENCRYPTED, firewallEnabled=true, OS 14.5"},
		"2": {store.Noncompliant, "partitionFileVault2State=UNENCRYPTED"},
		"3": {store.Noncompliant, "firewallEnabled=false"},
		"4": {store.Noncompliant, "OS 14.3.1 is older than 14.4"},
		"5": {store.Compliant, "OS 14.10"},
		"6": {store.Unknown, "firewallEnabled unknown"},
	}
	for id, w := range want {
		d := got[id]
		if d.Compliance != w.c || !strings.Contains(d.ComplianceReason, w.reason) {
			t.Errorf("computer %s: got %s (%s), want %s (%s)", id, d.Compliance, d.ComplianceReason, w.c, w.reason)
		}
	}
	if d := got["7"]; fmt.Sprint(d.MACs) != "[aa:bb:cc:dd:ee:06 aa:bb:cc:dd:ee:07]" || d.UserName != "user6@clinic.example" || d.Serial != "C02X0007" {
		t.Errorf("computer 7: %+v", d)
	}
}

// TestJamfSmartGroupRule: members of the smart group are compliant, the
// others not.
func TestJamfSmartGroupRule(t *testing.T) {
	e := newEnv(t)
	j := mdmtest.NewJamf("jc", "js", jamfFleet(3))
	t.Cleanup(j.Close)
	j.SetSmartGroup("12", []int{1, 3})
	c := e.source(t, "jamf", posture.JamfSettings{URL: j.URL, ClientID: "jc", Rule: "smart-group:12"}, "js")
	if _, err := e.s.Sync(t.Context(), "jamf", c); err != nil {
		t.Fatal(err)
	}
	got := e.devices(t, store.SourceJamf)
	if got["1"].Compliance != store.Compliant || got["2"].Compliance != store.Noncompliant || got["3"].Compliance != store.Compliant ||
		got["2"].ComplianceReason != "not a member of smart group 12" {
		t.Errorf("got %s %s(%s) %s", got["1"].Compliance, got["2"].Compliance, got["2"].ComplianceReason, got["3"].Compliance)
	}
	// A group that does not exist is an error, not "nobody compliant".
	c = e.source(t, "jamf", posture.JamfSettings{URL: j.URL, ClientID: "jc", Rule: "smart-group:99"}, "js")
	if _, err := e.s.Sync(t.Context(), "jamf", c); err == nil || !strings.Contains(err.Error(), "HTTP 404 NOT_FOUND") {
		t.Fatalf("got %v, want Jamf's 404", err)
	}
	if got := e.devices(t, store.SourceJamf); got["2"].Compliance != store.Noncompliant || len(got) != 3 {
		t.Errorf("the failed sync changed records")
	}
}

// TestJamfBadAnswers: Jamf's refusals, a short page and an expiring token.
func TestJamfBadAnswers(t *testing.T) {
	cases := []struct {
		name  string
		fault func(j *mdmtest.Jamf, w http.ResponseWriter, r *http.Request) bool
		want  string // "" : the sync succeeds
	}{
		{"403", func(j *mdmtest.Jamf, w http.ResponseWriter, _ *http.Request) bool {
			j.Error(w, 403, "FORBIDDEN", "Forbidden")
			return true
		}, "HTTP 403 FORBIDDEN: Forbidden (the API client's role needs Read Computers"},
		{"short page", func(j *mdmtest.Jamf, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"totalCount":450,"results":[{"id":"999","general":{"name":"x"}}]}`)
			return true
		}, "the list is incomplete"},
		{"429", func(j *mdmtest.Jamf, w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Retry-After", "600")
			j.Error(w, 429, "TOO_MANY_REQUESTS", "Too many requests")
			return true
		}, "asked to wait 10m0s"},
		{"token expires", func(j *mdmtest.Jamf, _ http.ResponseWriter, _ *http.Request) bool {
			j.ExpireTokens()
			return false
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			j := mdmtest.NewJamf("jc", "js", jamfFleet(450))
			t.Cleanup(j.Close)
			j.Intercept = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
				return kind == "list" && n == 2 && tc.fault(j, w, r)
			}
			c := e.source(t, "jamf", posture.JamfSettings{URL: j.URL, ClientID: "jc", Rule: "firewall"}, "js")
			_, err := e.s.Sync(t.Context(), "jamf", c)
			if tc.want == "" {
				if err != nil || j.Count("token") != 2 || len(e.devices(t, store.SourceJamf)) != 450 {
					t.Fatalf("got %v with %d tokens, want a full sync with a second token", err, j.Count("token"))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if n := len(e.devices(t, store.SourceJamf)); n != 0 {
				t.Errorf("a failed sync stored %d records", n)
			}
		})
	}
}

func googleFleet(n int) []mdmtest.GoogleDevice {
	out := make([]mdmtest.GoogleDevice, n)
	for i := range out {
		out[i] = mdmtest.GoogleDevice{ID: fmt.Sprintf("g%04d", i), Model: "Pixel 8", Hostname: fmt.Sprintf("phone-%d", i),
			SerialNumber: fmt.Sprintf("GS%04d", i), LastSyncTime: time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC),
			WifiMacAddresses: []string{fmt.Sprintf("02-00-00-00-%02X-%02X", i/256, i%256)},
			CompromisedState: "UNCOMPROMISED", EncryptionState: "ENCRYPTED", ManagementState: "APPROVED",
			UserEmails: []string{fmt.Sprintf("user%d@clinic.example", i)}}
	}
	return out
}

// TestGoogleSync: devices over several pages, owners from deviceUsers,
// compliance from the three states, signed in as a delegated admin.
func TestGoogleSync(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "user0")
	devs := googleFleet(230)
	devs[1].CompromisedState = "COMPROMISED"
	devs[2].EncryptionState = "NOT_ENCRYPTED"
	devs[3].ManagementState = "PENDING"
	g := mdmtest.NewGoogle("C01abc234", "mdm@clinic-mdm.iam.gserviceaccount.com", []string{"admin@clinic.example"}, devs)
	t.Cleanup(g.Close)
	c := e.source(t, "google", posture.GoogleSettings{Customer: "C01abc234", AdminEmail: "admin@clinic.example", APIURL: g.URL}, string(g.KeyJSON()))
	res, err := e.s.Sync(t.Context(), "google", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 230 || g.Count("list") != 3 || g.Count("users") != 12 {
		t.Fatalf("got %d devices, %d device pages, %d user pages; want 230, 3, 12", res.Devices, g.Count("list"), g.Count("users"))
	}
	got := e.devices(t, store.SourceGoogle)
	d0 := got["g0000"]
	if d0.Compliance != store.Compliant || d0.UserID != alice || d0.Description != "phone-0" || fmt.Sprint(d0.MACs) != "[02:00:00:00:00:00]" ||
		d0.ComplianceReason != "compromisedState=UNCOMPROMISED, encryptionState=ENCRYPTED, managementState=APPROVED" {
		t.Errorf("g0000: %+v", d0)
	}
	for id, want := range map[string]store.Compliance{"g0001": store.Noncompliant, "g0002": store.Noncompliant, "g0003": store.Unknown} {
		if got[id].Compliance != want {
			t.Errorf("%s: got %s (%s), want %s", id, got[id].Compliance, got[id].ComplianceReason, want)
		}
	}
	if got["g0229"].UserName != "user229@clinic.example" {
		t.Errorf("owner of the last device: %q", got["g0229"].UserName)
	}
}

// TestGoogleRefusesWithoutDelegation: an admin email delegation does not
// cover gets the token endpoint's unauthorized_client; a wrong customer
// Google's PERMISSION_DENIED.
func TestGoogleRefusesWithoutDelegation(t *testing.T) {
	e := newEnv(t)
	g := mdmtest.NewGoogle("C01abc234", "mdm@clinic-mdm.iam.gserviceaccount.com", []string{"admin@clinic.example"}, googleFleet(2))
	t.Cleanup(g.Close)
	c := e.source(t, "google", posture.GoogleSettings{Customer: "C01abc234", AdminEmail: "nurse@clinic.example", APIURL: g.URL}, string(g.KeyJSON()))
	if _, err := e.s.Sync(t.Context(), "google", c); err == nil || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Fatalf("got %v, want unauthorized_client", err)
	}
	c = e.source(t, "google", posture.GoogleSettings{Customer: "C09other", AdminEmail: "admin@clinic.example", APIURL: g.URL}, string(g.KeyJSON()))
	if _, err := e.s.Sync(t.Context(), "google", c); err == nil || !strings.Contains(err.Error(), "HTTP 403 PERMISSION_DENIED") {
		t.Fatalf("got %v, want PERMISSION_DENIED", err)
	}
	// A key that is not the service account's fails its signature check.
	other := mdmtest.NewGoogle("C01abc234", "mdm@clinic-mdm.iam.gserviceaccount.com", nil, nil)
	defer other.Close()
	key := strings.Replace(string(other.KeyJSON()), other.URL, g.URL, 1)
	c = e.source(t, "google", posture.GoogleSettings{Customer: "C01abc234", AdminEmail: "admin@clinic.example", APIURL: g.URL}, key)
	if _, err := e.s.Sync(t.Context(), "google", c); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("got %v, want invalid_grant", err)
	}
}

// TestGoogleTokenExpiryAndForeignPageToken: an expired token is renewed
// once; a page token the API did not issue is refused and fails the sync.
func TestGoogleTokenExpiryAndForeignPageToken(t *testing.T) {
	e := newEnv(t)
	g := mdmtest.NewGoogle("C01abc234", "sa@p.iam.gserviceaccount.com", []string{"admin@clinic.example"}, googleFleet(150))
	t.Cleanup(g.Close)
	g.Intercept = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
		if kind == "list" && n == 2 {
			g.ExpireTokens()
		}
		return false
	}
	c := e.source(t, "google", posture.GoogleSettings{Customer: "C01abc234", AdminEmail: "admin@clinic.example", APIURL: g.URL}, string(g.KeyJSON()))
	if res, err := e.s.Sync(t.Context(), "google", c); err != nil || res.Devices != 150 || g.Count("token") != 2 {
		t.Fatalf("got %+v, %v with %d tokens", res, err, g.Count("token"))
	}
	// A stand-in that answers with a token it never issued on page 2
	// would make the connector ask for it: the API refuses it.
	g.Intercept = func(w http.ResponseWriter, r *http.Request, kind string, n int) bool {
		if kind == "list" && n == 4 { // the second sync's first page
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"devices":[],"nextPageToken":"forged"}`)
			return true
		}
		return false
	}
	if _, err := e.s.Sync(t.Context(), "google", c); err == nil || !strings.Contains(err.Error(), "HTTP 400 INVALID_ARGUMENT") {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	if n := len(e.devices(t, store.SourceGoogle)); n != 150 {
		t.Errorf("got %d records after the failed sync, want 150", n)
	}
}
