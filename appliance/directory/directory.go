// Package directory is what the LDAP door searches and what the gate asks
// to turn a bind DN into a login name: one Directory interface with two
// implementations, chosen by the site setting ldap_mode where the site
// settings are loaded (appliance/site.go). Store serves directory mode (a
// virtual tree built from the appliance's users, vdir); Proxy serves proxy
// mode (searches forwarded to an LDAP upstream).
//
// It decides no login and knows no wire format: the door maps its errors
// to LDAP result codes. It imports no door and no user interface.
package directory

import (
	"context"
	"errors"
	"time"

	"github.com/clinicgate/clinicgate/appliance/directory/vdir"
)

// Directory is the directory the LDAP door presents.
type Directory interface {
	// Search runs q and hands each entry to emit, in order, under the
	// site's size and time limits (the smaller of the client's and the
	// site's). An error from emit stops the search and is returned as is.
	Search(ctx context.Context, q Query, emit func(Entry) error) error
	// NameForDN returns the login name of the user at dn (already known
	// to lie under the base DN); ErrUnknownUser if the directory has no
	// such user, another error if it could not tell.
	NameForDN(ctx context.Context, dn string) (string, error)
}

// Query is one search as the client asked it.
type Query struct {
	BaseDN     string
	Scope      int // ldap.ScopeBaseObject, ScopeSingleLevel, ScopeWholeSubtree
	Filter     string
	Attributes []string
	SizeLimit  int           // the client's; 0: none
	TimeLimit  time.Duration // the client's; 0: none
	TypesOnly  bool
}

// Entry is one search result.
type Entry = vdir.Entry

// Settings are the site settings a directory serves under.
type Settings struct {
	BaseDN     string
	Domain     string   // directory mode: userPrincipalName
	Attributes []string // proxy mode: the only attributes asked for and returned
	SizeLimit  int
	TimeLimit  time.Duration
}

// Why a search failed. The door turns each into its LDAP result code.
var (
	ErrNoSuchObject  = vdir.ErrNoSuchObject // the base is not in the directory
	ErrInvalidDN     = vdir.ErrInvalidDN
	ErrBadFilter     = vdir.ErrBadFilter
	ErrFilterTooDeep = vdir.ErrFilterTooDeep
	ErrSizeLimit     = vdir.ErrSizeLimitExceeded
	// ErrTimeLimit: the search ran out of time (its deadline, or the
	// upstream's time limit).
	ErrTimeLimit = errors.New("directory: time limit exceeded")
	// ErrUnavailable: the directory could not be read (the store, or
	// the upstream is down or not configured).
	ErrUnavailable = errors.New("directory: unavailable")
	// ErrUnknownUser: NameForDN found no user at the DN.
	ErrUnknownUser = errors.New("directory: no user at that DN")
)

// maxFilterDepth bounds filter nesting in proxy mode (vdir's evaluator
// has the same bound); real EHR filters nest two or three deep.
const maxFilterDepth = 32

// limits are a search's effective size and time limits: the client's
// when smaller than the site's.
func limits(q Query, s Settings) (int, time.Duration) {
	size := s.SizeLimit
	if q.SizeLimit > 0 && q.SizeLimit < size {
		size = q.SizeLimit
	}
	tl := s.TimeLimit
	if q.TimeLimit > 0 && q.TimeLimit < tl {
		tl = q.TimeLimit
	}
	return size, tl
}

// emitAll hands entries to emit until ctx ends (the search's time limit
// also bounds handing out its results), then returns serr, the search's
// own outcome.
func emitAll(ctx context.Context, entries []Entry, serr error, emit func(Entry) error) error {
	for _, e := range entries {
		if ctx.Err() != nil {
			return ErrTimeLimit
		}
		if err := emit(e); err != nil {
			return err
		}
	}
	if errors.Is(serr, context.DeadlineExceeded) {
		return ErrTimeLimit
	}
	return serr
}

// isRootDSE: a base search of the empty DN, which clients send before
// binding to learn what the server offers.
func isRootDSE(q Query) bool { return q.BaseDN == "" && q.Scope == int(vdir.ScopeBase) }
