package tui

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// These tests drive the model directly (no program, no timers), so what
// is on screen after each key is known exactly; the teatest ones below
// them go through the real program.

// console is an 80×24 console over f with every list already read.
func console(f *fakeAdmin) Model {
	m := NewPanes(f.panes(), Options{Version: "test", Refresh: time.Hour, Now: func() time.Time { return t0.Add(time.Hour) }})
	ups, _ := fakeUpstreams{f}.Upstreams(nil)
	return feed(m, tea.WindowSizeMsg{Width: 80, Height: 24},
		entriesMsg{rows: f.rows, status: f.status},
		usersMsg{users: f.users}, clientsMsg{clients: f.clients}, upstreamsMsg{ups: ups},
		devicesMsg{devices: f.devices}, ldapMsg{binds: f.binds, settings: f.settings})
}

// feed gives the model each message (a string: each of its runes as a
// key press) and drops the commands it returns.
func feed(m Model, msgs ...any) Model {
	for _, msg := range msgs {
		var next tea.Model
		switch k := msg.(type) {
		case string:
			for _, r := range k {
				next, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				m = next.(Model)
			}
			continue
		case tea.KeyType:
			next, _ = m.Update(tea.KeyMsg{Type: k})
		default:
			next, _ = m.Update(k)
		}
		m = next.(Model)
	}
	return m
}

// keyCmd presses one key and returns the command it started.
func keyCmd(m Model, k tea.KeyMsg) (Model, tea.Cmd) {
	next, cmd := m.Update(k)
	return next.(Model), cmd
}

func quits(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

// fits fails when a screen is larger than the terminal.
func fits(t *testing.T, what, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) > h {
		t.Errorf("%s: %d lines on a %d-line terminal:\n%s", what, len(lines), h, screen)
	}
	for _, l := range lines {
		if lipgloss.Width(l) > w {
			t.Errorf("%s: a line of %d columns on a %d-column terminal: %q", what, lipgloss.Width(l), w, l)
		}
	}
}

func toTab(m Model, t tab) Model {
	for m.tab != t {
		m = feed(m, tea.KeyTab)
	}
	return m
}

func TestAuditAlarmStaysUntilVerificationPasses(t *testing.T) {
	f := sample()
	m := console(f)
	m = feed(m, verifyMsg{n: 4, problems: []string{"entry 3 was altered after it was written", "entry 4 does not follow entry 3"}})
	for _, tb := range []tab{tabDashboard, tabAudit, tabUsers, tabClients, tabUpstreams, tabDevices, tabLDAP, tabWiFi} {
		v := toTab(m, tb).View()
		if !strings.Contains(v, "AUDIT BROKEN: entry 3 was altered after it was written (and 1 more problem)") {
			t.Errorf("%s: no audit alarm:\n%s", tabNames[tb], v)
		}
		fits(t, tabNames[tb], v, 80, 24)
	}
	// Another action's message does not replace it, nor does a form, nor
	// a verification that could not run.
	m = toTab(m, tabUsers)
	m = feed(m, doneMsg{text: "dr.lee unlocked"})
	if v := m.View(); !strings.Contains(v, "dr.lee unlocked") || !strings.Contains(v, "AUDIT BROKEN") {
		t.Fatalf("after an action:\n%s", v)
	}
	m = feed(m, "a")
	if v := m.View(); !strings.Contains(v, "Add a user") || !strings.Contains(v, "AUDIT BROKEN") {
		t.Fatalf("with a form open:\n%s", v)
	}
	m = feed(m, tea.KeyEsc, verifyMsg{err: errBusy})
	if v := m.View(); !strings.Contains(v, "AUDIT BROKEN") {
		t.Fatalf("a verification that could not run cleared the alarm:\n%s", v)
	}
	// v verifies again and says what it found; a pass clears the alarm.
	m, cmd := keyCmd(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("v")})
	if cmd == nil || !strings.Contains(m.View(), "audit: verifying") {
		t.Fatalf("v did not verify:\n%s", m.View())
	}
	m = feed(m, verifyMsg{n: 4})
	if v := m.View(); !strings.Contains(v, "Audit chain verified: 4 entries checked, no problems") {
		t.Fatalf("v shows no result:\n%s", v)
	}
	m = feed(m, " ")
	if v := m.View(); strings.Contains(v, "AUDIT BROKEN") || !strings.Contains(v, "audit: 4 entries, chain unbroken") {
		t.Fatalf("a passing verification left the alarm:\n%s", v)
	}
}

var errBusy = admin.ErrBusy

func TestVerifyShowsEveryProblem(t *testing.T) {
	m := console(sample())
	m, _ = keyCmd(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("v")})
	m = feed(m, verifyMsg{n: 1, problems: []string{"entry 1 was altered"}})
	v := m.View()
	for _, want := range []string{"AUDIT BROKEN: 1 entry checked, 1 problem:", "- entry 1 was altered"} {
		if !strings.Contains(v, want) {
			t.Errorf("lacks %q:\n%s", want, v)
		}
	}
	fits(t, "the report", v, 80, 24)
}

// TestEntryCountDoesNotGoStale: the count is of the log as it is now,
// and says when entries came after the last verification.
func TestEntryCountDoesNotGoStale(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "audit: 4 entries, chain unbroken")
	f.add(sampleLogin("nurse.kim"))
	f.add(sampleLogin("nurse.ray"))
	waitFor(t, tm, "audit: 6 entries, chain unbroken through entry 4 (v: verify again)")
	tm.Type("v")
	waitFor(t, tm, "Audit chain verified: 6 entries checked, no problems")
	tm.Type(" ")
	waitFor(t, tm, "TIME            OUTCOME")
	if out := screen(t, tm); !strings.Contains(out, "audit: 6 entries, chain unbroken\n") {
		t.Fatalf("after v:\n%s", out)
	}
}

func sampleLogin(user string) admin.AuditRow {
	return admin.AuditRow{At: t0.Add(4 * time.Minute), Kind: "decision", Door: "radius", Client: "office-vpn", User: user, Outcome: "accept", Reason: "ok"}
}

func TestOneEntryIsNotEntries(t *testing.T) {
	f := &fakeAdmin{}
	f.add(sampleLogin("dr.lee"))
	m := feed(console(f), verifyMsg{n: 1})
	if v := m.View(); !strings.Contains(v, "audit: 1 entry, chain unbroken") {
		t.Fatalf("got\n%s", v)
	}
	if v := console(sample()).View(); !strings.Contains(v, "1 code prompt ·") {
		t.Fatalf("got\n%s", v)
	}
	f.devices = []admin.Device{{ID: 1, Source: admin.SourceManual, MAC: "aa:bb:cc:dd:ee:ff", UserName: "dr.lee", CreatedAt: t0}}
	if v := toTab(console(f), tabDevices).View(); !strings.Contains(v, "1 device: 0 noncompliant") {
		t.Fatalf("got\n%s", v)
	}
}

// TestTypingAFilterRunsNoCommand: on the Users pane, /dyer once disabled
// a user (d, then y) and asked to remove a TOTP factor (r).
func TestTypingAFilterRunsNoCommand(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "vendor-it")
	tm.Type("/dyer")
	waitFor(t, tm, "filter: dyer", "nothing matches the filter")
	out := screen(t, tm)
	if strings.Contains(out, "Remove") || strings.Contains(out, "Disable") {
		t.Fatalf("a letter of the filter ran a command:\n%s", out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.Name != "vendor-it" && u.Disabled {
			t.Fatalf("typing a filter disabled %s", u.Name)
		}
	}
}

func TestFilterInEveryList(t *testing.T) {
	f := ldapSample()
	f.devices = []admin.Device{
		{ID: 1, Source: admin.SourceManual, MAC: "aa:bb:cc:dd:ee:ff", UserName: "dr.lee", Description: "exam room tablet", CreatedAt: t0},
		{ID: 2, Source: admin.SourceManual, MAC: "aa:bb:cc:dd:ee:01", UserName: "frontdesk2", Description: "front desk laptop", CreatedAt: t0},
	}
	f.clients = append(f.clients, admin.Client{Name: "office-wifi", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.2/32")})
	for _, c := range []struct {
		tab         tab
		filter      string
		keep, leave string
	}{
		{tabDashboard, "front", "frontdesk2", "dr.lee"},
		{tabAudit, "front", "frontdesk2", "user_add"},
		{tabUsers, "vendor", "vendor-it", "frontdesk2"},
		{tabClients, "wifi", "office-wifi", "192.168.1.20/32"},
		{tabUpstreams, "nothing", "nothing matches the filter", "clinic-ad"},
		{tabDevices, "exam", "exam room tablet", "front desk laptop"},
		{tabLDAP, "pacs", "pacs-lookup", "ehr-search"},
	} {
		t.Run(tabNames[c.tab], func(t *testing.T) {
			m := toTab(console(f), c.tab)
			// Every letter of the alphabet is a filter, not a command.
			m = feed(m, "/", "abcdefghijklmnopqrstuvwxyz", "y")
			if m.confirm != nil || m.form != nil || m.show != "" || m.tab != c.tab {
				t.Fatalf("a letter typed into the filter ran a command:\n%s", m.View())
			}
			for range 27 {
				m = feed(m, tea.KeyBackspace)
			}
			m = feed(m, c.filter, tea.KeyEnter)
			v := m.View()
			if !strings.Contains(v, "filter: "+c.filter) || !strings.Contains(v, c.keep) || strings.Contains(v, c.leave) {
				t.Fatalf("filter %q: want %q and not %q:\n%s", c.filter, c.keep, c.leave, v)
			}
			fits(t, "filtered", v, 80, 24)
			m = feed(m, tea.KeyEsc)
			if v := m.View(); strings.Contains(v, "filter:") || (c.leave != "user_add" && !strings.Contains(v, c.leave)) {
				t.Fatalf("esc did not clear the filter:\n%s", v)
			}
		})
	}
}

// TestFilterTypedInOneRead: keys that arrive together (a fast typist
// over SSH) are a filter too.
func TestFilterTypedInOneRead(t *testing.T) {
	m := toTab(console(sample()), tabUsers)
	m = feed(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/dyer")})
	if !m.editing || m.filter != "dyer" || m.confirm != nil {
		t.Fatalf("editing %v, filter %q, question %v", m.editing, m.filter, m.confirm != nil)
	}
}

// TestFilteredSelectionActsOnWhatIsShown: the selected row of a
// filtered list is the one a key acts on.
func TestFilteredSelectionActsOnWhatIsShown(t *testing.T) {
	m := toTab(console(sample()), tabUsers)
	m = feed(m, "/front", tea.KeyEnter, "x")
	if m.confirm == nil || !strings.Contains(m.confirm.question, "frontdesk2") {
		t.Fatalf("x on the filtered list asks about %+v", m.confirm)
	}
}

func TestCtrlCClosesOneLevelAndQuitAsks(t *testing.T) {
	m := toTab(console(sample()), tabUsers)
	ctrlC := tea.KeyMsg{Type: tea.KeyCtrlC}

	m = feed(m, "a")
	m, cmd := keyCmd(m, ctrlC)
	if quits(cmd) || m.form != nil {
		t.Fatalf("ctrl+c in a form: quit %v, form %v", quits(cmd), m.form != nil)
	}
	m = feed(m, "x")
	m, cmd = keyCmd(m, ctrlC)
	if quits(cmd) || m.confirm != nil {
		t.Fatal("ctrl+c in a confirmation did not just close it")
	}
	m = feed(m, "/dr")
	m, cmd = keyCmd(m, ctrlC)
	if quits(cmd) || m.editing || m.filter != "" {
		t.Fatal("ctrl+c in a filter did not just clear it")
	}

	// The dashboard's story: q goes back to the list.
	m = toTab(m, tabDashboard)
	m = feed(m, tea.KeyEnter)
	if m.detail == nil {
		t.Fatal("enter opened no story")
	}
	m, cmd = keyCmd(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if quits(cmd) || m.detail != nil || m.confirm != nil {
		t.Fatal("q in a story did not go back to the list")
	}

	// The top level asks; anything but y stays.
	for _, k := range []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune("q")}, ctrlC} {
		m, cmd = keyCmd(m, k)
		if quits(cmd) || m.confirm == nil || !strings.Contains(m.View(), "Quit the console?") {
			t.Fatalf("%s at the top level: quit %v\n%s", k, quits(cmd), m.View())
		}
		m = feed(m, "n")
		if m.confirm != nil {
			t.Fatal("n did not answer the question")
		}
	}
	m = feed(m, "q")
	if _, cmd = keyCmd(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")}); !quits(cmd) {
		t.Fatal("q, y did not quit")
	}
}

// TestCtrlCInAFormKeepsTheConsole goes through the real program: ctrl+c
// in the add-user form closes the form, and the console still answers.
func TestCtrlCInAFormKeepsTheConsole(t *testing.T) {
	tm := start(t, sample(), 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("a")
	waitFor(t, tm, "Add a user")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "no clients yet")
}

func TestRemovalsNeedTheNameTyped(t *testing.T) {
	f := sample()
	f.clients = []admin.Client{{Name: "office-wifi", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.2/32")}}
	f.devices = []admin.Device{{ID: 9, Source: admin.SourceManual, MAC: "aa:bb:cc:dd:ee:ff", UserName: "dr.lee", Description: "LAPTOP-ALICE",
		Certs: []admin.DeviceCert{{Serial: "01", Fingerprint: "AB:CD"}}}}
	f.binds = ldapSample().binds
	for _, c := range []struct {
		tab   tab
		key   string
		word  string
		asked string
	}{
		{tabUsers, "x", "dr.lee", "Remove the user dr.lee?"},
		{tabUsers, "r", "dr.lee", "Remove dr.lee's TOTP factor?"},
		{tabClients, "x", "office-wifi", "Remove the client office-wifi?"},
		{tabUpstreams, "x", "clinic-ad", "Remove upstream clinic-ad?"},
		{tabDevices, "x", "aa:bb:cc:dd:ee:ff", "Remove device aa:bb:cc:dd:ee:ff"},
		{tabDevices, "r", "LAPTOP-ALICE", "Revoke the 1 certificate of device #9"},
		{tabLDAP, "x", "ehr-search", "Remove the bind account ehr-search?"},
	} {
		t.Run(tabNames[c.tab]+" "+c.key, func(t *testing.T) {
			m := toTab(console(f), c.tab)
			m = feed(m, c.key)
			v := m.View()
			if m.confirm == nil || !strings.Contains(v, c.asked) || !strings.Contains(v, "type "+c.word+" and press enter") {
				t.Fatalf("no typed confirmation:\n%s", v)
			}
			fits(t, "the question", v, 80, 24)
			// y, or a wrong name, changes nothing.
			for _, typed := range []string{"y", c.word[:len(c.word)-1]} {
				m2 := feed(m, typed)
				m2, cmd := keyCmd(m2, tea.KeyMsg{Type: tea.KeyEnter})
				if cmd != nil || m2.confirm != nil || !strings.Contains(m2.View(), "nothing changed") {
					t.Fatalf("%q confirmed a removal:\n%s", typed, m2.View())
				}
			}
			m = feed(m, c.word)
			if _, cmd := keyCmd(m, tea.KeyMsg{Type: tea.KeyEnter}); cmd == nil {
				t.Fatal("the typed name did not confirm")
			}
		})
	}
}

func TestRemoveUserFromTheConsole(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "vendor-it")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Type("x")
	waitFor(t, tm, "Remove the user frontdesk2?")
	tm.Type("frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "user frontdesk2 removed")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.users) != 2 || f.users[1].Name != "vendor-it" {
		t.Fatalf("users left: %+v", f.users)
	}
}

// TestOverlongPasteIsRefusedNotCut: a 136-character password was cut to
// 120 and saved, where the command line refuses it.
func TestOverlongPasteIsRefusedNotCut(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("a")
	waitFor(t, tm, "Add a user")
	tm.Type("nurse.kim")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(strings.Repeat("p", 136)), Paste: true})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "password: 136 characters is too long (at most 120)")
	// A paste that ends with a newline is saved without it.
	for range 136 {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("long enough pw\n"), Paste: true})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "user nurse.kim added")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.passwords) != 1 || f.passwords[0] != "long enough pw" {
		t.Fatalf("passwords saved: %q", f.passwords)
	}
}

func TestUpstreamKindIsNotCut(t *testing.T) {
	m := toTab(console(sample()), tabUpstreams)
	m = feed(m, "a", "activedirectory")
	if v := m.View(); !strings.Contains(v, "kind:") || !strings.Contains(v, "activedirectory") {
		t.Fatalf("what was typed was cut:\n%s", v)
	}
}

// TestSecretScreensShowTheRealPorts: the ports on the one-time secret
// screens are the daemon's listeners, or the defaults when it has not
// said.
func TestSecretScreensShowTheRealPorts(t *testing.T) {
	f := ldapSample()
	f.status.Listeners = []admin.Listener{
		{Door: admin.ListenRADIUSAuth, Network: "udp", Address: "[::]:11812"},
		{Door: admin.ListenRADIUSAcct, Network: "udp", Address: "[::]:11813"},
		{Door: admin.ListenLDAPS, Network: "tcp", Address: "0.0.0.0:10636"},
	}
	m := console(f)
	if got := m.radiusPorts(); got != "port 11812 (accounting 11813)" {
		t.Errorf("RADIUS: got %q", got)
	}
	if got := m.ldapPorts(); got != "port 10636 (LDAPS)" {
		t.Errorf("LDAP: got %q", got)
	}
	f.status = nil
	m = console(f)
	if got := m.radiusPorts(); !strings.HasPrefix(got, "port 1812 (accounting 1813") {
		t.Errorf("RADIUS without a daemon: got %q", got)
	}
	if got := m.ldapPorts(); !strings.HasPrefix(got, "port 636 (LDAPS) or 389 with StartTLS") {
		t.Errorf("LDAP without a daemon: got %q", got)
	}
}

func TestAddClientSecretScreenShowsTheListenerPort(t *testing.T) {
	f := sample()
	f.status.Listeners = []admin.Listener{{Door: admin.ListenRADIUSAuth, Network: "udp", Address: "[::]:11812"}, {Door: admin.ListenRADIUSAcct, Network: "udp", Address: "[::]:11813"}}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "no clients yet")
	tm.Type("a")
	tm.Type("office-wifi")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("192.168.10.2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "shown once", "port 11812 (accounting 11813)")
}

func TestBindAccountSecretScreenShowsTheListenerPort(t *testing.T) {
	f := ldapSample()
	f.status.Listeners = []admin.Listener{{Door: admin.ListenLDAPS, Network: "tcp", Address: "[::]:10636"}}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	toLDAPTab(t, tm)
	waitFor(t, tm, "pacs-lookup")
	tm.Type("a")
	tm.Type("ehr-two")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("192.168.1.20")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "shown once", "port 10636 (LDAPS).")
}

func TestHelpListsEveryKeyOfThePane(t *testing.T) {
	for _, c := range []struct {
		tab  tab
		want []string
	}{
		{tabDashboard, []string{"enter", "/", "v ", "esc", "q ", "ctrl+c"}},
		{tabUsers, []string{"a ", "p ", "d ", "g ", "u ", "m ", "r ", "b ", "x "}},
		{tabClients, []string{"l         test login", "x         remove the client", "e ", "a "}},
		{tabUpstreams, []string{"t ", "x         remove", "e "}},
		{tabDevices, []string{"o         override", "h         CoA log", "n         enrol a certificate", "s         sync", "m         connect an MDM", "r         revoke", "x         remove"}},
		{tabLDAP, []string{"x         remove a bind account", "e ", "a "}},
		{tabWiFi, []string{"c         show the CA"}},
	} {
		m := feed(toTab(console(ldapSample()), c.tab), "?")
		v := m.View()
		for _, w := range c.want {
			if !strings.Contains(v, w) {
				t.Errorf("%s: ? lacks %q:\n%s", tabNames[c.tab], w, v)
			}
		}
		fits(t, "help", v, 80, 24)
		if m = feed(m, tea.KeyEsc); m.help.ShowAll {
			t.Errorf("%s: esc did not close the help", tabNames[c.tab])
		}
	}
}

func TestBottomBarShowsTheFormsKeys(t *testing.T) {
	m := feed(toTab(console(sample()), tabUsers), "a")
	lines := strings.Split(m.View(), "\n")
	bar := lines[len(lines)-1]
	if !strings.Contains(bar, "enter next/save") || strings.Contains(bar, "? help") {
		t.Fatalf("the bottom bar with a form open: %q", bar)
	}
}

func TestSelectionMarkedWithoutColour(t *testing.T) {
	// TestMain draws without colour or attributes, as NO_COLOR does.
	m := toTab(console(sample()), tabUsers)
	m = feed(m, tea.KeyDown)
	v := m.View()
	if !strings.Contains(v, "\n> frontdesk2 ") || strings.Contains(v, "> dr.lee") {
		t.Fatalf("no marker on the selected row:\n%s", v)
	}
	fits(t, "users", v, 80, 24)
}

func TestDownUpstreamIsRed(t *testing.T) {
	lipgloss.SetColorProfile(termenv.ANSI)
	t.Cleanup(func() { lipgloss.SetColorProfile(termenv.Ascii) })
	m := console(sample()) // entra is down
	_, ups, _ := strings.Cut(m.daemonLine(), "\n")
	if !strings.Contains(ups, "entra DOWN") || !strings.Contains(ups, "\x1b[31m") {
		t.Fatalf("a DOWN upstream is not red: %q", ups)
	}
	// On the Upstreams pane too (entra is not the selected row).
	two := upstreamsMsg{ups: []admin.Upstream{{Name: "clinic-ad", Kind: "ldap", Config: "{}"}, {Name: "entra", Kind: "oidc", Config: "{}"}}}
	if v := feed(toTab(console(sample()), tabUpstreams), two).viewUpstreams(20); !strings.Contains(v, "\x1b[31mentra            oidc    DOWN") {
		t.Fatalf("a DOWN upstream is not red on the Upstreams pane:\n%q", v)
	}
	f := sample()
	f.status.Upstreams = f.status.Upstreams[:1]
	_, ups, _ = strings.Cut(console(f).daemonLine(), "\n")
	if strings.Contains(ups, "\x1b[31m") {
		t.Fatalf("all up, yet red: %q", ups)
	}
}

// k on the Dashboard manages the SSH admin keys after the wizard: the
// list, a pasted key added, a key removed only by its typed name, and the
// last key kept.
func TestAdminKeysScreen(t *testing.T) {
	f := sample()
	f.adminKeys = []admin.AdminKey{{Name: "contractor", Fingerprint: "SHA256:AbCdEfGh0123", CreatedAt: t0}}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	typeKeys := func(s string) { tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}) }
	typeKeys("k")
	waitFor(t, tm, "SSH admin keys", "contractor", "SHA256:AbCdEfGh0123")
	// Removing the last key is refused.
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	typeKeys("contractor")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "holds the last key")
	if len(f.adminKeys) != 1 {
		t.Fatalf("keys %v", f.adminKeys)
	}
	// Add a second admin.
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	typeKeys("k")
	waitFor(t, tm, "add name")
	typeKeys("nurse-it")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	typeKeys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFake nurse@laptop")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) // to the last field
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "added for admin nurse-it")
	// A name typed wrong removes nothing; the exact name removes it.
	typeKeys("k")
	waitFor(t, tm, "nurse-it")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	typeKeys("contract")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "there is no admin")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	typeKeys("k")
	waitFor(t, tm, "add name")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	typeKeys("contractor")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "SSH key of admin contractor removed")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.adminKeys) != 1 || f.adminKeys[0].Name != "nurse-it" {
		t.Fatalf("keys after the removal: %+v", f.adminKeys)
	}
}

// n on the Dashboard sets the network, host name and NTP: on a plain
// install it only shows what would change; on an image the helper does
// it and the console says what was done. p needs the action typed again
// and, for a factory reset, the host name.
func TestSystemScreens(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	typeKeys := func(s string) { tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}) }
	enter := func() { tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) }
	typeKeys("n")
	waitFor(t, tm, "Network, host name and time", "Not an appliance image", "now: eth0 up 192.168.1.5/24")
	typeKeys("eth0")
	enter()
	typeKeys("192.168.10.5/24")
	enter()
	typeKeys("192.168.10.1")
	enter()
	typeKeys("192.168.10.1")
	enter()
	enter() // host name unchanged
	enter()
	waitFor(t, tm, "This would change: network eth0: fixed 192.168.10.5/24", "Address=192.168.10.5/24", "networkctl reload")
	typeKeys(" ")
	// A gateway outside the network is refused in words.
	typeKeys("n")
	waitFor(t, tm, "Network, host name and time")
	enter()
	typeKeys("10.0.0.5/24")
	enter()
	typeKeys("192.168.1.1")
	for range 4 {
		enter()
	}
	waitFor(t, tm, "the gateway 192.168.1.1 is not in 10.0.0.0/24")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})

	f.mu.Lock()
	f.managed = true
	f.mu.Unlock()
	typeKeys("p")
	waitFor(t, tm, "Reboot, power off or factory reset", "take a backup first")
	typeKeys("factory-reset")
	enter()
	typeKeys("yes")
	enter()
	waitFor(t, tm, "type this appliance's host name (gate)")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	typeKeys("p")
	waitFor(t, tm, "reboot, poweroff or factory-reset") // the focused field's help
	typeKeys("reboot")
	enter()
	typeKeys("reboot")
	enter()
	waitFor(t, tm, "done: reboot")
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.system); n != 2 || f.system[0].Kind != "network" || f.system[1].Kind != "reboot" {
		t.Fatalf("system requests %+v", f.system)
	}
}

// m on the Upstreams pane creates a push MFA provider (a shell-less
// appliance had no way to), with its secret masked, and lists it.
func TestMFAProvidersFromTheConsole(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range int(tabUpstreams) {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "a: add")
	typeKeys := func(s string) { tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}) }
	enter := func() { tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) }
	typeKeys("m")
	waitFor(t, tm, "Push MFA providers", "No push provider yet")
	for _, v := range []string{"duo", "duo", "api-1234abcd.duosecurity.com", "DIWJ8X6AEYOR5OMC6TQ1", "s3cret-skey-do-not-show", ""} {
		typeKeys(v)
		enter()
	}
	enter()
	waitFor(t, tm, "MFA provider duo (duo) saved")
	typeKeys("m")
	waitFor(t, tm, "api-1234abcd.duosecurity.com DIWJ8X6AEYOR5OMC6TQ1")
	out := screen(t, tm)
	if strings.Contains(out, "s3cret") {
		t.Fatalf("the secret is on screen:\n%s", out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.providers) != 1 || string(f.providers[0].Secret) != "s3cret-skey-do-not-show" || f.providers[0].Duo == nil {
		t.Fatalf("providers %+v", f.providers)
	}
}

// x on the Audit pane writes a HIPAA export of a date range, f sets the
// forwarding and the retention: jobs that were CLI-only.
func TestAuditJobsFromTheConsole(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	typeKeys := func(s string) { tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}) }
	enter := func() { tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) }
	waitFor(t, tm, "All entries")
	typeKeys("x")
	waitFor(t, tm, "HIPAA review export", "2026-10-01")
	enter()
	enter()
	typeKeys("dr.lee")
	enter()
	waitFor(t, tm, "entries, 2 users with logins", "audit-x.csv", "exports/")
	typeKeys(" ")
	typeKeys("f")
	waitFor(t, tm, "Audit forwarding")
	typeKeys("siem.clinic.lan:6514")
	for range 5 {
		enter()
	}
	typeKeys("7y")
	enter()
	waitFor(t, tm, "forwarding to siem.clinic.lan:6514")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.exports) != 1 || f.exports[0] != "2026-10-01..2026-11-01 dr.lee" || f.forward != "siem.clinic.lan:6514" || f.retention != "7y" {
		t.Fatalf("exports %q forward %q retention %q", f.exports, f.forward, f.retention)
	}
}

// c on the Devices pane does the certificate and MDM jobs that were
// CLI-only, one per save.
func TestDeviceJobsFromTheConsole(t *testing.T) {
	f := sample()
	f.devices = []admin.Device{{ID: 1, Description: "front desk laptop", Source: "manual", MAC: "aa:bb:cc:00:11:22", MACs: []string{"aa:bb:cc:00:11:22"}}}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range int(tabDevices) {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "front desk laptop")
	typeKeys := func(s string) { tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}) }
	enter := func() { tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) }
	typeKeys("c")
	waitFor(t, tm, "Certificates, SCEP challenges and MDMs", "challenge 7: front-desk-mac, 1 use(s) left")
	typeKeys("dr.lee AB:CD")
	enter()
	enter()
	enter() // past revoke
	typeKeys("7")
	enter()
	enter()
	waitFor(t, tm, "one job per save")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	typeKeys("c")
	waitFor(t, tm, "USER FINGERPRINT")
	enter()
	enter()
	enter() // past revoke
	typeKeys("7")
	enter()
	enter()
	waitFor(t, tm, "SCEP challenge 7 withdrawn")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deviceJobs) != 1 || f.deviceJobs[0] != "withdraw 7" {
		t.Fatalf("jobs %q", f.deviceJobs)
	}
}

// TestRegisteredCertsListedAndUnregisteredByNumber: c on Devices lists
// the registered certificates and the revocations ('cert list'), and
// unregister takes a certificate's number in that list.
func TestRegisteredCertsListedAndUnregisteredByNumber(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 5 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "n enrol · r revoke")
	tm.Type("c")
	waitFor(t, tm, "cert 1: dr.lee AB:CD:EF:01:23:45:67:89…", "Revoked: 1; the last serial 1f2e3d", "laptop stolen")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("1")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) // past revoke
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "certificate "+testCertFP[:20])
	s := screen(t, tm)
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > 24 {
		t.Errorf("%d lines, want at most 24:\n%s", len(lines), s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deviceJobs) != 1 || f.deviceJobs[0] != "unregister "+testCertFP {
		t.Fatalf("jobs %q", f.deviceJobs)
	}
}

// TestCertRevokedWithReasonAndRegisteredFromFile: the form's revoke
// field takes a certificate (by its number) and the reason ('cert revoke
// --reason'), and register takes a file uploaded into incoming/ ('cert
// register --file'), on a screen of 80×24.
func TestCertRevokedWithReasonAndRegisteredFromFile(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range int(tabDevices) {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "n enrol · r revoke")
	tm.Type("c")
	waitFor(t, tm, "cert 1: dr.lee")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	// A number alone revokes nothing: the reason is what makes it deliberate.
	tm.Type("1")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "nothing was revoked")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Type("c")
	waitFor(t, tm, "USER FINGERPRINT")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Type("1 laptop stolen")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "revoked (laptop stolen)")
	tm.Type("c")
	waitFor(t, tm, "USER FINGERPRINT or USER FILE")
	tm.Type("dr.lee laptop.pem")
	for range 5 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "registered to dr.lee")
	// The form, its notes and the last job's line fit the screen.
	tm.Type("c")
	waitFor(t, tm, "Revoked: 1")
	s := screen(t, tm)
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > 24 {
		t.Errorf("%d lines, want at most 24:\n%s", len(lines), s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.revoked) != 1 || f.revoked[0] != testCertFP || f.revokeReasons[0] != "laptop stolen" {
		t.Errorf("revoked %q, reasons %q", f.revoked, f.revokeReasons)
	}
	if len(f.deviceJobs) != 1 || f.deviceJobs[0] != "register file dr.lee laptop.pem" {
		t.Errorf("jobs %q", f.deviceJobs)
	}
}

// l on the Dashboard shows the daemon's own log (no journalctl on the
// images), times in the site's zone.
func TestDaemonLogScreen(t *testing.T) {
	tm := start(t, sample(), 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("l")})
	waitFor(t, tm, "The daemon's log, newest last", `Nov 30 08:59:30 WARN "upstream down" upstream=entra`)
}

// u on the Dashboard installs an uploaded package: the checksum is
// checked before anything is asked of the helper.
func TestUpdateScreen(t *testing.T) {
	f := sample()
	f.managed = true
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("u")})
	waitFor(t, tm, "Update clinicgate", "In incoming/: clinicgate_0.3.0_amd64.deb")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("abc")})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "64 hex digits")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.system) != 0 {
		t.Fatalf("asked %+v", f.system)
	}
}

// c on the Audit pane writes a whole copy or checks the log against one
// (what 'audit export' and 'audit verify --against' do); y on Upstreams
// syncs a directory now ('upstream sync').
func TestAuditCopyAndUpstreamSyncFromTheConsole(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitFor(t, tm, "All entries")
	typeKeys := func(s string) { tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}) }
	enter := func() { tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) }
	typeKeys("c")
	waitFor(t, tm, "A whole copy of the log")
	enter()
	typeKeys("/var/lib/clinicgate/incoming/siem.log")
	enter()
	waitFor(t, tm, "THE LOG DOES NOT AGREE WITH THE COPY", "entry 3 differs")
	typeKeys(" ")
	for range int(tabUpstreams) - int(tabAudit) {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "clinic-ad")
	typeKeys("y")
	waitFor(t, tm, "clinic-ad synced: 12 users, 3 groups (2 new")
}

// p on the Wi-Fi pane writes an Apple profile into exports/ and d shows
// the device CA: 'wifi profile' and 'scep ca' without a shell.
func TestWiFiFilesFromTheConsole(t *testing.T) {
	f := sample()
	f.status.EAP = &admin.EAPStatus{CertFile: "/var/lib/clinicgate/eap-cert.pem", ServerName: []string{"gate"}, CASubject: "clinicgate appliance CA (gate)"}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range int(tabWiFi) {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "p: an Apple profile into exports/")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("p")})
	waitFor(t, tm, "Apple Wi-Fi profile")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("Staff")})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("ttls")})
	for range 8 { // org, wpa3, then the SCEP fields, left as they are
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "exports/Staff-ttls.mobileconfig")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("d")})
	waitFor(t, tm, "The device CA (SCEP)", "MIIBdeviceCA")
}
