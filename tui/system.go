package tui

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/hostcfg"
)

// The appliance's own system, for images without a shell (issue 14): n
// on the Dashboard sets the network, host name and NTP servers; p
// reboots, powers off or resets to factory settings. The console asks;
// the root helper unit does it (appliance/hostcfg). On a plain Debian
// install the helper is not enabled and the console shows what it would
// change, changing nothing.

// systemWait is how long the console waits for the helper's answer.
const systemWait = 20 * time.Second

func (m Model) networkCmd() tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		return doneMsg{next: m.networkForm(m.p.Wizard.SystemNow(ctx))}
	})
}

func (m Model) networkForm(st admin.SystemState) *form {
	f := newForm("Network, host name and time (empty field: unchanged)", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			reqs, err := networkRequests(v, st.Hostname)
			if err != nil {
				return doneMsg{err: err}
			}
			if len(reqs) == 0 {
				return doneMsg{text: "network and time: nothing changed"}
			}
			return m.systemChanges(ctx, reqs)
		})
	},
		field("port", "a network port (eth0, enp1s0); empty: every Ethernet port", false, 15),
		field("address", "dhcp, or a fixed address with its prefix: 192.168.1.5/24", false, 43),
		field("gateway", "with a fixed address: the router, e.g. 192.168.1.1", false, 39),
		field("dns", "DNS servers, comma-separated (empty with dhcp: DHCP's)", false, 120),
		withValue(field("host name", "this appliance's name (letters, digits, hyphens)", false, 63), st.Hostname),
		field("ntp", "NTP servers for the clock, comma-separated (TOTP needs it right)", false, 200))
	if st.Managed {
		f.note = append(f.note, "Changes are made by the system helper at once; a new address ends this SSH session.")
	} else {
		f.note = append(f.note, "Not an appliance image: nothing is changed, the console shows what would be.")
	}
	for i, a := range st.Addrs {
		if i == 4 {
			break
		}
		f.note = append(f.note, "now: "+a)
	}
	return f
}

// networkRequests turns the form into requests: the network when an
// address is given, the host name when it changed, NTP when given.
func networkRequests(v []string, hostNow string) ([]hostcfg.Request, error) {
	port, addr, gw, dns, host, ntp := strings.TrimSpace(v[0]), strings.TrimSpace(v[1]), strings.TrimSpace(v[2]), v[3], strings.TrimSpace(v[4]), v[5]
	var reqs []hostcfg.Request
	if addr != "" {
		n := &hostcfg.Network{Interface: port, DHCP: strings.EqualFold(addr, "dhcp")}
		if !n.DHCP {
			p, err := netip.ParsePrefix(addr)
			if err != nil {
				return nil, fmt.Errorf("%w: address %q: give dhcp, or an address with its prefix such as 192.168.1.5/24", admin.ErrInvalid, addr)
			}
			n.Address = p
			if gw != "" {
				if n.Gateway, err = netip.ParseAddr(gw); err != nil {
					return nil, fmt.Errorf("%w: gateway %q is not an address", admin.ErrInvalid, gw)
				}
			}
		} else if gw != "" {
			return nil, fmt.Errorf("%w: DHCP gives the gateway: leave it empty", admin.ErrInvalid)
		}
		for _, d := range splitList(dns) {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return nil, fmt.Errorf("%w: DNS server %q is not an address", admin.ErrInvalid, d)
			}
			n.DNS = append(n.DNS, a)
		}
		reqs = append(reqs, hostcfg.Request{Kind: hostcfg.KindNetwork, Network: n})
	} else if gw != "" || strings.TrimSpace(dns) != "" || port != "" {
		return nil, fmt.Errorf("%w: give the address (dhcp, or 192.168.1.5/24) with the port, gateway or DNS", admin.ErrInvalid)
	}
	if host != "" && host != hostNow {
		reqs = append(reqs, hostcfg.Request{Kind: hostcfg.KindHostname, Hostname: host})
	}
	if s := splitList(ntp); len(s) > 0 {
		reqs = append(reqs, hostcfg.Request{Kind: hostcfg.KindNTP, NTP: s})
	}
	return reqs, nil
}

// systemChanges asks for each change in turn and says what became of it.
func (m Model) systemChanges(ctx context.Context, reqs []hostcfg.Request) doneMsg {
	var done, shown []string
	for _, r := range reqs {
		ch, err := m.p.Wizard.RequestSystemChange(ctx, r)
		if err != nil {
			return doneMsg{err: err}
		}
		if ch.ID == "" {
			shown = append(shown, ch.Preview)
			continue
		}
		res, err := m.p.Wizard.SystemResult(ctx, ch.ID, systemWait)
		switch {
		case errors.Is(err, admin.ErrNoHelper) && (r.Kind == hostcfg.KindReboot || r.Kind == hostcfg.KindPowerOff || r.Kind == hostcfg.KindFactoryReset):
			return doneMsg{text: ch.Summary + ": asked; the appliance goes down now"}
		case err != nil:
			return doneMsg{err: fmt.Errorf("%s: %w", ch.Summary, err)}
		case !res.OK:
			return doneMsg{err: fmt.Errorf("%w: the system helper refused %s: %s", admin.ErrInvalid, ch.Summary, res.Message)}
		}
		done = append(done, res.Message)
	}
	if len(shown) > 0 {
		return doneMsg{text: "not an appliance image: nothing changed", show: strings.Join(shown, "\n\n")}
	}
	return doneMsg{text: "done: " + strings.Join(done, "; ")}
}

func (m Model) powerForm() *form {
	host := m.p.Wizard.SystemNow(context.Background()).Hostname
	f := newForm("Reboot, power off or factory reset", func(v []string) tea.Cmd {
		action, confirm := strings.TrimSpace(v[0]), strings.TrimSpace(v[1])
		return m.act(func(ctx context.Context) doneMsg {
			switch action {
			case hostcfg.KindReboot, hostcfg.KindPowerOff, hostcfg.KindFactoryReset:
			default:
				return doneMsg{err: fmt.Errorf("%w: action: reboot, poweroff or factory-reset", admin.ErrInvalid)}
			}
			return m.systemChanges(ctx, []hostcfg.Request{{Kind: action, Confirm: confirm}})
		})
	},
		field("action", "reboot, poweroff or factory-reset", false, 16),
		field("confirm", "type the action again; for factory-reset, this host's name: "+host, false, 64))
	f.note = []string{"factory-reset erases every user, client, key and the audit log:", "take a backup first. Over SSH, the session ends with the appliance."}
	return f
}

// updateForm installs a newer clinicgate .deb uploaded over SFTP into
// incoming/, after the admin types its SHA-256 from the release notes;
// the helper rolls back when the new daemon is not healthy.
func (m Model) updateForm() *form {
	pkgs := m.p.Wizard.IncomingPackages(context.Background())
	f := newForm("Update clinicgate from a package in incoming/", func(v []string) tea.Cmd {
		pkg, sum := strings.TrimSpace(v[0]), strings.ToLower(strings.TrimSpace(v[1]))
		return m.act(func(ctx context.Context) doneMsg {
			if strings.EqualFold(pkg, "usb") {
				// Take the packages on the stick into incoming/ first;
				// then u again with the name and its checksum.
				return m.systemChanges(ctx, []hostcfg.Request{{Kind: hostcfg.KindUSBFetch}})
			}
			return m.systemChanges(ctx, []hostcfg.Request{{Kind: hostcfg.KindUpdate, Package: pkg, SHA256: sum}})
		})
	},
		withValue(field("package", "the .deb's name in incoming/ (upload it over SFTP), or usb: take those on the stick", false, 90), firstOr(pkgs, "")),
		field("sha256", "its SHA-256 as the release names it (64 hex digits)", false, 64))
	f.note = []string{"The daemon restarts: an SSH console ends; a new daemon that is not", "healthy within a minute gets the old binary back."}
	if len(pkgs) == 0 {
		f.note = append(f.note, "No package in incoming/ yet.")
	} else {
		f.note = append(f.note, "In incoming/: "+strings.Join(pkgs, ", "))
	}
	return f
}

func firstOr(s []string, d string) string {
	if len(s) > 0 {
		return s[0]
	}
	return d
}
