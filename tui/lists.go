package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// Lists: what the selection points at, how far it may go, and how the
// audit log is read. A long log is not read whole when the console opens:
// it reads the newest window and pages back when the selection reaches
// the oldest entry loaded (60,000 entries took a minute to appear).

// AuditPager reads a page of the audit log going back in time (the admin
// service's AuditBefore). Without it the console reads the log forward
// from the start, as before.
type AuditPager interface {
	// AuditBefore returns up to limit entries before seq (the newest when
	// seq is 0), oldest first.
	AuditBefore(ctx context.Context, seq int64, limit int) ([]admin.AuditRow, error)
}

const (
	// auditPage is how many entries one read brings: the newest at start,
	// then each page back.
	auditPage = 500
	// maxPaged bounds what paging back keeps in memory; older entries are
	// for clinicgate audit tail and the export.
	maxPaged = 20000
)

// olderMsg carries a page of older entries.
type olderMsg struct {
	rows []admin.AuditRow
	err  error
}

// firstEntries reads the newest window of the log when a pager is at
// hand (ok false: read forward as before). older reports that entries
// before the window exist.
func firstEntries(ctx context.Context, a AuditAdmin) (rows []admin.AuditRow, older, ok bool, err error) {
	pg, ok := a.(AuditPager)
	if !ok {
		return nil, false, false, nil
	}
	rows, err = pg.AuditBefore(ctx, 0, auditPage)
	return rows, len(rows) == auditPage && rows[0].Seq > 1, true, err
}

// fetchOlder reads the page before the oldest entry loaded.
func (m Model) fetchOlder() tea.Cmd {
	pg, ok := m.p.Audit.(AuditPager)
	if !ok || !m.older || m.paging || len(m.entries) == 0 || len(m.entries) >= maxPaged {
		return nil
	}
	before := m.entries[0].Seq
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, err := pg.AuditBefore(ctx, before, auditPage)
		return olderMsg{rows, err}
	}
}

// addEntries takes new entries in, keeps the selection on the entry it
// was on (a new login arriving must not move it onto another one), and
// bounds what is kept.
func (m Model) addEntries(rows []admin.AuditRow) Model {
	if len(rows) == 0 {
		return m
	}
	sel, selected := m.selectedSeq()
	for _, r := range rows {
		m.entries = append(m.entries, r)
		m.lastSeq = r.Seq
	}
	// Paging back may have kept more than the live window; keep that
	// many, up to maxPaged.
	keep := max(maxEntries, min(m.paged, maxPaged))
	if len(m.entries) > keep {
		m.entries = append([]admin.AuditRow(nil), m.entries[len(m.entries)-keep:]...)
		m.older = true
	}
	if selected {
		m.cursor = m.indexOf(sel)
	}
	return m
}

// selectedSeq is the entry the dashboard's or the audit pane's selection
// is on.
func (m Model) selectedSeq() (int64, bool) {
	if m.tab != tabDashboard && m.tab != tabAudit {
		return 0, false
	}
	rows := m.visible(m.tab == tabDashboard)
	if len(rows) == 0 {
		return 0, false
	}
	return rows[min(m.cursor, len(rows)-1)].Seq, true
}

// indexOf is where entry seq is in the current list (0 when it is gone).
func (m Model) indexOf(seq int64) int {
	for i, r := range m.visible(m.tab == tabDashboard) {
		if r.Seq == seq {
			return i
		}
	}
	return 0
}

// listLen is how many rows the current pane lists.
func (m Model) listLen() int {
	switch m.tab {
	case tabDashboard:
		return len(m.visible(true))
	case tabAudit:
		return len(m.visible(false))
	case tabUsers:
		return len(m.users)
	case tabClients:
		return len(m.clients)
	case tabUpstreams:
		return len(m.ups)
	case tabDevices:
		return len(m.devices)
	case tabLDAP:
		return len(m.binds)
	}
	return 0
}

// down moves the selection one row down, never past the last row; on the
// last row of the audit log loaded, it reads the page before.
func (m Model) down() (Model, tea.Cmd) {
	n := m.listLen()
	if m.cursor < n-1 {
		m.cursor++
	} else {
		m.cursor = max(n-1, 0)
	}
	if (m.tab == tabAudit || m.tab == tabDashboard) && m.cursor >= n-1 {
		if cmd := m.fetchOlder(); cmd != nil {
			m.paging = true
			return m, cmd
		}
	}
	return m, nil
}

// clampCursor keeps the selection on a row after a list shrank.
func (m Model) clampCursor() Model {
	if n := m.listLen(); m.cursor > n-1 {
		m.cursor = max(n-1, 0)
	}
	return m
}

// updateLists handles the messages of this file and timefmt.go (handled
// reports that msg was one of them).
func (m Model) updateLists(msg tea.Msg) (Model, tea.Cmd, bool) {
	switch msg := msg.(type) {
	case zoneMsg:
		m.zone = msg.loc
		return m, nil, true
	case olderMsg:
		m.paging = false
		if msg.err != nil {
			m.note = "! cannot read older audit entries right now (" + explain(msg.err) + "); press ↓ to try again"
			return m, nil, true
		}
		m.older = len(msg.rows) == auditPage && msg.rows[0].Seq > 1
		sel, selected := m.selectedSeq()
		m.entries = append(append([]admin.AuditRow(nil), msg.rows...), m.entries...)
		m.paged = len(m.entries)
		m.note = fmt.Sprintf("%d older %s read from the audit log (%d in view)", len(msg.rows), plural(len(msg.rows), "entry", "entries"), len(m.entries))
		if selected {
			m.cursor = m.indexOf(sel)
		}
		return m, nil, true
	}
	return m, nil, false
}

// firstRow is the screen line of a pane's first list row, for a mouse
// click: under the title and status lines (and a warning), the pane's
// header lines and its column header. On the dashboard the daemon line
// may take two lines (the upstreams'), and a click must still land on
// the row under the pointer.
func (m Model) firstRow() int {
	top := 2
	if m.opts.Warning != "" {
		top++
	}
	if m.audit.alarm != "" {
		top++ // under the audit alarm's banner
	}
	switch m.tab {
	case tabDashboard:
		return top + strings.Count(m.daemonLine(), "\n") + 4
	case tabUsers, tabDevices:
		return top + 3
	case tabLDAP:
		return ldapFirstRow + top - 2
	}
	return top + 2
}
