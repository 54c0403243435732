package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// TestListTimesAreInTheSiteZone: lists show the date and the time in the
// site's zone, named once in the pane's header; the Users pane shows a
// lockout's end and an expiry's last day.
func TestListTimesAreInTheSiteZone(t *testing.T) {
	f := sample()
	f.settings = map[string]string{"timezone": "America/Chicago"}
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	f.users[0].LockedUntil = t0.Add(2 * time.Hour) // the console's clock is t0+1h
	f.users[1].ExpiresAt = time.Date(2027, 1, 1, 0, 0, 0, 0, chicago)
	tm := start(t, f, 80, 24)
	// 08:03 UTC is 02:03 in Chicago.
	waitFor(t, tm, "times America/Chicago", "Nov 30 02:03:00 reject")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "3 users · times America/Chicago", "locked until Nov 30 04:00", "2026-12-31")
	out := screen(t, tm)
	for i, l := range strings.Split(out, "\n") {
		if w := len([]rune(l)); w > 80 {
			t.Errorf("line %d is %d columns wide: %q", i, w, l)
		}
	}
	if strings.Contains(out, "dr.lee           clinicians     active") {
		t.Errorf("a locked-out user is shown active:\n%s", out)
	}
}

// TestGroupsFormReadsTheExpiryInTheSiteZone: the console's expiry is the
// command line's: a day ends at midnight in the site's zone.
func TestGroupsFormReadsTheExpiryInTheSiteZone(t *testing.T) {
	f := sample()
	f.settings = map[string]string{"timezone": "America/Chicago"}
	for i := range f.users {
		f.users[i].Version = 1
	}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "vendor-it")
	tm.Type("g")
	waitFor(t, tm, "Groups, expiry, hours and name of dr.lee")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("2026-12-31")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "dr.lee: groups, expiry, hours and name saved")
	f.mu.Lock()
	defer f.mu.Unlock()
	chicago, _ := time.LoadLocation("America/Chicago")
	if got, want := f.users[0].ExpiresAt, time.Date(2027, 1, 1, 0, 0, 0, 0, chicago); !got.Equal(want) {
		t.Fatalf("expiry saved as %s, want %s (the end of 31 December in Chicago)", got.UTC(), want.UTC())
	}
}

// TestSelectionFollowsTheEntry: a login arriving while an entry is
// selected must not move the selection onto another entry.
func TestSelectionFollowsTheEntry(t *testing.T) {
	f := sample()
	tm := startPanes(t, Panes{Audit: fakeAudit{f}}, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown}) // entry 3, dr.lee's accept
	f.add(admin.AuditRow{At: t0.Add(4 * time.Minute), Kind: "decision", Door: "radius", Client: "office-vpn", User: "nurse.kim", Outcome: "accept", Reason: "ok"})
	waitFor(t, tm, "nurse.kim")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Entry 3 ")
}

// TestDownStopsAtTheLastRow: ↓ past the end of a list stays on the last
// row, so ↑ goes to the row above it at once.
func TestDownStopsAtTheLastRow(t *testing.T) {
	tm := start(t, sample(), 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "vendor-it")
	for range 5 {
		tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyUp})
	tm.Type("d")
	waitFor(t, tm, "Disable frontdesk2?")
}

// TestUpstreamsListRefreshesAfterAddAndRemove: the list shows an upstream
// once it is added, and not once it is removed.
func TestUpstreamsListRefreshesAfterAddAndRemove(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 4 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "dc1.clinic.local")
	tm.Type("a")
	tm.Type("radius")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Add a RADIUS upstream")
	for _, v := range []string{"clinic-nps", "10.0.0.5:1812", "nps-shared-secret", "yes"} {
		tm.Type(v)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "clinic-nps       radius")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Type("x")
	waitFor(t, tm, "Remove upstream clinic-nps?")
	tm.Type("clinic-nps") // the typed confirmation
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "upstream clinic-nps removed")
	if out := screen(t, tm); strings.Contains(out, "clinic-nps       radius") {
		t.Fatalf("a removed upstream is still listed:\n%s", out)
	}
}

// TestClickLandsOnTheRowUnderTheUpstreamsLine: with the upstreams' line
// on the dashboard, a click selects the row under the pointer.
func TestClickLandsOnTheRowUnderTheUpstreamsLine(t *testing.T) {
	tm := start(t, sample(), 80, 24)
	// Title, status, daemon, upstreams, counts, zone, column header: the
	// first row (entry 4) is screen line 7, entry 3 line 8.
	waitFor(t, tm, "frontdesk2", "upstreams: clinic-ad up")
	tm.Send(tea.MouseMsg{X: 5, Y: 8, Button: tea.MouseButtonLeft, Action: tea.MouseActionRelease})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Entry 3 ")
}

// TestAuditPagesBackOnDemand: a long log opens on its newest entries, and
// ↓ on the oldest one loaded reads the page before.
func TestAuditPagesBackOnDemand(t *testing.T) {
	f := &fakeAdmin{}
	for i := range 1200 {
		f.add(admin.AuditRow{At: t0.Add(time.Duration(i) * time.Second), Kind: "decision", Door: "radius", Client: "office-wifi",
			User: fmt.Sprintf("u%04d", i), Outcome: "accept", Reason: "ok"})
	}
	f.users = []admin.User{{Name: "dr.lee"}} // not a fresh appliance
	tm := start(t, f, 80, 24)
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "u1199")
	// 500 entries were read: u0700 is the oldest; the next ↓ reads on.
	for range auditPage {
		tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	}
	waitFor(t, tm, "500 older entries read from the audit log (1000 in view)")
	for range 10 {
		tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	}
	waitFor(t, tm, "u0690")
}

// TestLockoutShowsWhileTheUsersPaneIsOpen: a user locked out after the
// list was read shows locked (until when), not active.
func TestLockoutShowsWhileTheUsersPaneIsOpen(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "vendor-it")
	f.mu.Lock()
	f.users[0].LockedUntil = t0.Add(75 * time.Minute) // five wrong codes just now
	f.mu.Unlock()
	waitFor(t, tm, "locked until Nov 30 09:15")
}

// TestDevicesTimesNameTheZone: the Devices pane's sync times are in the
// site's zone, which its column header names.
func TestDevicesTimesNameTheZone(t *testing.T) {
	f := sample()
	f.settings = map[string]string{"timezone": "America/Chicago"}
	f.devices = []admin.Device{{ID: 1, Source: admin.SourceManual, MAC: "aa:bb:cc:dd:ee:ff", UserName: "dr.lee", CreatedAt: t0, SyncedAt: t0}}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 5 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "SYNCED (CST)", "Nov 30 02:00")
}
