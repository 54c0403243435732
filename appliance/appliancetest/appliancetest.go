// Package appliancetest builds a whole appliance core on a temporary
// store for the doors' tests: the gate, the admin service that fills the
// store as an operator would, and the doors' client tables. A door's
// tests, like the door itself, then reach the store only through the
// gate and the admin service.
//
// It is for tests only; the daemon wires the same pieces itself.
package appliancetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// FastHash makes password hashing cheap enough for tests (argon2id at
// 64 KiB, one pass); production parameters cost about 30 ms a hash.
var FastHash = passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}

// Options tune New. The zero value works.
type Options struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
	// Configure, when set, may change the gate's configuration before
	// the gate is built (add upstreams, a registry, metrics).
	Configure func(*appliance.Config)
}

// Core is an appliance core on a temporary store.
type Core struct {
	Gate  *appliance.Gate
	Admin *admin.Service
	Audit *audit.Log
	// Dir is the data directory (the store, the key file).
	Dir   string
	store *store.Store
	now   func() time.Time
}

// New opens a store in a temporary directory and builds the core on it;
// everything is closed when the test ends.
func New(tb testing.TB, o Options) *Core {
	tb.Helper()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dir := tb.TempDir()
	st, err := store.Open(context.Background(), dir, store.Options{Create: true})
	must(err)
	tb.Cleanup(func() { st.Close() })
	alog, err := audit.New(st, nil)
	must(err)
	tb.Cleanup(alog.Close)
	h, err := passwd.NewHasher(FastHash, 2)
	must(err)
	local, err := upstream.NewLocal(st, h)
	must(err)
	cfg := appliance.Config{
		Store: st, Audit: alog, Hasher: h, Logger: o.Logger, Now: o.Now,
		Upstreams: map[string]upstream.Verifier{"local": local},
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	g, err := appliance.NewGate(cfg)
	must(err)
	tb.Cleanup(g.Close)
	adm, err := admin.New(st, alog, h, "test")
	must(err)
	adm.Now = o.Now
	return &Core{Gate: g, Admin: adm, Audit: alog, Dir: dir, store: st, now: o.Now}
}

// Clients is the client table of one door, as the daemon builds it.
func (c *Core) Clients(door appliance.Door) *appliance.ClientTable {
	return appliance.NewClientTable(c.store, string(door), c.now)
}

// LastAudit returns the newest n audit entries, newest first.
func (c *Core) LastAudit(ctx context.Context, n int) ([]admin.AuditRow, error) {
	return c.store.AuditRows(ctx, store.AuditFilter{Limit: n, Newest: true})
}
