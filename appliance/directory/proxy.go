package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// Upstreams finds proxy mode's LDAP upstream by name (the daemon's
// upstream.Registry).
type Upstreams interface {
	Directory(ctx context.Context, name string) (upstream.Directory, error)
}

// Proxy serves proxy mode: searches go to the LDAP upstream called
// Upstream, only under the base DN, with the filter re-encoded from its
// parsed form (so no value reaches the upstream unescaped), and only
// allowlisted attributes asked for and returned; referrals are dropped.
// The root DSE is the appliance's own, answered by Local.
type Proxy struct {
	Upstreams Upstreams // nil: every search and DN lookup fails
	Upstream  string    // the upstream's name; "": none configured
	Local     Directory // answers the root DSE
	Settings  Settings
	Log       *slog.Logger
}

func (p Proxy) directory(ctx context.Context) (upstream.Directory, error) {
	if p.Upstreams == nil || p.Upstream == "" {
		return nil, errors.New("proxy mode has no upstream (set ldap_proxy_upstream)")
	}
	return p.Upstreams.Directory(ctx, p.Upstream)
}

// NameForDN asks the upstream for the login name of the entry at dn. The
// upstream keeps the answer a minute and forgets it when a bind to that DN
// fails, since an EHR binds by DN again and again.
func (p Proxy) NameForDN(ctx context.Context, dn string) (string, error) {
	d, err := p.directory(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	n, err := d.NameForDN(ctx, dn)
	switch {
	case errors.Is(err, upstream.ErrUnknownUser):
		return "", ErrUnknownUser
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return n, nil
}

func (p Proxy) Search(ctx context.Context, q Query, emit func(Entry) error) error {
	if isRootDSE(q) && p.Local != nil {
		return p.Local.Search(ctx, q, emit)
	}
	size, tl := limits(q, p.Settings)
	ctx, cancel := context.WithTimeout(ctx, tl)
	defer cancel()
	entries, err := p.search(ctx, q, size, tl)
	return emitAll(ctx, entries, err, emit)
}

func (p Proxy) search(ctx context.Context, q Query, sizeLimit int, timeLimit time.Duration) ([]Entry, error) {
	set := p.Settings
	base, err := ldap.ParseDN(set.BaseDN)
	if err != nil {
		return nil, ErrUnavailable
	}
	dn, err := ldap.ParseDN(q.BaseDN)
	if err != nil {
		return nil, ErrInvalidDN
	}
	if !base.EqualFold(dn) && !base.AncestorOfFold(dn) {
		return nil, fmt.Errorf("%w: search base outside the directory", ErrNoSuchObject)
	}
	compiled, err := ldap.CompileFilter(q.Filter)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	if filterDepth(compiled) > maxFilterDepth {
		return nil, ErrFilterTooDeep
	}
	filter, err := ldap.DecompileFilter(compiled)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFilter, err)
	}
	attrs := allowedAttrs(q.Attributes, set.Attributes)
	d, err := p.directory(ctx)
	if err != nil {
		if p.Log != nil {
			p.Log.Warn("proxy mode search without a usable upstream", "err", err)
		}
		return nil, ErrUnavailable
	}
	scope := q.Scope
	if scope < ldap.ScopeBaseObject || scope > ldap.ScopeWholeSubtree {
		scope = ldap.ScopeWholeSubtree
	}
	res, err := d.SearchDirectory(ctx, ldap.NewSearchRequest(q.BaseDN, scope, ldap.NeverDerefAliases,
		sizeLimit, int(timeLimit/time.Second), q.TypesOnly, filter, attrs, nil))
	var out []Entry
	if res != nil {
		for _, e := range res.Entries {
			if len(out) == sizeLimit {
				err = ErrSizeLimit
				break
			}
			ve := Entry{DN: e.DN, Attrs: map[string][]string{}}
			for _, a := range e.Attributes {
				if allowed(a.Name, set.Attributes) {
					ve.Attrs[a.Name] = a.Values
				}
			}
			out = append(out, ve)
		}
	}
	return out, upstreamError(err)
}

// upstreamError turns the upstream's answer into this package's errors;
// any other failure is ErrUnavailable.
func upstreamError(err error) error {
	if err == nil || errors.Is(err, ErrSizeLimit) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeLimit
	}
	var le *ldap.Error
	if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork {
		switch le.ResultCode {
		case ldap.LDAPResultNoSuchObject:
			return fmt.Errorf("%w: %v", ErrNoSuchObject, err)
		case ldap.LDAPResultSizeLimitExceeded:
			return fmt.Errorf("%w: %v", ErrSizeLimit, err)
		case ldap.LDAPResultTimeLimitExceeded:
			return fmt.Errorf("%w: %v", ErrTimeLimit, err)
		}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
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
