package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/mdp/qrterminal/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// form is a small dialog of text fields; enter on the last field submits.
type form struct {
	title string
	note  []string // lines under the title that explain the choice

	fields []formField
	focus  int
	err    string
	submit func(values []string) tea.Cmd
}

type formField struct {
	label string
	help  string
	input textinput.Model
	// limit is the most runes the field takes; more is refused on
	// submit, never cut (tooLong, in safety.go).
	limit int
}

func newForm(title string, submit func([]string) tea.Cmd, fields ...formField) *form {
	f := &form{title: title, fields: fields, submit: submit}
	f.fields[0].input.Focus()
	return f
}

func field(label, help string, secret bool, limit int) formField {
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = inputRoom(limit)
	if secret {
		in.EchoMode = textinput.EchoPassword
		in.EchoCharacter = '•'
	}
	return formField{label: label, help: help, input: in, limit: limit}
}

func (f *form) update(msg tea.KeyMsg) (done bool, cmd tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		return true, nil
	case tea.KeyTab, tea.KeyDown:
		f.move(1)
		return false, nil
	case tea.KeyShiftTab, tea.KeyUp:
		f.move(-1)
		return false, nil
	case tea.KeyEnter:
		if f.focus < len(f.fields)-1 {
			f.move(1)
			return false, nil
		}
		if f.tooLong() {
			return false, nil
		}
		vals := make([]string, len(f.fields))
		for i, fl := range f.fields {
			vals[i] = fl.input.Value()
		}
		f.err = ""
		return false, f.submit(vals)
	}
	var c tea.Cmd
	f.fields[f.focus].input, c = f.fields[f.focus].input.Update(pasted(msg))
	return false, c
}

func (f *form) move(d int) {
	f.fields[f.focus].input.Blur()
	f.focus = (f.focus + d + len(f.fields)) % len(f.fields)
	f.fields[f.focus].input.Focus()
}

func (f *form) view(width int) string {
	var b strings.Builder
	b.WriteString(titleStyle.Render(fit(f.title, width)) + "\n")
	b.WriteString(dimStyle.Render("tab: next field · enter: next/save · esc: cancel") + "\n\n")
	for _, l := range f.note {
		b.WriteString(fit(l, width) + "\n")
	}
	if len(f.note) > 0 {
		b.WriteString("\n")
	}
	w := 10 // the labels' column, wider for a long label ("mfa-remember")
	for _, fl := range f.fields {
		w = max(w, len([]rune(fl.label))+1)
	}
	for i, fl := range f.fields {
		mark := "  "
		if i == f.focus {
			mark = "> "
		}
		fmt.Fprintf(&b, "%s%-*s %s\n", mark, w, fl.label+":", fl.input.View())
		// Only the focused field's help: a policy form's eleven fields,
		// each with its help, would not fit 24 rows, and the error under
		// them would be cut off.
		if fl.help != "" && i == f.focus {
			b.WriteString(dimStyle.Render(fit(strings.Repeat(" ", w+3)+fl.help, width)) + "\n")
		}
	}
	if f.err != "" {
		b.WriteString("\n")
		for _, l := range wrap("! "+f.err, width) {
			b.WriteString(rejectStyle.Render(l) + "\n")
		}
	}
	return b.String()
}

// wrap breaks s at spaces into lines of at most width columns (a longer
// word is cut), so an explanation is read whole, not cut off at the edge.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(sanitize(s)) {
		switch {
		case line == "":
			line = w
		case len([]rune(line))+1+len([]rune(w)) <= width:
			line += " " + w
		default:
			lines = append(lines, fit(line, width))
			line = w
		}
	}
	return append(lines, fit(line, width))
}

// Messages from admin actions.
type (
	// doneMsg ends a form: text for the status line, or err to show in the
	// form (which stays open for a correction).
	doneMsg struct {
		text string
		err  error
		// show is a result to display once (a generated secret, a QR code).
		show string
		// next, when set, is the form that follows (a two-step dialog).
		next *form
		// upstream names an upstream just added (the wizard uses it).
		upstream string
		// client names a client just added (the wizard's test login uses
		// it).
		client string
		// For the wizard (wizard.go): the second factor chosen, why a
		// step that stays open failed, and a test login let in.
		mfa    policy.MFA
		failed string
		passed bool
	}
	clientsMsg struct {
		clients []admin.Client
		err     error
	}
	upstreamsMsg struct {
		ups []admin.Upstream
		err error
	}
	devicesMsg struct {
		devices []admin.Device
		mdms    []admin.MDMStatus
		err     error
	}
)

// explain turns an admin error into the contractor's words.
func explain(err error) string {
	switch {
	case errors.Is(err, admin.ErrInvalid):
		return strings.TrimPrefix(err.Error(), admin.ErrInvalid.Error()+": ")
	case errors.Is(err, admin.ErrConflict):
		return "someone else changed this meanwhile; press esc and try again on the fresh list"
	case errors.Is(err, admin.ErrBusy):
		return "the appliance's database is busy (another change is being saved); try again in a moment"
	}
	return oneLine(err.Error())
}

func (m Model) act(fn func(ctx context.Context) doneMsg) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return fn(ctx)
	}
}

func (m Model) fetchClients() tea.Cmd {
	a := m.p.Clients
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := a.Clients(ctx)
		return clientsMsg{c, err}
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, p)
	}
	return out
}

func (m Model) addUserForm() *form {
	return newForm("Add a user", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			n := admin.NewUser{Name: strings.TrimSpace(v[0]), Groups: splitList(v[1])}
			if v[2] != "" {
				n.Password = []byte(v[2])
			}
			if err := m.p.Users.AddUser(ctx, n); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "user " + n.Name + " added"}
		})
	},
		field("name", "letters, digits, . _ - @ (the login name)", false, 64),
		field("groups", "comma-separated, e.g. clinicians, staff", false, 200),
		field("password", "8 or more characters (leave empty to set later)", true, 120),
	)
}

func (m Model) passwordForm(user string) *form {
	return newForm("New password for "+user, func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			if v[0] != v[1] {
				return doneMsg{err: fmt.Errorf("%w: the two entries differ", admin.ErrInvalid)}
			}
			if err := m.p.Users.EditUser(ctx, user, admin.UserEdit{Password: []byte(v[0])}); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "password of " + user + " changed"}
		})
	},
		field("password", "8 or more characters", true, 120),
		field("again", "the same once more", true, 120),
	)
}

func (m Model) addClientForm() *form { return m.addClientFormWith("local", true) }

// addClientFormWith adds a client whose passwords are checked by the named
// upstream; doors asks which door it uses (the first-boot wizard adds a
// RADIUS client without asking).
func (m Model) addClientFormWith(up string, doors bool) *form {
	title := "Add a RADIUS client (Wi-Fi controller, VPN gateway)"
	fields := []formField{
		field("name", "e.g. office-wifi", false, 64),
		field("address", "the device's IP address, or a network like 192.168.10.0/24", false, 64),
	}
	if doors {
		title = "Add a client (Wi-Fi controller, VPN gateway, or an EHR over LDAP)"
		fields = append(fields, field("door", "radius (Wi-Fi, VPN) or ldap (an EHR checking logins); empty: radius", false, 64))
	}
	if doors {
		// The wizard asks for the second factor in a step of its own.
		fields = append(fields, field("mfa", "required, enrolled (only users who did) or off; empty: required", false, 64))
	}
	radiusPorts, ldapPorts := m.radiusPorts(), m.ldapPorts() // where the daemon really listens
	return newForm(title, func(v []string) tea.Cmd {
		val := formValues(fields, v)
		return m.act(func(ctx context.Context) doneMsg {
			door, err := parseDoor(val["door"])
			if err != nil {
				return doneMsg{err: err}
			}
			p := policy.Default()
			p.Upstream = up
			if mode := strings.TrimSpace(val["mfa"]); mode != "" {
				p.MFA = policy.MFA(mode)
			}
			name := strings.TrimSpace(val["name"])
			sec, err := m.p.Clients.AddClient(ctx, admin.NewClient{Door: door, Name: name, Address: strings.TrimSpace(val["address"]), Policy: p})
			if err != nil {
				return doneMsg{err: err}
			}
			if door == appliance.DoorLDAP {
				return doneMsg{text: "LDAP client " + name + " added", show: fmt.Sprintf(
					"LDAP client %s added.\n\nAn LDAP client has no shared secret. The EHR searches with a bind account:\n"+
						"add one on the LDAP tab (a) and enter its password in the EHR.\n\n"+
						"Point the EHR at this appliance,\n%s.", name, ldapPorts)}
			}
			return doneMsg{text: "client " + name + " added", client: name, show: fmt.Sprintf(
				"Client %s added.\n\nEnter this shared secret on the device. It is shown once:\n\n    %s\n\nPoint the device's RADIUS server at this appliance,\n%s.", name, string(sec), radiusPorts)}
		})
	}, fields...)
}

// formValues maps a form's field labels to what was typed.
func formValues(fields []formField, v []string) map[string]string {
	out := make(map[string]string, len(fields))
	for i, f := range fields {
		out[f.label] = v[i]
	}
	return out
}

func parseDoor(s string) (appliance.Door, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "radius":
		return appliance.DoorRADIUS, nil
	case "ldap":
		return appliance.DoorLDAP, nil
	}
	return "", fmt.Errorf("%w: door: answer radius (Wi-Fi controllers, VPN gateways) or ldap (an EHR that checks logins over LDAP)", admin.ErrInvalid)
}

// enrolText is what the user scans or types, in 24 lines with the QR
// code: the secret first, so that it stays on screen even were the code
// cut, and how to see it again (until the first login with a code).
func enrolText(e admin.Enrolment) string {
	return "Secret: " + e.Secret + " · scan or type it · Users t: again\n" + qrText(e.URI)
}

// fullScreen is text given the whole terminal, with how to close it on
// the last line.
func fullScreen(s string, height int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > height-1 {
		lines = lines[:height-1]
	}
	for len(lines) < height-1 {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n") + "\n" + dimStyle.Render("(any key: close)")
}

// qrText draws a QR code with half blocks, two modules per character row.
func qrText(uri string) string {
	var b strings.Builder
	qrterminal.GenerateWithConfig(uri, qrterminal.Config{
		Level: qrterminal.L, Writer: &b, HalfBlocks: true, QuietZone: 1,
		BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE, WhiteBlackChar: qrterminal.WHITE_BLACK,
	})
	return b.String()
}

// policyForm edits a client's policy; the fields start with the current
// values, and the version check refuses a change someone else made first.
// A RADIUS client and an LDAP client get the fields that apply to their
// door: code style, device binding, VLANs and Message-Authenticator only
// mean something in RADIUS; TLS and remembering a code only in LDAP.
func (m Model) policyForm(c admin.Client) *form {
	p := c.Policy
	var rules []string
	for _, r := range p.Rules {
		rules = append(rules, fmt.Sprintf("%s=%d", r.Group, r.VLAN))
	}
	yes := map[bool]string{true: "yes", false: "no"}
	type spec struct {
		label, help, value string
		limit              int
	}
	mfa := spec{"mfa", "required, enrolled or off", string(p.MFA), 10}
	groups := spec{"groups", "only these groups may log in (comma-separated; empty: all)", strings.Join(p.AllowedGroups, ","), 200}
	upstream := spec{"upstream", "local, or an upstream's name", p.Upstream, 64}
	failmode := spec{"failmode", "secure or cached (when the upstream is unreachable)", string(p.Failmode), 10}
	posture := spec{"posture", "off, known or compliant; +own: the user's own device; +grace=48h (MDM)", formatPosture(p.Posture), 60}
	specs := []spec{mfa,
		{"style", "auto, challenge or append (how the code travels)", string(p.Style), 10},
		{"device", "yes: only MAC addresses registered to the user", yes[p.RequireDevice], 3},
		groups,
		{"vlans", "group=VLAN, comma-separated, first match wins (e.g. clinicians=20)", strings.Join(rules, ","), 300},
		upstream, failmode,
		{"msg-auth", "yes: require Message-Authenticator (no: only for very old hardware)", yes[p.RequireMessageAuthenticator], 3},
		{"eap", "802.1X methods, in the order offered: ttls, peap, tls", strings.Join(p.EAPAllowed(), ","), 20},
		{"mschap", "yes: allow PEAP and MS-CHAPv2 (keeps a weak NT hash; docs/mschap.md)", yes[p.AllowMSCHAP], 3},
		{"eap-identity", "any, or match: the outer name must be the user's or anonymous", admin.EAPIdentity(p), 6},
		posture,
		{"on-fail", "reject, or quarantine:VLAN[:ROLE] (accept into that VLAN / Filter-Id)", formatOnFail(p.Posture), 80},
		{"coa", "off, disconnect or quarantine[:PORT]: what the NAS is told when posture changes", coaValue(p.Posture), 16},
	}
	ldap := isLDAP(c)
	if ldap {
		posture.help = "off, known or compliant; +own; +same-user: the Wi-Fi/VPN session at the address"
		specs = []spec{mfa, groups, upstream, failmode, posture,
			{"plain-ldap", "yes: allow binds without TLS (passwords then cross in clear)", yes[p.AllowPlainLDAP], 3},
			{"mfa-remember", "how long a used code is remembered, e.g. 15m (max 12h; 0: off)", formatRemember(p.MFARemember), 16},
		}
	}
	fields := make([]formField, len(specs))
	for i, sp := range specs {
		fields[i] = field(sp.label, sp.help, false, sp.limit)
		fields[i].input.SetValue(sp.value)
	}
	name, version := c.Name, c.Version
	return newForm("Policy of "+name, func(v []string) tea.Cmd {
		val := formValues(fields, v)
		return m.act(func(ctx context.Context) doneMsg {
			yesNo := func(what string) (bool, error) {
				switch strings.ToLower(strings.TrimSpace(val[what])) {
				case "yes", "y":
					return true, nil
				case "no", "n":
					return false, nil
				}
				return false, fmt.Errorf("%w: %s: answer yes or no", admin.ErrInvalid, what)
			}
			var set []func(*policy.Policy)
			pos := c.Policy.Posture
			if err := parsePosture(val["posture"], &pos); err != nil {
				return doneMsg{err: err}
			}
			if !ldap {
				if err := parseOnFail(val["on-fail"], &pos); err != nil {
					return doneMsg{err: err}
				}
				if err := parseCoA(val["coa"], &pos); err != nil {
					return doneMsg{err: err}
				}
			}
			set = append(set, func(p *policy.Policy) { p.Posture = pos })
			if ldap {
				plain, err := yesNo("plain-ldap")
				if err != nil {
					return doneMsg{err: err}
				}
				remember, err := parseRemember(val["mfa-remember"])
				if err != nil {
					return doneMsg{err: err}
				}
				set = append(set, func(p *policy.Policy) { p.AllowPlainLDAP, p.MFARemember = plain, remember })
			} else {
				dev, err := yesNo("device")
				if err != nil {
					return doneMsg{err: err}
				}
				ma, err := yesNo("msg-auth")
				if err != nil {
					return doneMsg{err: err}
				}
				var rules []policy.Rule
				for _, r := range splitList(val["vlans"]) {
					g, n, ok := strings.Cut(r, "=")
					vlan, err := strconv.Atoi(n)
					if !ok || err != nil {
						return doneMsg{err: fmt.Errorf("%w: vlans: %q should be group=number, e.g. clinicians=20", admin.ErrInvalid, r)}
					}
					rules = append(rules, policy.Rule{Group: g, VLAN: vlan})
				}
				style := policy.Style(strings.TrimSpace(val["style"]))
				eap, err := policy.ParseEAPMethods(val["eap"])
				if err != nil {
					return doneMsg{err: fmt.Errorf("%w: eap: %v", admin.ErrInvalid, err)}
				}
				mschap, err := yesNo("mschap")
				if err != nil {
					return doneMsg{err: err}
				}
				ident := strings.ToLower(strings.TrimSpace(val["eap-identity"]))
				if ident == policy.EAPIdentityAny {
					ident = ""
				}
				set = append(set, func(p *policy.Policy) {
					p.Style, p.RequireDevice, p.RequireMessageAuthenticator, p.Rules = style, dev, ma, rules
					p.EAPMethods, p.AllowMSCHAP, p.EAPIdentity = eap, mschap, ident
				})
			}
			err := m.p.Clients.EditClient(ctx, name, admin.ClientEdit{Version: version, Policy: func(p *policy.Policy) error {
				p.MFA = policy.MFA(strings.TrimSpace(val["mfa"]))
				p.AllowedGroups = splitList(val["groups"])
				p.Upstream, p.Failmode = strings.TrimSpace(val["upstream"]), policy.Failmode(strings.TrimSpace(val["failmode"]))
				for _, f := range set {
					f(p)
				}
				return nil
			}})
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "policy of " + name + " saved"}
		})
	}, fields...)
}

// formatRemember shows MFARemember as a short duration ("15m", "1h30m").
func formatRemember(sec int) string {
	if sec <= 0 {
		return "0"
	}
	s := (time.Duration(sec) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseRemember reads a duration like 15m into MFARemember's seconds.
func parseRemember(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "off" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: mfa-remember: %q is not a duration like 15m or 1h (0: off)", admin.ErrInvalid, s)
	}
	if d < 0 || d > policy.MaxMFARemember*time.Second {
		return 0, fmt.Errorf("%w: mfa-remember: %s is not between 0 and 12h", admin.ErrInvalid, s)
	}
	return int(d / time.Second), nil
}

func (m Model) fetchUpstreams() tea.Cmd {
	a := m.p.Upstreams
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, err := a.Upstreams(ctx)
		return upstreamsMsg{u, err}
	}
}

// upstreamWhere picks the servers out of an upstream's settings for the
// list (never a secret: those are not in the settings).
func upstreamWhere(config string) string {
	var c struct {
		Servers []string `json:"servers"`
		URLs    []string `json:"urls"`
		Issuer  string   `json:"issuer"`
	}
	if json.Unmarshal([]byte(config), &c) != nil {
		return "?"
	}
	switch {
	case len(c.Servers) > 0:
		return strings.Join(c.Servers, " ")
	case len(c.URLs) > 0:
		return strings.Join(c.URLs, " ")
	}
	return c.Issuer
}

func (m Model) testUpstreamForm(name string) *form {
	return newForm("Test upstream "+name+" with a real login", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			c, err := m.p.Upstreams.TestUpstream(ctx, name, strings.TrimSpace(v[0]), []byte(v[1]))
			verdict := "the test login succeeded"
			if err != nil {
				verdict = explain(err)
			}
			return doneMsg{text: "test of " + name + ": " + verdict, show: "Test of upstream " + name + ":\n\n" + upstreamCheckText(c)}
		})
	},
		field("user", "an account that exists there", false, 128),
		field("password", "its password (used for this test only)", true, 128),
	)
}

// upstreamCheckText lays a check out: each step and its result, then the
// warnings, set apart so they are not read as a failure.
func upstreamCheckText(c admin.UpstreamCheck) string {
	var b strings.Builder
	for i, st := range c.Steps {
		fmt.Fprintf(&b, "%d. %s\n", i+1, sanitize(st.What))
		for _, l := range []string{st.Result, st.Hint} {
			if l != "" {
				fmt.Fprintf(&b, "   %s\n", sanitize(l))
			}
		}
	}
	if len(c.Warnings) > 0 {
		b.WriteString("\nWarnings (it works, but):\n")
		for _, w := range c.Warnings {
			fmt.Fprintf(&b, "  - %s\n", sanitize(w))
		}
	}
	return b.String()
}

func (m Model) groupsForm(u admin.User) *form {
	f := newForm("Groups, expiry, hours and name of "+u.Name, func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			groups := splitList(v[0])
			// The admin service reads the expiry: a date is the end of
			// that day in the site's time zone, as on the command line.
			exp := strings.TrimSpace(v[1])
			hours := strings.TrimSpace(v[2])
			if _, err := policy.ParseHours(hours); err != nil {
				return doneMsg{err: fmt.Errorf("%w: hours: %v", admin.ErrInvalid, err)}
			}
			name := strings.TrimSpace(v[3])
			if err := m.p.Users.EditUser(ctx, u.Name, admin.UserEdit{Groups: &groups, Expires: &exp, Hours: &hours, DisplayName: &name, Version: u.Version}); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: u.Name + ": groups, expiry, hours and name saved"}
		})
	},
		field("groups", "comma-separated; empty: none", false, 300),
		field("expires", "last day it works, e.g. 2026-12-31, in "+admin.ZoneName(m.clock().zone(), m.opts.Now())+"; empty: never", false, 16),
		field("hours", "when logins are allowed, e.g. Mon-Fri 08:00-18:00; Sat 09:00-13:00 (empty: always)", false, 200),
		field("name", "display name, e.g. Dr. Lee (what the EHR shows)", false, 128),
	)
	f.fields[0].input.SetValue(strings.Join(u.Groups, ", "))
	f.fields[1].input.SetValue(m.clock().expiryInput(u.ExpiresAt))
	f.fields[2].input.SetValue(u.Hours)
	f.fields[3].input.SetValue(u.DisplayName)
	return f
}

func (m Model) deviceForm(user string) *form {
	return newForm("Bind a device to "+user, func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			mac, err := m.p.Users.AddDevice(ctx, v[0], user, strings.TrimSpace(v[1]))
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "device " + mac + " bound to " + user}
		})
	},
		field("MAC", "as the Wi-Fi shows it, e.g. AA-BB-CC-DD-EE-FF", false, 32),
		field("what", "e.g. front desk laptop", false, 128),
	)
}

func (m Model) fetchDevices() tea.Cmd {
	if m.p.Devices == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := m.p.Devices.Devices(ctx)
		if err != nil {
			return devicesMsg{err: err}
		}
		ms, err := m.p.Devices.MDMSources(ctx)
		return devicesMsg{devices: d, mdms: ms, err: err}
	}
}

// addUpstreamForm asks the kind first, then the kind's own settings.
func (m Model) addUpstreamForm() *form {
	return newForm("Add an upstream: where the clinic's accounts live", func(v []string) tea.Cmd {
		kind := strings.ToLower(strings.TrimSpace(v[0]))
		return func() tea.Msg {
			switch kind {
			case "ldap", "ad", "radius", "oidc":
				return doneMsg{next: m.upstreamSettingsForm(kind)}
			}
			return doneMsg{err: fmt.Errorf("%w: kind: answer ldap (Active Directory, OpenLDAP, Google, JumpCloud), radius (NPS, FreeRADIUS, JumpCloud) or oidc (Entra ID, Okta)", admin.ErrInvalid)}
		}
	}, field("kind", "ldap (also Active Directory), radius or oidc (Entra ID, Okta)", false, 64))
}

func (m Model) upstreamSettingsForm(kind string) *form {
	add := func(ctx context.Context, f admin.UpstreamForm) doneMsg {
		n, err := f.NewUpstream()
		if err != nil {
			return doneMsg{err: err}
		}
		name := n.Name
		warnings, err := m.p.Upstreams.AddUpstream(ctx, n)
		if err != nil {
			return doneMsg{err: err}
		}
		text := "upstream " + name + " added; test it with t, then point clients at it (e on the Clients pane)"
		if len(warnings) > 0 {
			text += " — warning: " + strings.Join(warnings, "; ")
		}
		return doneMsg{text: text, upstream: name}
	}
	// An empty answer keeps the default (required).
	yes := func(s string) *bool {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			return nil
		}
		y := s == "yes" || s == "y"
		return &y
	}
	switch kind {
	case "radius":
		return newForm("Add a RADIUS upstream (NPS, FreeRADIUS, JumpCloud)", func(v []string) tea.Cmd {
			return m.act(func(ctx context.Context) doneMsg {
				return add(ctx, admin.UpstreamForm{Name: v[0], Kind: "radius", Servers: splitList(v[1]), RequireMessageAuthenticator: yes(v[3]), Secret: []byte(v[2])})
			})
		},
			field("name", "e.g. clinic-nps", false, 64),
			field("servers", "host:port, comma-separated for failover, e.g. 10.0.0.5:1812", false, 300),
			field("secret", "the shared secret that server has for this appliance", true, 128),
			field("msg-auth", "yes: its replies carry Message-Authenticator (no: FreeRADIUS 3.2.1 PAP)", false, 3),
		)
	case "oidc":
		return newForm("Add an OpenID Provider (Entra ID, Okta) with the password grant", func(v []string) tea.Cmd {
			return m.act(func(ctx context.Context) doneMsg {
				return add(ctx, admin.UpstreamForm{Name: v[0], Kind: "oidc", Issuer: v[1], ClientID: v[2], UsernameSuffix: v[4], Secret: []byte(v[3])})
			})
		},
			field("name", "e.g. entra", false, 64),
			field("issuer", "e.g. https://login.microsoftonline.com/TENANT-ID/v2.0", false, 300),
			field("client id", "the app registration's id", false, 128),
			field("secret", "the app registration's client secret", true, 256),
			field("suffix", "appended to short names, e.g. @clinic.onmicrosoft.com (optional)", false, 128),
		)
	default:
		return newForm("Add an LDAP or Active Directory upstream", func(v []string) tea.Cmd {
			return m.act(func(ctx context.Context) doneMsg {
				// Kind ad: this form's user attribute defaults to
				// sAMAccountName, as its hint says.
				return add(ctx, admin.UpstreamForm{Name: v[0], Kind: "ad", URLs: splitList(v[1]), CAFile: v[6],
					BindDN: v[2], BaseDN: v[4], UserAttribute: v[5], Secret: []byte(v[3])})
			})
		},
			field("name", "e.g. clinic-ad", false, 64),
			field("urls", "ldaps://dc1.clinic.local:636 (ldap:// gets StartTLS), comma-separated", false, 300),
			field("bind as", "the service account, e.g. svc-clinicgate@clinic.local", false, 256),
			field("password", "the service account's password", true, 256),
			field("base DN", "where users are, e.g. dc=clinic,dc=local", false, 256),
			field("user attr", "sAMAccountName (AD, the default), uid, userPrincipalName or mail", false, 64),
			field("CA file", "PEM file of the CA that signed the DC's certificate (empty: the system's)", false, 256),
		)
	}
}

// editUpstreamForm changes an upstream in place: its settings (the kind's
// JSON, as 'clinicgate upstream list' shows it, directory sync included),
// and, when given, its secret and its directory-sync token. The settings
// are checked by building the connector before anything is stored.
func (m Model) editUpstreamForm(u admin.Upstream) *form {
	fields := []formField{
		field("settings", "the "+u.Kind+" settings (JSON; e.g. urls, base_dn, sync, sync_interval_minutes)", false, 4096),
		field("secret", "the service account's password or shared secret; empty: keep it", true, 512),
		field("sync token", "a directory-sync API token (Okta); empty: keep it", true, 512),
	}
	fields[0].input.SetValue(u.Config)
	name, version := u.Name, u.Version
	return newForm("Upstream "+name+" ("+u.Kind+")", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			e := admin.UpstreamEdit{Config: v[0], Version: version}
			if v[1] != "" {
				e.Secret = secrets.Secret(v[1])
			}
			warnings, err := m.p.Upstreams.EditUpstream(ctx, name, e)
			if err != nil {
				return doneMsg{err: err}
			}
			if v[2] != "" {
				if err := m.p.Upstreams.SetSyncToken(ctx, name, secrets.Secret(v[2])); err != nil {
					return doneMsg{err: fmt.Errorf("the settings were saved, but the sync token was not: %w", err)}
				}
			}
			text := "upstream " + name + " saved; the daemon uses it within a second"
			if len(warnings) > 0 {
				return doneMsg{text: text, show: "Upstream " + name + " saved, with warnings:\n\n  " + strings.Join(warnings, "\n  ")}
			}
			return doneMsg{text: text}
		})
	}, fields...)
}

func coaValue(p policy.Posture) string {
	if p.CoA == "" {
		return "off"
	}
	if p.CoAPort != 0 && p.CoAPort != policy.DefaultCoAPort {
		return p.CoA + ":" + strconv.Itoa(p.CoAPort)
	}
	return p.CoA
}

// parseCoA reads the coa field: off, or the mode with the NAS's dynamic
// authorization port when it is not 3799 ('client set --coa-port').
func parseCoA(s string, into *policy.Posture) error {
	mode, port, hasPort := strings.Cut(strings.TrimSpace(s), ":")
	into.CoA, into.CoAPort = "", 0
	if mode == "off" || mode == "" {
		return nil
	}
	into.CoA = mode
	if hasPort {
		n, err := strconv.Atoi(strings.TrimSpace(port))
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: coa: %q: the port is a number from 1 to 65535 (the NAS's CoA port, 3799 by default)", admin.ErrInvalid, port)
		}
		into.CoAPort = n
	}
	return nil
}
