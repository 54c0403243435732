package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/mdp/qrterminal/v3"
	"golang.org/x/term"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/dirsync"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/tui"
)

type cli struct {
	stdin     io.Reader
	out, errw io.Writer
}

// common are the flags every command takes.
type common struct {
	data, config string
}

func (c *cli) flags(name string, co *common) *flag.FlagSet {
	fs := flag.NewFlagSet("clinicgate "+name, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	fs.StringVar(&co.data, "data", "", "data directory (default: data_dir of --config if given, else $CLINICGATE_DATA, else /var/lib/clinicgate)")
	fs.StringVar(&co.config, "config", "", "bootstrap config file (YAML)")
	return fs
}

// parse parses flags that may stand before, between or after positional
// arguments ("user add alice --group nurses") and returns the positionals.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// errHelp ends a command after -h printed its options.
var errHelp = errors.New("help shown")

func want(pos []string, n int, what string) error {
	if len(pos) != n {
		return usageError{fmt.Sprintf("expected %s", what)}
	}
	return nil
}

func (co common) resolve() (config.Config, error) {
	cfg, err := config.Load(co.config)
	if err != nil {
		return cfg, err
	}
	switch {
	case co.data != "":
		cfg.DataDir = co.data
	case os.Getenv("CLINICGATE_DATA") != "" && co.config == "":
		cfg.DataDir = os.Getenv("CLINICGATE_DATA")
	}
	return cfg, nil
}

// resolveAdmin is resolve for the admin commands: when run as root on a
// data directory another user owns (the clinicgate service user), the
// command first becomes that user, so that files SQLite creates (the -wal
// and -shm files) stay writable by the daemon.
func (co common) resolveAdmin() (config.Config, error) {
	cfg, err := co.resolve()
	if err != nil {
		return cfg, err
	}
	return cfg, becomeOwner(cfg.DataDir)
}

// adminEnv is an open store with the admin service around it.
type adminEnv struct {
	st  *store.Store
	svc *admin.Service
}

func (e *adminEnv) Close() { e.st.Close() }

func (c *cli) open(ctx context.Context, co common) (*adminEnv, error) {
	cfg, err := co.resolveAdmin()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DataDir, store.Options{})
	if err != nil {
		return nil, err
	}
	log, err := audit.New(st, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	h, err := passwd.NewHasher(passwd.DefaultParams, 1)
	if err != nil {
		st.Close()
		return nil, err
	}
	svc, err := admin.New(st, log, h, actor())
	if err != nil {
		st.Close()
		return nil, err
	}
	return &adminEnv{st: st, svc: svc}, nil
}

// actor names the operator for the audit: the login behind sudo if any.
func actor() string {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	return "cli:" + name
}

// readSecret reads a password or secret from stdin: the whole input minus
// one trailing newline. From a terminal it prompts twice without echo.
func (c *cli) readSecret(prompt string) (secrets.Secret, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.errw, prompt+": ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errw)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(c.errw, "again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errw)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			return nil, errors.New("the two entries differ; nothing changed")
		}
		return a, nil
	}
	b, err := io.ReadAll(io.LimitReader(c.stdin, 4096))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, errors.New("nothing was given on standard input")
	}
	return b, nil
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func parseDate(s string) (time.Time, error) {
	if s == "" || s == "never" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			if layout == "2006-01-02" {
				// A date means "through the end of that day".
				t = t.AddDate(0, 0, 1)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date like 2026-12-31 (or 'never')", s)
}

// ---- user

func (c *cli) user(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"user: add, list, disable, enable, passwd, set or remove?"}
	}
	var co common
	fs := c.flags("user "+args[0], &co)
	switch args[0] {
	case "add":
		var groups multi
		fs.Var(&groups, "group", "group membership (repeat for several)")
		display := fs.String("display-name", "", "full name")
		pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
		expires := fs.String("expires", "", "last day the account works, e.g. 2026-12-31 (business-partner accounts)")
		hours := fs.String("hours", "", `allowed login hours, e.g. "Mon-Fri 07:00-19:00"`)
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one user name"); err != nil {
			return err
		}
		exp, err := parseDate(*expires)
		if err != nil {
			return err
		}
		n := admin.NewUser{Name: pos[0], DisplayName: *display, Groups: groups, ExpiresAt: exp, Hours: *hours}
		if *pwStdin {
			if n.Password, err = c.readSecret("password"); err != nil {
				return err
			}
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.AddUser(ctx, n); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "user %s added", n.Name)
		if n.Password == nil {
			fmt.Fprintf(c.out, " without a password (set one with 'clinicgate user passwd %s')", n.Name)
		}
		fmt.Fprintln(c.out)
		return nil
	case "list":
		if _, err := parse(fs, args[1:]); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		users, err := env.svc.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tGROUPS\tSTATE\tMFA\tEXPIRES\tHOURS")
		for _, u := range users {
			state := "active"
			switch {
			case u.Disabled:
				state = "disabled"
			case u.LockedUntil.After(time.Now()):
				state = "locked until " + u.LockedUntil.Local().Format("15:04")
			case u.PasswordHash == "":
				state = "no password"
			}
			mfaState := "-"
			if _, err := env.st.TOTP(ctx, u.ID); err == nil {
				mfaState = "totp"
			}
			exp := "-"
			if !u.ExpiresAt.IsZero() {
				exp = u.ExpiresAt.Local().Format("2006-01-02 15:04")
			}
			hours := u.Hours
			if hours == "" {
				hours = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, strings.Join(u.Groups, ","), state, mfaState, exp, hours)
		}
		return tw.Flush()
	case "disable", "enable", "remove":
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one user name"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if args[0] == "remove" {
			if err := env.svc.DeleteUser(ctx, pos[0]); err != nil {
				return err
			}
		} else {
			dis := args[0] == "disable"
			if err := env.svc.EditUser(ctx, pos[0], admin.UserEdit{Disabled: &dis}); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.out, "user %s: %sd\n", pos[0], strings.TrimSuffix(args[0], "e"))
		return nil
	case "passwd":
		fs.Bool("password-stdin", false, "read the password from standard input (the default when it is not a terminal)")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one user name"); err != nil {
			return err
		}
		pw, err := c.readSecret("new password for " + pos[0])
		if err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.EditUser(ctx, pos[0], admin.UserEdit{Password: pw}); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "user %s: password changed\n", pos[0])
		return nil
	case "set":
		var groups multi
		fs.Var(&groups, "group", "replace group memberships (repeat for several)")
		noGroups := fs.Bool("no-groups", false, "remove all group memberships")
		display := fs.String("display-name", "", "full name")
		expires := fs.String("expires", "", "last day the account works (or 'never')")
		hours := fs.String("hours", "", `allowed login hours (or "always")`)
		unlock := fs.Bool("unlock", false, "clear a lockout after failed attempts")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one user name"); err != nil {
			return err
		}
		var e admin.UserEdit
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["group"] {
			g := []string(groups)
			e.Groups = &g
		}
		if *noGroups {
			g := []string{}
			e.Groups = &g
		}
		if set["display-name"] {
			e.DisplayName = display
		}
		if set["expires"] {
			t, err := parseDate(*expires)
			if err != nil {
				return err
			}
			e.ExpiresAt = &t
		}
		if set["hours"] {
			h := *hours
			if h == "always" {
				h = ""
			}
			e.Hours = &h
		}
		e.Unlock = *unlock
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.EditUser(ctx, pos[0], e); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "user %s changed\n", pos[0])
		return nil
	}
	return usageError{fmt.Sprintf("user: unknown subcommand %q", args[0])}
}

// ---- client

type policyFlags struct {
	mfa, style           *string
	requireDevice, reqMA *bool
	allow                multi
	sessionTimeout       *int
	upstream, failmode   *string
	vlanRules            multi
	allowPlainLDAP       *bool
	mfaRemember          *time.Duration
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

func (c *cli) client(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"client: add, list, set or remove?"}
	}
	var co common
	fs := c.flags("client "+args[0], &co)
	switch args[0] {
	case "add", "set":
		address := fs.String("address", "", "the NAS's (or EHR server's) IP address or network (CIDR)")
		door := fs.String("door", "radius", "how the client asks: radius (a NAS) or ldap (an EHR binding to check logins)")
		secretStdin := fs.Bool("secret-stdin", false, "read the shared secret from standard input instead of generating one")
		pf := addPolicyFlags(fs)
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one client name"); err != nil {
			return err
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		var secret secrets.Secret
		if *secretStdin {
			if secret, err = c.readSecret("shared secret"); err != nil {
				return err
			}
		}
		if args[0] == "add" {
			if *address == "" {
				return usageError{"client add: --address is required (the NAS's IP address or network)"}
			}
			pol := policy.Default()
			if err := pf.apply(&pol, set, true); err != nil {
				return err
			}
			env, err := c.open(ctx, co)
			if err != nil {
				return err
			}
			defer env.Close()
			got, err := env.svc.AddClient(ctx, admin.NewClient{Door: appliance.Door(*door), Name: pos[0], Address: *address, Secret: secret, Policy: pol})
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
		if len(set) == 0 || (len(set) == 1 && (set["data"] || set["config"])) {
			if !*secretStdin {
				return usageError{"client set: nothing to change (see 'clinicgate client set -h')"}
			}
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.EditClient(ctx, pos[0], e); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "client %s changed\n", pos[0])
		return nil
	case "list":
		if _, err := parse(fs, args[1:]); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		cs, err := env.svc.Clients(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tDOOR\tADDRESS\tUPSTREAM\tMFA\tSTYLE\tDEVICE\tGROUPS\tVLANS\tMSG-AUTH")
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", cl.Name, cl.Door, cl.Prefix, up, p.MFA, p.Style, p.RequireDevice,
				dash(strings.Join(p.AllowedGroups, ",")), dash(strings.Join(vl, ",")), ma)
		}
		return tw.Flush()
	case "remove":
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one client name"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.RemoveClient(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "client %s removed\n", pos[0])
		return nil
	}
	return usageError{fmt.Sprintf("client: unknown subcommand %q", args[0])}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- mfa

func (c *cli) mfa(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"mfa: enroll or reset?"}
	}
	var co common
	fs := c.flags("mfa "+args[0], &co)
	noQR := fs.Bool("no-qr", false, "print only the URI and the secret, no QR code")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if err := want(pos, 1, "one user name"); err != nil {
		return err
	}
	env, err := c.open(ctx, co)
	if err != nil {
		return err
	}
	defer env.Close()
	switch args[0] {
	case "enroll":
		e, err := env.svc.EnrollTOTP(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "TOTP enrolled for %s. Show this once to the user, then clear the screen.\n\n", pos[0])
		if !*noQR {
			qrterminal.GenerateWithConfig(e.URI, qrterminal.Config{
				Level: qrterminal.L, Writer: c.out, HalfBlocks: true,
				BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE,
				BlackWhiteChar: qrterminal.BLACK_WHITE, WhiteBlackChar: qrterminal.WHITE_BLACK, QuietZone: 2,
			})
			fmt.Fprintln(c.out)
		}
		fmt.Fprintf(c.out, "URI:    %s\nSecret: %s  (for typing into an app by hand, or: oathtool --totp -b %s)\n", e.URI, e.Secret, e.Secret)
		return nil
	case "reset":
		if err := env.svc.ResetMFA(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "MFA reset for %s\n", pos[0])
		return nil
	}
	return usageError{fmt.Sprintf("mfa: unknown subcommand %q", args[0])}
}

// ---- device

func (c *cli) device(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"device: add, list or remove?"}
	}
	var co common
	fs := c.flags("device "+args[0], &co)
	userName := fs.String("user", "", "the user the device belongs to")
	desc := fs.String("description", "", "what the device is (e.g. 'front desk laptop')")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "add":
		if err := want(pos, 1, "one MAC address"); err != nil {
			return err
		}
		if *userName == "" {
			return usageError{"device add: --user is required"}
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		mac, err := env.svc.AddDevice(ctx, pos[0], *userName, *desc)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "device %s bound to %s\n", mac, *userName)
		return nil
	case "list":
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		ds, err := env.st.Devices(ctx, *userName)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MAC\tUSER\tDESCRIPTION\tADDED")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.MAC, d.UserName, dash(d.Description), d.CreatedAt.Local().Format("2006-01-02"))
		}
		return tw.Flush()
	case "remove":
		if err := want(pos, 1, "one MAC address"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.RemoveDevice(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "device %s removed\n", pos[0])
		return nil
	}
	return usageError{fmt.Sprintf("device: unknown subcommand %q", args[0])}
}

// ---- audit

func (c *cli) audit(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"audit: tail, show or verify?"}
	}
	var co common
	fs := c.flags("audit "+args[0], &co)
	n := fs.Int("n", 20, "tail: how many entries (0: all)")
	follow := fs.Bool("follow", false, "keep printing new entries")
	userName := fs.String("user", "", "only this user's entries")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	nargs, what := 0, "no arguments"
	if args[0] == "show" {
		nargs, what = 1, "one entry number (from audit tail)"
	}
	if err := want(pos, nargs, what); err != nil {
		return err
	}
	cfg, err := co.resolveAdmin()
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DataDir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "show":
		seq, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || seq < 1 {
			return usageError{"audit show: the entry number is a whole number, as audit tail prints it"}
		}
		rows, err := st.AuditRows(ctx, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
		if err != nil {
			return err
		}
		if len(rows) == 0 || rows[0].Seq != seq {
			return fmt.Errorf("there is no audit entry %d", seq)
		}
		c.showAudit(rows[0])
		return nil
	case "tail":
		rows, err := st.AuditRows(ctx, store.AuditFilter{User: *userName, Limit: *n, Newest: true})
		if err != nil {
			return err
		}
		var last int64
		for _, r := range rows {
			fmt.Fprintln(c.out, formatAudit(r))
			last = r.Seq
		}
		if len(rows) == 0 {
			if r, err := st.AuditRows(ctx, store.AuditFilter{Limit: 1, Newest: true}); err == nil && len(r) > 0 {
				last = r[0].Seq
			}
		}
		for *follow {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
			rows, err := st.AuditRows(ctx, store.AuditFilter{AfterSeq: last, User: *userName})
			if err != nil {
				return err
			}
			for _, r := range rows {
				fmt.Fprintln(c.out, formatAudit(r))
				last = r.Seq
			}
		}
		return nil
	case "verify":
		log, err := audit.New(st, nil)
		if err != nil {
			return err
		}
		rep, err := log.Verify(ctx)
		if err != nil {
			return err
		}
		if rep.OK() {
			fmt.Fprintf(c.out, "audit log verified: %d entries, chain unbroken\n", rep.Entries)
			return nil
		}
		fmt.Fprintf(c.out, "AUDIT LOG BROKEN: %d entries read, %d problems:\n", rep.Entries, len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintln(c.out, "  -", p)
		}
		return errors.New("the audit log has been tampered with or damaged; keep a copy of the data directory for investigation")
	}
	return usageError{fmt.Sprintf("audit: unknown subcommand %q", args[0])}
}

// showAudit prints one entry with the story of a decision: each stage of
// the pipeline and what it found.
func (c *cli) showAudit(r store.AuditRow) {
	p := func(k, v string) {
		if v != "" {
			fmt.Fprintf(c.out, "%-9s %s\n", k+":", v)
		}
	}
	p("entry", strconv.FormatInt(r.Seq, 10))
	p("time", r.At.Local().Format("2006-01-02 15:04:05 MST"))
	p("kind", r.Kind)
	p("outcome", r.Outcome)
	p("reason", r.Reason)
	p("door", r.Door)
	p("client", r.Client)
	p("user", r.User)
	p("device", r.Device)
	p("from", r.Source)
	p("by", r.Actor)
	var d struct {
		Steps []appliance.Step `json:"steps"`
		Notes []string         `json:"notes"`
		NAS   string           `json:"nas"`
		VLAN  int              `json:"vlan"`
	}
	if r.Kind == audit.KindDecision && json.Unmarshal([]byte(r.Detail), &d) == nil {
		p("nas", d.NAS)
		if d.VLAN > 0 {
			p("vlan", strconv.Itoa(d.VLAN))
		}
		p("notes", strings.Join(d.Notes, ", "))
		fmt.Fprintln(c.out, "steps:")
		for i, s := range d.Steps {
			fmt.Fprintf(c.out, "  %d. %-10s %s\n", i+1, s.Stage, s.Result)
		}
		return
	}
	p("detail", r.Detail)
}

func formatAudit(r store.AuditRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d %s %-8s", r.Seq, r.At.Local().Format("2006-01-02 15:04:05"), r.Kind)
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, strconv.Quote(v))
		}
	}
	if r.Kind == audit.KindDecision {
		fmt.Fprintf(&b, " %-9s %-18s", r.Outcome, r.Reason)
	} else {
		add("what", r.Reason)
	}
	add("door", r.Door)
	add("client", r.Client)
	add("user", r.User)
	add("device", r.Device)
	add("from", r.Source)
	add("by", r.Actor)
	if r.Kind != audit.KindDecision {
		add("detail", r.Detail)
	}
	return b.String()
}

// ---- settings

func (c *cli) settings(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"settings: list or set?"}
	}
	var co common
	fs := c.flags("settings "+args[0], &co)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	env, err := c.open(ctx, co)
	if err != nil {
		return err
	}
	defer env.Close()
	switch args[0] {
	case "list":
		vals, err := appliance.SiteValues(ctx, env.st)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SETTING\tVALUE\tMEANING")
		for _, k := range appliance.SettingKeys() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k, dash(vals[k]), appliance.SettingSpecs[k].Help)
		}
		return tw.Flush()
	case "set":
		if err := want(pos, 2, "KEY VALUE"); err != nil {
			return err
		}
		if err := env.svc.SetSetting(ctx, pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%s = %s\n", pos[0], pos[1])
		return nil
	}
	return usageError{fmt.Sprintf("settings: unknown subcommand %q", args[0])}
}

// ---- accounting

func (c *cli) acct(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError{"acct: list?"}
	}
	var co common
	fs := c.flags("acct list", &co)
	active := fs.Bool("active", false, "only sessions still open")
	n := fs.Int("n", 50, "how many sessions")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := co.resolveAdmin()
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DataDir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	ss, err := st.AcctSessions(ctx, *active, *n)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSESSION\tUSER\tDEVICE\tSTATUS\tSTARTED\tSECONDS\tIN\tOUT\tCAUSE")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Client, s.SessionID, dash(s.UserName), dash(s.CallingStation), s.Status,
			s.StartedAt.Local().Format("01-02 15:04:05"), s.SessionTime, s.InputOctets, s.OutputOctets, dash(s.TerminateCause))
	}
	return tw.Flush()
}

// ---- admins (who may open the console over SSH)

func (c *cli) adminCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"admin: add-key, list-keys, remove-key or hostkey?"}
	}
	var co common
	fs := c.flags("admin "+args[0], &co)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "add-key":
		if err := want(pos, 1, "one admin name (the key comes on standard input)"); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(c.stdin, 16384))
		if err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		fp, err := env.svc.AddAdminKey(ctx, pos[0], string(b))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "admin %s may open the console over SSH with key %s\n", pos[0], fp)
		return nil
	case "remove-key":
		if err := want(pos, 1, "one admin name"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.RemoveAdminKey(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "admin %s removed\n", pos[0])
		return nil
	case "list-keys":
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		ks, err := env.st.AdminKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADMIN\tKEY\tADDED")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Name, k.Fingerprint, k.CreatedAt.Local().Format("2006-01-02"))
		}
		return tw.Flush()
	case "hostkey":
		cfg, err := co.resolveAdmin()
		if err != nil {
			return err
		}
		path := filepath.Join(cfg.DataDir, tui.HostKeyFile)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no host key yet in %s: the daemon makes one at its first start", cfg.DataDir)
		}
		fp, err := tui.HostKeyFingerprint(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%s\n", fp)
		return nil
	}
	return usageError{fmt.Sprintf("admin: unknown subcommand %q", args[0])}
}

// ---- console

func (c *cli) tui(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("tui", &co)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// A broken bootstrap file must not lock the contractor out of the
	// console they need to repair things: say what is wrong, and open the
	// store in the data directory anyway.
	var warning string
	if _, err := config.Load(co.config); err != nil && co.config != "" {
		warning = "THE CONFIG FILE IS BROKEN, the daemon will not start until it is fixed: " + err.Error()
		fmt.Fprintln(c.errw, "clinicgate:", warning)
		co.config = ""
		if co.data == "" {
			co.data = config.Default().DataDir
		}
	}
	env, err := c.open(ctx, co)
	if err != nil {
		return err
	}
	defer env.Close()
	in, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return errors.New("the console needs a terminal (run it on the appliance's screen or over ssh -t)")
	}
	// Changes made in the console are audited as the console's.
	env.svc.Actor = "console:" + strings.TrimPrefix(actor(), "cli:")
	p := tea.NewProgram(tui.New(env.svc, tui.Options{Version: version, Warning: warning}), tea.WithAltScreen(), tea.WithMouseCellMotion(),
		tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(c.out))
	_, err = p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// ---- upstream

func (c *cli) upstream(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"upstream: add, list, test, sync, sync-token or remove?"}
	}
	var co common
	fs := c.flags("upstream "+args[0], &co)
	switch args[0] {
	case "add":
		kind := fs.String("kind", "", "radius, ldap or oidc")
		var servers, urls multi
		fs.Var(&servers, "server", "radius: host:port of a server (repeat for failover)")
		reqMA := fs.Bool("require-message-authenticator", true, "radius: drop replies without Message-Authenticator")
		var pass multi
		fs.Var(&pass, "pass-attribute", "radius: pass this reply attribute on to the NAS, e.g. Filter-Id (repeat)")
		groupAttr := fs.String("group-attribute", "", "radius: Class or Filter-Id; ldap: the user attribute listing groups (default memberOf)")
		timeout := fs.Int("timeout-ms", 0, "one attempt's timeout in milliseconds")
		budget := fs.Int("budget-ms", 0, "radius: the whole check's time, all servers and retries (default 2500; keep it under the NAS's retransmit)")
		fs.Var(&urls, "url", "ldap: ldaps://host:636 or ldap://host:389 (repeat for failover)")
		startTLS := fs.Bool("starttls", false, "ldap: upgrade ldap:// with StartTLS")
		caFile := fs.String("ca-file", "", "ldap, oidc: PEM file of the CA that signed the server's certificate")
		certFile := fs.String("client-cert", "", "ldap: client certificate (Google Secure LDAP)")
		keyFile := fs.String("client-key", "", "ldap: client key (Google Secure LDAP)")
		bindDN := fs.String("bind-dn", "", "ldap: service account DN (its password on stdin with --secret-stdin)")
		baseDN := fs.String("base-dn", "", "ldap: where users are searched")
		userAttr := fs.String("user-attribute", "", "ldap: uid, sAMAccountName, userPrincipalName or mail")
		userFilter := fs.String("user-filter", "", "ldap: extra filter, e.g. (objectClass=person)")
		groupBase := fs.String("group-base-dn", "", "ldap: search groups here by member instead of reading memberOf")
		issuer := fs.String("issuer", "", "oidc: the provider's issuer URL")
		clientID := fs.String("client-id", "", "oidc: the app registration's client id (its secret on stdin with --secret-stdin)")
		var scopes multi
		fs.Var(&scopes, "scope", "oidc: a scope to request (repeat; default openid profile email)")
		usernameClaim := fs.String("username-claim", "", "oidc: ID token claim with the login name (default preferred_username)")
		groupsClaim := fs.String("groups-claim", "", "oidc: ID token claim with the groups (default groups)")
		usernameSuffix := fs.String("username-suffix", "", "oidc: appended to names typed without @, e.g. @clinic.onmicrosoft.com")
		syncKind := fs.String("sync", "", "oidc: also pull users and groups: graph (Entra ID) or okta")
		tenantID := fs.String("tenant-id", "", "sync graph: the Entra tenant (directory) id")
		orgURL := fs.String("org-url", "", "sync okta: https://YOUR-ORG.okta.com (the API token: clinicgate upstream sync-token NAME)")
		syncInterval := fs.Int("sync-interval", 15, "minutes between directory syncs")
		graphURL := fs.String("graph-url", "", "sync graph: Graph's URL (default https://graph.microsoft.com)")
		loginURL := fs.String("login-url", "", "sync graph: sign-in URL (default https://login.microsoftonline.com)")
		secretStdin := fs.Bool("secret-stdin", false, "read the shared secret (radius), bind password (ldap) or client secret (oidc) from standard input")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one upstream name"); err != nil {
			return err
		}
		var cfg any
		switch *kind {
		case "radius":
			cfg = upstream.RADIUSConfig{Servers: servers, RequireMessageAuthenticator: *reqMA, GroupAttribute: *groupAttr, TimeoutMS: *timeout, BudgetMS: *budget, PassAttributes: pass}
		case "ldap":
			cfg = upstream.LDAPConfig{URLs: urls, StartTLS: *startTLS, CAFile: *caFile, ClientCertFile: *certFile, ClientKeyFile: *keyFile,
				BindDN: *bindDN, BaseDN: *baseDN, UserAttribute: *userAttr, UserFilter: *userFilter, GroupAttribute: *groupAttr,
				GroupBaseDN: *groupBase, TimeoutMS: *timeout}
		case "oidc":
			cfg = upstream.OIDCConfig{Issuer: *issuer, ClientID: *clientID, Scopes: scopes, UsernameClaim: *usernameClaim,
				GroupsClaim: *groupsClaim, UsernameSuffix: *usernameSuffix, CAFile: *caFile, TimeoutMS: *timeout}
		default:
			return usageError{"upstream add: --kind must be radius, ldap or oidc"}
		}
		// Defaults are filled in so the stored settings say what runs.
		switch v := cfg.(type) {
		case upstream.RADIUSConfig:
			v.Defaults()
			cfg = v
		case upstream.LDAPConfig:
			v.Defaults()
			cfg = v
		case upstream.OIDCConfig:
			v.Defaults()
			cfg = v
		}
		b, _ := json.Marshal(cfg)
		if *syncKind != "" {
			if *kind != "oidc" {
				return usageError{"upstream add: --sync goes with --kind oidc (LDAP and RADIUS directories are asked directly)"}
			}
			sc := dirsync.Config{Kind: *syncKind, TenantID: *tenantID, OrgURL: *orgURL, IntervalMinutes: *syncInterval, GraphURL: *graphURL, LoginURL: *loginURL}
			sc.Defaults()
			if err := sc.Validate(); err != nil {
				return err
			}
			var m map[string]any
			json.Unmarshal(b, &m)
			m["sync"] = sc
			b, _ = json.Marshal(m)
		}
		var secret secrets.Secret
		if *secretStdin {
			if secret, err = c.readSecret("secret"); err != nil {
				return err
			}
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		warnings, err := env.svc.AddUpstream(ctx, admin.NewUpstream{Name: pos[0], Kind: *kind, Config: string(b), Secret: secret})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "upstream %s added; check it with: clinicgate upstream test %s --user SOMEONE\n", pos[0], pos[0])
		for _, w := range warnings {
			fmt.Fprintln(c.out, "warning:", w)
		}
		return nil
	case "list":
		if _, err := parse(fs, args[1:]); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		ups, err := env.svc.Upstreams(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tSETTINGS\tLAST SYNC\tWARNINGS")
		for _, u := range ups {
			warn := "-"
			if conn, err := upstream.Build(u); err != nil {
				warn = "MISCONFIGURED: " + err.Error()
			} else {
				if w, ok := conn.(upstream.Warner); ok && len(w.Warnings()) > 0 {
					warn = strings.Join(w.Warnings(), "; ")
				}
				if cl, ok := conn.(interface{ Close() }); ok {
					cl.Close()
				}
			}
			syncState := "-"
			if rec, err := env.st.DirSyncRecord(ctx, u.Name); err == nil && !rec.LastRun.IsZero() {
				syncState = rec.LastRun.Local().Format("01-02 15:04") + fmt.Sprintf(" (%d users, %d groups)", rec.Users, rec.Groups)
				if rec.LastError != "" {
					syncState = rec.LastRun.Local().Format("01-02 15:04") + " FAILED: " + rec.LastError
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Kind, u.Config, syncState, warn)
		}
		return tw.Flush()
	case "remove":
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one upstream name"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.RemoveUpstream(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "upstream %s removed\n", pos[0])
		return nil
	case "sync-token":
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one upstream name"); err != nil {
			return err
		}
		tok, err := c.readSecret("API token")
		if err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.SetSyncToken(ctx, pos[0], tok); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "sync token for %s stored\n", pos[0])
		return nil
	case "sync":
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one upstream name"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		u, err := env.st.UpstreamByName(ctx, pos[0])
		if err != nil {
			return fmt.Errorf("upstream %s: %w", pos[0], err)
		}
		tok, err := env.st.UpstreamSyncSecret(ctx, u.Name)
		if err != nil {
			return err
		}
		src, _, ok, err := dirsync.ForUpstream(u, tok)
		if !ok {
			return fmt.Errorf("upstream %s has no directory sync configured (see upstream add --sync)", u.Name)
		}
		if err != nil {
			return err
		}
		stats, err := dirsync.Run(ctx, env.st, env.svc.Audit, u.Name, src, time.Now)
		if err != nil {
			return fmt.Errorf("sync from %s failed: %w", u.Name, err)
		}
		fmt.Fprintf(c.out, "synced %s: %d users, %d groups; %d created, %d updated, %d disabled\n", u.Name, stats.Users, stats.Groups, stats.Created, stats.Updated, stats.Disabled)
		for _, cf := range stats.Conflicts {
			fmt.Fprintln(c.out, "skipped:", cf)
		}
		return nil
	case "test":
		userName := fs.String("user", "", "the account to try")
		fs.Bool("password-stdin", false, "read the password from standard input (the default when it is not a terminal)")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one upstream name"); err != nil {
			return err
		}
		if *userName == "" {
			return usageError{"upstream test: --user is required"}
		}
		pw, err := c.readSecret("password for " + *userName)
		if err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		return c.testUpstream(ctx, env, pos[0], *userName, pw)
	}
	return usageError{fmt.Sprintf("upstream: unknown subcommand %q", args[0])}
}

// testUpstream performs a real login check and explains each step.
func (c *cli) testUpstream(ctx context.Context, env *adminEnv, name, user string, pw secrets.Secret) error {
	check, err := env.svc.TestUpstream(ctx, name, user, pw)
	for _, l := range check.Lines() {
		fmt.Fprintln(c.out, l)
	}
	return err
}

// ---- bindaccount

func (c *cli) bindAccount(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"bindaccount: add, list or remove?"}
	}
	var co common
	fs := c.flags("bindaccount "+args[0], &co)
	switch args[0] {
	case "add":
		var nets multi
		fs.Var(&nets, "network", "an address or CIDR range the EHR binds from (repeat for several)")
		secretStdin := fs.Bool("secret-stdin", false, "read the secret from standard input instead of generating one")
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one bind account name"); err != nil {
			return err
		}
		var secret secrets.Secret
		if *secretStdin {
			if secret, err = c.readSecret("bind account secret"); err != nil {
				return err
			}
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		got, err := env.svc.AddBindAccount(ctx, admin.NewBindAccount{Name: pos[0], Networks: nets, Secret: secret})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "bind account %s added; it may search, from %s\n", pos[0], strings.Join(nets, ", "))
		if secret == nil {
			fmt.Fprintf(c.out, "secret (shown once; enter it in the EHR's LDAP settings): %s\n", string(got))
		}
		return nil
	case "list":
		if _, err := parse(fs, args[1:]); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		bs, err := env.svc.BindAccounts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tNETWORKS\tADDED")
		for _, b := range bs {
			nets := make([]string, len(b.Networks))
			for i, p := range b.Networks {
				nets[i] = p.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, strings.Join(nets, ","), b.CreatedAt.Format("2006-01-02"))
		}
		return tw.Flush()
	case "remove":
		pos, err := parse(fs, args[1:])
		if err != nil {
			return err
		}
		if err := want(pos, 1, "one bind account name"); err != nil {
			return err
		}
		env, err := c.open(ctx, co)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := env.svc.RemoveBindAccount(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "bind account %s removed\n", pos[0])
		return nil
	}
	return usageError{fmt.Sprintf("bindaccount: unknown subcommand %q", args[0])}
}
