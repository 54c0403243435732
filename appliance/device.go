package appliance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// devicePosture applies the client's device rule (policy.Posture,
// docs/posture.md): which inventory records the request's device matches,
// whether they belong to the user, and whether their MDM calls them
// compliant. It passes, refuses, or (RADIUS, on_fail quarantine) passes
// with the run marked for quarantine attributes.
//
// The device is found by what the door saw: the EAP-TLS client
// certificate and the Calling-Station-Id MAC address for RADIUS; for an
// LDAP bind, the active RADIUS accounting session that holds the bind's
// source address (a Wi-Fi or VPN session), and that session's MAC.
func (g *Gate) devicePosture(ctx context.Context, r *run) (verdict, error) {
	rule := r.req.Client.Policy.Posture
	if !rule.Active() {
		return pass, nil
	}
	var (
		found []store.Device
		what  []string // how the device was found, for the story
		mac   string
	)
	if r.req.Door == DoorLDAP {
		sessions, err := g.store.ActiveSessionsByAddress(ctx, r.req.Source.String())
		if err != nil {
			return stop, fmt.Errorf("posture: sessions at %s: %w", r.req.Source, err)
		}
		if len(sessions) == 0 {
			r.step("device", fmt.Sprintf("no active Wi-Fi/VPN session (RADIUS accounting) holds %s", r.req.Source))
			return g.postureFail(r, ReasonDeviceUnknown, MsgDevice)
		}
		s := sessions[0] // the newest
		what = append(what, fmt.Sprintf("session %s of %s on %s at %s", s.SessionID, dashIfEmpty(s.UserName), s.Client, r.req.Source))
		if rule.SameUser && !sameUser(s.UserName, r.user.Name) {
			r.step("device", what[0]+": not "+r.user.Name)
			return g.postureFail(r, ReasonDeviceNotUsers, MsgDevice)
		}
		mac, _ = policy.NormalizeMAC(s.CallingStation)
		if rule.Device == "" && !rule.Owner {
			r.step("device", what[0]+": same user")
			return pass, nil
		}
	} else {
		mac, _ = policy.NormalizeMAC(r.req.Device)
		if c := r.req.Cert; c != nil {
			ds, err := g.store.DevicesByCert(ctx, c.Fingerprint, strings.ToLower(strings.TrimLeft(c.Serial, "0")))
			if err != nil {
				return stop, fmt.Errorf("posture: devices by certificate: %w", err)
			}
			found = append(found, ds...)
			what = append(what, "certificate "+c.Fingerprint)
		}
	}
	if mac != "" {
		ds, err := g.store.DevicesByMAC(ctx, mac)
		if err != nil {
			return stop, fmt.Errorf("posture: devices by MAC: %w", err)
		}
		for _, d := range ds {
			if !slices.ContainsFunc(found, func(f store.Device) bool { return f.ID == d.ID }) {
				found = append(found, d)
			}
		}
		what = append(what, "MAC "+mac)
	}
	if len(what) == 0 {
		r.step("device", "the request names no device (no Calling-Station-Id MAC address, no client certificate)")
		return g.postureFail(r, ReasonDeviceMissing, MsgDevice)
	}
	if len(found) == 0 {
		r.step("device", strings.Join(what, ", ")+": not in the inventory")
		return g.postureFail(r, ReasonDeviceUnknown, MsgDevice)
	}
	r.step("device", strings.Join(what, ", ")+": "+describeDevices(found))
	if rule.Owner && !slices.ContainsFunc(found, func(d store.Device) bool {
		return d.Shared || (d.UserID != 0 && d.UserID == r.user.ID) || (d.UserID == 0 && sameUser(d.UserName, r.user.Name))
	}) {
		r.step("device", "belongs to "+owners(found)+", not "+r.user.Name)
		return g.postureFail(r, ReasonDeviceNotUsers, MsgDevice)
	}
	if rule.Device != policy.DeviceCompliant {
		r.step("device", "known")
		return pass, nil
	}
	state, why := compliance(found, r.now, time.Duration(rule.Grace())*time.Second)
	r.step("compliance", string(state)+": "+why)
	switch state {
	case store.Compliant:
		return pass, nil
	case store.Stale:
		return g.postureFail(r, ReasonDeviceStale, MsgDeviceHealth)
	default:
		return g.postureFail(r, ReasonDeviceNoncompliant, MsgDeviceHealth)
	}
}

// postureFail refuses, or where the client quarantines (RADIUS only),
// lets the run go on to be accepted with the quarantine attributes.
func (g *Gate) postureFail(r *run, reason Reason, msg string) (verdict, error) {
	rule := r.req.Client.Policy.Posture
	if !rule.Quarantines() || r.req.Door != DoorRADIUS {
		return r.refuse(reason, msg), nil
	}
	r.quarantine = &Attributes{VLAN: rule.QuarantineVLAN, FilterID: rule.QuarantineFilterID}
	r.d.Notes = append(r.d.Notes, "quarantine:"+string(reason))
	r.step("device", fmt.Sprintf("%s: accepted into quarantine (%s)", reason, rule.String()))
	return pass, nil
}

// compliance reads several records of one device together. An admin's
// unexpired override decides (noncompliant if two disagree). Otherwise a
// fresh MDM verdict decides, the worst of them; a record whose MDM data
// is too old is stale; records entered by hand or enrolled over SCEP say
// nothing of health, so a device with only those is unknown.
func compliance(ds []store.Device, now time.Time, grace time.Duration) (store.Compliance, string) {
	var overrides, fresh, stale []string
	var ovState, freshState store.Compliance
	for _, d := range ds {
		s, why := d.State(now, grace)
		line := deviceName(d) + ": " + why
		switch {
		case d.Override != "" && now.Before(d.OverrideUntil):
			overrides = append(overrides, line)
			if ovState != store.Noncompliant {
				ovState = s
			}
		case d.Source == store.SourceManual || d.Source == store.SourceCert:
		case s == store.Stale:
			stale = append(stale, line)
		default:
			fresh = append(fresh, line)
			if freshState == "" || s == store.Noncompliant || (s == store.Unknown && freshState == store.Compliant) {
				freshState = s
			}
		}
	}
	switch {
	case len(overrides) > 0:
		return ovState, strings.Join(overrides, "; ")
	case len(fresh) > 0:
		return freshState, strings.Join(fresh, "; ")
	case len(stale) > 0:
		return store.Stale, strings.Join(stale, "; ")
	}
	return store.Unknown, "no MDM reports on this device (only " + sources(ds) + " records)"
}

func describeDevices(ds []store.Device) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = deviceName(d)
		if d.UserName != "" {
			parts[i] += " of " + d.UserName
		} else if d.Shared {
			parts[i] += " (shared)"
		}
	}
	return strings.Join(parts, "; ")
}

func deviceName(d store.Device) string {
	name := d.Description
	if name == "" {
		name = d.Serial
	}
	if name == "" {
		name = d.MAC
	}
	return fmt.Sprintf("%s [%s %s]", name, d.Source, d.SourceID)
}

func owners(ds []store.Device) string {
	var out []string
	for _, d := range ds {
		if o := dashIfEmpty(d.UserName); !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return strings.Join(out, ", ")
}

func sources(ds []store.Device) string {
	var out []string
	for _, d := range ds {
		if !slices.Contains(out, d.Source) {
			out = append(out, d.Source)
		}
	}
	return strings.Join(out, ", ")
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sameUser compares a user name as a NAS, an MDM or the directory wrote
// it with a local one: case-insensitive, ignoring a DOMAIN\ prefix and an
// @realm suffix ("CLINIC\alice", "alice@clinic.example" and "alice" are
// one user). A clinic has one directory, so local parts do not collide.
func sameUser(a, b string) bool {
	return a != "" && strings.EqualFold(bareName(a), bareName(b))
}

func bareName(s string) string {
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	return s
}
