package store_test

import (
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

func TestAcctStartThenStop(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	start := store.AcctSession{
		Client: "office-ap", SessionID: "S1", UserName: "alice", CallingStation: "aa:bb:cc:dd:ee:ff",
		NASAddress: "10.0.0.2", FramedAddress: "10.0.5.9", Status: store.AcctActive,
		StartedAt: now, UpdatedAt: now,
	}
	if err := st.UpsertAcct(ctx, start); err != nil {
		t.Fatal(err)
	}
	active, err := st.AcctSessions(ctx, true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].Status != store.AcctActive || active[0].UserName != "alice" || !active[0].StoppedAt.IsZero() {
		t.Fatalf("after Start: got %+v, want one active session", active)
	}

	// The Stop carries no user name or framed address; the Start's stay.
	stopAt := now.Add(time.Hour)
	stop := store.AcctSession{
		Client: "office-ap", SessionID: "S1", NASAddress: "10.0.0.2", Status: store.AcctStopped,
		StartedAt: now, UpdatedAt: stopAt, StoppedAt: stopAt,
		SessionTime: 3600, InputOctets: 1000, OutputOctets: 2000, TerminateCause: "User-Request",
	}
	if err := st.UpsertAcct(ctx, stop); err != nil {
		t.Fatal(err)
	}
	// A Start retransmitted late does not revive the session.
	if err := st.UpsertAcct(ctx, start); err != nil {
		t.Fatal(err)
	}

	if active, err := st.AcctSessions(ctx, true, 10); err != nil || len(active) != 0 {
		t.Errorf("active sessions after Stop: got (%d, %v), want none", len(active), err)
	}
	all, err := st.AcctSessions(ctx, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("sessions: got %d, want 1", len(all))
	}
	got := all[0]
	if got.Status != store.AcctStopped || got.UserName != "alice" || got.FramedAddress != "10.0.5.9" ||
		!got.StoppedAt.Equal(stopAt) || got.SessionTime != 3600 || got.InputOctets != 1000 ||
		got.OutputOctets != 2000 || got.TerminateCause != "User-Request" || !got.StartedAt.Equal(now) {
		t.Errorf("after Stop: got %+v", got)
	}
}

// TestAcctStopWithoutStart: NASes lose packets; a lone Stop still makes a
// row.
func TestAcctStopWithoutStart(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	err := st.UpsertAcct(ctx, store.AcctSession{
		Client: "office-ap", SessionID: "S2", UserName: "bob", Status: store.AcctStopped,
		StartedAt: now, UpdatedAt: now.Add(time.Minute), StoppedAt: now.Add(time.Minute), SessionTime: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := st.AcctSessions(ctx, false, 10)
	if err != nil || len(all) != 1 || all[0].Status != store.AcctStopped || all[0].UserName != "bob" {
		t.Errorf("lone Stop: got (%+v, %v), want one stopped session of bob", all, err)
	}
}

func TestStopAllAcct(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	for _, s := range []struct{ client, id string }{{"office-ap", "A"}, {"office-ap", "B"}, {"guest-ap", "C"}} {
		if err := st.UpsertAcct(ctx, store.AcctSession{Client: s.client, SessionID: s.id, Status: store.AcctActive, StartedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.StopAllAcct(ctx, "office-ap", now.Add(time.Hour), "NAS-Reboot"); err != nil {
		t.Fatal(err)
	}
	active, err := st.AcctSessions(ctx, true, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].SessionID != "C" {
		t.Errorf("active after StopAllAcct(office-ap): got %+v, want only guest-ap's C", active)
	}
}
