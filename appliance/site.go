package appliance

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/directory"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Site holds the appliance-wide settings kept in the store.
type Site struct {
	TimeZone         *time.Location
	LockoutThreshold int           // consecutive failures before a lock; 0 disables locking
	LockoutDuration  time.Duration // how long a lock lasts
	ChallengeTTL     time.Duration // how long an Access-Challenge may be answered
	TOTPWindow       int           // time steps accepted either side of now
	CacheWindow      time.Duration // how old a cached verifier may be (failmode cached)
	// RepeatWindow: a local user's password verified this recently is
	// checked again without the slow hash (repeat.go); 0: always hash.
	RepeatWindow time.Duration
	LDAP         LDAPSite
}

// LDAPSite is how the LDAP door presents the directory.
type LDAPSite struct {
	BaseDN  string // dc=clinic,dc=local
	Domain  string // clinic.local: user@domain binds, userPrincipalName
	NetBIOS string // CLINIC: CLINIC\user binds
	// Mode is LDAPModeDirectory (serve users and groups from the store)
	// or LDAPModeProxy (forward searches to ProxyUpstream, an LDAP
	// upstream).
	Mode          string
	ProxyUpstream string
	Attributes    []string // proxy mode: the only attributes returned
	SizeLimit     int
	TimeLimit     time.Duration
	// UserSearch is what a person's own bind may search in directory
	// mode: LDAPUserSearchSelf (the default: their own entry) or
	// LDAPUserSearchAll. A bind account searches everything either way.
	UserSearch string
	// Directory is what the mode serves: searches, and DNs turned into
	// login names. The gate sets it where it loads the settings
	// (Gate.loadSite); nothing else looks at Mode.
	Directory directory.Directory
}

// The LDAP door's modes (the site setting ldap_mode).
const (
	LDAPModeDirectory = "directory"
	LDAPModeProxy     = "proxy"
)

// DefaultLDAPAttributes are what an EHR needs to find and show a user.
const DefaultLDAPAttributes = "objectClass,cn,uid,sAMAccountName,userPrincipalName,displayName,givenName,sn,mail,memberOf,member,distinguishedName,userAccountControl"

func checkDN(v string) error {
	if _, err := ldap.ParseDN(v); err != nil || strings.TrimSpace(v) == "" {
		return fmt.Errorf("is not a distinguished name like dc=clinic,dc=local")
	}
	return nil
}

// SettingSpec documents one site setting.
type SettingSpec struct {
	Key     string
	Default string
	Help    string
	check   func(string) error
}

func intIn(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		return nil
	}
}

// SettingSpecs lists every site setting.
var SettingSpecs = map[string]SettingSpec{
	"timezone": {Key: "timezone", Default: "", Help: "IANA time zone for allowed hours, e.g. America/Chicago (empty: the system's zone)", check: func(v string) error {
		if v == "" {
			return nil
		}
		_, err := time.LoadLocation(v)
		if err != nil {
			return fmt.Errorf("is not a known time zone (use a name like Europe/Berlin)")
		}
		return nil
	}},
	"lockout_threshold": {Key: "lockout_threshold", Default: "5", Help: "failed passwords or codes in a row before the account is locked (0: never lock)", check: intIn(0, 100)},
	"lockout_minutes":   {Key: "lockout_minutes", Default: "15", Help: "how long a locked account stays locked, in minutes", check: intIn(1, 24*60)},
	"challenge_seconds": {Key: "challenge_seconds", Default: "120", Help: "how long a user has to answer a code prompt, in seconds", check: intIn(10, 600)},
	"totp_window":       {Key: "totp_window", Default: "1", Help: "30-second steps of clock drift accepted either side (1 = ±30 s)", check: intIn(0, 3)},
	"ldap_base_dn":      {Key: "ldap_base_dn", Default: "dc=clinic,dc=local", Help: "LDAP door: the directory's base DN (in proxy mode, the upstream directory's)", check: checkDN},
	"ldap_domain": {Key: "ldap_domain", Default: "clinic.local", Help: "LDAP door: the DNS domain of user@domain binds and userPrincipalName", check: func(v string) error {
		if v == "" || strings.ContainsAny(v, " @\\,=") || len(v) > 253 {
			return fmt.Errorf("is not a domain name like clinic.local")
		}
		return nil
	}},
	"ldap_netbios": {Key: "ldap_netbios", Default: "CLINIC", Help: "LDAP door: the short domain name of DOMAIN\\user binds", check: func(v string) error {
		if v == "" || len(v) > 15 || strings.ContainsAny(v, " .@\\,=/:*?\"<>|") {
			return fmt.Errorf("is not a NetBIOS domain name (1-15 characters, no dots or spaces)")
		}
		return nil
	}},
	"ldap_mode": {Key: "ldap_mode", Default: "directory", Help: "LDAP door: directory (serve the appliance's users and groups) or proxy (forward searches to ldap_proxy_upstream)", check: func(v string) error {
		if v != LDAPModeDirectory && v != LDAPModeProxy {
			return fmt.Errorf("must be directory or proxy")
		}
		return nil
	}},
	"ldap_proxy_upstream": {Key: "ldap_proxy_upstream", Default: "", Help: "LDAP door, proxy mode: the LDAP upstream searches go to", check: func(v string) error { return nil }},
	"ldap_attributes": {Key: "ldap_attributes", Default: DefaultLDAPAttributes, Help: "LDAP door, proxy mode: the only attributes returned, comma-separated", check: func(v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("must name at least one attribute")
		}
		return nil
	}},
	"ldap_user_search": {Key: "ldap_user_search", Default: LDAPUserSearchSelf, Help: "LDAP door, directory mode: what a person's own bind may search: self (only their own entry) or all (every user and group, as the bind accounts)", check: func(v string) error {
		if v != LDAPUserSearchSelf && v != LDAPUserSearchAll {
			return fmt.Errorf("want self or all")
		}
		return nil
	}},
	"ldap_size_limit":      {Key: "ldap_size_limit", Default: "500", Help: "LDAP door: most entries one search returns", check: intIn(1, 100000)},
	"ldap_time_limit":      {Key: "ldap_time_limit", Default: "10", Help: "LDAP door: longest a search may take, in seconds", check: intIn(1, 300)},
	"repeat_login_seconds": {Key: "repeat_login_seconds", Default: "0", Help: "local users: a password verified this many seconds ago is checked again from memory instead of the slow hash (shift changes, 802.1X storms); 0: always hash", check: intIn(0, 3600)},
	"cache_hours":          {Key: "cache_hours", Default: "72", Help: "failmode cached: how long a password verified by the upstream may be accepted while it is unreachable, in hours", check: intIn(1, 720)},
	"ntp_servers":          {Key: "ntp_servers", Default: "", Help: "NTP servers the clock is checked against, comma-separated host or host:port (empty: those systemd-timesyncd uses); TOTP fails when the clock is off by more than 30 s", check: checkNTPServers},
}

// checkNTPServers accepts up to four host or host:port names.
func checkNTPServers(v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > 4 {
		return fmt.Errorf("names at most 4 servers")
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		host := p
		if h, port, err := net.SplitHostPort(p); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q: bad port", p)
			}
			host = h
		}
		if host == "" || strings.ContainsAny(host, " /@") || len(host) > 253 {
			return fmt.Errorf("%q is not a host name or address", p)
		}
	}
	return nil
}

// SettingKeys returns the setting names in order.
func SettingKeys() []string {
	keys := make([]string, 0, len(SettingSpecs))
	for k := range SettingSpecs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckSetting validates one setting's value.
func CheckSetting(key, value string) error {
	spec, ok := SettingSpecs[key]
	if !ok {
		return fmt.Errorf("unknown setting %q (known: %v)", key, SettingKeys())
	}
	if err := spec.check(value); err != nil {
		return fmt.Errorf("%s %q %w", key, value, err)
	}
	return nil
}

// LoadSite reads the site settings, falling back to defaults for unset or
// unreadable values (an unreadable value was refused when it was set, so
// this only happens after a hand edit of the database).
func LoadSite(ctx context.Context, st *store.Store) (Site, error) {
	raw, err := st.Settings(ctx)
	if err != nil {
		return Site{}, err
	}
	get := func(k string) string {
		if v, ok := raw["site."+k]; ok && CheckSetting(k, v) == nil {
			return v
		}
		return SettingSpecs[k].Default
	}
	num := func(k string) int { n, _ := strconv.Atoi(get(k)); return n }
	s := Site{
		TimeZone:         time.Local,
		LockoutThreshold: num("lockout_threshold"),
		LockoutDuration:  time.Duration(num("lockout_minutes")) * time.Minute,
		ChallengeTTL:     time.Duration(num("challenge_seconds")) * time.Second,
		TOTPWindow:       num("totp_window"),
		CacheWindow:      time.Duration(num("cache_hours")) * time.Hour,
		RepeatWindow:     time.Duration(num("repeat_login_seconds")) * time.Second,
		LDAP: LDAPSite{
			BaseDN: get("ldap_base_dn"), Domain: get("ldap_domain"), NetBIOS: get("ldap_netbios"),
			Mode: get("ldap_mode"), ProxyUpstream: get("ldap_proxy_upstream"), UserSearch: get("ldap_user_search"),
			SizeLimit: num("ldap_size_limit"), TimeLimit: time.Duration(num("ldap_time_limit")) * time.Second,
		},
	}
	for _, a := range strings.Split(get("ldap_attributes"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			s.LDAP.Attributes = append(s.LDAP.Attributes, a)
		}
	}
	if tz := get("timezone"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			s.TimeZone = loc
		}
	}
	return s, nil
}

// loadSite reads the site settings and gives the LDAP door's mode its
// directory: the one place the mode is looked at.
func (g *Gate) loadSite(ctx context.Context) (Site, error) {
	s, err := LoadSite(ctx, g.store)
	if err != nil {
		return s, err
	}
	l := &s.LDAP
	set := directory.Settings{BaseDN: l.BaseDN, Domain: l.Domain, Attributes: l.Attributes, SizeLimit: l.SizeLimit, TimeLimit: l.TimeLimit}
	local := g.localDir.With(set)
	switch l.Mode {
	case LDAPModeProxy:
		l.Directory = directory.Proxy{Upstreams: g.proxyUps, Upstream: l.ProxyUpstream, Local: local, Settings: set, Log: g.log}
	default:
		l.Directory = local
	}
	return s, nil
}

// Directory is the LDAP door's directory under the current site settings.
func (g *Gate) Directory(ctx context.Context) (directory.Directory, error) {
	s, err := g.site.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("site settings: %w", err)
	}
	return s.LDAP.Directory, nil
}

// The values of the ldap_user_search setting.
const (
	LDAPUserSearchSelf = "self"
	LDAPUserSearchAll  = "all"
)

// DirectoryFor is the directory a connection bound as the person user may
// search. In directory mode, unless the site lets people read everything
// (ldap_user_search all), it holds their own entry only: before, a user
// bind listed every name, and five wrong passwords each then locked
// every account (issue 16). Proxy mode leaves it to the upstream.
func (g *Gate) DirectoryFor(ctx context.Context, user string) (directory.Directory, error) {
	s, err := g.site.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("site settings: %w", err)
	}
	if s.LDAP.Mode != LDAPModeDirectory || s.LDAP.UserSearch == LDAPUserSearchAll {
		return s.LDAP.Directory, nil
	}
	return selfOnly{Directory: s.LDAP.Directory, user: user}, nil
}

// selfOnly passes on the entries of one user only.
type selfOnly struct {
	directory.Directory
	user string
}

func (d selfOnly) Search(ctx context.Context, q directory.Query, emit func(directory.Entry) error) error {
	if q.BaseDN == "" && q.Scope == 0 { // the root DSE (ldap.ScopeBaseObject): anyone's to read
		return d.Directory.Search(ctx, q, emit)
	}
	return d.Directory.Search(ctx, q, func(e directory.Entry) error {
		name, err := d.Directory.NameForDN(ctx, e.DN)
		if err != nil || !strings.EqualFold(name, d.user) {
			return nil // another user's entry, or a group: not shown
		}
		return emit(e)
	})
}

// SiteValues returns each site setting's current value as stored (or its
// default), for display.
func SiteValues(ctx context.Context, st *store.Store) (map[string]string, error) {
	raw, err := st.Settings(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, spec := range SettingSpecs {
		out[k] = spec.Default
		if v, ok := raw["site."+k]; ok {
			out[k] = v
		}
	}
	return out, nil
}
