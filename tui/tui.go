// Package tui is the contractor's console: a terminal UI over the same
// admin operations the command line uses. It talks to the appliance only
// through the admin service, each pane through a small interface of its
// own (admin.go; tests drive a pane with a fake of just that), never to
// the store, and never to a door.
//
// This first slice is read-only: a live dashboard of decisions, the audit
// log with its verification and each decision's story, and the user list.
// Changing things (users, clients, policies), the SSH endpoint and the
// first-boot wizard come next.
package tui

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
)

// Options tune the console.
type Options struct {
	Version string
	// Refresh is how often new entries are fetched (default 500 ms, so a
	// decision shows within a second).
	Refresh time.Duration
	// Now is the clock (tests fix it).
	Now func() time.Time
	// Warning is shown on every screen until the console is restarted
	// (a broken config file, say).
	Warning string
}

type tab int

const (
	tabDashboard tab = iota
	tabAudit
	tabUsers
	tabClients
	tabUpstreams
	tabDevices
	tabLDAP
	tabWiFi
	tabCount
)

var tabNames = []string{"Dashboard", "Audit", "Users", "Clients", "Upstreams", "Devices", "LDAP", "Wi-Fi"}

// keyMap is every key the console answers, with its help text.
type keyMap struct {
	Next, Prev, Up, Down, Enter, Back, Filter, Verify, Help, Quit key.Binding
	Add, Password, Disable, Unlock, Enrol, Edit                   key.Binding
	Groups, ResetMFA, Device, Test                                key.Binding
	Login, Remove, CA                                             key.Binding
}

func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Next, k.Up, k.Down, k.Enter, k.Filter, k.Help, k.Quit}
}

func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Next, k.Prev, k.Up, k.Down}, {k.Enter, k.Back, k.Filter, k.Verify},
		{k.Add, k.Password, k.Disable, k.Groups}, {k.Unlock, k.Enrol, k.ResetMFA, k.Device}, {k.Edit, k.Test, k.Help, k.Quit}}
}

var keys = keyMap{
	Next:   key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
	Prev:   key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
	Up:     key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
	Down:   key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
	Enter:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "why?")),
	Back:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
	Filter: key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
	Verify: key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "verify audit")),
	Help:   key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
	Quit:   key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

	Add:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add (users, clients, …)")),
	Password: key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "reset password")),
	Disable:  key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "disable/enable")),
	Unlock:   key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "unlock")),
	Enrol:    key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "enrol TOTP")),
	Edit:     key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "edit (policy, LDAP)")),
	Groups:   key.NewBinding(key.WithKeys("g"), key.WithHelp("g", "groups, expiry, hours")),
	ResetMFA: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reset TOTP")),
	Device:   key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "bind a device")),
	Test:     key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "test an upstream")),
	Login:    key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "test login (clients)")),
	Remove:   key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "remove (devices, LDAP)")),
	CA:       key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "show the Wi-Fi CA")),
}

// Model is the console's root model.
type Model struct {
	p       Panes
	opts    Options
	tab     tab
	width   int
	height  int
	help    help.Model
	entries []admin.AuditRow // newest last, bounded
	lastSeq int64
	users   []admin.User
	cursor  int // index into the visible audit list, from the newest
	detail  *admin.AuditRow
	filter  string
	editing bool // typing a filter
	verify  string
	err     string
	note    string // the last action's result
	clients []admin.Client
	ups     []admin.Upstream
	devices []admin.Device
	mdms    []admin.MDMStatus // the Devices tab's MDM sources
	binds   []admin.BindAccount
	ldapSet map[string]string   // the ldap_ settings; nil: not read yet
	ldapErr string              // why they could not be read
	daemon  *admin.DaemonStatus // nil: never reported
	form    *form
	show    string // a result to read once (a secret, a QR code); any key closes
	confirm *confirmation
	wizard  int // the first-boot wizard's step; 0: not running
	// wizClient is the client added in the wizard ("" if none).
	wizClient string
	// wizUpstream is the upstream added in the wizard ("local" if none).
	wizUpstream string
	all         lists      // every pane's list as read (safety.go)
	audit       auditState // the last verification (safety.go)
	// Lists and times (lists.go, timefmt.go): the site's zone (nil: not
	// read yet), whether older audit entries than those loaded exist, a
	// page of them being read, and how many paging back has kept.
	zone   *time.Location
	older  bool
	paging bool
	paged  int
	// wiz records how each wizard step ended (wizard.go).
	wiz wizardLog
}

// confirmation is a yes/no question before a change.
type confirmation struct {
	question string
	do       tea.Cmd
	// word, when set, must be typed (and enter) to confirm: a removal
	// asks for the name of what goes (typed, in safety.go).
	word, typedText string
}

// maxEntries bounds what the console keeps in memory.
const maxEntries = 2000

// New builds the console over the admin service a.
func New(a Admin, o Options) Model { return NewPanes(AllPanes(a), o) }

// NewPanes builds the console with each pane acting through its own
// interface.
func NewPanes(p Panes, o Options) Model {
	if o.Refresh <= 0 {
		o.Refresh = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := help.New()
	return Model{p: p, opts: o, help: h, width: 80, height: 24}
}

// Messages carrying I/O results.
type (
	entriesMsg struct {
		rows   []admin.AuditRow
		err    error
		status *admin.DaemonStatus
		older  bool // entries before rows exist (the first, paged read)
	}
	usersMsg struct {
		users []admin.User
		err   error
	}
	verifyMsg struct {
		n        int64
		problems []string
		err      error
	}
	tickMsg struct{}
)

func (m Model) fetchEntries() tea.Cmd {
	after := m.lastSeq
	a := m.p.Audit
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var (
			rows  []admin.AuditRow
			older bool
			paged bool
			err   error
		)
		if after == 0 {
			// At start, the newest window of a long log (lists.go).
			rows, older, paged, err = firstEntries(ctx, a)
		}
		if !paged {
			rows, err = a.AuditAfter(ctx, after, 500)
		}
		msg := entriesMsg{rows: rows, err: err, older: older}
		if st, ok, serr := a.Status(ctx); serr == nil && ok {
			msg.status = &st
		}
		return msg
	}
}

func (m Model) fetchUsers() tea.Cmd {
	a := m.p.Users
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, err := a.Users(ctx)
		return usersMsg{u, err}
	}
}

func (m Model) verifyAudit() tea.Cmd {
	a := m.p.Audit
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		n, p, err := a.VerifyAudit(ctx)
		return verifyMsg{n, p, err}
	}
}

func (m Model) tick() tea.Cmd {
	return tea.Tick(m.opts.Refresh, func(time.Time) tea.Msg { return tickMsg{} })
}

// Init implements tea.Model.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.fetchEntries(), m.fetchUsers(), m.verifyAudit(), m.checkFresh(), m.fetchZone())
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if lm, cmd, ok := m.updateLists(msg); ok {
		return lm, cmd
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		return m, nil
	case entriesMsg:
		if msg.err != nil {
			// The store may be busy (another writer); say so and retry.
			m.err = "cannot read the audit log right now (" + oneLine(msg.err.Error()) + "); retrying"
			return m, m.tick()
		}
		m.err = ""
		if msg.status != nil {
			m.daemon = msg.status
		}
		m.older = m.older || msg.older
		m = m.addEntries(msg.rows)
		return m, m.tick()
	case usersMsg:
		if msg.err == nil {
			m.all.users = msg.users
			m = m.refilter()
		}
		return m.clampCursor(), nil
	case verifyMsg:
		return m.verified(msg), nil
	case tickMsg:
		if m.tab == tabUsers && m.form == nil {
			// A lockout or an expiry shows without leaving the pane.
			return m, tea.Batch(m.fetchEntries(), m.fetchUsers())
		}
		return m, m.fetchEntries()
	case clientsMsg:
		if msg.err == nil {
			m.all.clients = msg.clients
			m = m.refilter()
		}
		return m, nil
	case upstreamsMsg:
		if msg.err == nil {
			m.all.ups = msg.ups
			m = m.refilter()
		}
		return m.clampCursor(), nil
	case devicesMsg:
		if msg.err == nil {
			m.all.devices, m.mdms = msg.devices, msg.mdms
			m = m.refilter()
		}
		return m, nil
	case ldapMsg:
		m.ldapErr = ""
		if msg.err != nil {
			m.ldapErr = "cannot read the LDAP settings right now (" + explain(msg.err) + ")"
			return m, nil
		}
		m.all.binds, m.ldapSet = msg.binds, msg.settings
		return m.refilter(), nil
	case freshMsg:
		if msg.fresh && m.wizard == 0 {
			m.wizard, m.wizUpstream = wizTimeZone, "local"
			m.form = m.wizardForm(m.wizard)
		}
		return m, nil
	case doneMsg:
		if msg.err != nil {
			if m.form != nil {
				m.form.err = explain(msg.err)
				m.note = "" // "saving…" is over; the form says why
			} else {
				m.note = "! " + explain(msg.err)
			}
			return m, nil
		}
		m.form, m.note, m.show = msg.next, msg.text, msg.show
		if msg.upstream != "" {
			m.wizUpstream = msg.upstream
		}
		if msg.client != "" {
			m.wizClient = msg.client
		}
		if m.wizard > 0 {
			m = m.wizardStep(msg)
		}
		return m, tea.Batch(m.fetchUsers(), m.fetchClients(), m.fetchUpstreams(), m.fetchDevices(), m.fetchLDAP(), m.fetchZone())
	case tea.KeyMsg:
		return m.key(msg)
	case tea.MouseMsg:
		return m.mouse(msg)
	}
	if m.form != nil {
		var cmd tea.Cmd
		m.form.fields[m.form.focus].input, cmd = m.form.fields[m.form.focus].input.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type == tea.KeyCtrlC {
		if mm, cmd, done := m.ctrlC(); done {
			return mm, cmd
		}
	}
	if m.show != "" {
		// A secret or QR code is on screen: any key takes it away.
		m.show = ""
		if m.wiz.restored {
			// The daemon starts again on the restored store.
			return m, tea.Quit
		}
		if m.wizard >= wizDone {
			m = m.wizardClose(msg)
		}
		return m, nil
	}
	if mm, ok := m.wizardRestoreKey(msg); ok {
		return mm, nil
	}
	if m.form != nil {
		if msg.Type == tea.KeyCtrlC {
			msg = tea.KeyMsg{Type: tea.KeyEsc} // closes the form, as esc does
		}
		submitting := msg.Type == tea.KeyEnter && m.form.focus == len(m.form.fields)-1
		done, cmd := m.form.update(msg)
		if submitting && cmd != nil {
			// Until the answer comes: a busy database makes this wait (up
			// to its busy timeout), and the contractor should see why.
			m.note = "saving… (waiting for the database if another change is being written)"
		}
		if done {
			formErr := m.form.err
			m.form = nil
			if m.wizard > 0 {
				// esc skips a wizard step (wizard.go records why).
				m = m.wizardSkip(formErr)
			}
		}
		return m, cmd
	}
	if m.confirm != nil {
		return m.confirmKey(msg)
	}
	if m.editing {
		switch msg.Type {
		case tea.KeyEnter, tea.KeyEsc:
			m.editing = false
			if msg.Type == tea.KeyEsc {
				m.filter = ""
			}
		case tea.KeyBackspace:
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		case tea.KeyRunes, tea.KeySpace:
			if len(m.filter) < 64 {
				m.filter += sanitize(string(msg.Runes))
			}
		}
		m.cursor = 0
		return m.refilter(), nil
	}
	if mm, ok := m.typedFilter(msg); ok {
		return mm, nil
	}
	if !m.p.available(m.tab) && !key.Matches(msg, keys.Quit, keys.Help, keys.Next, keys.Prev) {
		return m, nil // a pane with nothing to act through answers no keys
	}
	if m.tab == tabDevices {
		switch msg.String() {
		case "h":
			return m, m.postureEventsCmd()
		case "m":
			m.form = m.mdmForm()
			return m, nil
		case "s":
			return m, m.syncMDMCmd()
		case "n":
			m.form = m.scepChallengeForm()
			return m, nil
		case "c":
			return m, m.deviceJobsCmd()
		}
		if dm, ok := m.deviceKey(msg); ok {
			return dm, nil
		}
	}
	switch {
	case key.Matches(msg, keys.Quit):
		return m.back(true), nil
	case key.Matches(msg, keys.Help):
		m.help.ShowAll = !m.help.ShowAll
	case key.Matches(msg, keys.Next):
		m.tab, m.detail, m.cursor = (m.tab+1)%tabCount, nil, 0
		m.filter = ""
		return m.refilter(), m.fetchPanes()
	case key.Matches(msg, keys.Prev):
		m.tab, m.detail, m.cursor = (m.tab+tabCount-1)%tabCount, nil, 0
		m.filter = ""
		return m.refilter(), m.fetchPanes()
	case key.Matches(msg, keys.Add) && m.tab == tabUsers:
		m.form = m.addUserForm()
	case key.Matches(msg, keys.Add) && m.tab == tabClients:
		m.form = m.addClientForm()
	case key.Matches(msg, keys.Add) && m.tab == tabUpstreams:
		m.form = m.addUpstreamForm()
	case key.Matches(msg, keys.Add) && m.tab == tabLDAP:
		m.form = m.addBindAccountForm()
	case key.Matches(msg, keys.Edit) && m.tab == tabDashboard && m.p.Wizard != nil:
		return m, m.siteSettingsCmd()
	case msg.String() == "n" && m.tab == tabDashboard && m.p.Wizard != nil:
		return m, m.networkCmd()
	case msg.String() == "p" && m.tab == tabDashboard && m.p.Wizard != nil:
		m.form = m.powerForm()
	case msg.String() == "u" && m.tab == tabDashboard && m.p.Wizard != nil:
		m.form = m.updateForm()
	case msg.String() == "k" && m.tab == tabDashboard && m.p.Wizard != nil:
		return m, m.adminKeysCmd()
	case msg.String() == "l" && m.tab == tabDashboard:
		return m, m.daemonLogCmd()
	case msg.String() == "s" && m.tab == tabDashboard && m.p.Backup != nil:
		return m, m.backupsCmd()
	case msg.String() == "b" && m.tab == tabDashboard:
		var ts []appliance.Throttled
		if m.daemon != nil {
			ts = m.daemon.Throttled
		}
		m.show = throttleText(ts, m.clock(), m.opts.Now())
	case msg.String() == "o" && m.tab == tabDashboard && m.p.Wizard != nil:
		return m, m.onlineCmd()
	case key.Matches(msg, keys.Edit) && m.tab == tabLDAP:
		if m.ldapSet == nil {
			m.note = "the LDAP settings have not been read yet; try again in a moment"
			return m, m.fetchLDAP()
		}
		m.form = m.ldapSettingsForm()
	case key.Matches(msg, keys.Remove) && m.tab == tabLDAP && len(m.binds) > 0:
		m.confirm = m.removeBindAccount(m.binds[min(m.cursor, len(m.binds)-1)].Name)
	case key.Matches(msg, keys.CA) && m.tab == tabWiFi:
		m.show = wifiCA(m.daemon)
	case msg.String() == "p" && m.tab == tabWiFi:
		if j, ok := m.wifiJobs(); ok {
			m.form = m.wifiProfileForm(j)
		}
	case msg.String() == "d" && m.tab == tabWiFi:
		if j, ok := m.wifiJobs(); ok {
			return m, m.deviceCACmd(j)
		}
	case key.Matches(msg, keys.CA) && m.tab == tabLDAP:
		m.show = ldapCertText(m.daemon, m.clock().day)
	case key.Matches(msg, keys.Login) && m.tab == tabClients && len(m.clients) > 0:
		m.form = m.testLoginForm(m.clients[min(m.cursor, len(m.clients)-1)])
	case msg.String() == "s" && m.tab == tabClients && len(m.clients) > 0:
		m.form = m.clientSettingsForm(m.clients[min(m.cursor, len(m.clients)-1)])
	case msg.String() == "p" && m.tab == tabClients && len(m.clients) > 0:
		m.form = m.pushForm(m.clients[min(m.cursor, len(m.clients)-1)])
	case key.Matches(msg, keys.Edit) && m.tab == tabClients && len(m.clients) > 0:
		m.form = m.policyForm(m.clients[min(m.cursor, len(m.clients)-1)])
	case key.Matches(msg, keys.Edit) && m.tab == tabUpstreams && len(m.ups) > 0:
		m.form = m.editUpstreamForm(m.ups[min(m.cursor, len(m.ups)-1)])
	case key.Matches(msg, keys.Remove) && m.tab == tabUpstreams && len(m.ups) > 0:
		name := m.ups[min(m.cursor, len(m.ups)-1)].Name
		m.confirm = (&confirmation{question: "Remove upstream " + name + "? (refused while a client uses it)", do: m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Upstreams.RemoveUpstream(ctx, name); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "upstream " + name + " removed"}
		})}).typed(name)
	case key.Matches(msg, keys.Remove) && m.tab == tabUsers && len(m.users) > 0:
		m.confirm = m.removeUser(m.users[min(m.cursor, len(m.users)-1)].Name)
	case key.Matches(msg, keys.Remove) && m.tab == tabClients && len(m.clients) > 0:
		m.confirm = m.removeClient(m.clients[min(m.cursor, len(m.clients)-1)].Name)
	case msg.String() == "x" && m.tab == tabAudit:
		if j, ok := m.auditJobs(); ok {
			m.form = m.hipaaForm(j)
		}
	case msg.String() == "c" && m.tab == tabAudit:
		if j, ok := m.p.Audit.(AuditCopier); ok {
			m.form = m.auditCopyForm(j)
		}
	case msg.String() == "y" && m.tab == tabUpstreams && len(m.ups) > 0:
		return m, m.syncUpstreamCmd(m.ups[min(m.cursor, len(m.ups)-1)].Name)
	case msg.String() == "f" && m.tab == tabAudit:
		if j, ok := m.auditJobs(); ok {
			m.form = m.forwardForm(j)
		}
	case msg.String() == "m" && m.tab == tabUpstreams:
		return m, m.mfaProvidersCmd()
	case key.Matches(msg, keys.Test) && m.tab == tabUpstreams && len(m.ups) > 0:
		m.form = m.testUpstreamForm(m.ups[min(m.cursor, len(m.ups)-1)].Name)
	case m.tab == tabUsers && len(m.users) > 0 && (key.Matches(msg, keys.Password) || key.Matches(msg, keys.Disable) || key.Matches(msg, keys.Unlock) ||
		key.Matches(msg, keys.Enrol) || key.Matches(msg, keys.Groups) || key.Matches(msg, keys.ResetMFA) || key.Matches(msg, keys.Device) || msg.String() == "t"):
		return m.userAction(msg, m.users[min(m.cursor, len(m.users)-1)])
	case key.Matches(msg, keys.Back):
		return m.back(false), nil
	case key.Matches(msg, keys.Up):
		if m.cursor > 0 {
			m.cursor--
		}
	case key.Matches(msg, keys.Down):
		return m.down()
	case key.Matches(msg, keys.Filter):
		if filterable(m.tab) {
			m.editing, m.filter, m.cursor = true, "", 0
			return m.refilter(), nil
		}
	case key.Matches(msg, keys.Verify):
		cmd := m.verifyAudit()
		if cmd == nil {
			return m, nil // no audit log in this console
		}
		m.verify, m.note, m.audit.asked = "audit: verifying…", "", true
		return m, cmd
	case key.Matches(msg, keys.Enter):
		if m.tab == tabDashboard || m.tab == tabAudit {
			if rows := m.visible(m.tab == tabDashboard); m.cursor < len(rows) {
				r := rows[m.cursor]
				m.detail = &r
			}
		}
	}
	return m, nil
}

// visible returns the entries to list, newest first, filtered.
func (m Model) visible(decisionsOnly bool) []admin.AuditRow {
	var out []admin.AuditRow
	f := strings.ToLower(m.filter)
	for i := len(m.entries) - 1; i >= 0; i-- {
		r := m.entries[i]
		if decisionsOnly && r.Kind != "decision" {
			continue
		}
		// The filter matches user, client, outcome, reason, door and time
		// ("08:1" finds 08:10-08:19, "2026-11-30" a day).
		if f != "" && !strings.Contains(strings.ToLower(r.User+" "+r.Client+" "+r.Outcome+" "+r.Reason+" "+r.Door+" "+m.clock().full(r.At)), f) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// sanitize keeps control characters (escape sequences from a user name,
// say) off the terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// ---- view

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	activeTab   = lipgloss.NewStyle().Bold(true).Underline(true)
	dimStyle    = lipgloss.NewStyle().Faint(true)
	acceptStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	rejectStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	warnStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	cursorStyle = lipgloss.NewStyle().Reverse(true)
)

// View implements tea.Model.
func (m Model) View() string {
	if m.width < 40 || m.height < 10 {
		return "clinicgate\nwindow too small:\nneed 40×10 or more\n(q, then y: quit)"
	}
	var b strings.Builder
	bar, _ := m.tabBar()
	b.WriteString(bar + "\n")
	status := m.auditStatus()
	if m.note != "" {
		status = m.note
	}
	if m.err != "" {
		status = m.err
	}
	b.WriteString(dimStyle.Render(fit(status, m.width)) + "\n")
	bodyHeight := m.height - 4 // title, status, blank, help
	if m.opts.Warning != "" {
		b.WriteString(rejectStyle.Render(fit(m.opts.Warning, m.width)) + "\n")
		bodyHeight--
	}
	if m.audit.alarm != "" {
		// The alarm stays on every pane until a verification passes.
		b.WriteString(m.banner() + "\n")
		bodyHeight--
	}
	if l := m.clockBanner(); l != "" {
		// So does a clock that makes every TOTP code fail.
		b.WriteString(l + "\n")
		bodyHeight--
	}
	if m.show != "" {
		if s := fitLines(m.show, m.width); strings.Count(s, "\n")+3 > bodyHeight {
			// Too tall under the tab bar (a QR code at 24 lines): the
			// whole screen is its own, so nothing of it is cut.
			return fullScreen(s, m.height)
		}
	}
	var body string
	switch {
	case m.show != "":
		body = fitLines(m.show, m.width) + "\n\n(any key: close)"
	case m.form != nil:
		body = m.form.view(m.width)
	case m.confirm != nil:
		body = m.confirm.view(m.width)
	case m.help.ShowAll:
		body = m.helpView(bodyHeight)
	case m.detail != nil:
		body = m.viewDetail(*m.detail)
	case !m.p.available(m.tab):
		body = "(this pane is not available in this console)"
	case m.tab == tabDashboard:
		body = m.viewDashboard(bodyHeight)
	case m.tab == tabAudit:
		body = m.viewAudit(bodyHeight)
	case m.tab == tabUsers:
		body = m.viewUsers(bodyHeight)
	case m.tab == tabClients:
		body = m.viewClients(bodyHeight)
	case m.tab == tabUpstreams:
		body = m.viewUpstreams(bodyHeight)
	case m.tab == tabLDAP:
		body = m.viewLDAP(bodyHeight)
	case m.tab == tabWiFi:
		body = m.viewWiFi(bodyHeight)
	default:
		body = m.viewDevices(bodyHeight)
	}
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	for len(lines) < bodyHeight {
		lines = append(lines, "")
	}
	b.WriteString(strings.Join(lines[:bodyHeight], "\n") + "\n\n")
	b.WriteString(m.bottomBar())
	return b.String()
}

// tabBar lays out the title line: the title, then every pane's name, and
// where each name starts (for mouse clicks). When it would not fit, the
// version gives way first, then the title, so at 80 columns every pane's
// name stays whole.
func (m Model) tabBar() (string, []int) {
	bar, starts, w := m.tabBarWith(strings.TrimSpace("clinicgate " + m.opts.Version))
	if w > m.width {
		bar, starts, w = m.tabBarWith("clinicgate")
	}
	if w > m.width {
		bar, starts, _ = m.tabBarWith("")
	}
	return bar, starts
}

// tabBarWith lays out the title line after title, and its width.
func (m Model) tabBarWith(title string) (string, []int, int) {
	var b strings.Builder
	x := 0
	if title != "" {
		b.WriteString(titleStyle.Render(title) + "  ")
		x = len([]rune(title)) + 2
	}
	starts := make([]int, len(tabNames))
	for i, n := range tabNames {
		if i > 0 {
			b.WriteString(" │ ")
			x += 3
		}
		starts[i] = x
		if tab(i) == m.tab {
			b.WriteString(activeTab.Render(n))
		} else {
			b.WriteString(n)
		}
		x += len([]rune(n))
	}
	return b.String(), starts, x
}

// fetchPanes refreshes what the panes list, when one is opened.
func (m Model) fetchPanes() tea.Cmd {
	return tea.Batch(m.fetchUsers(), m.fetchClients(), m.fetchUpstreams(), m.fetchDevices(), m.fetchLDAP(), m.fetchZone())
}

func fit(s string, w int) string {
	s = sanitize(s)
	if r := []rune(s); len(r) > w {
		return string(r[:w-1]) + "…"
	}
	return s
}

func (m Model) counts() (acc, rej, chal int) {
	for _, r := range m.entries {
		if r.Kind != "decision" {
			continue
		}
		switch r.Outcome {
		case "accept":
			acc++
		case "reject":
			rej++
		case "challenge":
			chal++
		}
	}
	return
}

func (m Model) viewDashboard(h int) string {
	var b strings.Builder
	acc, rej, chal := m.counts()
	dl := m.daemonLine()
	b.WriteString(dl + "\n")
	h -= strings.Count(dl, "\n") + 1
	if a := m.fraudAlert(); a != "" {
		b.WriteString(rejectStyle.Render(fit(a, m.width)) + "\n")
		h--
	}
	recent := 0
	for _, r := range m.entries {
		if r.Kind == "decision" && m.opts.Now().Sub(r.At) <= 5*time.Minute {
			recent++
		}
	}
	fmt.Fprintf(&b, "Logins in view: %s accepted, %s rejected, %d %s · last 5 min: %.1f/min\n",
		acceptStyle.Render(fmt.Sprint(acc)), rejectStyle.Render(fmt.Sprint(rej)), chal, plural(chal, "code prompt", "code prompts"), float64(recent)/5)
	if l, ok := m.filterLine(); ok {
		b.WriteString(l + "\n")
	} else {
		b.WriteString(dimStyle.Render(fit(m.clock().header(m.opts.Now()), m.width)) + "\n")
	}
	b.WriteString(m.table(m.visible(true), h-2))
	return b.String()
}

func (m Model) viewAudit(h int) string {
	var b strings.Builder
	if l, ok := m.filterLine(); ok {
		b.WriteString(l + "\n")
	} else {
		b.WriteString(fit("All entries, newest first · enter: details · v: verify · "+m.clock().header(m.opts.Now()), m.width) + "\n")
	}
	b.WriteString(m.table(m.visible(false), h-1))
	return b.String()
}

// table lists rows newest first with the cursor row highlighted.
func (m Model) table(rows []admin.AuditRow, h int) string {
	var b strings.Builder
	header := fmt.Sprintf(auditRow, "TIME", "OUTCOME", "CLIENT", "USER", "DOOR", "REASON")
	b.WriteString(dimStyle.Render(fit(header, m.width)) + "\n")
	if len(rows) == 0 {
		b.WriteString("(nothing yet: decisions appear here as they are made)\n")
		return b.String()
	}
	cursor := min(m.cursor, len(rows)-1)
	start := 0
	if cursor >= h-1 {
		start = cursor - (h - 2)
	}
	for i := start; i < len(rows) && i-start < h-1; i++ {
		r := rows[i]
		outcome := r.Outcome
		if r.Kind != "decision" {
			outcome = r.Kind
		}
		reason := r.Reason
		line := fmt.Sprintf(auditRow, m.clock().stamp(r.At), outcome,
			clip(r.Client, 13), clip(r.User, 14), clip(r.Door, 7), reason)
		line = fit(line, m.width)
		switch {
		case i == cursor:
			line = m.selected(line)
		case r.Outcome == "accept":
			line = acceptStyle.Render(line)
		case r.Outcome == "reject" || r.Outcome == "alert":
			line = rejectStyle.Render(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// auditRow lays out the dashboard's and the audit pane's lists: the time
// with its date (the zone is in the pane's header).
const auditRow = "%-15s %-9s %-13s %-14s %-7s %s"

func clip(s string, n int) string {
	s = sanitize(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (m Model) viewDetail(r admin.AuditRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Entry %d  %s  (esc: back)\n", r.Seq, m.clock().full(r.At))
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "  %-8s %s\n", k, fit(v, m.width-11))
		}
	}
	field("kind", r.Kind)
	field("outcome", r.Outcome)
	field("reason", r.Reason)
	field("door", r.Door)
	field("client", r.Client)
	field("user", r.User)
	field("device", r.Device)
	field("from", r.Source)
	field("by", r.Actor)
	steps, notes := decisionStory(r.Detail)
	if r.Kind == "decision" {
		if len(notes) > 0 {
			field("notes", strings.Join(notes, ", "))
		}
		b.WriteString("  what happened:\n")
		for i, s := range steps {
			fmt.Fprintf(&b, "   %d. %s\n", i+1, fit(s, m.width-7))
		}
	} else {
		field("detail", r.Detail)
	}
	return b.String()
}

func (m Model) viewUsers(h int) string {
	var b strings.Builder
	hint := fit("a:add p:password d:disable g:groups/expiry u:unlock m/r:TOTP b:device x:remove", m.width)
	if l, ok := m.filterLine(); ok {
		hint = l
	}
	b.WriteString(hint + "\n")
	b.WriteString(fit(fmt.Sprintf("%d %s · ", len(m.users), plural(len(m.users), "user", "users"))+m.clock().header(m.opts.Now()), m.width) + "\n")
	h -= 2
	b.WriteString(dimStyle.Render(fit(fmt.Sprintf(userRow, "NAME", "GROUPS", "STATE", "EXPIRES", "SOURCE"), m.width)) + "\n")
	if len(m.users) == 0 {
		b.WriteString(m.empty("(no users yet: add one with a, or clinicgate user add NAME)") + "\n")
	}
	now := m.opts.Now()
	for i, u := range m.users {
		if i >= h-1 {
			break
		}
		state := "active"
		switch {
		case u.Disabled:
			state = "disabled"
		case u.LockedUntil.After(now):
			state = "locked until " + m.clock().minute(u.LockedUntil)
		case !u.ExpiresAt.IsZero() && !now.Before(u.ExpiresAt):
			state = "expired"
		}
		line := fit(fmt.Sprintf(userRow, clip(u.Name, 16), clip(strings.Join(u.Groups, ","), 14), state, m.clock().expiryDay(u.ExpiresAt), u.Source), m.width)
		if i == min(m.cursor, len(m.users)-1) {
			line = m.selected(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// userRow lays out the Users pane: at 80 columns a lockout's end
// ("locked until Dec 04 15:04") and the last day of an expiry fit.
const userRow = "%-16s %-14s %-25s %-10s %s"

func (m Model) viewClients(h int) string {
	var b strings.Builder
	hint := "a: add · e: policy · s: address, secret, session · l: test login · x: remove"
	if l, ok := m.filterLine(); ok {
		hint = l
	}
	b.WriteString(fit(hint, m.width) + "\n")
	b.WriteString(dimStyle.Render(fit(fmt.Sprintf(clientRow, "NAME", "DOOR", "ADDRESS", "UPSTREAM", "MFA", "MSG-AUTH/TLS"), m.width)) + "\n")
	if len(m.clients) == 0 {
		b.WriteString(m.empty("(no clients yet: press a to add your Wi-Fi controller, VPN gateway or EHR)") + "\n")
	}
	for i, c := range m.clients {
		if i >= h-2 {
			break
		}
		// RADIUS: is Message-Authenticator required (BlastRADIUS)?
		// LDAP: may a password cross the network in clear?
		door, sec := "radius", "required"
		switch {
		case isLDAP(c) && c.Policy.AllowPlainLDAP:
			door, sec = "ldap", "plain allowed (!)"
		case isLDAP(c):
			door, sec = "ldap", "TLS required"
		case !c.Policy.RequireMessageAuthenticator:
			sec = "optional (!)"
		}
		line := fit(fmt.Sprintf(clientRow, clip(c.Name, 16), door, clip(c.Prefix.String(), 18), clip(c.Policy.Upstream, 10), c.Policy.MFA, sec), m.width)
		if i == min(m.cursor, len(m.clients)-1) {
			line = m.selected(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// clientRow lays out the Clients pane: at 80 columns the longest last
// column ("plain allowed (!)") still fits.
const clientRow = "%-16s %-6s %-18s %-10s %-8s %s"

// isLDAP reports a client of the LDAP door (RADIUS is the default).
func isLDAP(c admin.Client) bool { return c.Door == string(appliance.DoorLDAP) }

// userAction starts a change to the selected user.
func (m Model) userAction(msg tea.KeyMsg, u admin.User) (tea.Model, tea.Cmd) {
	name, version := u.Name, u.Version
	switch {
	case key.Matches(msg, keys.Password):
		m.form = m.passwordForm(name)
	case key.Matches(msg, keys.Disable):
		dis := !u.Disabled
		verb := map[bool]string{true: "Disable", false: "Enable"}[dis]
		m.confirm = &confirmation{question: verb + " " + name + "?", do: m.act(func(ctx context.Context) doneMsg {
			// The version makes a concurrent change by another admin an
			// error instead of a silent overwrite.
			if err := m.p.Users.EditUser(ctx, name, admin.UserEdit{Disabled: &dis, Version: version}); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: fmt.Sprintf("%s %sd", name, strings.ToLower(verb))}
		})}
	case key.Matches(msg, keys.Groups):
		m.form = m.groupsForm(u)
	case key.Matches(msg, keys.Device):
		m.form = m.deviceForm(name)
	case key.Matches(msg, keys.ResetMFA):
		m.confirm = (&confirmation{question: "Remove " + name + "'s TOTP factor? Until a new one is enrolled, clients that require MFA refuse them.", do: m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Users.ResetMFA(ctx, name); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "TOTP of " + name + " removed"}
		})}).typed(name)
	case key.Matches(msg, keys.Unlock):
		return m, m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Users.EditUser(ctx, name, admin.UserEdit{Unlock: true}); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: name + " unlocked"}
		})
	case key.Matches(msg, keys.Enrol):
		m.confirm = &confirmation{question: "Enrol a new TOTP factor for " + name + "? An old one stops working.", do: m.act(func(ctx context.Context) doneMsg {
			e, err := m.p.Users.EnrollTOTP(ctx, name)
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "TOTP enrolled for " + name, show: enrolText(e)}
		})}
	case msg.String() == "t":
		return m, m.act(func(ctx context.Context) doneMsg {
			e, err := m.p.Users.ShowTOTP(ctx, name)
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "TOTP of " + name + " shown again (audited)", show: enrolText(e)}
		})
	}
	return m, nil
}

func joinShown(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n\n" + b
}

func (m Model) viewUpstreams(h int) string {
	var b strings.Builder
	hint := "a: add · e: edit settings, secret, sync · t: test with a real login · x: remove"
	if l, ok := m.filterLine(); ok {
		hint = l
	}
	b.WriteString(fit(hint, m.width) + "\n")
	b.WriteString(dimStyle.Render(fit(fmt.Sprintf("%-16s %-7s %-7s %s", "NAME", "KIND", "STATE", "WHERE"), m.width)) + "\n")
	if len(m.ups) == 0 {
		b.WriteString(m.empty("(none: every client checks passwords against the appliance's own users)") + "\n")
	}
	for i, u := range m.ups {
		if i >= h-2 {
			break
		}
		state, down := m.upstreamState(u.Name)
		line := fit(fmt.Sprintf("%-16s %-7s %-7s %s", clip(u.Name, 16), u.Kind, state, upstreamWhere(u.Config)), m.width)
		switch {
		case i == min(m.cursor, len(m.ups)-1):
			line = m.selected(line)
		case down:
			line = rejectStyle.Render(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// daemonLine says whether the daemon answers, since when, and how its
// upstreams are: the first thing a contractor needs to know.
func (m Model) daemonLine() string {
	d := m.daemon
	now := m.opts.Now()
	if d == nil {
		return rejectStyle.Render(fit("daemon: has not run yet — start it (systemctl start clinicgate)", m.width))
	}
	if age := now.Sub(d.UpdatedAt); age > 20*time.Second {
		return rejectStyle.Render(fit(fmt.Sprintf("DAEMON NOT ANSWERING since %s — logins are not being decided", m.clock().since(d.UpdatedAt)), m.width))
	}
	parts := []string{fmt.Sprintf("daemon %s up %s", d.Version, roundDuration(now.Sub(d.StartedAt)))}
	if l, ok := d.Listener(admin.ListenSSH); ok {
		// The host key's fingerprint, so an admin can compare it with
		// what ssh shows.
		parts = append(parts, "ssh "+l.Address+" key "+l.HostKey)
	}
	var ups []string
	down := false
	for _, u := range d.Upstreams {
		st := u.State
		if u.State != "up" && u.State != "unknown" {
			down = true
			st = strings.ToUpper(u.State) + " since " + m.clock().minute(u.Since)
		}
		ups = append(ups, u.Name+" "+st)
	}
	line := fit(strings.Join(parts, " · "), m.width)
	if len(ups) > 0 {
		l := fit("upstreams: "+strings.Join(ups, ", "), m.width)
		if down {
			l = rejectStyle.Render(l) // an upstream that is DOWN refuses logins
		}
		line += "\n" + l
	}
	if l := m.dropLine(now); l != "" {
		line += "\n" + l
	}
	if l := m.clockLine(); l != "" {
		line += "\n" + l
	}
	if l := m.throttleLine(now); l != "" {
		line += "\n" + l
	}
	if l := m.certLine(now); l != "" {
		line += "\n" + l
	}
	return line
}

// setupDrops are the drops that mean a NAS is set up wrong, in the words
// a contractor acts on.
var setupDrops = map[string]string{
	"unknown_client":                "unknown NAS",
	"message_authenticator":         "wrong secret",
	"bad_authenticator":             "wrong acct secret",
	"message_authenticator_missing": "no Message-Authenticator",
}

// dropLine is a red line on the dashboard while RADIUS requests are being
// dropped for a set-up mistake (the last ten minutes): they get no answer,
// so no decision shows them.
func (m Model) dropLine(now time.Time) string {
	if m.daemon == nil {
		return ""
	}
	var parts []string
	for _, d := range m.daemon.Drops {
		what, ok := setupDrops[d.Cause]
		if !ok || now.Sub(d.Last) > 10*time.Minute {
			continue
		}
		from := d.From
		if ap, err := netip.ParseAddrPort(from); err == nil {
			from = ap.Addr().String() // the NAS, not its socket
		}
		p := fmt.Sprintf("%d %s %s", d.Count, what, from)
		if d.Client != "" {
			p += " (" + d.Client + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return rejectStyle.Render(fit("RADIUS drops: "+strings.Join(parts, " · "), m.width))
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 24*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// mouse: the wheel moves the selection, a click on a pane's name opens it,
// a click on a row selects it.
func (m Model) mouse(msg tea.MouseMsg) (tea.Model, tea.Cmd) {
	if m.form != nil || m.show != "" || m.confirm != nil {
		return m, nil
	}
	switch msg.Button {
	case tea.MouseButtonWheelUp:
		if m.cursor > 0 {
			m.cursor--
		}
	case tea.MouseButtonWheelDown:
		return m.down()
	case tea.MouseButtonLeft:
		if msg.Action != tea.MouseActionRelease {
			return m, nil
		}
		if msg.Y == 0 {
			// The title line: find the pane name under the pointer.
			_, starts := m.tabBar()
			for i, x := range starts {
				if msg.X >= x && msg.X < x+len([]rune(tabNames[i])) {
					m.tab, m.detail, m.cursor = tab(i), nil, 0
					m.filter, m.editing = "", false
					return m.refilter(), m.fetchPanes()
				}
			}
			return m, nil
		}
		// Rows start under the title, status, pane header and column
		// header lines (on the LDAP pane, also under its settings).
		first := m.firstRow()
		if row := msg.Y - first; row >= 0 && m.detail == nil {
			m.cursor = row
			m = m.clampCursor() // a click under the last row selects it
		}
	}
	return m, nil
}
