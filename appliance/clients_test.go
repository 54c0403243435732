package appliance

import (
	"net/netip"
	"testing"

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
