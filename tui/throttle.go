package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
)

// The smart lockout's counters (appliance/throttle.go), as the daemon
// reports them: which sources are being refused or have failures
// counted. A source refused for one account does not stop the user
// logging in from elsewhere; the account itself locks only at three
// times the threshold (Users pane, u: unlock). b on the Dashboard lists
// them all.

// throttledSource names where the failures come from.
func throttledSource(t appliance.Throttled) string {
	s := t.Address
	if t.Client != "" {
		s += " via " + t.Client
	}
	if t.Station != "" {
		s += " station " + t.Station
	}
	return s
}

// throttleLine is a dashboard line while some source is refused.
func (m Model) throttleLine(now time.Time) string {
	if m.daemon == nil {
		return ""
	}
	var blocked []appliance.Throttled
	for _, t := range m.daemon.Throttled {
		if now.Before(t.Until) {
			blocked = append(blocked, t)
		}
	}
	if len(blocked) == 0 {
		return ""
	}
	t := blocked[0]
	l := fmt.Sprintf("lockout: %d source(s) refused · %s ← %s until %s (b: all)", len(blocked), t.User, throttledSource(t), m.clock().minute(t.Until))
	return warnStyle.Render(fit(l, m.width))
}

// throttleText is the list b shows.
func throttleText(ts []appliance.Throttled, c clock, now time.Time) string {
	if len(ts) == 0 {
		return "No source has failed logins counted now: nobody is being slowed down."
	}
	var b strings.Builder
	b.WriteString("Sources with failed logins (the latest first). A refused source is\nrefused for that account only; the user can log in from elsewhere.\n\n")
	for _, t := range ts {
		state := fmt.Sprintf("%d failure(s)", t.Fails)
		if now.Before(t.Until) {
			state = "REFUSED until " + c.minute(t.Until)
		}
		who := t.User
		if t.Kind == "bind" {
			who += " (bind account)"
		}
		fmt.Fprintf(&b, "%-28s %s\n    from %s, last %s\n", who, state, throttledSource(t), c.minute(t.Last))
	}
	return strings.TrimRight(b.String(), "\n")
}
