package appliance

import (
	"context"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// ClientTable finds which client is asking, by source address. It keeps a
// snapshot of one door's clients and reloads it when the clients change, at
// most once per refresh interval, so a client added by the CLI or the
// console is served within a second without a restart.
type ClientTable struct {
	store   *store.Store
	door    string
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	checked time.Time
	version string
	clients []store.Client // most specific prefix first
}

// NewClientTable builds a table for one door ("radius").
func NewClientTable(st *store.Store, door string, now func() time.Time) *ClientTable {
	if now == nil {
		now = time.Now
	}
	return &ClientTable{store: st, door: door, refresh: time.Second, now: now}
}

// Lookup returns the client whose address range is the most specific one
// containing addr.
func (t *ClientTable) Lookup(ctx context.Context, addr netip.Addr) (store.Client, bool, error) {
	clients, err := t.snapshot(ctx)
	if err != nil {
		return store.Client{}, false, err
	}
	c, ok := mostSpecific(clients, addr)
	return c, ok, nil
}

// mostSpecific expects clients sorted by SortClients.
func mostSpecific(clients []store.Client, addr netip.Addr) (store.Client, bool) {
	addr = addr.Unmap()
	for _, c := range clients {
		if c.Prefix.Contains(addr) {
			return c, true
		}
	}
	return store.Client{}, false
}

// SortClients orders clients so the first match is the most specific one:
// longest prefix first (the number of fixed bits, not the address), then by
// name for a stable order.
func SortClients(cs []store.Client) {
	sort.SliceStable(cs, func(i, j int) bool {
		bi, bj := cs[i].Prefix.Bits(), cs[j].Prefix.Bits()
		if bi != bj {
			return bi > bj
		}
		return cs[i].Name < cs[j].Name
	})
}

func (t *ClientTable) snapshot(ctx context.Context) ([]store.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.clients != nil && now.Sub(t.checked) < t.refresh {
		return t.clients, nil
	}
	v, err := t.store.ClientsVersion(ctx)
	if err != nil {
		if t.clients != nil {
			// Keep answering from the last good snapshot.
			return t.clients, nil
		}
		return nil, err
	}
	t.checked = now
	if t.clients != nil && v == t.version {
		return t.clients, nil
	}
	cs, err := t.store.Clients(ctx, t.door)
	if err != nil {
		if t.clients != nil {
			return t.clients, nil
		}
		return nil, err
	}
	SortClients(cs)
	if cs == nil {
		cs = []store.Client{}
	}
	t.clients, t.version = cs, v
	return cs, nil
}
