package directory

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/directory/vdir"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Store serves directory mode: a tree of the store's users and groups,
// rebuilt when they change, checked at most once a second so that a user
// added by the CLI or the console is found within a second while a flood
// of searches costs one version read a second. It is safe for concurrent
// use; one Store serves every Settings, through With.
type Store struct {
	st  *store.Store
	now func() time.Time
	log *slog.Logger

	buildMu  sync.Mutex // one rebuild at a time
	mu       sync.Mutex
	checked  time.Time
	version  string
	treeBase string
	treeDom  string
	tree     *vdir.Tree
}

// NewStore builds the directory-mode source over st. now is the clock
// (nil: time.Now); log receives snapshot failures (nil: discard).
func NewStore(st *store.Store, now func() time.Time, log *slog.Logger) *Store {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{st: st, now: now, log: log}
}

// With returns the directory under settings s.
func (d *Store) With(s Settings) Directory { return storeDir{d: d, set: s} }

type storeDir struct {
	d   *Store
	set Settings
}

func (s storeDir) Search(ctx context.Context, q Query, emit func(Entry) error) error {
	size, tl := limits(q, s.set)
	ctx, cancel := context.WithTimeout(ctx, tl)
	defer cancel()
	t, err := s.d.snapshot(ctx, s.set)
	if err != nil {
		s.d.log.Error("directory snapshot failed", "err", err)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	entries, serr := t.Search(vdir.Query{
		BaseDN: q.BaseDN, Scope: vdir.Scope(q.Scope), Filter: q.Filter,
		Attributes: q.Attributes, SizeLimit: size, TypesOnly: q.TypesOnly,
	})
	return emitAll(ctx, entries, serr, emit)
}

// NameForDN: in directory mode a user's DN names the user in its first
// RDN (cn=alice,ou=Users,… or uid=alice or sAMAccountName=alice).
func (s storeDir) NameForDN(_ context.Context, dn string) (string, error) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) != 1 {
		return "", ErrUnknownUser
	}
	first := d.RDNs[0].Attributes[0]
	switch strings.ToLower(first.Type) {
	case "cn", "uid", "samaccountname":
		return first.Value, nil
	}
	return "", ErrUnknownUser
}

// snapshot returns the tree for set, rebuilt if the users changed.
func (d *Store) snapshot(ctx context.Context, set Settings) (*vdir.Tree, error) {
	d.buildMu.Lock()
	defer d.buildMu.Unlock()
	d.mu.Lock()
	same := func() bool { return d.tree != nil && d.treeBase == set.BaseDN && d.treeDom == set.Domain }
	tree := d.tree
	fresh := same() && d.now().Sub(d.checked) < time.Second
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
	unchanged := same() && v == d.version
	if unchanged {
		d.checked = d.now()
	}
	d.mu.Unlock()
	if unchanged {
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
	t, err := vdir.Build(set.BaseDN, set.Domain, in)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.tree, d.version, d.treeBase, d.treeDom, d.checked = t, v, set.BaseDN, set.Domain, d.now()
	d.mu.Unlock()
	return t, nil
}
