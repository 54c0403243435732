package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

func (c *cli) client(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "client", "client: add, list, show, set or remove?", args, subcommands{
		"add":    c.clientAddOrSet(true),
		"set":    c.clientAddOrSet(false),
		"list":   c.clientList,
		"show":   c.clientShow,
		"remove": c.clientRemove,
	})
}

func (c *cli) clientAddOrSet(add bool) func(*flag.FlagSet) action {
	return func(fs *flag.FlagSet) action {
		address := fs.String("address", "", "the NAS's (or EHR server's) IP address or network (CIDR)")
		door := fs.String("door", "radius", "how the client asks: radius (a NAS) or ldap (an EHR binding to check logins)")
		secretStdin := fs.Bool("secret-stdin", false, "read the shared secret from standard input instead of generating one")
		pf := addPolicyFlags(fs)
		var (
			secret secrets.Secret
			set    map[string]bool
			pol    policy.Policy
		)
		return action{args: 1, what: "one client name",
			check: func([]string) (err error) {
				set = given(fs)
				if *secretStdin {
					if secret, err = c.readSecret("shared secret"); err != nil {
						return err
					}
				}
				if add {
					if *address == "" {
						return usageError{"client add: --address is required (the NAS's IP address or network)"}
					}
					pol = policy.Default()
					return pf.apply(&pol, set, true)
				}
				if len(set) == 0 || (len(set) == 1 && (set["data"] || set["config"])) {
					if !*secretStdin {
						return usageError{"client set: nothing to change (see 'clinicgate client set -h')"}
					}
				}
				return nil
			},
			run: func(ctx context.Context, svc *admin.Service, pos []string) error {
				if add {
					got, err := svc.AddClient(ctx, admin.NewClient{Door: appliance.Door(*door), Name: pos[0], Address: *address, Secret: secret, Policy: pol})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.out, "client %s added for %s\n", pos[0], *address)
					if *door == string(appliance.DoorLDAP) {
						fmt.Fprintln(c.out, "an LDAP client has no shared secret; add a bind account for its searches with 'clinicgate bindaccount add'")
					} else if secret == nil {
						fmt.Fprintf(c.out, "shared secret (shown once; enter it on the NAS): %s\n", string(got))
					}
					return nil
				}
				e := admin.ClientEdit{Secret: secret, Policy: func(p *policy.Policy) error { return pf.apply(p, set, false) }}
				if set["address"] {
					e.Address = address
				}
				if err := svc.EditClient(ctx, pos[0], e); err != nil {
					return err
				}
				fmt.Fprintf(c.out, "client %s changed\n", pos[0])
				return nil
			}}
	}
}

func (c *cli) clientList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		cs, err := svc.Clients(ctx)
		if err != nil {
			return err
		}
		tw := c.table("NAME\tDOOR\tADDRESS\tUPSTREAM\tMFA\tSTYLE\tDEVICE\tGROUPS\tVLANS\tMSG-AUTH\tEAP\tMSCHAP\tEAP-IDENTITY")
		for _, cl := range cs {
			p := cl.Policy
			var vl []string
			for _, r := range p.Rules {
				vl = append(vl, fmt.Sprintf("%s=%d", r.Group, r.VLAN))
			}
			ma := "required"
			if !p.RequireMessageAuthenticator {
				ma = "optional (!)"
			}
			up := p.Upstream
			if p.Failmode == policy.FailCached {
				up += " (cached)"
			}
			if cl.Door == string(appliance.DoorLDAP) {
				ma = "-"
				if p.AllowPlainLDAP {
					up += ", plain LDAP allowed (!)"
				}
			}
			eap, mschap, ident := strings.Join(p.EAPAllowed(), ","), "off", admin.EAPIdentity(p)
			if p.AllowMSCHAP {
				mschap = "on"
			}
			if cl.Door == string(appliance.DoorLDAP) {
				eap, mschap, ident = "-", "-", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.Name, cl.Door, cl.Prefix, up, p.MFA, p.Style, deviceColumn(p),
				dash(strings.Join(p.AllowedGroups, ",")), dash(strings.Join(vl, ",")), ma, eap, mschap, ident)
		}
		return tw.Flush()
	}}
}

func (c *cli) clientShow(*flag.FlagSet) action {
	return action{args: 1, what: "one client name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		cs, err := svc.Clients(ctx)
		if err != nil {
			return err
		}
		for _, cl := range cs {
			if !strings.EqualFold(cl.Name, pos[0]) {
				continue
			}
			p := cl.Policy
			tw := c.table("FIELD\tVALUE")
			var vl []string
			for _, r := range p.Rules {
				vl = append(vl, fmt.Sprintf("%s=%d", r.Group, r.VLAN))
			}
			rows := [][2]string{
				{"name", cl.Name}, {"door", cl.Door}, {"address", cl.Prefix.String()},
				{"upstream", p.Upstream}, {"failmode", string(p.Failmode)},
				{"mfa", string(p.MFA)}, {"mfa-style", string(p.Style)},
				{"require-device", strconv.FormatBool(p.RequireDevice)},
				{"allow-group", dash(strings.Join(p.AllowedGroups, ","))},
				{"vlan", dash(strings.Join(vl, ","))},
				{"session-timeout", strconv.Itoa(p.SessionTimeout)},
				{"posture", p.Posture.String()},
				{"stale-grace", (time.Duration(p.Posture.Grace()) * time.Second).String()},
			}
			if cl.Door == string(appliance.DoorLDAP) {
				rows = append(rows, [2]string{"allow-plain-ldap", strconv.FormatBool(p.AllowPlainLDAP)},
					[2]string{"mfa-remember", (time.Duration(p.MFARemember) * time.Second).String()})
			} else {
				rows = append(rows, [2]string{"require-message-authenticator", strconv.FormatBool(p.RequireMessageAuthenticator)},
					[2]string{"eap", strings.Join(p.EAPAllowed(), ",")},
					[2]string{"allow-mschap", strconv.FormatBool(p.AllowMSCHAP)},
					[2]string{"eap-identity", admin.EAPIdentity(p)},
					[2]string{"coa", coaString(p.Posture)})
			}
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
			}
			return tw.Flush()
		}
		return fmt.Errorf("there is no client %q", pos[0])
	}}
}

func (c *cli) clientRemove(*flag.FlagSet) action {
	return action{args: 1, what: "one client name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.RemoveClient(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "client %s removed\n", pos[0])
		return nil
	}}
}

type policyFlags struct {
	mfa, style           *string
	requireDevice, reqMA *bool
	allow                multi
	sessionTimeout       *int
	upstream, failmode   *string
	vlanRules            multi
	allowPlainLDAP       *bool
	mfaRemember          *time.Duration
	eap, eapIdentity     *string
	allowMSCHAP          *bool
	// The device rule (policy.Posture, docs/posture.md).
	postureDevice, onFail, quarantineRole, coa *string
	postureOwner, postureSameUser              *bool
	quarantineVLAN, coaPort                    *int
	staleGrace                                 *time.Duration
}

func addPolicyFlags(fs *flag.FlagSet) *policyFlags {
	p := &policyFlags{}
	p.mfa = fs.String("mfa", "required", "second factor: required, enrolled (only users who enrolled) or off")
	p.style = fs.String("mfa-style", "auto", "how the code travels: auto, challenge or append")
	p.requireDevice = fs.Bool("require-device", false, "only devices (Calling-Station-Id MACs) registered to the user")
	p.reqMA = fs.Bool("require-message-authenticator", true, "drop Access-Requests without Message-Authenticator (turn off only for very old hardware)")
	fs.Var(&p.allow, "allow-group", `only members of this group may log in (repeat for several; "" clears the list)`)
	p.sessionTimeout = fs.Int("session-timeout", 0, "Session-Timeout in seconds (0: none)")
	p.upstream = fs.String("upstream", "local", "where passwords are checked: local or an upstream's name")
	p.failmode = fs.String("failmode", "secure", "when the upstream is unreachable: secure (reject) or cached (recently verified password plus TOTP)")
	fs.Var(&p.vlanRules, "vlan", `GROUP=VLAN: members of GROUP get this VLAN (repeat; first match wins; "" clears the rules)`)
	p.allowPlainLDAP = fs.Bool("allow-plain-ldap", false, "LDAP clients: accept binds without TLS (the password then crosses the network in clear)")
	p.mfaRemember = fs.Duration("mfa-remember", 0, "LDAP clients: remember a verified code this long for the same user and address, e.g. 15m (0: never; at most 12h)")
	p.eap = fs.String("eap", strings.Join(policy.AllEAPMethods, ","), "EAP methods this NAS's stations may use, in the order offered: ttls, peap, tls")
	p.allowMSCHAP = fs.Bool("allow-mschap", false, "allow MS-CHAPv2 (PEAP, VPNs); keeps an NT hash of each user's password, far weaker than the appliance's own hash (see docs/mschap.md)")
	p.eapIdentity = fs.String("eap-identity", policy.EAPIdentityAny, "an EAP outer identity may be: any (both are audited) or match (the inner name, or anonymous[@realm])")
	p.postureDevice = fs.String("posture", "off", "the device must be: off (not checked), known (in the inventory) or compliant (its MDM says so); see docs/posture.md")
	p.postureOwner = fs.Bool("posture-owner", false, "the device (MAC or certificate) must belong to the user, or be a shared workstation")
	p.postureSameUser = fs.Bool("posture-same-user", false, "LDAP clients: the Wi-Fi/VPN session holding the bind's address must be the same user's")
	p.onFail = fs.String("on-fail", policy.OnFailReject, "when the device rule fails: reject, or quarantine (accept into --quarantine-vlan / --quarantine-role; RADIUS only)")
	p.quarantineVLAN = fs.Int("quarantine-vlan", 0, "the VLAN a quarantined station gets")
	p.quarantineRole = fs.String("quarantine-role", "", "the Filter-Id (role) a quarantined station gets, for controllers that use roles")
	p.staleGrace = fs.Duration("stale-grace", policy.DefaultStaleGrace*time.Second, "how long an MDM's compliance stays good after the last successful sync")
	p.coa = fs.String("coa", "off", "when a session's device or user loses its right, send the NAS: off, disconnect (Disconnect-Request) or quarantine (CoA with the quarantine VLAN/role); see docs/coa.md")
	p.coaPort = fs.Int("coa-port", policy.DefaultCoAPort, "the NAS's dynamic authorization (CoA) port")
	return p
}

// apply writes the flags that were given (all of them for a new client).
func (p *policyFlags) apply(pol *policy.Policy, set map[string]bool, all bool) error {
	if all || set["mfa"] {
		pol.MFA = policy.MFA(*p.mfa)
	}
	if all || set["mfa-style"] {
		pol.Style = policy.Style(*p.style)
	}
	if all || set["require-device"] {
		pol.RequireDevice = *p.requireDevice
	}
	if all || set["require-message-authenticator"] {
		pol.RequireMessageAuthenticator = *p.reqMA
	}
	if set["allow-group"] {
		// --allow-group "" clears the list: every group may log in.
		pol.AllowedGroups = nil
		for _, g := range p.allow {
			if g = strings.TrimSpace(g); g != "" {
				pol.AllowedGroups = append(pol.AllowedGroups, g)
			}
		}
	}
	if all || set["session-timeout"] {
		pol.SessionTimeout = *p.sessionTimeout
	}
	if all || set["upstream"] {
		pol.Upstream = *p.upstream
	}
	if all || set["failmode"] {
		pol.Failmode = policy.Failmode(*p.failmode)
	}
	if all || set["allow-plain-ldap"] {
		pol.AllowPlainLDAP = *p.allowPlainLDAP
	}
	if all || set["mfa-remember"] {
		if *p.mfaRemember < 0 || *p.mfaRemember > policy.MaxMFARemember*time.Second {
			return usageError{fmt.Sprintf("--mfa-remember %s: want a duration from 0 to 12h", *p.mfaRemember)}
		}
		pol.MFARemember = int(p.mfaRemember.Seconds())
	}
	if all || set["eap"] {
		m, err := policy.ParseEAPMethods(*p.eap)
		if err != nil {
			return usageError{"--eap: " + err.Error()}
		}
		pol.EAPMethods = m
	}
	if all || set["allow-mschap"] {
		pol.AllowMSCHAP = *p.allowMSCHAP
	}
	if all || set["eap-identity"] {
		pol.EAPIdentity = *p.eapIdentity
		if pol.EAPIdentity == policy.EAPIdentityAny {
			pol.EAPIdentity = ""
		}
	}
	pp := &pol.Posture
	if all || set["posture"] {
		pp.Device = *p.postureDevice
		if pp.Device == "off" {
			pp.Device = ""
		}
	}
	if all || set["posture-owner"] {
		pp.Owner = *p.postureOwner
	}
	if all || set["posture-same-user"] {
		pp.SameUser = *p.postureSameUser
	}
	if all || set["on-fail"] {
		pp.OnFail = *p.onFail
		if pp.OnFail == policy.OnFailReject {
			pp.OnFail = ""
		}
	}
	if all || set["quarantine-vlan"] {
		pp.QuarantineVLAN = *p.quarantineVLAN
	}
	if all || set["quarantine-role"] {
		pp.QuarantineFilterID = *p.quarantineRole
	}
	if all || set["stale-grace"] {
		if *p.staleGrace < time.Minute {
			return usageError{fmt.Sprintf("--stale-grace %s: want at least 1m", *p.staleGrace)}
		}
		pp.StaleGrace = int(p.staleGrace.Seconds())
		if pp.StaleGrace == policy.DefaultStaleGrace {
			pp.StaleGrace = 0
		}
	}
	if all || set["coa"] {
		pp.CoA = *p.coa
		if pp.CoA == "off" {
			pp.CoA = ""
		}
	}
	if all || set["coa-port"] {
		pp.CoAPort = *p.coaPort
		if pp.CoAPort == policy.DefaultCoAPort {
			pp.CoAPort = 0
		}
	}
	if set["vlan"] {
		pol.Rules = nil // --vlan "" clears the rules
		for _, r := range p.vlanRules {
			if strings.TrimSpace(r) == "" {
				continue
			}
			g, v, ok := strings.Cut(r, "=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				return usageError{fmt.Sprintf("--vlan %q: want GROUP=NUMBER, e.g. nurses=20", r)}
			}
			pol.Rules = append(pol.Rules, policy.Rule{Group: g, VLAN: n})
		}
	}
	return nil
}

// coaString says what the appliance sends this client's NAS when a
// session loses its right.
func coaString(p policy.Posture) string {
	if p.CoA == "" {
		return "off"
	}
	return fmt.Sprintf("%s to port %d", p.CoA, p.Port())
}

// deviceColumn is the client list's one-word device rule.
func deviceColumn(p policy.Policy) string {
	switch {
	case p.Posture.Device != "" && p.Posture.Quarantines():
		return p.Posture.Device + "/quar"
	case p.Posture.Device != "":
		return p.Posture.Device
	case p.RequireDevice || p.Posture.Owner:
		return "own"
	case p.Posture.SameUser:
		return "same-user"
	}
	return "-"
}
