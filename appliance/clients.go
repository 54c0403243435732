package appliance

import (
	"context"
	"net/netip"
	"sort"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/reload"
)

// ClientTable finds which client is asking, by source address. It keeps a
// snapshot of one door's clients and reloads it when the clients change,
// checking at most once a second, so a client added by the CLI or the
// console is served within a second without a restart.
type ClientTable struct {
	store *store.Store
	door  string
	snap  *reload.Value[clientSnapshot]
}

// clientSnapshot is one door's clients as of a version of the client list.
type clientSnapshot struct {
	version string
	clients []store.Client // most specific prefix first
}

// NewClientTable builds a table for one door ("radius").
func NewClientTable(st *store.Store, door string, now func() time.Time) *ClientTable {
	t := &ClientTable{store: st, door: door}
	t.snap = reload.New(time.Second, now, t.load)
	// A broken read keeps answering from the last good snapshot.
	t.snap.KeepLastGood = true
	return t
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
	s, err := t.snap.Get(ctx)
	return s.clients, err
}

// load reads the clients again only when their version changed.
func (t *ClientTable) load(ctx context.Context, last clientSnapshot, have bool) (clientSnapshot, error) {
	v, err := t.store.ClientsVersion(ctx)
	if err != nil {
		return clientSnapshot{}, err
	}
	if have && v == last.version {
		return last, nil
	}
	cs, err := t.store.Clients(ctx, t.door)
	if err != nil {
		return clientSnapshot{}, err
	}
	SortClients(cs)
	if cs == nil {
		cs = []store.Client{}
	}
	return clientSnapshot{version: v, clients: cs}, nil
}
