package appliance

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func TestMostSpecificSubnetWins(t *testing.T) {
	// Names and addresses are chosen so that sorting by name or by address
	// would pick the wrong client.
	clients := []store.Client{
		{Name: "a-whole-lan", Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Name: "b-office", Prefix: netip.MustParsePrefix("10.1.2.0/24")},
		{Name: "c-ap", Prefix: netip.MustParsePrefix("10.1.2.3/32")},
		{Name: "d-floor", Prefix: netip.MustParsePrefix("10.1.0.0/16")},
		{Name: "e-v6", Prefix: netip.MustParsePrefix("fd00::/64")},
	}
	SortClients(clients)
	cases := []struct {
		addr, want string
	}{
		{"10.1.2.3", "c-ap"},
		{"10.1.2.4", "b-office"},
		{"10.1.9.9", "d-floor"},
		{"10.200.0.1", "a-whole-lan"},
		{"::ffff:10.1.2.3", "c-ap"}, // IPv4-mapped source on a dual-stack socket
		{"fd00::5", "e-v6"},
		{"192.168.1.1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			c, ok := mostSpecific(clients, netip.MustParseAddr(tc.addr))
			if got := c.Name; got != tc.want || ok != (tc.want != "") {
				t.Fatalf("got %q (%v), want %q", got, ok, tc.want)
			}
		})
	}
}

func TestClientTableSeesANewClientWithinASecond(t *testing.T) {
	st, err := store.Open(t.Context(), t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tbl := NewClientTable(st, "radius", clock)
	addr := netip.MustParseAddr("10.0.0.5")
	lookup := func() bool {
		t.Helper()
		_, ok, err := tbl.Lookup(t.Context(), addr)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if lookup() {
		t.Fatal("found a client in an empty store")
	}
	err = st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.CreateClient(t.Context(), store.Client{Name: "ap", Door: "radius", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Secret: []byte("s3cret-s3cret"), Policy: policy.Default()}, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if lookup() {
		t.Fatal("the table read the store again within the second")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if !lookup() {
		t.Fatal("got no client a second after it was added, want it served")
	}
}
