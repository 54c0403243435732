package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// LDAPConfig configures an LDAP or Active Directory upstream.
type LDAPConfig struct {
	// URLs are tried in order: ldap://host:389 or ldaps://host:636.
	URLs []string `json:"urls"`
	// StartTLS upgrades ldap:// connections before anything is sent.
	StartTLS bool `json:"starttls"`
	// CAFile is a PEM bundle to trust instead of the system's.
	CAFile string `json:"ca_file,omitempty"`
	// ClientCertFile/ClientKeyFile authenticate the appliance (Google
	// Secure LDAP).
	ClientCertFile string `json:"client_cert_file,omitempty"`
	ClientKeyFile  string `json:"client_key_file,omitempty"`
	// BindDN is the service account that searches; its password is the
	// upstream's sealed secret. Empty: searches are anonymous.
	BindDN string `json:"bind_dn,omitempty"`
	// BaseDN is where users are searched.
	BaseDN string `json:"base_dn"`
	// UserAttribute holds the login name: uid, sAMAccountName,
	// userPrincipalName or mail.
	UserAttribute string `json:"user_attribute"`
	// UserFilter narrows the search, e.g. (objectClass=person).
	UserFilter string `json:"user_filter,omitempty"`
	// GroupAttribute on the user lists group DNs (memberOf). Group names
	// are the first RDN's value (the CN).
	GroupAttribute string `json:"group_attribute,omitempty"`
	// GroupBaseDN, when set, finds groups by searching there for entries
	// whose member attribute holds the user's DN (for servers without
	// memberOf).
	GroupBaseDN string `json:"group_base_dn,omitempty"`
	// TimeoutMS bounds each operation; Pool the connections kept open.
	TimeoutMS int `json:"timeout_ms"`
	Pool      int `json:"pool"`
	// LookupCacheSeconds keeps where a user's entry is and its groups
	// after a successful bind (default 60; -1 turns it off). Group changes
	// in the directory apply within this time.
	LookupCacheSeconds int `json:"lookup_cache_seconds,omitempty"`
	// InsecureSkipVerify is refused by Validate; it exists so a config
	// that asks for it gets a clear no instead of silently working.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Defaults fills unset fields.
func (c *LDAPConfig) Defaults() {
	if c.UserAttribute == "" {
		c.UserAttribute = "uid"
	}
	if c.GroupAttribute == "" && c.GroupBaseDN == "" {
		c.GroupAttribute = "memberOf"
	}
	if c.TimeoutMS == 0 {
		c.TimeoutMS = 2000
	}
	if c.Pool == 0 {
		c.Pool = 4
	}
	if c.LookupCacheSeconds == 0 {
		c.LookupCacheSeconds = 60
	}
}

var attrName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)

// Validate reports every problem at once.
func (c LDAPConfig) Validate() error {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("no urls: give ldaps://host:636 or ldap://host:389 (with starttls)"))
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "ldap" && p.Scheme != "ldaps") || p.Host == "" {
			errs = append(errs, fmt.Errorf("url %q: want ldap://host:port or ldaps://host:port", u))
		}
	}
	if c.BaseDN == "" {
		errs = append(errs, errors.New("base_dn is empty (for example dc=clinic,dc=local)"))
	} else if _, err := ldap.ParseDN(c.BaseDN); err != nil {
		errs = append(errs, fmt.Errorf("base_dn %q is not a DN", c.BaseDN))
	}
	if c.BindDN != "" && !strings.Contains(c.BindDN, "@") && !strings.Contains(c.BindDN, `\`) {
		if _, err := ldap.ParseDN(c.BindDN); err != nil {
			errs = append(errs, fmt.Errorf("bind_dn %q is not a DN (or user@domain)", c.BindDN))
		}
	}
	if !attrName.MatchString(c.UserAttribute) {
		errs = append(errs, fmt.Errorf("user_attribute %q is not an attribute name", c.UserAttribute))
	}
	if c.GroupAttribute != "" && !attrName.MatchString(c.GroupAttribute) {
		errs = append(errs, fmt.Errorf("group_attribute %q is not an attribute name", c.GroupAttribute))
	}
	if c.UserFilter != "" {
		if _, err := ldap.CompileFilter(c.UserFilter); err != nil {
			errs = append(errs, fmt.Errorf("user_filter %q: %v", c.UserFilter, err))
		}
	}
	if c.InsecureSkipVerify {
		errs = append(errs, errors.New("insecure_skip_verify is not allowed: give the server's CA in ca_file instead"))
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		errs = append(errs, errors.New("client_cert_file and client_key_file go together"))
	}
	if c.TimeoutMS < 100 || c.TimeoutMS > 30000 {
		errs = append(errs, fmt.Errorf("timeout_ms %d is outside 100-30000", c.TimeoutMS))
	}
	if c.LookupCacheSeconds < -1 || c.LookupCacheSeconds > 3600 {
		errs = append(errs, fmt.Errorf("lookup_cache_seconds %d is outside -1 (off) to 3600", c.LookupCacheSeconds))
	}
	if c.Pool < 1 || c.Pool > 64 {
		errs = append(errs, fmt.Errorf("pool %d is outside 1-64", c.Pool))
	}
	return errors.Join(errs...)
}

// LDAP checks passwords by binding as the user's DN, after finding it with
// a service account. Connections are pooled: a clinic's EHR may check a
// login every few seconds.
type LDAP struct {
	cfg     LDAPConfig
	name    string
	bindPW  []byte
	tls     *tls.Config
	timeout time.Duration

	search chan *ldap.Conn // bound as the service account
	binds  chan *ldap.Conn // last bound as some user
	slots  chan struct{}   // bounds open connections

	lookups *lookupCache
	mu      sync.Mutex
	next    int // index of the URL to try first
}

// NewLDAP builds the connector.
func NewLDAP(name, config string, bindPassword secrets.Secret) (*LDAP, error) {
	var c LDAPConfig
	if err := parseConfig(name, config, &c); err != nil {
		return nil, err
	}
	tc, err := tlsConfig(name, c.CAFile)
	if err != nil {
		return nil, err
	}
	if c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: client certificate: %w", name, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	l := &LDAP{
		cfg: c, name: name, bindPW: append([]byte(nil), bindPassword...), tls: tc,
		timeout: time.Duration(c.TimeoutMS) * time.Millisecond,
		// Either pool may keep every slot's connection idle: with room
		// for Pool only, a burst of more binds than Pool closed the
		// extra connections when they came back and dialled them again
		// at the next burst (issue 15: 5 % of a proxied bind's CPU).
		// slots still bounds the connections open, both pools together.
		search: make(chan *ldap.Conn, 2*c.Pool), binds: make(chan *ldap.Conn, 2*c.Pool),
		slots: make(chan struct{}, 2*c.Pool),
	}
	if c.LookupCacheSeconds > 0 {
		l.lookups = newLookupCache(time.Duration(c.LookupCacheSeconds)*time.Second, 4096)
	}
	return l, nil
}

// Warnings lists weak settings.
func (l *LDAP) Warnings() []string {
	var w []string
	for _, u := range l.cfg.URLs {
		if strings.HasPrefix(u, "ldap://") && !l.cfg.StartTLS {
			w = append(w, u+" is plain LDAP without StartTLS: passwords cross the network readable")
		}
	}
	return w
}

// Close closes pooled connections.
func (l *LDAP) Close() {
	for _, ch := range []chan *ldap.Conn{l.search, l.binds} {
		for {
			select {
			case c := <-ch:
				c.Close()
				<-l.slots
				continue
			default:
			}
			break
		}
	}
}

// dial opens a connection to the first server that answers, TLS verified.
func (l *LDAP) dial(ctx context.Context) (*ldap.Conn, error) {
	l.mu.Lock()
	start := l.next
	l.mu.Unlock()
	var errs []error
	for i := range l.cfg.URLs {
		idx := (start + i) % len(l.cfg.URLs)
		raw := l.cfg.URLs[idx]
		u, _ := url.Parse(raw)
		tc := l.tls.Clone()
		tc.ServerName = u.Hostname()
		d := &net.Dialer{Timeout: l.timeout}
		if dl, ok := ctx.Deadline(); ok {
			d.Deadline = dl
		}
		conn, err := ldap.DialURL(raw, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(tc))
		if err == nil && l.cfg.StartTLS && u.Scheme == "ldap" {
			conn.SetTimeout(l.timeout)
			if err = conn.StartTLS(tc); err != nil {
				conn.Close()
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", raw, explainTLS(err)))
			continue
		}
		conn.SetTimeout(l.timeout)
		l.mu.Lock()
		l.next = idx
		l.mu.Unlock()
		return conn, nil
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, l.name, errors.Join(errs...))
}

// explainTLS turns certificate errors into advice.
func explainTLS(err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.As(err, &ua) || strings.Contains(msg, "certificate signed by unknown authority"):
		return "the server's certificate is signed by an unknown authority (put its CA in ca_file): " + err.Error()
	case errors.As(err, &hn) || strings.Contains(msg, "x509: cannot validate certificate for") || strings.Contains(msg, "x509: certificate is valid for"):
		return "the server's certificate is for another name (use the name in the certificate in the URL): " + err.Error()
	case errors.As(err, &ci) || strings.Contains(msg, "x509: certificate has expired"):
		return "the server's certificate is not valid (expired or not for servers): " + err.Error()
	}
	return err.Error()
}

// get takes a pooled connection or opens one; bind says which pool.
func (l *LDAP) get(ctx context.Context, pool chan *ldap.Conn, service bool) (*ldap.Conn, error) {
	// Idle connections of the other pool hold slots too: when every slot
	// is taken, one of them is closed to make room, or a search waiting
	// while only bind connections sit idle would wait forever.
	other := l.binds
	if pool == l.binds {
		other = l.search
	}
	for {
		select {
		case c := <-pool:
			if c.IsClosing() {
				c.Close()
				<-l.slots
				continue
			}
			return c, nil
		default:
		}
		break
	}
acquire:
	for {
		select {
		case c := <-pool:
			if c.IsClosing() {
				c.Close()
				<-l.slots
				continue
			}
			return c, nil
		case l.slots <- struct{}{}:
			break acquire
		case c := <-other:
			c.Close() // its slot is now this connection's
			break acquire
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: all connections busy", ErrUnreachable, l.name)
		}
	}
	c, err := l.dial(ctx)
	if err != nil {
		<-l.slots
		return nil, err
	}
	if service && l.cfg.BindDN != "" {
		if err := c.Bind(l.cfg.BindDN, string(l.bindPW)); err != nil {
			c.Close()
			<-l.slots
			mapped := mapBindError(err)
			switch {
			case errors.Is(mapped, ErrUnreachable):
				return nil, fmt.Errorf("%w: %s: service bind: %v", ErrUnreachable, l.name, err)
			case errors.Is(mapped, ErrUpstreamRefused):
				return nil, fmt.Errorf("%w: %s: the service account %s: %v", ErrUpstreamRefused, l.name, l.cfg.BindDN, mapped)
			}
			return nil, fmt.Errorf("%w: %s: the service account %s was refused (check its password; the directory says: %v)", ErrUpstreamRefused, l.name, l.cfg.BindDN, mapped)
		}
	}
	return c, nil
}

func (l *LDAP) put(pool chan *ldap.Conn, c *ldap.Conn, ok bool) {
	if ok && !c.IsClosing() {
		select {
		case pool <- c:
			return
		default:
		}
	}
	c.Close()
	<-l.slots
}

// Probe checks the server without a login: connect, bind as the service
// account, read the root DSE.
func (l *LDAP) Probe(ctx context.Context) error {
	c, err := l.get(ctx, l.search, true)
	if err != nil {
		return err
	}
	_, err = c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(l.timeout/time.Second)+1, false, "(objectClass=*)", []string{"supportedLDAPVersion"}, nil))
	l.put(l.search, c, err == nil)
	if err != nil {
		return fmt.Errorf("%w: %s: probe: %v", ErrUnreachable, l.name, err)
	}
	return nil
}

// userEntry is what the search found.
type userEntry struct {
	dn     string
	name   string
	groups []string
}

// Verify finds the user and binds as them.
func (l *LDAP) Verify(ctx context.Context, user string, password secrets.Secret) (Identity, error) {
	// An empty password would make a "successful" unauthenticated bind
	// (RFC 4513 §5.1.2): never send one.
	if len(password) == 0 {
		return Identity{}, ErrBadCredentials
	}
	if user == "" || !utf8.ValidString(user) || strings.ContainsRune(user, 0) || len(user) > 256 {
		return Identity{}, ErrUnknownUser
	}
	e, cached := l.lookups.get(user, time.Now())
	if !cached {
		var err error
		if e, err = l.find(ctx, user); err != nil {
			return Identity{}, err
		}
	}
	c, err := l.get(ctx, l.binds, false)
	if err != nil {
		return Identity{}, err
	}
	err = c.Bind(e.dn, string(password))
	if err != nil {
		mapped := mapBindError(err)
		// A refused bind leaves the connection usable; a network error
		// does not. Any refusal forgets the lookup: the entry may have
		// moved or gone.
		l.put(l.binds, c, !errors.Is(mapped, ErrUnreachable))
		l.lookups.drop(user)
		l.lookups.drop(dnKey(e.dn))
		return Identity{}, mapped
	}
	l.put(l.binds, c, true)
	if !cached {
		l.lookups.put(user, e, time.Now())
	}
	return Identity{Name: e.name, Groups: e.groups}, nil
}

// lookupCache remembers, for a minute, where a user's entry is and which
// groups it has, after a successful bind: an EHR that checks the same login
// every few minutes then costs one bind instead of a search, a group search
// and a bind. It holds no password. Group changes in the directory apply
// within the TTL; a failed bind forgets the entry at once. Bounded: the
// oldest entries go first.
type lookupCache struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	items map[string]cachedLookup
	order []string
}

type cachedLookup struct {
	e       userEntry
	expires time.Time
}

func newLookupCache(ttl time.Duration, max int) *lookupCache {
	return &lookupCache{ttl: ttl, max: max, items: map[string]cachedLookup{}}
}

func (c *lookupCache) get(user string, now time.Time) (userEntry, bool) {
	if c == nil || c.ttl <= 0 {
		return userEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[user]
	if !ok || !now.Before(it.expires) {
		return userEntry{}, false
	}
	return it.e, true
}

func (c *lookupCache) put(user string, e userEntry, now time.Time) {
	if c == nil || c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[user]; !ok {
		for len(c.order) >= c.max {
			delete(c.items, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, user)
	}
	c.items[user] = cachedLookup{e: e, expires: now.Add(c.ttl)}
}

func (c *lookupCache) drop(user string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, user)
}

// searchFor turns what the person typed into the attribute and value to
// search. Against Active Directory (user attribute sAMAccountName) the
// three forms AD itself accepts all work: "alice", "CLINIC\alice" (the
// domain part is dropped) and "alice@clinic.local" (searched as the
// userPrincipalName). Elsewhere the name is searched as typed.
func (l *LDAP) searchFor(user string) (attr, value string) {
	attr, value = l.cfg.UserAttribute, user
	if !strings.EqualFold(attr, "sAMAccountName") {
		return attr, value
	}
	if i := strings.IndexByte(user, '\\'); i >= 0 {
		return attr, user[i+1:]
	}
	if strings.Contains(user, "@") {
		return "userPrincipalName", user
	}
	return attr, value
}

// Canonical names the local record for a typed name without asking the
// server: against Active Directory CLINIC\alice and alice@clinic.local
// both mean alice (the usual case, where the UPN's prefix is the
// sAMAccountName). Elsewhere names are taken as typed.
func (l *LDAP) Canonical(user string) string {
	if !strings.EqualFold(l.cfg.UserAttribute, "sAMAccountName") {
		return user
	}
	if i := strings.IndexByte(user, '\\'); i >= 0 {
		return user[i+1:]
	}
	if i := strings.LastIndexByte(user, '@'); i > 0 {
		return user[:i]
	}
	return user
}

func (l *LDAP) find(ctx context.Context, user string) (userEntry, error) {
	attr, value := l.searchFor(user)
	if value == "" || strings.ContainsAny(value, "\\") {
		return userEntry{}, ErrUnknownUser
	}
	filter := "(" + attr + "=" + ldap.EscapeFilter(value) + ")"
	if l.cfg.UserFilter != "" {
		filter = "(&" + filter + l.cfg.UserFilter + ")"
	}
	attrs := []string{l.cfg.UserAttribute}
	if l.cfg.GroupAttribute != "" {
		attrs = append(attrs, l.cfg.GroupAttribute)
	}
	c, err := l.get(ctx, l.search, true)
	if err != nil {
		return userEntry{}, err
	}
	res, err := c.Search(ldap.NewSearchRequest(l.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(l.timeout/time.Second)+1, false, filter, attrs, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		l.put(l.search, c, false)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return userEntry{}, fmt.Errorf("%w: %s: base_dn %s does not exist", ErrUpstreamRefused, l.name, l.cfg.BaseDN)
		}
		return userEntry{}, searchError(l.name, "search", err)
	}
	var entries []*ldap.Entry
	if res != nil {
		entries = res.Entries
	}
	switch {
	case len(entries) == 0:
		l.put(l.search, c, true)
		return userEntry{}, ErrUnknownUser
	case len(entries) > 1:
		l.put(l.search, c, true)
		return userEntry{}, fmt.Errorf("%w: %s: %d entries match %s; make user_attribute or user_filter unique", ErrUpstreamRefused, l.name, len(entries), filter)
	}
	e := entries[0]
	out := userEntry{dn: e.DN, name: e.GetAttributeValue(l.cfg.UserAttribute)}
	if out.name == "" {
		out.name = user
	}
	if l.cfg.GroupAttribute != "" {
		for _, g := range e.GetAttributeValues(l.cfg.GroupAttribute) {
			out.groups = append(out.groups, firstRDNValue(g))
		}
	}
	if l.cfg.GroupBaseDN != "" {
		gres, err := c.Search(ldap.NewSearchRequest(l.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 500, int(l.timeout/time.Second)+1, false,
			"(|(member="+ldap.EscapeFilter(e.DN)+")(uniqueMember="+ldap.EscapeFilter(e.DN)+")(memberUid="+ldap.EscapeFilter(out.name)+"))", []string{"cn"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			l.put(l.search, c, false)
			return userEntry{}, searchError(l.name, "group search", err)
		}
		if gres != nil {
			for _, g := range gres.Entries {
				if cn := g.GetAttributeValue("cn"); cn != "" {
					out.groups = append(out.groups, cn)
				}
			}
		}
	}
	l.put(l.search, c, true)
	slices.Sort(out.groups)
	out.groups = slices.Compact(out.groups)
	return out, nil
}

// searchError says whether a failed search means the server could not be
// asked (which may let the credential cache step in) or that it refused
// (a setup mistake, such as missing read rights, which must not).
func searchError(name, what string, err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultTimeout,
			ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultOther, ldap.LDAPResultUnwillingToPerform:
		default:
			return fmt.Errorf("%w: %s: %s refused: %v (check the service account's read rights and the base DN)", ErrUpstreamRefused, name, what, err)
		}
	}
	return fmt.Errorf("%w: %s: %s: %v", ErrUnreachable, name, what, err)
}

func firstRDNValue(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return dn
	}
	return parsed.RDNs[0].Attributes[0].Value
}

// adSubcode finds Active Directory's reason in a bind error's diagnostic
// text ("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext
// error, data 52e, v4563").
var adSubcode = regexp.MustCompile(`data ([0-9a-f]{3,4})`)

func mapBindError(err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return fmt.Errorf("%w: bind: %v", ErrUnreachable, err)
	}
	switch le.ResultCode {
	case ldap.LDAPResultInvalidCredentials:
		if m := adSubcode.FindStringSubmatch(le.Err.Error()); m != nil {
			switch m[1] {
			case "525":
				return ErrUnknownUser
			case "52e":
				return ErrBadCredentials
			case "530", "531":
				return fmt.Errorf("%w: not allowed at this time or from this workstation", ErrUpstreamRefused)
			case "532":
				return ErrPasswordExpired
			case "533":
				return ErrAccountDisabled
			case "701":
				return ErrAccountExpired
			case "773":
				return ErrMustChange
			case "775":
				return ErrAccountLockedOut
			}
		}
		return ErrBadCredentials
	case ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInappropriateAuthentication, ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultStrongAuthRequired:
		return fmt.Errorf("%w: the server refused the bind: %v (does it require TLS? turn on starttls or use ldaps://)", ErrUpstreamRefused, le)
	case ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultOther, ldap.ErrorNetwork, ldap.LDAPResultTimeout, ldap.LDAPResultTimeLimitExceeded:
		return fmt.Errorf("%w: bind: %v", ErrUnreachable, le)
	}
	return fmt.Errorf("%w: bind: %v", ErrUpstreamRefused, le)
}

// SearchDirectory forwards one search for the LDAP door's proxy mode, on a
// pooled connection bound as the service account. The door builds the
// request from a parsed filter (so its values are escaped) and filters the
// returned attributes; continuation references are dropped.
func (l *LDAP) SearchDirectory(ctx context.Context, req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	c, err := l.get(ctx, l.search, true)
	if err != nil {
		return nil, err
	}
	res, err := c.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		// Keep the connection only if the server answered the search.
		var le *ldap.Error
		answered := errors.As(err, &le) && le.ResultCode != ldap.ErrorNetwork && le.ResultCode < ldap.ErrorNetwork
		l.put(l.search, c, answered && !c.IsClosing())
		if !answered {
			return nil, fmt.Errorf("%w: %s: search: %v", ErrUnreachable, l.name, err)
		}
		return nil, err
	}
	l.put(l.search, c, true)
	if res != nil {
		res.Referrals = nil
	}
	return res, err
}

// NameForDN returns the login name (user_attribute) of the entry at dn,
// for a bind by DN in proxy mode; ErrUnknownUser if there is none.
func (l *LDAP) NameForDN(ctx context.Context, dn string) (string, error) {
	// The answer is kept like a user lookup (a minute, bounded, forgotten
	// when a bind to that DN fails): an EHR binds by DN again and again.
	key := dnKey(dn)
	if e, ok := l.lookups.get(key, time.Now()); ok {
		return e.name, nil
	}
	filter := "(objectClass=*)"
	if l.cfg.UserFilter != "" {
		filter = l.cfg.UserFilter
	}
	res, err := l.SearchDirectory(ctx, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(l.timeout/time.Second)+1, false, filter, []string{l.cfg.UserAttribute}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) || ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax) {
		return "", ErrUnknownUser
	}
	if err != nil {
		return "", err
	}
	if len(res.Entries) != 1 {
		return "", ErrUnknownUser
	}
	name := res.Entries[0].GetAttributeValue(l.cfg.UserAttribute)
	if name == "" {
		return "", ErrUnknownUser
	}
	l.lookups.put(key, userEntry{dn: res.Entries[0].DN, name: name}, time.Now())
	return name, nil
}

// dnKey is the lookup-cache key of a DN: normalized, so that case and
// spacing do not make two entries, and apart from user names.
func dnKey(dn string) string {
	if d, err := ldap.ParseDN(dn); err == nil {
		var parts []string
		for _, r := range d.RDNs {
			for _, a := range r.Attributes {
				parts = append(parts, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
			}
		}
		return "dn:" + strings.Join(parts, ",")
	}
	return "dn:" + strings.ToLower(dn)
}
