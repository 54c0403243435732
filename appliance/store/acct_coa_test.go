package store_test

import (
	"slices"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// undo10 rolls migration 010 back (run before undo7's statements).
var undo10 = []string{
	`DROP TABLE audit_forward`, `DROP TABLE audit_forward_state`, // 012
	// 011 first: a later migration is undone before an earlier one.
	`ALTER TABLE bind_accounts DROP COLUMN secret_hash`,
	`DROP INDEX acct_sessions_active_mac`,
	`DROP INDEX acct_sessions_active_user`,
	`ALTER TABLE acct_sessions DROP COLUMN station_mac`,
	`ALTER TABLE acct_sessions DROP COLUMN nas_ip_attr`,
	`ALTER TABLE acct_sessions DROP COLUMN nas_identifier`,
	`DELETE FROM schema_migrations WHERE version >= 10`,
}

// TestActiveSessionsFoundByCanonicalMAC: a posture event names a device by
// the inventory's canonical MACs; the NAS wrote Calling-Station-Id in its
// own form (dashes, upper case, an SSID suffix), and the session is found
// all the same — stopped sessions and other devices are not.
func TestActiveSessionsFoundByCanonicalMAC(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	ctx := t.Context()
	for _, a := range []store.AcctSession{
		{Client: "ap", SessionID: "S1", UserName: "alice", CallingStation: "AA-BB-CC-DD-EE-01:Staff", NASAddress: "10.0.0.2", NASIdentifier: "ap-lobby", NASIPAttr: "10.0.0.2", Status: store.AcctActive, StartedAt: now, UpdatedAt: now},
		{Client: "ap", SessionID: "S2", UserName: "alice", CallingStation: "aabb.ccdd.ee02", NASAddress: "10.0.0.2", Status: store.AcctActive, StartedAt: now, UpdatedAt: now},
		{Client: "ap", SessionID: "S3", UserName: "bob", CallingStation: "aa:bb:cc:dd:ee:01", NASAddress: "10.0.0.3", Status: store.AcctStopped, StartedAt: now, UpdatedAt: now, StoppedAt: now},
		{Client: "vpn", SessionID: "V1", UserName: "carol", CallingStation: "198.51.100.7", NASAddress: "10.0.0.9", Status: store.AcctActive, StartedAt: now, UpdatedAt: now},
	} {
		if err := st.UpsertAcct(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(as []store.AcctSession) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.SessionID)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name string
		macs []string
		user string
		want []string
	}{
		{"by MAC", []string{"aa:bb:cc:dd:ee:01"}, "", []string{"S1"}},
		{"by MAC in another form", []string{"AA:BB:CC:DD:EE:02"}, "", []string{"S2"}},
		{"by user", nil, "carol", []string{"V1"}},
		{"by user, another case", nil, "Carol", []string{"V1"}},
		{"by MAC or user", []string{"aa:bb:cc:dd:ee:02"}, "carol", []string{"S2", "V1"}},
		{"nothing", nil, "", nil},
		{"not a MAC", []string{"198.51.100.7"}, "", nil},
	} {
		got, err := st.ActiveAcctSessions(ctx, c.macs, c.user, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("%s: got %v, want %v", c.name, ids(got), c.want)
		}
	}
	got, err := st.ActiveAcctSessions(ctx, []string{"aa:bb:cc:dd:ee:01"}, "", 10)
	if err != nil || len(got) != 1 || got[0].NASIdentifier != "ap-lobby" || got[0].NASIPAttr != "10.0.0.2" {
		t.Fatalf("got %+v %v, want the NAS-Identifier and NAS-IP-Address as accounting sent them", got, err)
	}

	// A row from before migration 010 (no station_mac) is found too.
	st.Close()
	db := raw(t, dir)
	exec(t, db, `UPDATE acct_sessions SET station_mac = '' WHERE session_id = 'S2'`)
	db.Close()
	st = open(t, dir)
	if got, err := st.ActiveAcctSessions(ctx, []string{"aa:bb:cc:dd:ee:02"}, "", 10); err != nil || !slices.Equal(ids(got), []string{"S2"}) {
		t.Errorf("pre-010 row: got %v %v, want S2", ids(got), err)
	}
}
