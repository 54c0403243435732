package tui

import (
	"fmt"
	"time"
)

// The clock, as the daemon last checked it against an NTP server
// (internal/daemon/clock.go). TOTP codes are good for a step or two of
// 30 s: past that every code is refused, so the console says so on every
// pane, in red, until the clock is right.

// clockBanner is the red line on every pane while the clock is off.
func (m Model) clockBanner() string {
	if m.daemon == nil || !m.daemon.Clock.Off() {
		return ""
	}
	c := m.daemon.Clock
	dir := "behind"
	if c.Offset < 0 {
		dir = "ahead"
	}
	l := fmt.Sprintf("CLOCK %s %s by %s (NTP %s): every TOTP code fails until it is right", "is", dir, c.Offset.Abs().Round(time.Second), c.Server)
	return rejectStyle.Bold(true).Render(fit(l, m.width))
}

// clockLine is a yellow dashboard line when the clock could not be
// checked and timesyncd has not synchronised it either.
func (m Model) clockLine() string {
	if m.daemon == nil || m.daemon.Clock == nil {
		return ""
	}
	c := m.daemon.Clock
	if c.Measured || !c.SyncedAt.IsZero() {
		return ""
	}
	return warnStyle.Render(fit("clock unchecked: "+c.Err+" (e: ntp servers)", m.width))
}
