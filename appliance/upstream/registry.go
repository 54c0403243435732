package upstream

import (
	"github.com/go-ldap/ldap/v3"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Kinds of upstream.
const (
	KindLocal  = "local"
	KindRADIUS = "radius"
	KindLDAP   = "ldap"
	KindOIDC   = "oidc"
)

// Build makes a connector from a stored upstream (no network traffic).
func Build(u store.Upstream) (Verifier, error) {
	switch u.Kind {
	case KindRADIUS:
		return NewRADIUS(u.Name, u.Config, u.Secret)
	case KindLDAP:
		return NewLDAP(u.Name, u.Config, u.Secret)
	case KindOIDC:
		return NewOIDC(u.Name, u.Config, u.Secret)
	}
	return nil, fmt.Errorf("upstream %s: unknown kind %q (radius, ldap or oidc)", u.Name, u.Kind)
}

// Warner is implemented by connectors with weak settings to report.
type Warner interface{ Warnings() []string }

// Prober is implemented by connectors that can check their server without
// a login (a service-account bind, say).
type Prober interface {
	Probe(ctx context.Context) error
}

type closer interface{ Close() }

// State is an upstream's health.
type State string

const (
	StateUnknown       State = "unknown" // no check yet
	StateUp            State = "up"
	StateDown          State = "down"
	StateDegraded      State = "degraded" // answers, but refuses clinicgate's own setup (service account, client secret, TLS)
	StateMisconfigured State = "misconfigured"
)

// Health is what the console and metrics show of an upstream.
type Health struct {
	Name        string
	Kind        string
	State       State
	Since       time.Time // when State began
	LastError   string
	LastSuccess time.Time
	Warnings    []string
}

// Registry hands out connectors by name, rebuilding one when its stored
// configuration changes (checked at most once a second), and keeps each
// one's health from the answers it gets.
type Registry struct {
	store *store.Store
	local Verifier
	now   func() time.Time
	log   *slog.Logger

	mu    sync.Mutex
	items map[string]*entry
}

type entry struct {
	version int64
	checked time.Time
	conn    Verifier
	err     error
	health  Health
}

// NewRegistry builds a registry; local answers for the name "local".
func NewRegistry(st *store.Store, local Verifier, now func() time.Time, log *slog.Logger) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{store: st, local: local, now: now, log: log, items: map[string]*entry{}}
}

// Lookup returns the connector for name. The returned Verifier records
// health as it is used.
func (r *Registry) Lookup(ctx context.Context, name string) (Verifier, error) {
	if strings.EqualFold(name, KindLocal) {
		return r.local, nil
	}
	key := strings.ToLower(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.items[key]
	now := r.now()
	if e != nil && now.Sub(e.checked) < time.Second {
		return e.verifier(r, key)
	}
	v, err := r.store.UpstreamVersion(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if e != nil {
			r.drop(key)
		}
		return nil, fmt.Errorf("no upstream named %q is configured", name)
	}
	if err != nil {
		if e != nil {
			return e.verifier(r, key)
		}
		return nil, err
	}
	if e != nil && e.version == v {
		e.checked = now
		return e.verifier(r, key)
	}
	if e != nil {
		r.drop(key)
	}
	u, err := r.store.UpstreamByName(ctx, name)
	if err != nil {
		return nil, err
	}
	ne := &entry{version: v, checked: now, health: Health{Name: u.Name, Kind: u.Kind, State: StateUnknown, Since: now}}
	ne.conn, ne.err = Build(u)
	if ne.err != nil {
		ne.health.State, ne.health.LastError = StateMisconfigured, ne.err.Error()
	} else if w, ok := ne.conn.(Warner); ok {
		ne.health.Warnings = w.Warnings()
	}
	r.items[key] = ne
	return ne.verifier(r, key)
}

func (r *Registry) drop(key string) {
	if e := r.items[key]; e != nil {
		if c, ok := e.conn.(closer); ok {
			c.Close()
		}
		delete(r.items, key)
	}
}

func (e *entry) verifier(r *Registry, key string) (Verifier, error) {
	if e.err != nil {
		return nil, e.err
	}
	return tracked{r: r, key: key, e: e, Verifier: e.conn}, nil
}

// tracked records each answer in the entry's health.
type tracked struct {
	Verifier
	r   *Registry
	key string
	e   *entry
}

// Canonical passes the connector's name forms through (see
// appliance.Canonicalizer).
func (t tracked) Canonical(user string) string {
	if c, ok := t.Verifier.(interface{ Canonical(string) string }); ok {
		return c.Canonical(user)
	}
	return user
}

func (t tracked) Verify(ctx context.Context, user string, pw secrets.Secret) (Identity, error) {
	id, err := t.Verifier.Verify(ctx, user, pw)
	t.r.record(t.e, err)
	return id, err
}

func (r *Registry) record(e *entry, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &e.health
	now := r.now()
	if errors.Is(err, ErrUnreachable) {
		if h.State != StateDown {
			h.State, h.Since = StateDown, now
			if r.log != nil {
				r.log.Warn("upstream down", "upstream", h.Name, "err", err)
			}
		}
		h.LastError = err.Error()
		return
	}
	// A refusal of clinicgate's own setup (not of the user) is not "up".
	if errors.Is(err, ErrUpstreamRefused) {
		if h.State != StateDegraded {
			h.State, h.Since = StateDegraded, now
			if r.log != nil {
				r.log.Warn("upstream refuses clinicgate's setup", "upstream", h.Name, "err", err)
			}
		}
		h.LastError = err.Error()
		return
	}
	if h.State != StateUp {
		if h.State == StateDown && r.log != nil {
			r.log.Info("upstream back up", "upstream", h.Name, "down_for", now.Sub(h.Since).Round(time.Second))
		}
		h.State, h.Since = StateUp, now
	}
	h.LastSuccess = now
}

// Status reports every configured upstream's health, by name.
func (r *Registry) Status(ctx context.Context) ([]Health, error) {
	ups, err := r.store.Upstreams(ctx)
	if err != nil {
		return nil, err
	}
	var out []Health
	for _, u := range ups {
		_, _ = r.Lookup(ctx, u.Name) // a misconfigured entry holds its reason
		r.mu.Lock()
		if e := r.items[strings.ToLower(u.Name)]; e != nil {
			out = append(out, e.health)
		}
		r.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ProbeAll checks every upstream that can be checked without a login.
func (r *Registry) ProbeAll(ctx context.Context) {
	ups, err := r.store.Upstreams(ctx)
	if err != nil {
		return
	}
	for _, u := range ups {
		v, err := r.Lookup(ctx, u.Name)
		if err != nil {
			continue
		}
		t, ok := v.(tracked)
		if !ok {
			continue
		}
		p, ok := t.Verifier.(Prober)
		if !ok {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = p.Probe(pctx)
		cancel()
		r.record(t.e, err)
	}
}

// Close closes every connector's pooled connections.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.items {
		r.drop(k)
	}
}

// Directory is an upstream the LDAP door can forward searches to.
type Directory interface {
	SearchDirectory(ctx context.Context, req *ldap.SearchRequest) (*ldap.SearchResult, error)
	NameForDN(ctx context.Context, dn string) (string, error)
}

// Directory returns the upstream called name as a Directory, or an error
// saying why it cannot be one.
func (r *Registry) Directory(ctx context.Context, name string) (Directory, error) {
	v, err := r.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if t, ok := v.(tracked); ok {
		v = t.Verifier
	}
	d, ok := v.(Directory)
	if !ok {
		return nil, fmt.Errorf("upstream %q is not an LDAP directory; proxy mode needs an LDAP or AD upstream", name)
	}
	return d, nil
}
