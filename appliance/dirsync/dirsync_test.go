package dirsync

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func newStore(t *testing.T) (*store.Store, *audit.Log) {
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
	return st, log
}

type userView struct {
	disabled bool
	groups   []string
	source   string
}

func view(t *testing.T, st *store.Store, name string) (userView, bool) {
	t.Helper()
	u, err := st.UserByName(t.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return userView{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return userView{disabled: u.Disabled, groups: u.Groups, source: u.Source}, true
}

func mustView(t *testing.T, st *store.Store, name string) userView {
	t.Helper()
	v, ok := view(t, st, name)
	if !ok {
		t.Fatalf("user %s was not synced", name)
	}
	return v
}

func graphSource(t *testing.T, g *graphStandIn, secret string) Source {
	t.Helper()
	src, err := New(Config{Kind: "graph", TenantID: g.tenant, LoginURL: g.srv.URL, GraphURL: g.srv.URL}, Credentials{ClientID: g.clientID, ClientSecret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestGraphDeltaSync(t *testing.T) {
	st, log := newStore(t)
	g := newGraphStandIn(t)
	g.addUser("u1", "alice@clinic.test", "Alice", true)
	g.addUser("u2", "bob@clinic.test", "Bob", true)
	g.addUser("u3", "carol@clinic.test", "Carol", false)
	g.addUser("u4", "dave@clinic.test", "Dave", true)
	g.addUser("u5", "eve,admin@clinic.test", "Eve", true) // not a usable login name
	g.addGroup("g1", "Nurses", "u1", "u2")
	g.addGroup("g2", "Billing", "u4")
	g.throttleNext = 1 // the first Graph call is throttled with Retry-After
	src := graphSource(t, g, g.clientSecret)
	ctx := context.Background()

	stats, err := Run(ctx, st, log, "entra", src, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Created != 4 || stats.Users != 4 || stats.Groups != 2 || len(stats.Conflicts) != 1 {
		t.Fatalf("first sync: got %+v, want 4 users created, 2 groups, 1 name skipped", stats)
	}
	if v := mustView(t, st, "alice@clinic.test"); v.disabled || !slices.Equal(v.groups, []string{"Nurses"}) || v.source != "entra" {
		t.Fatalf("alice: got %+v", v)
	}
	if v := mustView(t, st, "carol@clinic.test"); !v.disabled {
		t.Fatal("carol is disabled in the directory but not here")
	}

	// Changes upstream: bob disabled, dave deleted, carol enabled and
	// added to Nurses, alice removed from Nurses and added to Billing.
	g.change("u2", func(u *gUser) { u.enabled = false })
	g.change("u4", func(u *gUser) { u.deleted = true })
	g.change("u3", func(u *gUser) { u.enabled = true })
	g.member("g1", "u3", false)
	g.member("g1", "u1", true)
	g.member("g2", "u1", false)
	before := len(g.requests)
	if _, err := Run(ctx, st, log, "entra", src, time.Now); err != nil {
		t.Fatal(err)
	}
	for _, r := range g.requests[before:] {
		if strings.Contains(r, "deltatoken") {
			t.Fatalf("request %q: the cursor should be used via the deltaLink", r)
		}
	}
	if v := mustView(t, st, "bob@clinic.test"); !v.disabled {
		t.Fatal("bob disabled upstream is still enabled here")
	}
	if v := mustView(t, st, "dave@clinic.test"); !v.disabled {
		t.Fatal("dave deleted upstream is still enabled here")
	}
	if v := mustView(t, st, "carol@clinic.test"); v.disabled || !slices.Equal(v.groups, []string{"Nurses"}) {
		t.Fatalf("carol: got %+v, want enabled in Nurses", v)
	}
	if v := mustView(t, st, "alice@clinic.test"); !slices.Equal(v.groups, []string{"Billing"}) {
		t.Fatalf("alice: got groups %v, want [Billing]", v.groups)
	}
	rec, err := st.DirSyncRecord(ctx, "entra")
	if err != nil || rec.LastError != "" || !strings.Contains(rec.State, "deltatoken") {
		t.Fatalf("sync record: %+v %v", rec, err)
	}
	rows, _ := st.AuditRows(ctx, store.AuditFilter{})
	var syncs int
	for _, r := range rows {
		if r.Reason == "directory_sync" {
			syncs++
		}
	}
	if syncs != 2 {
		t.Fatalf("got %d directory_sync audit entries, want 2", syncs)
	}
}

func TestGraphExpiredDeltaTokenResyncs(t *testing.T) {
	st, log := newStore(t)
	g := newGraphStandIn(t)
	g.addUser("u1", "alice@clinic.test", "Alice", true)
	g.addUser("u2", "bob@clinic.test", "Bob", true)
	src := graphSource(t, g, g.clientSecret)
	if _, err := Run(t.Context(), st, log, "entra", src, time.Now); err != nil {
		t.Fatal(err)
	}
	g.expireTokens = true
	g.change("u2", func(u *gUser) { u.deleted = true })
	g.mu.Lock()
	delete(g.users, "u2") // gone for good: a full resync no longer lists bob
	g.mu.Unlock()
	stats, err := Run(t.Context(), st, log, "entra", src, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Disabled != 1 {
		t.Fatalf("got %+v, want bob disabled by the full resync after 410 Gone", stats)
	}
}

func TestGraphWrongSecretRecorded(t *testing.T) {
	st, log := newStore(t)
	g := newGraphStandIn(t)
	_, err := Run(t.Context(), st, log, "entra", graphSource(t, g, "wrong"), time.Now)
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("got %v, want the AADSTS error", err)
	}
	rec, _ := st.DirSyncRecord(t.Context(), "entra")
	if !strings.Contains(rec.LastError, "client credentials") {
		t.Fatalf("sync record error %q, want it recorded", rec.LastError)
	}
}

func TestGraphThrottleStormGivesUp(t *testing.T) {
	st, log := newStore(t)
	g := newGraphStandIn(t)
	g.throttleNext = 1000
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err := Run(ctx, st, log, "entra", graphSource(t, g, g.clientSecret), time.Now)
	if err == nil || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("got %v, want the run to give up on a 429 storm", err)
	}
	if _, ok := view(t, st, "anyone"); ok {
		t.Fatal("a failed run changed users")
	}
}

func TestOktaSync(t *testing.T) {
	st, log := newStore(t)
	o := newOktaStandIn(t)
	o.users = []*oUser{
		{"00u1", "alice@clinic.test", "Alice", "Ng", "ACTIVE"},
		{"00u2", "bob@clinic.test", "Bob", "Li", "SUSPENDED"},
		{"00u3", "carol@clinic.test", "Carol", "Ma", "PASSWORD_EXPIRED"},
		{"00u4", "dave@clinic.test", "Dave", "Ko", "ACTIVE"},
		{"00u5", "erin@clinic.test", "Erin", "Wu", "STAGED"},
	}
	o.groupNames = map[string]string{"00g1": "Nurses", "00g2": "Everyone"}
	o.groups = map[string][]string{"00g1": {"00u1", "00u3", "00u4"}, "00g2": {"00u1", "00u2", "00u3", "00u4", "00u5"}}
	o.throttleNext = 1
	src, err := New(Config{Kind: "okta", OrgURL: o.srv.URL}, Credentials{APIToken: o.token}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := Run(t.Context(), st, log, "okta", src, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Created != 5 || stats.Groups != 2 {
		t.Fatalf("got %+v, want 5 users and 2 groups", stats)
	}
	for name, want := range map[string]bool{"alice@clinic.test": false, "bob@clinic.test": true, "carol@clinic.test": false, "erin@clinic.test": true} {
		if v := mustView(t, st, name); v.disabled != want {
			t.Errorf("%s: got disabled %v, want %v", name, v.disabled, want)
		}
	}
	if v := mustView(t, st, "dave@clinic.test"); !slices.Equal(v.groups, []string{"Everyone", "Nurses"}) {
		t.Fatalf("dave: got groups %v", v.groups)
	}
	// dave is deprovisioned (no longer listed) and leaves Nurses.
	o.users[3].status = "DEPROVISIONED"
	o.groups["00g1"] = []string{"00u1", "00u3"}
	o.groups["00g2"] = []string{"00u1", "00u2", "00u3", "00u5"}
	if _, err := Run(t.Context(), st, log, "okta", src, time.Now); err != nil {
		t.Fatal(err)
	}
	if v := mustView(t, st, "dave@clinic.test"); !v.disabled || len(v.groups) != 0 {
		t.Fatalf("dave after deprovisioning: got %+v, want disabled without groups", v)
	}
	bad, _ := New(Config{Kind: "okta", OrgURL: o.srv.URL}, Credentials{APIToken: "nope"}, nil)
	if _, err := Run(t.Context(), st, log, "okta", bad, time.Now); err == nil || !strings.Contains(err.Error(), "E0000011") {
		t.Fatalf("bad token: got %v, want Okta's E0000011", err)
	}
}

func TestSyncNeverTakesOverLocalAccounts(t *testing.T) {
	st, log := newStore(t)
	err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.CreateUser(t.Context(), store.User{Name: "alice@clinic.test", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Groups: []string{"admins"}}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	g := newGraphStandIn(t)
	g.addUser("u1", "alice@clinic.test", "Alice", false)
	g.addGroup("g1", "Nurses", "u1")
	stats, err := Run(t.Context(), st, log, "entra", graphSource(t, g, g.clientSecret), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Conflicts) != 1 {
		t.Fatalf("got %+v, want the name conflict reported", stats)
	}
	if v := mustView(t, st, "alice@clinic.test"); v.disabled || v.source != "local" || !slices.Equal(v.groups, []string{"admins"}) {
		t.Fatalf("the local alice was changed by the sync: %+v", v)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{map[string]string{"Retry-After": "0"}, time.Second},
		{map[string]string{"Retry-After": "99999"}, 120 * time.Second},
		{map[string]string{"X-Rate-Limit-Reset": "1800000010"}, 11 * time.Second},
		{map[string]string{}, 2 * time.Second},
	}
	for _, tc := range cases {
		h := make(map[string][]string)
		for k, v := range tc.h {
			h[k] = []string{v}
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestDueRunsConfiguredUpstreamsOnTheirInterval(t *testing.T) {
	st, log := newStore(t)
	g := newGraphStandIn(t)
	g.addUser("u1", "alice@clinic.test", "Alice", true)
	cfg := `{"issuer":"https://login.example/v2.0","client_id":"app-id","sync":{"kind":"graph","tenant_id":"` + g.tenant +
		`","login_url":"` + g.srv.URL + `","graph_url":"` + g.srv.URL + `","interval_minutes":15}}`
	err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.CreateUpstream(t.Context(), store.Upstream{Name: "entra", Kind: "oidc", Config: cfg, Secret: []byte(g.clientSecret)}, time.Now()); err != nil {
			return err
		}
		return tx.CreateUpstream(t.Context(), store.Upstream{Name: "nosync", Kind: "oidc", Config: `{"issuer":"https://x.example","client_id":"c"}`}, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	var runs []string
	report := func(up string, _ store.DirStats, err error) {
		if err != nil {
			t.Errorf("%s: %v", up, err)
		}
		runs = append(runs, up)
	}
	Due(t.Context(), st, log, clock, report)
	Due(t.Context(), st, log, clock, report) // not due yet
	now = now.Add(16 * time.Minute)
	Due(t.Context(), st, log, clock, report)
	if !slices.Equal(runs, []string{"entra", "entra"}) {
		t.Fatalf("got runs %v, want entra twice (once per interval) and never nosync", runs)
	}
	mustView(t, st, "alice@clinic.test")
}
