package tui

// The console's safety rails: an audit alarm that stays, a filter that
// swallows every key while it is typed, ctrl+c, q and esc that go back
// one level (only the top level asks before quitting), confirmations
// that make the operator type the name of what is destroyed, and the
// help and bottom bar of whatever is open. Over SSH, quitting ends the
// session, and a letter typed into the wrong place must never change
// data.

import (
	"context"
	"fmt"
	"net"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// ---- the audit alarm

// auditState is what the last verification of the audit chain found.
type auditState struct {
	// alarm is the banner shown on every pane while the chain is broken;
	// only a verification that passes clears it.
	alarm string
	// checked is how many entries the last verification checked (ok:
	// there was one).
	checked int64
	ok      bool
	// asked: the operator pressed v, so the result is shown, not only
	// the status line.
	asked bool
}

// verified takes in a verification's result.
func (m Model) verified(msg verifyMsg) Model {
	asked := m.audit.asked
	m.audit.asked = false
	switch {
	case msg.err != nil:
		// Nothing is known: a broken chain stays broken on screen.
		m.verify = "audit: could not verify (" + oneLine(msg.err.Error()) + ")"
		if asked {
			m.show = "The audit chain could not be verified:\n\n  " + oneLine(msg.err.Error()) + "\n\nTry again in a moment (v)."
		}
		return m
	case len(msg.problems) == 0:
		m.audit = auditState{checked: msg.n, ok: true}
	default:
		a := "AUDIT BROKEN: " + msg.problems[0]
		if n := len(msg.problems) - 1; n > 0 {
			a += fmt.Sprintf(" (and %d more %s)", n, plural(n, "problem", "problems"))
		}
		m.audit = auditState{alarm: a, checked: msg.n, ok: true}
	}
	m.verify = ""
	if asked {
		m.note = ""
		m.show = verifyReport(msg) + forwardReport(m.daemon) // auditfwd.go
	}
	return m
}

// verifyReport is what v shows: how much was checked, and every problem.
func verifyReport(msg verifyMsg) string {
	var b strings.Builder
	checked := fmt.Sprintf("%d %s checked", msg.n, plural(int(msg.n), "entry", "entries"))
	if len(msg.problems) == 0 {
		fmt.Fprintf(&b, "Audit chain verified: %s, no problems. The chain is unbroken.", checked)
		return b.String()
	}
	fmt.Fprintf(&b, "AUDIT BROKEN: %s, %d %s:\n\n", checked, len(msg.problems), plural(len(msg.problems), "problem", "problems"))
	const most = 12 // what fits 80×24 with the banner and this text
	for i, p := range msg.problems {
		if i == most {
			fmt.Fprintf(&b, "  … and %d more (clinicgate audit verify lists them all)\n", len(msg.problems)-most)
			break
		}
		b.WriteString("  - " + sanitize(p) + "\n")
	}
	b.WriteString("\nSomeone may have changed the log. Keep the appliance as it is, copy the data\ndirectory off it and call whoever looks after its security.")
	return b.String()
}

// auditStatus is the status line's account of the audit log: how many
// entries it has now (not when it was last verified), and whether the
// chain held when it was.
func (m Model) auditStatus() string {
	if m.verify != "" || !m.audit.ok {
		return m.verify
	}
	n := max(m.lastSeq, m.audit.checked)
	entries := fmt.Sprintf("audit: %d %s", n, plural(int(n), "entry", "entries"))
	switch {
	case m.audit.alarm != "":
		return entries + ", chain BROKEN (v: verify again)"
	case n > m.audit.checked:
		return fmt.Sprintf("%s, chain unbroken through entry %d (v: verify again)", entries, m.audit.checked)
	}
	return entries + ", chain unbroken"
}

// banner is the audit alarm's line, drawn on every pane.
func (m Model) banner() string {
	return rejectStyle.Bold(true).Render(fit(m.audit.alarm+" · v: verify again", m.width))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ---- keys that go back one level

// quitQuestion is the only way out of the console.
func quitQuestion() *confirmation {
	return &confirmation{question: "Quit the console? Over SSH this ends the session.", do: tea.Quit}
}

// ctrlC closes whatever is open, one level, as esc does; at the top level
// it asks before quitting. It never quits by itself: over SSH that would
// end the session in the middle of a form.
func (m Model) ctrlC() (Model, tea.Cmd, bool) {
	switch {
	case m.show != "":
		return m, nil, false // any key closes it
	case m.form != nil:
		return m, nil, false // the form takes it as esc
	case m.confirm != nil:
		m.confirm, m.note = nil, "nothing changed"
	case m.editing:
		m.editing, m.filter = false, ""
		m = m.refilter()
	case m.help.ShowAll:
		m.help.ShowAll = false
	case m.detail != nil:
		m.detail = nil
	default:
		m.confirm = quitQuestion()
	}
	return m, nil, true
}

// back answers q and esc outside forms: close the help or the story,
// then clear a filter; only at the top level does q ask to quit.
func (m Model) back(quit bool) Model {
	switch {
	case m.help.ShowAll:
		m.help.ShowAll = false
	case m.detail != nil:
		m.detail = nil
	case m.filter != "":
		m.filter, m.cursor = "", 0
		m = m.refilter()
	case quit:
		m.confirm = quitQuestion()
	}
	return m
}

// ---- confirmations

// typed makes a confirmation one the operator must answer by typing
// word (the name of what is destroyed) and enter: a stray y, or a
// letter meant for a filter, cannot destroy anything.
func (c *confirmation) typed(word string) *confirmation {
	w := sanitize(strings.TrimSpace(word))
	if w == "" || len([]rune(w)) > 40 {
		w = "yes"
	}
	c.word = w
	return c
}

// confirmKey answers a key while a confirmation is open.
func (m Model) confirmKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	c := m.confirm
	if c.word == "" {
		m.confirm = nil
		if msg.String() == "y" {
			return m, c.do
		}
		m.note = "nothing changed"
		return m, nil
	}
	switch msg.Type {
	case tea.KeyEsc, tea.KeyCtrlC:
		m.confirm, m.note = nil, "nothing changed"
	case tea.KeyEnter:
		m.confirm = nil
		if c.typedText != c.word {
			m.note = "nothing changed: " + quoted(c.typedText) + " is not " + quoted(c.word)
			return m, nil
		}
		return m, c.do
	case tea.KeyBackspace:
		if r := []rune(c.typedText); len(r) > 0 {
			cc := *c
			cc.typedText = string(r[:len(r)-1])
			m.confirm = &cc
		}
	case tea.KeyRunes, tea.KeySpace:
		if len(c.typedText) < 128 {
			cc := *c
			cc.typedText += sanitize(strings.TrimRight(string(msg.Runes), "\r\n"))
			m.confirm = &cc
		}
	}
	return m, nil
}

func quoted(s string) string {
	if s == "" {
		return "nothing typed"
	}
	return fmt.Sprintf("%q", s)
}

// view lays a confirmation out within width columns.
func (c *confirmation) view(width int) string {
	if c.word == "" {
		return strings.Join(wrap(c.question+"  (y: yes, any other key: no)", width), "\n")
	}
	lines := wrap(c.question, width)
	lines = append(lines, "", fit("To confirm, type "+c.word+" and press enter (esc: cancel):", width), "> "+fit(c.typedText, width-3)+"▏")
	return strings.Join(lines, "\n")
}

// removeUser asks before deleting a user, by name.
func (m Model) removeUser(name string) *confirmation {
	return (&confirmation{question: "Remove the user " + name + "? Their password, TOTP factor and devices go with them; this cannot be undone.",
		do: m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Users.DeleteUser(ctx, name); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "user " + name + " removed"}
		})}).typed(name)
}

// removeClient asks before deleting a client, by name.
func (m Model) removeClient(name string) *confirmation {
	return (&confirmation{question: "Remove the client " + name + "? Its logins are refused from then on; this cannot be undone.",
		do: m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Clients.RemoveClient(ctx, name); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "client " + name + " removed"}
		})}).typed(name)
}

// ---- the filter, in every list

// lists holds every pane's list as read; the Model's own lists are
// what the filter lets through (all of it without one).
type lists struct {
	users   []admin.User
	clients []admin.Client
	ups     []admin.Upstream
	devices []admin.Device
	binds   []admin.BindAccount
}

// filterable: the panes / filters.
func filterable(t tab) bool { return t != tabWiFi }

// refilter applies the filter to the lists.
func (m Model) refilter() Model {
	f := strings.ToLower(m.filter)
	m.users = keep(m.all.users, f, func(u admin.User) string { return u.Name + " " + strings.Join(u.Groups, ",") + " " + u.Source })
	m.clients = keep(m.all.clients, f, func(c admin.Client) string {
		return c.Name + " " + c.Door + " " + c.Prefix.String() + " " + c.Policy.Upstream + " " + string(c.Policy.MFA)
	})
	m.ups = keep(m.all.ups, f, func(u admin.Upstream) string { return u.Name + " " + u.Kind + " " + upstreamWhere(u.Config) })
	m.devices = keep(m.all.devices, f, func(d admin.Device) string {
		return fmt.Sprint("#", d.ID, " ", d.Source, " ", d.Description, " ", deviceOwner(d), " ", d.Serial, " ", strings.Join(d.MACs, " "), " ", d.MAC)
	})
	m.binds = keep(m.all.binds, f, func(a admin.BindAccount) string {
		s := a.Name
		for _, p := range a.Networks {
			s += " " + p.String()
		}
		return s
	})
	return m
}

func keep[T any](all []T, f string, text func(T) string) []T {
	if f == "" {
		return all
	}
	var out []T
	for _, x := range all {
		if strings.Contains(strings.ToLower(text(x)), f) {
			out = append(out, x)
		}
	}
	return out
}

// typedFilter starts a filter from keys that arrived together ("/dyer"
// in one read, as a fast typist over SSH sends them): all of it is the
// filter, none of it a command.
func (m Model) typedFilter(msg tea.KeyMsg) (Model, bool) {
	if msg.Type != tea.KeyRunes || len(msg.Runes) < 2 || msg.Runes[0] != '/' || !filterable(m.tab) || !m.p.available(m.tab) {
		return m, false
	}
	m.editing, m.cursor = true, 0
	m.filter = sanitize(string(msg.Runes[1:]))
	if len(m.filter) > 64 {
		m.filter = string([]rune(m.filter)[:64])
	}
	return m.refilter(), true
}

// filterLine replaces a pane's first line while a filter is typed or
// set; ok is false without one.
func (m Model) filterLine() (string, bool) {
	if !m.editing && m.filter == "" {
		return "", false
	}
	cur := ""
	if m.editing {
		cur = "▏"
	}
	return fit("filter: "+m.filter+cur, m.width), true
}

// empty is what a list with nothing to show says.
func (m Model) empty(nothingYet string) string {
	if m.filter != "" {
		return "(nothing matches the filter: esc clears it)"
	}
	return nothingYet
}

// ---- rows, ports, bars and help

// selected marks the selected row: reversed, and where the terminal
// shows no attributes (NO_COLOR, TERM=dumb), with a leading '>'.
func (m Model) selected(line string) string {
	if lipgloss.ColorProfile() != termenv.Ascii {
		return cursorStyle.Render(line)
	}
	// The marker takes two columns from the widest gap between columns,
	// so the columns after it stay where they are and nothing is cut.
	at, run := -1, 2
	for i := 0; i < len(line); {
		j := i
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j-i > run {
			at, run = i, j-i
		}
		i = j + 1
	}
	if at >= 0 {
		return "> " + line[:at] + line[at+2:]
	}
	return "> " + fit(line, m.width-2)
}

// listenPort is the port of the daemon's listener for door, as it last
// reported it, or def (the documented default) when it has not.
func (m Model) listenPort(door admin.ListenDoor) (string, bool) {
	if m.daemon == nil {
		return "", false
	}
	l, ok := m.daemon.Listener(door)
	if !ok {
		return "", false
	}
	_, port, err := net.SplitHostPort(l.Address)
	return port, err == nil
}

// radiusPorts says where a NAS sends its requests.
func (m Model) radiusPorts() string {
	auth, ok := m.listenPort(admin.ListenRADIUSAuth)
	if !ok {
		return "port 1812 (accounting 1813; the defaults: the daemon has not said where it listens)"
	}
	if acct, ok := m.listenPort(admin.ListenRADIUSAcct); ok {
		return "port " + auth + " (accounting " + acct + ")"
	}
	return "port " + auth + " (no accounting port is open)"
}

// ldapPorts says where an EHR sends its binds.
func (m Model) ldapPorts() string {
	ldaps, s := m.listenPort(admin.ListenLDAPS)
	ldap, p := m.listenPort(admin.ListenLDAP)
	switch {
	case s && p:
		return "port " + ldaps + " (LDAPS) or " + ldap + " with StartTLS"
	case s:
		return "port " + ldaps + " (LDAPS)"
	case p:
		return "port " + ldap + " with StartTLS"
	}
	return "port 636 (LDAPS) or 389 with StartTLS (the defaults: the daemon has not said it listens for LDAP)"
}

// upstreamState is an upstream's health as the daemon last reported it
// ("-": not reported); down when it refuses logins (shown in red).
func (m Model) upstreamState(name string) (string, bool) {
	if m.daemon == nil {
		return "-", false
	}
	for _, u := range m.daemon.Upstreams {
		if u.Name == name {
			if u.State != "up" && u.State != "unknown" {
				return strings.ToUpper(clip(u.State, 7)), true
			}
			return u.State, false
		}
	}
	return "-", false
}

// bottomBar is the keys of what is open: a form's, a question's, or
// the pane's.
func (m Model) bottomBar() string {
	var s string
	switch {
	case m.show != "":
		s = "any key: close"
	case m.form != nil:
		s = "tab/↓ next field · shift+tab/↑ previous · enter next/save · esc cancel"
	case m.confirm != nil && m.confirm.word != "":
		s = "type " + m.confirm.word + " · enter confirm · esc cancel"
	case m.confirm != nil:
		s = "y yes · any other key no"
	case m.editing:
		s = "type to filter · enter keep the filter · esc clear it"
	case m.help.ShowAll:
		s = "? or esc: close the help"
	case m.detail != nil:
		s = "esc/q back · tab next pane"
	default:
		return m.help.ShortHelpView(keys.ShortHelp())
	}
	return dimStyle.Render(fit(s, m.width))
}

type helpKey struct{ keys, what string }

// paneKeys is every key the pane answers, for ? (tests check that each
// key the pane handles is listed).
func paneKeys(t tab) []helpKey {
	switch t {
	case tabDashboard:
		return []helpKey{{"enter", "the decision's story (why?)"}, {"e", "site settings (zone, lockout, …)"}, {"o", "who is online (accounting)"}, {"b", "sources refused or slowed (lockout)"}, {"k", "SSH admin keys: list, add, remove"},
			{"n", "network, host name, NTP"}, {"l", "the daemon's log"}, {"u", "install an update (.deb)"}, {"p", "reboot, power off, factory reset (typed)"},
			{"s", "backups: make one, list, replication"}}
	case tabAudit:
		return []helpKey{{"enter", "the decision's story (why?)"}, {"x", "HIPAA export of a date range"}, {"f", "forwarding to syslog/SIEM, retention"}, {"c", "whole copy: write, or check against"}}
	case tabUsers:
		return []helpKey{{"a", "add a user"}, {"p", "reset the password"}, {"d", "disable/enable"},
			{"g", "groups, expiry, hours, name"}, {"u", "unlock"}, {"m", "enrol TOTP (QR code)"}, {"t", "show the QR again (until first use)"}, {"r", "reset TOTP (typed)"},
			{"b", "bind a device's MAC"}, {"x", "remove the user (typed)"}}
	case tabClients:
		return []helpKey{{"a", "add a client"}, {"e", "edit its policy"}, {"s", "address, secret, session length"}, {"p", "push MFA (Duo, Okta Verify)"}, {"l", "test login"}, {"x", "remove the client (typed)"}}
	case tabUpstreams:
		return []helpKey{{"a", "add an upstream"}, {"e", "edit settings, secret"}, {"t", "test with a real login"}, {"x", "remove it (typed)"}, {"m", "push MFA providers (Duo, Okta)"}, {"y", "sync its directory now"}}
	case tabDevices:
		return []helpKey{{"enter", "the device's details"}, {"o", "override compliance"}, {"x", "remove a MAC (typed)"},
			{"r", "revoke certificates (typed)"}, {"n", "enrol a certificate (SCEP)"}, {"m", "connect an MDM"},
			{"s", "sync the MDM now"}, {"h", "CoA log"}, {"c", "register certs, withdraw challenges, remove an MDM"}}
	case tabLDAP:
		return []helpKey{{"a", "add a bind account"}, {"e", "edit the settings"}, {"x", "remove a bind account (typed)"}, {"c", "the TLS certificate and its CA"}}
	case tabWiFi:
		return []helpKey{{"c", "show the CA (PEM)"}, {"p", "Apple profile into exports/"}, {"d", "the device CA (SCEP)"}}
	}
	return nil
}

var commonKeys = []helpKey{{"tab", "next pane"}, {"shift+tab", "previous pane"}, {"↑/k ↓/j", "move"},
	{"/", "filter the list"}, {"esc", "back, clear the filter"}, {"v", "verify the audit chain"}, {"?", "this help"},
	{"q", "back; quit (asks)"}, {"ctrl+c", "close a form; quit (asks)"}}

// helpView lists the pane's keys, then the keys of every pane, in two
// columns when one does not fit.
func (m Model) helpView(h int) string {
	var rows []string
	add := func(ks []helpKey) {
		for _, k := range ks {
			rows = append(rows, fmt.Sprintf("%-9s %s", k.keys, k.what))
		}
	}
	rows = append(rows, "Keys on "+tabNames[m.tab]+":")
	add(paneKeys(m.tab))
	rows = append(rows, "", "Everywhere:")
	add(commonKeys)
	if len(rows) <= h {
		return strings.Join(rows, "\n")
	}
	col := m.width / 2
	half := (len(rows) + 1) / 2
	var b strings.Builder
	for i := range half {
		l := fit(rows[i], col-1)
		if i+half < len(rows) {
			l = fmt.Sprintf("%-*s %s", col-1, l, fit(rows[i+half], m.width-col))
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// fitLines wraps each line of s longer than width (a result to read
// once must not run off the screen); shorter lines, a QR code's
// included, stay as they are.
func fitLines(s string, width int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if lipgloss.Width(l) <= width {
			out = append(out, l)
			continue
		}
		out = append(out, wrap(l, width)...)
	}
	return strings.Join(out, "\n")
}

// ---- pasted and typed input

// tooLong checks what was typed against each field's limit (the admin
// service's, the same as the command line's): a value over it is
// refused whole, never cut to fit and saved.
func (f *form) tooLong() bool {
	for i, fl := range f.fields {
		if n := len([]rune(fl.input.Value())); fl.limit > 0 && n > fl.limit {
			f.err = fmt.Sprintf("%s: %d characters is too long (at most %d); nothing was saved", fl.label, n, fl.limit)
			f.fields[f.focus].input.Blur()
			f.focus = i
			f.fields[i].input.Focus()
			return true
		}
	}
	return false
}

// pasted trims the newline a paste ends with (the text field would
// save it as a trailing space).
func pasted(msg tea.KeyMsg) tea.KeyMsg {
	if msg.Type == tea.KeyRunes {
		msg.Runes = []rune(strings.TrimRight(string(msg.Runes), "\r\n"))
	}
	return msg
}

// inputRoom is how much a field takes before it refuses more: well over
// its limit, so an over-long paste is seen and refused, not cut.
func inputRoom(limit int) int { return 2*limit + 64 }
