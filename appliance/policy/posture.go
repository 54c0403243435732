package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Posture is a client's device rule (docs/posture.md). The zero value
// checks nothing.
type Posture struct {
	// Device is what the device must be: "" (not checked), DeviceKnown
	// (in the inventory, from any source) or DeviceCompliant (and its
	// compliance, read from its MDM within StaleGrace, is compliant).
	Device string `json:"device,omitempty" yaml:"device,omitempty"`
	// Owner: the device (by MAC or certificate) must belong to the user
	// who logs in, or be a shared workstation.
	Owner bool `json:"owner,omitempty" yaml:"owner,omitempty"`
	// SameUser, for an LDAP client: the RADIUS session (Wi-Fi or VPN)
	// that holds the bind's source address must be the same user's.
	SameUser bool `json:"same_user,omitempty" yaml:"same_user,omitempty"`
	// OnFail is what a failed rule does: OnFailReject (the default), or
	// OnFailQuarantine, an Accept into QuarantineVLAN and/or with
	// QuarantineFilterID (for controllers that use roles). RADIUS only:
	// an LDAP bind that fails the rule is refused.
	OnFail             string `json:"on_fail,omitempty" yaml:"on_fail,omitempty"`
	QuarantineVLAN     int    `json:"quarantine_vlan,omitempty" yaml:"quarantine_vlan,omitempty"`
	QuarantineFilterID string `json:"quarantine_filter_id,omitempty" yaml:"quarantine_filter_id,omitempty"`
	// StaleGrace is how long, in seconds, an MDM's compliance stays good
	// after the appliance last read it; past it the device is stale and
	// fails DeviceCompliant. 0 means DefaultStaleGrace.
	StaleGrace int `json:"stale_grace,omitempty" yaml:"stale_grace,omitempty"`
	// CoA is what the appliance sends this client's NAS when a session's
	// device or user loses its right (RFC 5176): "" (nothing),
	// CoADisconnect (Disconnect-Request), or CoAQuarantine (CoA-Request
	// with the quarantine VLAN / Filter-Id). CoAPort is the NAS's port
	// (0: 3799).
	CoA     string `json:"coa,omitempty" yaml:"coa,omitempty"`
	CoAPort int    `json:"coa_port,omitempty" yaml:"coa_port,omitempty"`
}

// The device rules, failure actions and CoA modes.
const (
	DeviceKnown      = "known"
	DeviceCompliant  = "compliant"
	OnFailReject     = "reject"
	OnFailQuarantine = "quarantine"
	CoADisconnect    = "disconnect"
	CoAQuarantine    = "quarantine"
	DefaultCoAPort   = 3799
	// DefaultStaleGrace is a day: an MDM that cannot be read for a day
	// (a lapsed secret, an outage) turns "compliant only" into refusals.
	DefaultStaleGrace = 24 * 3600
)

// Active reports whether the rule checks anything.
func (p Posture) Active() bool { return p.Device != "" || p.Owner || p.SameUser }

// Grace is StaleGrace with its default, in seconds.
func (p Posture) Grace() int {
	if p.StaleGrace <= 0 {
		return DefaultStaleGrace
	}
	return p.StaleGrace
}

// Port is the CoA port with its default.
func (p Posture) Port() int {
	if p.CoAPort == 0 {
		return DefaultCoAPort
	}
	return p.CoAPort
}

// Quarantines reports whether a failed rule accepts into quarantine.
func (p Posture) Quarantines() bool { return p.OnFail == OnFailQuarantine }

// String says the rule in a few words, for lists and the console.
func (p Posture) String() string {
	if !p.Active() {
		return "off"
	}
	var parts []string
	if p.Device != "" {
		parts = append(parts, p.Device+" device")
	}
	if p.Owner {
		parts = append(parts, "user's own")
	}
	if p.SameUser {
		parts = append(parts, "same user on Wi-Fi/VPN")
	}
	if p.Quarantines() {
		q := "else quarantine"
		if p.QuarantineVLAN != 0 {
			q += fmt.Sprintf(" VLAN %d", p.QuarantineVLAN)
		}
		if p.QuarantineFilterID != "" {
			q += " role " + p.QuarantineFilterID
		}
		parts = append(parts, q)
	}
	return strings.Join(parts, ", ")
}

func (p Posture) validate() []error {
	var errs []error
	if !slices.Contains([]string{"", DeviceKnown, DeviceCompliant}, p.Device) {
		errs = append(errs, fmt.Errorf("posture device must be known or compliant, not %q", p.Device))
	}
	switch p.OnFail {
	case "", OnFailReject:
	case OnFailQuarantine:
		if p.QuarantineVLAN == 0 && p.QuarantineFilterID == "" {
			errs = append(errs, errors.New("quarantine needs a VLAN or a Filter-Id (role)"))
		}
	default:
		errs = append(errs, fmt.Errorf("posture on-fail must be reject or quarantine, not %q", p.OnFail))
	}
	if p.QuarantineVLAN < 0 || p.QuarantineVLAN > MaxVLAN {
		errs = append(errs, fmt.Errorf("quarantine VLAN %d is outside 1-%d", p.QuarantineVLAN, MaxVLAN))
	}
	if len(p.QuarantineFilterID) > 253 {
		errs = append(errs, errors.New("quarantine Filter-Id is longer than 253 bytes"))
	}
	if p.StaleGrace < 0 {
		errs = append(errs, errors.New("stale grace cannot be negative"))
	}
	switch p.CoA {
	case "", CoADisconnect:
	case CoAQuarantine:
		if p.QuarantineVLAN == 0 && p.QuarantineFilterID == "" {
			errs = append(errs, errors.New("a quarantine CoA needs a quarantine VLAN or Filter-Id"))
		}
	default:
		errs = append(errs, fmt.Errorf("coa must be disconnect or quarantine, not %q", p.CoA))
	}
	if p.CoAPort < 0 || p.CoAPort > 65535 {
		errs = append(errs, fmt.Errorf("CoA port %d is not a port", p.CoAPort))
	}
	return errs
}
