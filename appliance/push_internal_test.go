package appliance

import (
	"testing"
	"time"
)

// TestBudgetFollowsTheNASTimer: the answer-within budget is what the
// NAS's learned timer allows, never more than the client's cap.
func TestBudgetFollowsTheNASTimer(t *testing.T) {
	cases := []struct {
		name  string
		clock nasClock
		limit time.Duration
		want  time.Duration
	}{
		{"nothing learned: the cap", nasClock{}, 25 * time.Second, 25 * time.Second},
		{"radclient -t 3 -r 3", nasClock{gap: 3 * time.Second}, 25 * time.Second, 8 * time.Second},
		{"a try every 5 s, 12 seen", nasClock{gap: 5 * time.Second, tries: 12}, 25 * time.Second, 25 * time.Second},
		{"hostapd backs off: 3+6+12", nasClock{gap: 3 * time.Second, backoff: true}, 60 * time.Second, 20 * time.Second},
		{"short gaps: margin a third", nasClock{gap: 900 * time.Millisecond}, 25 * time.Second, 2400 * time.Millisecond},
	}
	for _, c := range cases {
		if got := budget(c.clock, c.limit); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
