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
	"github.com/clinicgate/clinicgate/internal/reload"
)

// Store serves directory mode: a tree of the store's users and groups,
// rebuilt when they change, checked at most once a second (internal/reload)
// so that a user added by the CLI or the console is found within a second
// while a flood of searches costs one version read a second. It is safe
// for concurrent use; one Store serves every Settings, through With.
type Store struct {
	st  *store.Store
	now func() time.Time
	log *slog.Logger

	mu  sync.Mutex
	key treeKey // what cur builds for
	cur *reload.Value[built]
}

// treeKey is what a tree depends on besides the users.
type treeKey struct{ base, domain string }

// built is a tree and the users' version it was built from.
type built struct {
	tree    *vdir.Tree
	version string
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

// snapshot returns the tree for set, rebuilt if the users changed. A
// change of base DN or domain starts a new tree.
func (d *Store) snapshot(ctx context.Context, set Settings) (*vdir.Tree, error) {
	k := treeKey{set.BaseDN, set.Domain}
	d.mu.Lock()
	if d.cur == nil || d.key != k {
		d.key = k
		d.cur = reload.New(time.Second, d.now, func(ctx context.Context, last built, have bool) (built, error) {
			return d.build(ctx, k, last, have)
		})
		// A failed read answers from the last tree: searches keep
		// working while the store is busy.
		d.cur.KeepLastGood = true
	}
	cur := d.cur
	d.mu.Unlock()
	b, err := cur.Get(ctx)
	return b.tree, err
}

// build reads the users' version and rebuilds the tree only if it moved.
func (d *Store) build(ctx context.Context, k treeKey, last built, have bool) (built, error) {
	v, err := d.st.UsersVersion(ctx)
	if err != nil {
		return built{}, err
	}
	if have && v == last.version {
		return last, nil
	}
	users, err := d.st.Users(ctx)
	if err != nil {
		return built{}, err
	}
	in := make([]vdir.User, 0, len(users))
	for _, u := range users {
		in = append(in, vdir.User{Name: u.Name, DisplayName: u.DisplayName, Disabled: u.Disabled, Groups: u.Groups})
	}
	t, err := vdir.Build(k.base, k.domain, in)
	if err != nil {
		return built{}, err
	}
	return built{tree: t, version: v}, nil
}
