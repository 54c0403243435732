package main

import (
	"strings"
	"testing"
)

// TestCoAEventsListsADisable: disabling a user queues an event the daemon
// has not handled yet; coa events shows it pending.
func TestCoAEventsListsADisable(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "", "user", "add", "alice")
	if out := mustCG(t, data, "", "coa", "events"); strings.Contains(out, "user_disabled") {
		t.Fatalf("an event before any disable:\n%s", out)
	}
	mustCG(t, data, "", "user", "disable", "alice")
	out := mustCG(t, data, "", "coa", "events", "-n", "5")
	if !strings.Contains(out, "user_disabled") || !strings.Contains(out, "alice") || !strings.Contains(out, "pending") {
		t.Errorf("got\n%s\nwant alice's user_disabled event, pending", out)
	}
}
