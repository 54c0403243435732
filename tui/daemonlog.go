package tui

import (
	"context"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// l on the Dashboard: the daemon's own log (its messages, warnings and
// errors; decisions are on the Dashboard), the newest last, for an
// appliance without a shell or journalctl.

// DaemonLogReader is what the screen reads through (the admin service).
type DaemonLogReader interface {
	DaemonLog(n int) ([]string, error)
}

func (m Model) daemonLogCmd() tea.Cmd {
	r, ok := m.p.Audit.(DaemonLogReader)
	if !ok {
		return nil
	}
	n := max(m.height-4, 5)
	return m.act(func(context.Context) doneMsg {
		lines, err := r.DaemonLog(n)
		if err != nil {
			return doneMsg{err: err}
		}
		if len(lines) == 0 {
			return doneMsg{show: "The daemon has logged nothing here yet (daemon.log in the data directory)."}
		}
		out := make([]string, 0, len(lines)+1)
		out = append(out, "The daemon's log, newest last (decisions are on the Dashboard):")
		for _, l := range lines {
			out = append(out, fit(m.logLine(l), m.width))
		}
		return doneMsg{show: strings.Join(out, "\n")}
	})
}

// logLine shortens a text-handler line: the time in the site's zone to
// the second, the level, then the rest.
func (m Model) logLine(l string) string {
	ts, rest, ok := strings.Cut(l, " ")
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(ts, "time=")); ok && err == nil {
		l = m.clock().stamp(t) + " " + strings.TrimPrefix(rest, "level=")
	}
	return strings.Replace(l, " msg=", " ", 1)
}
