package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The LDAP pane: how the LDAP door presents the directory (the ldap_ site
// settings) and the bind accounts an EHR searches with. The LDAP clients
// themselves (which servers may bind, under which policy) are on the
// Clients pane, with the RADIUS ones.

type ldapMsg struct {
	binds    []admin.BindAccount
	settings map[string]string
	err      error
}

func (m Model) fetchLDAP() tea.Cmd {
	a := m.p.LDAP
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := a.LDAPSettings(ctx)
		if err != nil {
			return ldapMsg{err: err}
		}
		b, err := a.BindAccounts(ctx)
		return ldapMsg{binds: b, settings: s, err: err}
	}
}

// ldapFirstRow is the screen line of the first bind account: under the
// title, status, pane header, the seven settings lines, a blank line and
// the column header.
const ldapFirstRow = 12

func (m Model) viewLDAP(h int) string {
	var b strings.Builder
	hint := fit("a: add a bind account · x: remove it · e: edit settings · c: certificate", m.width)
	if l, ok := m.filterLine(); ok {
		hint = l
	}
	b.WriteString(hint + "\n")
	h--
	line := func(k, v string) { b.WriteString(fit(fmt.Sprintf("%-10s %s", k, v), m.width) + "\n") }
	s := m.ldapSet
	switch {
	case m.ldapErr != "":
		b.WriteString(rejectStyle.Render(fit(m.ldapErr, m.width)) + "\n")
		return b.String()
	case s == nil:
		b.WriteString("(reading the LDAP settings…)\n")
		return b.String()
	}
	line("base DN", s["ldap_base_dn"])
	line("domain", s["ldap_domain"]+" (user@"+s["ldap_domain"]+" binds)")
	line("NetBIOS", s["ldap_netbios"]+" ("+s["ldap_netbios"]+`\user binds)`)
	switch mode, up := s["ldap_mode"], s["ldap_proxy_upstream"]; {
	case mode == appliance.LDAPModeProxy && up == "":
		line("mode", "proxy, but no upstream is set: searches fail (e: set one)")
	case mode == appliance.LDAPModeProxy:
		line("mode", "proxy: searches go to the upstream "+up)
	default:
		line("mode", mode+": the appliance's own users and groups")
	}
	line("limits", s["ldap_size_limit"]+" entries and "+s["ldap_time_limit"]+" s per search")
	line("listening", m.ldapListening())
	line("TLS", m.ldapCertLine())
	b.WriteString("\n")
	h -= 8
	b.WriteString(dimStyle.Render(fit(fmt.Sprintf(bindRow, "BIND ACCOUNT", "MAY BIND FROM", "ADDED"), m.width)) + "\n")
	h--
	if len(m.binds) == 0 {
		b.WriteString(fit(m.empty("(no bind accounts yet: press a to add the one the EHR searches with)"), m.width) + "\n")
	}
	for i, a := range m.binds {
		if i >= h {
			break
		}
		nets := make([]string, len(a.Networks))
		for j, p := range a.Networks {
			nets[j] = p.String()
		}
		l := fit(fmt.Sprintf(bindRow, clip(a.Name, 20), clip(strings.Join(nets, ", "), 40), m.clock().day(a.CreatedAt)), m.width)
		if i == min(m.cursor, len(m.binds)-1) {
			l = m.selected(l)
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

const bindRow = "%-20s %-40s %s"

// ldapListening says where the daemon answers LDAP, from its status.
func (m Model) ldapListening() string {
	if m.daemon == nil {
		return "the daemon has not reported (is it running?)"
	}
	var out []string
	for _, l := range m.daemon.Listeners {
		switch l.Door {
		case admin.ListenLDAP:
			out = append(out, "LDAP (StartTLS) "+l.Address)
		case admin.ListenLDAPS:
			out = append(out, "LDAPS "+l.Address)
		}
	}
	if len(out) == 0 {
		return "not at all: the LDAP door is off (ldap: listen in the config)"
	}
	return strings.Join(out, " · ")
}

func (m Model) addBindAccountForm() *form {
	base := m.ldapSet["ldap_base_dn"]
	netbios := m.ldapSet["ldap_netbios"]
	ports := m.ldapPorts() // where the daemon really listens
	return newForm("Add a bind account (the service account an EHR searches with)", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			name, nets := strings.TrimSpace(v[0]), splitList(v[1])
			sec, err := m.p.LDAP.AddBindAccount(ctx, admin.NewBindAccount{Name: name, Networks: nets})
			if err != nil {
				return doneMsg{err: err}
			}
			var how strings.Builder
			fmt.Fprintf(&how, "Bind account %s added; it may search, from %s.\n\n", name, strings.Join(nets, ", "))
			fmt.Fprintf(&how, "Enter this bind password in the EHR's LDAP settings. It is shown once:\n\n    %s\n\n", string(sec))
			who := name
			if netbios != "" {
				who += " (or " + netbios + `\` + name + ")"
			}
			fmt.Fprintf(&how, "There, the bind DN or user is %s,\n", who)
			if base != "" {
				fmt.Fprintf(&how, "the base DN %s, ", base)
			}
			how.WriteString("the server this appliance:\n" + ports + ".")
			return doneMsg{text: "bind account " + name + " added", show: how.String()}
		})
	},
		field("name", "e.g. ehr-search (not a person's name: it may only search)", false, 64),
		field("networks", "the EHR server's address, comma-separated, e.g. 192.168.1.20", false, 300),
	)
}

func (m Model) removeBindAccount(name string) *confirmation {
	return (&confirmation{question: "Remove the bind account " + name + "? An EHR searching with it stops finding users.", do: m.act(func(ctx context.Context) doneMsg {
		if err := m.p.LDAP.RemoveBindAccount(ctx, name); err != nil {
			return doneMsg{err: err}
		}
		return doneMsg{text: "bind account " + name + " removed"}
	})}).typed(name)
}

// ldapSettingFields are the settings the form edits, in the order they
// are written: the proxy upstream before the mode, so the LDAP door never
// sees proxy mode without its upstream.
var ldapSettingFields = []struct{ key, label, help string }{
	{"ldap_base_dn", "base DN", "what the EHR calls the base DN, e.g. dc=clinic,dc=local"},
	{"ldap_domain", "domain", "the DNS domain of user@domain binds, e.g. clinic.local"},
	{"ldap_netbios", "NetBIOS", `the short domain name of DOMAIN\user binds, e.g. CLINIC`},
	{"ldap_size_limit", "size limit", "most entries one search returns (1-100000)"},
	{"ldap_time_limit", "time limit", "longest a search may take, in seconds (1-300)"},
	{"ldap_proxy_upstream", "upstream", "proxy mode: the LDAP upstream searches go to (empty: none)"},
	{"ldap_attributes", "attributes", "proxy mode: the only attributes returned, comma-separated"},
	{"ldap_mode", "mode", "directory (the appliance's users and groups) or proxy"},
}

// ldapSettingsForm edits the LDAP door's settings; only the values that
// changed are written, each checked first so a mistake writes nothing.
func (m Model) ldapSettingsForm() *form {
	old := m.ldapSet
	// Shown in the order a contractor thinks of them: names, then mode.
	order := []int{0, 1, 2, 7, 5, 3, 4, 6}
	var fields []formField
	for _, i := range order {
		f := ldapSettingFields[i]
		fl := field(f.label, f.help, false, 1024)
		fl.input.SetValue(old[f.key])
		fields = append(fields, fl)
	}
	return newForm("LDAP settings", func(v []string) tea.Cmd {
		val := map[string]string{}
		for j, i := range order {
			val[ldapSettingFields[i].key] = strings.TrimSpace(v[j])
		}
		return m.act(func(ctx context.Context) doneMsg {
			var changed []string
			for _, f := range ldapSettingFields {
				if val[f.key] == old[f.key] {
					continue
				}
				if err := appliance.CheckSetting(f.key, val[f.key]); err != nil {
					return doneMsg{err: fmt.Errorf("%w: %s: %s", admin.ErrInvalid, f.label, settingProblem(f.key, err))}
				}
				changed = append(changed, f.key)
			}
			if val["ldap_mode"] == appliance.LDAPModeProxy {
				if err := m.checkProxyUpstream(ctx, val["ldap_proxy_upstream"]); err != nil {
					return doneMsg{err: err}
				}
			}
			if len(changed) == 0 {
				return doneMsg{text: "LDAP settings: nothing changed"}
			}
			for _, k := range changed {
				if err := m.p.LDAP.SetSetting(ctx, k, val[k]); err != nil {
					return doneMsg{err: err}
				}
			}
			return doneMsg{text: "LDAP settings saved (" + strings.Join(changed, ", ") + "); the LDAP door uses them within a second"}
		})
	}, fields...)
}

// settingProblem drops the setting's key from CheckSetting's words
// ("ldap_mode \"x\" must be …"): the form names the field instead.
func settingProblem(key string, err error) string {
	return strings.TrimPrefix(err.Error(), key+" ")
}

// checkProxyUpstream: proxy mode forwards searches to an LDAP upstream,
// which must exist.
func (m Model) checkProxyUpstream(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("%w: upstream: proxy mode needs the name of an LDAP upstream (add one on the Upstreams pane), or set mode to directory", admin.ErrInvalid)
	}
	ups, err := m.p.LDAP.Upstreams(ctx)
	if err != nil {
		return err
	}
	for _, u := range ups {
		if u.Name == name {
			if u.Kind != "ldap" {
				return fmt.Errorf("%w: upstream: %s is a %s upstream; proxy mode needs an LDAP one (Active Directory, OpenLDAP)", admin.ErrInvalid, name, u.Kind)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: upstream: there is no upstream %q (add it on the Upstreams pane first)", admin.ErrInvalid, name)
}
