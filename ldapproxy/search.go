package ldapproxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/ldapproxy/ldapmsg"
	"github.com/clinicgate/clinicgate/ldapproxy/vdir"
)

// maxFilterDepth bounds filter nesting in proxy mode (directory mode's
// evaluator has the same bound); real EHR filters nest two or three deep.
const maxFilterDepth = 32

// directory holds what searches read: the site settings and, in
// directory mode, a snapshot of the store's users and groups, rebuilt at
// most once a second when they change.
type directory struct {
	st   *store.Store
	dirs Directories
	now  func() time.Time

	mu       sync.Mutex
	siteAt   time.Time
	siteV    appliance.LDAPSite
	checked  time.Time
	version  string
	treeBase string
	treeDom  string
	tree     *vdir.Tree
	buildMu  sync.Mutex
}

func newDirectory(st *store.Store, dirs Directories, now func() time.Time) *directory {
	return &directory{st: st, dirs: dirs, now: now}
}

func (d *directory) site(ctx context.Context) (appliance.LDAPSite, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if !d.siteAt.IsZero() && now.Sub(d.siteAt) < time.Second {
		return d.siteV, nil
	}
	s, err := appliance.LoadSite(ctx, d.st)
	if err != nil {
		if !d.siteAt.IsZero() {
			return d.siteV, nil
		}
		return appliance.LDAPSite{}, err
	}
	d.siteV, d.siteAt = s.LDAP, now
	return d.siteV, nil
}

// snapshot returns the directory-mode tree for site.
func (d *directory) snapshot(ctx context.Context, site appliance.LDAPSite) (*vdir.Tree, error) {
	d.buildMu.Lock()
	defer d.buildMu.Unlock()
	d.mu.Lock()
	tree, fresh := d.tree, d.tree != nil && d.treeBase == site.BaseDN && d.treeDom == site.Domain && d.now().Sub(d.checked) < time.Second
	d.mu.Unlock()
	if fresh {
		return tree, nil
	}
	v, err := d.st.UsersVersion(ctx)
	if err != nil {
		if tree != nil {
			return tree, nil
		}
		return nil, err
	}
	d.mu.Lock()
	same := d.tree != nil && v == d.version && d.treeBase == site.BaseDN && d.treeDom == site.Domain
	if same {
		d.checked = d.now()
	}
	d.mu.Unlock()
	if same {
		return tree, nil
	}
	users, err := d.st.Users(ctx)
	if err != nil {
		if tree != nil {
			return tree, nil
		}
		return nil, err
	}
	in := make([]vdir.User, 0, len(users))
	for _, u := range users {
		in = append(in, vdir.User{Name: u.Name, DisplayName: u.DisplayName, Disabled: u.Disabled, Groups: u.Groups})
	}
	t, err := vdir.Build(site.BaseDN, site.Domain, in)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.tree, d.version, d.treeBase, d.treeDom, d.checked = t, v, site.BaseDN, site.Domain, d.now()
	d.mu.Unlock()
	return t, nil
}

func (h *handler) search(c *conn, r *ldapmsg.Request) {
	done := ldapmsg.Result{Code: ldap.LDAPResultOperationsError}
	defer func() { _ = c.writeResult(r.ID, ldap.ApplicationSearchResultDone, &done) }()
	m := r.Search
	kind, name := c.state.get()
	ctx, cancel := opContext()
	defer cancel()
	site, err := h.s.dir.site(ctx)
	if err != nil {
		done.Code, done.Diagnostic = ldap.LDAPResultUnavailable, diagUnavailable
		return
	}
	root := isRootDSE(m)
	if kind == boundNone && !root {
		done.Code, done.Diagnostic = ldap.LDAPResultInsufficientAccessRights, diagBindFirst
		h.s.cfg.Metrics.op("search", string(appliance.ReasonNotBound))
		h.refuse(ctx, c, "", appliance.ReasonNotBound, "search of "+auditable(m.BaseDN))
		return
	}
	sizeLimit := site.SizeLimit
	if m.SizeLimit > 0 && int(m.SizeLimit) < sizeLimit {
		sizeLimit = int(m.SizeLimit)
	}
	timeLimit := site.TimeLimit
	if m.TimeLimit > 0 && time.Duration(m.TimeLimit)*time.Second < timeLimit {
		timeLimit = time.Duration(m.TimeLimit) * time.Second
	}
	ctx, cancel2 := context.WithTimeout(ctx, timeLimit)
	defer cancel2()

	var entries []vdir.Entry
	var serr error
	if site.Mode == "proxy" && !root {
		entries, serr = h.proxySearch(ctx, m, site, sizeLimit, timeLimit)
	} else {
		entries, serr = h.directorySearch(ctx, m, site, sizeLimit)
	}
	var attrs []ldapmsg.Attribute
	for _, e := range entries {
		if ctx.Err() != nil {
			serr = context.DeadlineExceeded
			break
		}
		attrs = attrs[:0]
		for _, a := range sortedKeys(e.Attrs) {
			attrs = append(attrs, ldapmsg.Attribute{Name: a, Values: e.Attrs[a]})
		}
		if err := c.writeEntry(r.ID, e.DN, attrs); err != nil {
			return
		}
	}
	code, diag, result := searchResult(serr)
	done.Code, done.Diagnostic = code, diag
	h.s.cfg.Metrics.op("search", result)
	if code == ldap.LDAPResultNoSuchObject && kind != boundNone {
		h.refuse(ctx, c, name, appliance.ReasonOutsideBase, "search of "+auditable(m.BaseDN))
	}
}

func auditable(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}

func sortedKeys(m map[string][]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

var (
	errOutsideBase = errors.New("search base outside the directory")
	errUnavailable = errors.New("directory unavailable")
)

func searchResult(err error) (code int, diag, result string) {
	switch {
	case err == nil:
		return ldap.LDAPResultSuccess, "", "ok"
	case errors.Is(err, vdir.ErrSizeLimitExceeded):
		return ldap.LDAPResultSizeLimitExceeded, "", "size_limit"
	case errors.Is(err, context.DeadlineExceeded):
		return ldap.LDAPResultTimeLimitExceeded, "", "time_limit"
	case errors.Is(err, vdir.ErrNoSuchObject), errors.Is(err, errOutsideBase):
		return ldap.LDAPResultNoSuchObject, diagNoSuchBase, "no_such_object"
	case errors.Is(err, vdir.ErrInvalidDN):
		return ldap.LDAPResultInvalidDNSyntax, "Invalid DN syntax.", "invalid_dn"
	case errors.Is(err, vdir.ErrFilterTooDeep):
		return ldap.LDAPResultUnwillingToPerform, diagTooComplex, "filter_too_deep"
	case errors.Is(err, vdir.ErrBadFilter):
		return ldap.LDAPResultProtocolError, "Bad search filter.", "bad_filter"
	}
	var le *ldap.Error
	if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork {
		switch le.ResultCode {
		case ldap.LDAPResultNoSuchObject:
			return ldap.LDAPResultNoSuchObject, diagNoSuchBase, "no_such_object"
		case ldap.LDAPResultSizeLimitExceeded:
			return ldap.LDAPResultSizeLimitExceeded, "", "size_limit"
		case ldap.LDAPResultTimeLimitExceeded:
			return ldap.LDAPResultTimeLimitExceeded, "", "time_limit"
		}
	}
	return ldap.LDAPResultUnavailable, diagUnavailable, "unavailable"
}

func (h *handler) directorySearch(ctx context.Context, m *ldapmsg.SearchRequest, site appliance.LDAPSite, sizeLimit int) ([]vdir.Entry, error) {
	t, err := h.s.dir.snapshot(ctx, site)
	if err != nil {
		h.s.log.Error("directory snapshot failed", "err", err)
		return nil, errUnavailable
	}
	return t.Search(vdir.Query{
		BaseDN: m.BaseDN, Scope: vdir.Scope(m.Scope), Filter: m.Filter,
		Attributes: m.Attributes, SizeLimit: sizeLimit, TypesOnly: m.TypesOnly,
	})
}

// proxySearch forwards a search to the upstream directory: only under the
// configured base, with the filter re-encoded from its parsed form (so no
// value reaches the upstream unescaped), and only allowlisted attributes
// asked for and returned.
func (h *handler) proxySearch(ctx context.Context, m *ldapmsg.SearchRequest, site appliance.LDAPSite, sizeLimit int, timeLimit time.Duration) ([]vdir.Entry, error) {
	base, err := ldap.ParseDN(site.BaseDN)
	if err != nil {
		return nil, errUnavailable
	}
	dn, err := ldap.ParseDN(m.BaseDN)
	if err != nil {
		return nil, vdir.ErrInvalidDN
	}
	if !base.EqualFold(dn) && !base.AncestorOfFold(dn) {
		return nil, errOutsideBase
	}
	compiled, err := ldap.CompileFilter(m.Filter)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", vdir.ErrBadFilter, err)
	}
	if filterDepth(compiled) > maxFilterDepth {
		return nil, vdir.ErrFilterTooDeep
	}
	filter, err := ldap.DecompileFilter(compiled)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", vdir.ErrBadFilter, err)
	}
	attrs := allowedAttrs(m.Attributes, site.Attributes)
	d, err := h.proxyDirectory(ctx, site)
	if err != nil {
		h.s.log.Warn("proxy mode search without a usable upstream", "err", err)
		return nil, errUnavailable
	}
	scope := int(m.Scope)
	if scope < ldap.ScopeBaseObject || scope > ldap.ScopeWholeSubtree {
		scope = ldap.ScopeWholeSubtree
	}
	res, err := d.SearchDirectory(ctx, ldap.NewSearchRequest(m.BaseDN, scope, ldap.NeverDerefAliases,
		sizeLimit, int(timeLimit/time.Second), m.TypesOnly, filter, attrs, nil))
	var out []vdir.Entry
	if res != nil {
		for _, e := range res.Entries {
			if len(out) == sizeLimit {
				err = vdir.ErrSizeLimitExceeded
				break
			}
			ve := vdir.Entry{DN: e.DN, Attrs: map[string][]string{}}
			for _, a := range e.Attributes {
				if allowed(a.Name, site.Attributes) {
					ve.Attrs[a.Name] = a.Values
				}
			}
			out = append(out, ve)
		}
	}
	if err != nil && ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		err = vdir.ErrSizeLimitExceeded
	}
	return out, err
}

func allowed(name string, allow []string) bool {
	return slices.ContainsFunc(allow, func(a string) bool { return strings.EqualFold(a, name) })
}

// allowedAttrs narrows what the client asked for to the allowlist: all of
// it for "*" or nothing, "1.1" for no attributes.
func allowedAttrs(asked, allow []string) []string {
	if len(asked) == 0 || slices.Contains(asked, "*") {
		return slices.Clone(allow)
	}
	var out []string
	for _, a := range asked {
		if a == "1.1" {
			return []string{"1.1"}
		}
		if allowed(a, allow) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []string{"1.1"}
	}
	return out
}

// filterDepth counts how deeply and, or and not nest (a single
// comparison is depth 1).
func filterDepth(p *ber.Packet) int {
	if p.ClassType != ber.ClassContext || p.Tag > ldap.FilterNot {
		return 1
	}
	deepest := 0
	for _, c := range p.Children {
		deepest = max(deepest, filterDepth(c))
	}
	return deepest + 1
}
