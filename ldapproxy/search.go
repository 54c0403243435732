package ldapproxy

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/directory"
	"github.com/clinicgate/clinicgate/ldapproxy/ldapmsg"
)

// errWrite marks a search stopped because an entry could not be written:
// the connection is gone, so no result is counted or sent.
var errWrite = errors.New("writing a search entry failed")

// search answers a search from the gate's directory (directory or proxy
// mode, whichever the site settings say): the door checks that the
// connection is bound (the root DSE excepted), writes the entries and
// turns the outcome into a result code.
func (h *handler) search(c *conn, r *ldapmsg.Request) {
	done := ldapmsg.Result{Code: ldap.LDAPResultOperationsError}
	defer func() { _ = c.writeResult(r.ID, ldap.ApplicationSearchResultDone, &done) }()
	m := r.Search
	kind, name := c.state.get()
	ctx, cancel := opContext()
	defer cancel()
	dir, err := h.s.cfg.Gate.Directory(ctx)
	if kind == boundUser {
		dir, err = h.s.cfg.Gate.DirectoryFor(ctx, name)
	}
	if err != nil {
		done.Code, done.Diagnostic = ldap.LDAPResultUnavailable, diagUnavailable
		return
	}
	if kind == boundNone && !isRootDSE(m) {
		done.Code, done.Diagnostic = ldap.LDAPResultInsufficientAccessRights, diagBindFirst
		h.s.cfg.Metrics.op("search", string(appliance.ReasonNotBound))
		h.refuse(ctx, c, "", appliance.ReasonNotBound, "search of "+auditable(m.BaseDN))
		return
	}
	q := directory.Query{
		BaseDN: m.BaseDN, Scope: m.Scope, Filter: m.Filter, Attributes: m.Attributes,
		SizeLimit: clampInt(m.SizeLimit), TypesOnly: m.TypesOnly,
	}
	if m.TimeLimit > 0 && m.TimeLimit < int64(24*time.Hour/time.Second) {
		q.TimeLimit = time.Duration(m.TimeLimit) * time.Second
	}
	var attrs []ldapmsg.Attribute
	serr := dir.Search(ctx, q, func(e directory.Entry) error {
		attrs = attrs[:0]
		for _, a := range sortedKeys(e.Attrs) {
			attrs = append(attrs, ldapmsg.Attribute{Name: a, Values: e.Attrs[a]})
		}
		if err := c.writeEntry(r.ID, e.DN, attrs); err != nil {
			return errWrite
		}
		return nil
	})
	if errors.Is(serr, errWrite) {
		return
	}
	code, diag, result := searchResult(serr)
	done.Code, done.Diagnostic = code, diag
	h.s.cfg.Metrics.op("search", result)
	if code == ldap.LDAPResultNoSuchObject && kind != boundNone {
		h.refuse(ctx, c, name, appliance.ReasonOutsideBase, "search of "+auditable(m.BaseDN))
	}
}

// clampInt turns a client's size limit into an int; 0 (none) for
// anything out of range.
func clampInt(n int64) int {
	if n <= 0 || n > 1<<31-1 {
		return 0
	}
	return int(n)
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

// searchResult turns the directory's outcome into a result code, a fixed
// diagnostic and the metric's result label.
func searchResult(err error) (code int, diag, result string) {
	switch {
	case err == nil:
		return ldap.LDAPResultSuccess, "", "ok"
	case errors.Is(err, directory.ErrSizeLimit):
		return ldap.LDAPResultSizeLimitExceeded, "", "size_limit"
	case errors.Is(err, directory.ErrTimeLimit):
		return ldap.LDAPResultTimeLimitExceeded, "", "time_limit"
	case errors.Is(err, directory.ErrNoSuchObject):
		return ldap.LDAPResultNoSuchObject, diagNoSuchBase, "no_such_object"
	case errors.Is(err, directory.ErrInvalidDN):
		return ldap.LDAPResultInvalidDNSyntax, "Invalid DN syntax.", "invalid_dn"
	case errors.Is(err, directory.ErrFilterTooDeep):
		return ldap.LDAPResultUnwillingToPerform, diagTooComplex, "filter_too_deep"
	case errors.Is(err, directory.ErrBadFilter):
		return ldap.LDAPResultProtocolError, "Bad search filter.", "bad_filter"
	}
	return ldap.LDAPResultUnavailable, diagUnavailable, "unavailable"
}
