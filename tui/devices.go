package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
)

// The Devices pane lists the inventory: MACs bound by hand, devices the
// MDMs list, devices that enrolled a certificate (docs/posture.md).

// defaultGrace is the staleness the pane shows; each client may set its own.
const defaultGrace = policy.DefaultStaleGrace * time.Second

func (m Model) viewDevices(h int) string {
	var b strings.Builder
	now := time.Now()
	count := map[admin.Compliance]int{}
	for _, d := range m.devices {
		s, _ := d.State(now, defaultGrace)
		count[s]++
	}
	b.WriteString(fit(fmt.Sprintf("enter · o override · x remove · h CoA log   %d devices: %d noncompliant, %d stale",
		len(m.devices), count[admin.Noncompliant], count[admin.Stale]), m.width) + "\n")
	b.WriteString(dimStyle.Render(fit(deviceRow("#", "SOURCE", "NAME", "OWNER", "STATE", "SYNCED"), m.width)) + "\n")
	if len(m.devices) == 0 {
		b.WriteString("(no devices: bind MACs on the Users pane (b), or connect an MDM: docs/mdm.md)\n")
	}
	for i, d := range m.devices {
		if i >= h-2 {
			break
		}
		s, _ := d.State(now, defaultGrace)
		state := string(s)
		if d.Override != "" && now.Before(d.OverrideUntil) {
			state += "*"
		}
		name := d.Description
		if name == "" {
			name = d.MAC
		}
		line := fit(deviceRow(fmt.Sprint(d.ID), d.Source, name, deviceOwner(d), state, shortTime(d.SyncedAt)), m.width)
		if i == min(m.cursor, len(m.devices)-1) {
			line = cursorStyle.Render(line)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func deviceRow(id, source, name, owner, state, synced string) string {
	return fmt.Sprintf("%-4s %-7s %-19s %-17s %-13s %s", clip(id, 4), clip(source, 7), clip(name, 19), clip(owner, 17), clip(state, 13), synced)
}

func deviceOwner(d admin.Device) string {
	switch {
	case d.Shared:
		return "(shared)"
	case d.UserName == "":
		return "-"
	}
	return d.UserName
}

func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("01-02 15:04")
}

// deviceDetail is the whole record, as `clinicgate device show` prints it.
func deviceDetail(d admin.Device) string {
	s, why := d.State(time.Now(), defaultGrace)
	var b strings.Builder
	fmt.Fprintf(&b, "Device #%d: %s\n\n", d.ID, d.Description)
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "%-14s %s\n", k, v)
	}
	row("source", d.Source+" "+d.SourceID)
	row("serial", d.Serial)
	row("owner", deviceOwner(d))
	row("MACs", strings.Join(d.MACs, ", "))
	row("compliance", string(s))
	row("why", why)
	row("MDM says", strings.TrimSpace(string(d.Compliance)+" "+d.ComplianceReason))
	row("last check-in", shortTime(d.LastSeen))
	row("last sync", shortTime(d.SyncedAt))
	if d.Override != "" {
		row("override", fmt.Sprintf("%s until %s by %s: %s", d.Override, shortTime(d.OverrideUntil), d.OverrideBy, d.OverrideReason))
	}
	for _, c := range d.Certs {
		row("certificate", "serial "+c.Serial+", expires "+shortTime(c.NotAfter))
	}
	fmt.Fprintf(&b, "\nStale after %s without a sync unless a client sets its own grace.", defaultGrace)
	return b.String()
}

// overrideForm sets or clears an admin's override of a device's
// compliance, for a bounded time, with a reason the audit keeps.
func (m Model) overrideForm(d admin.Device) *form {
	return newForm(fmt.Sprintf("Override the compliance of device #%d (%s)", d.ID, clip(d.Description, 30)), func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			state := admin.Compliance(strings.TrimSpace(v[0]))
			if state == "clear" {
				state = ""
			}
			dur, err := time.ParseDuration(strings.TrimSpace(v[1]))
			if err != nil && state != "" {
				return doneMsg{err: fmt.Errorf("for: %q is not a duration like 8h or 72h", v[1])}
			}
			if err := m.p.Devices.OverrideDevice(ctx, d.ID, state, dur, v[2]); err != nil {
				return doneMsg{err: err}
			}
			if state == "" {
				return doneMsg{text: fmt.Sprintf("device #%d: override cleared", d.ID)}
			}
			return doneMsg{text: fmt.Sprintf("device #%d: %s for %s", d.ID, state, dur)}
		})
	},
		withValue(field("state", "compliant, noncompliant (ends its sessions where the client sends CoA) or clear", false, 16), "compliant"),
		withValue(field("for", "how long, at most 720h, e.g. 8h", false, 10), "24h"),
		field("reason", "why: the audit keeps it", false, 200),
	)
}

func withValue(f formField, v string) formField {
	f.input.SetValue(v)
	return f
}

// deviceKey handles the Devices pane's keys; ok is false for keys it
// does not own.
func (m Model) deviceKey(msg tea.KeyMsg) (Model, bool) {
	if len(m.devices) == 0 {
		return m, false
	}
	d := m.devices[min(m.cursor, len(m.devices)-1)]
	switch msg.String() {
	case "enter":
		m.show = deviceDetail(d)
	case "o":
		m.form = m.overrideForm(d)
	case "x":
		if d.Source != admin.SourceManual {
			m.note = "device #" + fmt.Sprint(d.ID) + " comes from " + d.Source + ": remove it there (only hand-bound MACs are removed here)"
			return m, true
		}
		m.confirm = &confirmation{question: "Remove device " + d.MAC + " (" + d.UserName + ")?", do: m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Devices.RemoveDevice(ctx, d.MAC); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "device " + d.MAC + " removed"}
		})}
	default:
		return m, false
	}
	return m, true
}

// The policy form writes a client's device rule in three short fields:
// posture "off", "known" or "compliant", each with "+own" (the user's own
// device) and, for LDAP clients, "+same-user"; on-fail "reject" or
// "quarantine:VLAN[:ROLE]"; coa "off", "disconnect" or "quarantine".
// The stale grace and the CoA port are set with the command line.

func formatPosture(p policy.Posture) string {
	s := p.Device
	if s == "" {
		s = "off"
	}
	if p.Owner {
		s += "+own"
	}
	if p.SameUser {
		s += "+same-user"
	}
	return s
}

func parsePosture(s string, into *policy.Posture) error {
	parts := strings.Split(strings.ToLower(strings.ReplaceAll(s, " ", "")), "+")
	into.Device, into.Owner, into.SameUser = "", false, false
	switch parts[0] {
	case "off", "":
	case policy.DeviceKnown, policy.DeviceCompliant:
		into.Device = parts[0]
	default:
		return fmt.Errorf("%w: posture: %q should be off, known or compliant, with +own or +same-user", admin.ErrInvalid, s)
	}
	for _, p := range parts[1:] {
		switch p {
		case "own":
			into.Owner = true
		case "same-user":
			into.SameUser = true
		default:
			return fmt.Errorf("%w: posture: %q is not +own or +same-user", admin.ErrInvalid, p)
		}
	}
	return nil
}

func formatOnFail(p policy.Posture) string {
	if !p.Quarantines() {
		return policy.OnFailReject
	}
	s := fmt.Sprintf("quarantine:%d", p.QuarantineVLAN)
	if p.QuarantineFilterID != "" {
		s += ":" + p.QuarantineFilterID
	}
	return s
}

func parseOnFail(s string, into *policy.Posture) error {
	s = strings.TrimSpace(s)
	into.OnFail, into.QuarantineVLAN, into.QuarantineFilterID = "", 0, ""
	if s == "" || s == policy.OnFailReject {
		return nil
	}
	what, rest, _ := strings.Cut(s, ":")
	vlan, role, _ := strings.Cut(rest, ":")
	n, err := strconv.Atoi(strings.TrimSpace(vlan))
	if what != policy.OnFailQuarantine || (err != nil && vlan != "") {
		return fmt.Errorf("%w: on-fail: %q should be reject or quarantine:VLAN[:ROLE], e.g. quarantine:99", admin.ErrInvalid, s)
	}
	into.OnFail, into.QuarantineVLAN, into.QuarantineFilterID = policy.OnFailQuarantine, n, strings.TrimSpace(role)
	return nil
}

// postureEventsCmd reads the newest posture events (a device turned
// noncompliant, a certificate revoked, a user disabled) and what the NAS
// answered to each Disconnect or CoA (docs/coa.md).
func (m Model) postureEventsCmd() tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		evs, err := m.p.Devices.PostureEvents(ctx, 15)
		if err != nil {
			return doneMsg{err: err}
		}
		var b strings.Builder
		b.WriteString("The newest posture events and what the NAS answered (docs/coa.md):\n\n")
		if len(evs) == 0 {
			b.WriteString("(none yet)")
		}
		for _, e := range evs {
			result := e.Result
			if e.DoneAt.IsZero() {
				result = "pending"
			}
			fmt.Fprintf(&b, "%s %-19s %-12s %s\n", shortTime(e.CreatedAt), clip(e.Kind, 19), clip(dashIf(e.UserName), 12), clip(result, 40))
		}
		return doneMsg{show: strings.TrimRight(b.String(), "\n")}
	})
}

func dashIf(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
