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
	for _, d := range m.all.devices {
		s, _ := d.State(now, defaultGrace)
		count[s]++
	}
	hint := fit("enter details · o override · x remove · h CoA log · n enrol · r revoke", m.width)
	if l, ok := m.filterLine(); ok {
		hint = l
	}
	b.WriteString(hint + "\n")
	n := len(m.all.devices)
	b.WriteString(m.mdmLine(fmt.Sprintf("%d %s: %d noncompliant, %d stale", n, plural(n, "device", "devices"), count[admin.Noncompliant], count[admin.Stale])) + "\n")
	b.WriteString(dimStyle.Render(fit(deviceRow("#", "SOURCE", "NAME", "OWNER", "STATE", "SYNCED "+m.clock().abbrev(m.opts.Now())), m.width)) + "\n")
	if len(m.devices) == 0 {
		b.WriteString(fit(m.empty("(no devices: bind MACs on the Users pane (b), or connect an MDM with m: docs/mdm.md)"), m.width) + "\n")
	}
	for i, d := range m.devices {
		if i >= h-3 {
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
		line := fit(deviceRow(fmt.Sprint(d.ID), d.Source, name, deviceOwner(d), state, m.clock().minute(d.SyncedAt)), m.width)
		if i == min(m.cursor, len(m.devices)-1) {
			line = m.selected(line)
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

// deviceDetail is the whole record, as `clinicgate device show` prints it.
func deviceDetail(d admin.Device, ck clock) string {
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
	row("last check-in", ck.full(d.LastSeen))
	row("last sync", ck.full(d.SyncedAt))
	if d.Override != "" {
		row("override", fmt.Sprintf("%s until %s by %s: %s", d.Override, ck.full(d.OverrideUntil), d.OverrideBy, d.OverrideReason))
	}
	for _, c := range d.Certs {
		row("certificate", "serial "+c.Serial+", expires "+ck.full(c.NotAfter))
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
		m.show = deviceDetail(d, m.clock())
	case "o":
		m.form = m.overrideForm(d)
	case "r":
		if len(d.Certs) == 0 {
			m.note = fmt.Sprintf("device #%d has no certificate from this appliance", d.ID)
			return m, true
		}
		m.confirm = m.revokeDeviceCerts(d)
	case "x":
		if d.Source != admin.SourceManual {
			m.note = "device #" + fmt.Sprint(d.ID) + " comes from " + d.Source + ": remove it there (only hand-bound MACs are removed here)"
			return m, true
		}
		m.confirm = (&confirmation{question: "Remove device " + d.MAC + " (" + d.UserName + ")?", do: m.act(func(ctx context.Context) doneMsg {
			if err := m.p.Devices.RemoveDevice(ctx, d.MAC); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "device " + d.MAC + " removed"}
		})}).typed(d.MAC)
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
	if p.StaleGrace > 0 && p.StaleGrace != policy.DefaultStaleGrace {
		s += "+grace=" + shortDuration(time.Duration(p.StaleGrace)*time.Second)
	}
	return s
}

// shortDuration writes 48h rather than 48h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return strings.TrimSuffix(s, "0m")
}

func parsePosture(s string, into *policy.Posture) error {
	parts := strings.Split(strings.ToLower(strings.ReplaceAll(s, " ", "")), "+")
	into.Device, into.Owner, into.SameUser, into.StaleGrace = "", false, false, 0
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
			// +grace=48h: how long an MDM's word stays good ('client set
			// --stale-grace').
			g, ok := strings.CutPrefix(p, "grace=")
			d, err := time.ParseDuration(g)
			if !ok || err != nil || d < time.Minute {
				return fmt.Errorf("%w: posture: %q is not +own, +same-user or +grace=DURATION (at least 1m, e.g. 48h)", admin.ErrInvalid, p)
			}
			into.StaleGrace = int(d / time.Second)
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
			fmt.Fprintf(&b, "%s %-19s %-12s %s\n", m.clock().minute(e.CreatedAt), clip(e.Kind, 19), clip(dashIf(e.UserName), 12), clip(result, 40))
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

// mdmLine says, in one line, each MDM's state: devices, age of the last
// good sync, the last error. m connects one, s syncs them now.
func (m Model) mdmLine(counts string) string {
	if len(m.mdms) == 0 {
		return fit(counts+" · MDM: none (m: connect one)", m.width)
	}
	var parts []string
	for _, s := range m.mdms {
		p := fmt.Sprintf("%s %d", s.Name, s.Devices)
		switch {
		case s.Problem != "":
			p += " BROKEN"
		case s.LastError != "" && s.LastAttempt.After(s.LastSuccess):
			p += " FAILING: " + clip(s.LastError, 24)
		case s.LastSuccess.IsZero():
			p += " not synced yet"
		default:
			p += " synced " + ago(s.LastSuccess)
		}
		if s.Stale {
			p += " (stale)"
		}
		parts = append(parts, p)
	}
	line := counts + " · MDM (m, s sync): " + strings.Join(parts, " · ")
	if len(m.mdms) > 0 && m.mdms[0].Rule != "" && len(m.mdms) == 1 {
		line += " · rule " + m.mdms[0].Rule
	}
	st := dimStyle
	for _, s := range m.mdms {
		if s.Problem != "" || s.Stale || (s.LastError != "" && s.LastAttempt.After(s.LastSuccess)) {
			st = rejectStyle
		}
	}
	return st.Render(fit(line, m.width))
}

func ago(t time.Time) string {
	d := time.Since(t).Round(time.Minute)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// mdmForm asks which MDM, then that MDM's own settings (as the command
// line's mdm set takes them). The secret is typed or pasted, never shown.
func (m Model) mdmForm() *form {
	return newForm("Connect an MDM: where the clinic's devices and their compliance come from", func(v []string) tea.Cmd {
		name := strings.ToLower(strings.TrimSpace(v[0]))
		return func() tea.Msg {
			switch name {
			case "intune", "jamf", "google":
				return doneMsg{next: m.mdmSettingsForm(name)}
			}
			return doneMsg{err: fmt.Errorf("%w: answer intune (Microsoft Intune), jamf (Jamf Pro) or google (Google endpoint management)", admin.ErrInvalid)}
		}
	}, field("mdm", "intune, jamf or google (docs/mdm.md says what to set up there first)", false, 10))
}

func (m Model) mdmSettingsForm(name string) *form {
	var fields []formField
	switch name {
	case "intune":
		fields = []formField{
			field("tenant", "the Entra tenant id or domain, e.g. clinic.onmicrosoft.com", false, 200),
			field("client id", "the app registration's application (client) id", false, 100),
			field("secret", "the app registration's client secret (not shown)", true, 512),
		}
	case "jamf":
		fields = []formField{
			field("url", "the Jamf Pro server, e.g. https://clinic.jamfcloud.com", false, 300),
			field("client id", "the API client's id", false, 100),
			field("secret", "the API client's secret (not shown)", true, 512),
			field("rule", "smart-group:ID, or checks: filevault,firewall,os>=14.4", false, 200),
		}
	case "google":
		fields = []formField{
			field("customer", "the Workspace customer id (C0…), or my_customer", false, 100),
			field("admin", "the administrator the service account acts as", false, 200),
			field("key", "paste the service account's JSON key (not shown)", true, 8192),
		}
	}
	fields = append(fields, withValue(field("interval", "how often to sync, 1m to 24h", false, 10), "15m"))
	return newForm("MDM "+name+": settings", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			iv, err := time.ParseDuration(strings.TrimSpace(v[len(v)-1]))
			if err != nil {
				return doneMsg{err: fmt.Errorf("%w: interval: %q is not a duration like 15m", admin.ErrInvalid, v[len(v)-1])}
			}
			c := admin.MDMConfig{Name: name, Interval: iv}
			trim := func(i int) string { return strings.TrimSpace(v[i]) }
			switch name {
			case "intune":
				c.Intune, c.Secret = &admin.IntuneSettings{TenantID: trim(0), ClientID: trim(1)}, secretOrNil(v[2])
			case "jamf":
				c.Jamf, c.Secret = &admin.JamfSettings{URL: trim(0), ClientID: trim(1), Rule: trim(3)}, secretOrNil(v[2])
			case "google":
				c.Google, c.Secret = &admin.GoogleSettings{Customer: trim(0), AdminEmail: trim(1)}, secretOrNil(v[2])
			}
			if err := m.p.Devices.SetMDM(ctx, c); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "MDM " + name + " saved; the daemon syncs it within a few seconds (s: sync now)"}
		})
	}, fields...)
}

func secretOrNil(s string) []byte {
	if strings.TrimSpace(s) == "" {
		return nil // keep the stored one
	}
	return []byte(strings.TrimSpace(s))
}

// syncMDMCmd asks the daemon to sync every MDM now and waits a little
// for the outcome.
func (m Model) syncMDMCmd() tea.Cmd {
	names := make([]string, len(m.mdms))
	for i, s := range m.mdms {
		names[i] = s.Name
	}
	return m.act(func(ctx context.Context) doneMsg {
		if len(names) == 0 {
			return doneMsg{err: fmt.Errorf("%w: no MDM is connected yet (m)", admin.ErrInvalid)}
		}
		var said []string
		for _, n := range names {
			out, err := m.p.Devices.SyncMDM(ctx, n, 20*time.Second)
			switch {
			case err != nil:
				return doneMsg{err: err}
			case !out.Done:
				said = append(said, n+": still running (is the daemon up?)")
			case out.Err != "":
				said = append(said, n+" failed: "+out.Err)
			default:
				said = append(said, fmt.Sprintf("%s: %d %s", n, out.Devices, plural(out.Devices, "device", "devices")))
			}
		}
		return doneMsg{text: "sync " + strings.Join(said, "; ")}
	})
}

// scepChallengeForm makes a one-time challenge for a device to enrol a
// certificate from the appliance's CA over SCEP, and shows it once with
// where to enrol.
func (m Model) scepChallengeForm() *form {
	url := "https://THIS-APPLIANCE:PORT/scep (turn the SCEP door on: docs/scep.md)"
	if u, _, ok := scepDoorURL(m.daemon); ok {
		url = u
	} else if d := m.daemon; d != nil {
		// A daemon older than this console reports only its listener.
		for _, l := range d.Listeners {
			if l.Door == admin.ListenSCEP {
				url = "https://" + l.Address + "/scep (use the appliance's name or address for a wildcard host)"
			}
		}
	}
	return newForm("Enrol a device certificate (SCEP): a one-time challenge", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			ttl, err := time.ParseDuration(strings.TrimSpace(v[3]))
			if err != nil {
				return doneMsg{err: fmt.Errorf("%w: valid for: %q is not a duration like 24h", admin.ErrInvalid, v[3])}
			}
			uses, err := strconv.Atoi(strings.TrimSpace(v[4]))
			if err != nil {
				return doneMsg{err: fmt.Errorf("%w: devices: %q is not a number (1: a one-time challenge)", admin.ErrInvalid, v[4])}
			}
			validity, err := time.ParseDuration(strings.TrimSpace(v[5]))
			if err != nil {
				return doneMsg{err: fmt.Errorf("%w: cert valid: %q is not a duration like 8760h (a year)", admin.ErrInvalid, v[5])}
			}
			ch, err := m.p.Devices.CreateSCEPChallenge(ctx, admin.SCEPChallengeRequest{Device: strings.TrimSpace(v[0]), User: strings.TrimSpace(v[1]), MAC: strings.TrimSpace(v[2]),
				TTL: ttl, Uses: uses, Validity: validity})
			if err != nil {
				return doneMsg{err: err}
			}
			show := fmt.Sprintf("Give the device (or its profile) this challenge. It is shown once and works once, until %s:\n\n    %s\n\nSCEP URL: %s\n\nThe certificate it gets is trusted for EAP-TLS at once, and r on this tab revokes it.",
				m.clock().full(ch.ExpiresAt), ch.Challenge, url)
			if ch.Uses > 1 {
				// An MDM's static challenge ('scep challenge --uses N').
				show = fmt.Sprintf("Give the MDM's SCEP payload this challenge (number %d). It is shown once and enrols up to %d devices until %s:\n\n    %s\n\nSCEP URL: %s\n\nAnyone who reads it can enrol a device until then: withdraw it (c on this tab) once your devices are enrolled (docs/scep.md).",
					ch.ID, ch.Uses, m.clock().full(ch.ExpiresAt), ch.Challenge, url)
			}
			return doneMsg{text: "challenge made", show: show}
		})
	},
		field("device", "the device's name: an inventory record of that name gets the certificate", false, 64),
		field("user", "its owner: EAP-TLS logs in as this user (empty: none)", false, 64),
		field("mac", "its Wi-Fi MAC, for a new record (optional)", false, 32),
		withValue(field("valid for", "how long the challenge may be used, e.g. 24h", false, 10), "24h"),
		withValue(field("devices", "how many devices may enrol with it: more than 1 is an MDM's static challenge (no device, no mac)", false, 6), "1"),
		withValue(field("cert valid", "how long the certificate it buys is valid (8760h: a year)", false, 10), "8760h"),
	)
}

// revokeDeviceCerts revokes every certificate of a device: its next
// EAP-TLS handshake is refused, the CRL says so, and where the client sends
// CoA its session ends now.
func (m Model) revokeDeviceCerts(d admin.Device) *confirmation {
	n := len(d.Certs)
	return (&confirmation{question: fmt.Sprintf("Revoke the %d %s of device #%d (%s)? It cannot log in with %s again.", n, plural(n, "certificate", "certificates"), d.ID, clip(d.Description, 24), plural(n, "it", "them")),
		do: m.act(func(ctx context.Context) doneMsg {
			for _, c := range d.Certs {
				if _, err := m.p.Devices.RevokeCert(ctx, c.Fingerprint, "revoked from the console"); err != nil {
					return doneMsg{err: err}
				}
			}
			return doneMsg{text: fmt.Sprintf("device #%d: %d %s revoked", d.ID, n, plural(n, "certificate", "certificates"))}
		})}).typed(d.Description)
}
