package admin

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/hostcfg"
)

// Without the root helper a system change is only previewed; with it the
// change is audited and queued for the helper, which answers through the
// data directory.
func TestSystemChangePreviewOrQueue(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	old := systemManaged
	t.Cleanup(func() { systemManaged = old })
	systemManaged = func() bool { return false }
	req := hostcfg.Request{Kind: hostcfg.KindNTP, NTP: []string{"192.168.1.1"}}
	ch, err := s.RequestSystemChange(ctx, req)
	if err != nil || ch.ID != "" || !strings.Contains(ch.Preview, "NTP=192.168.1.1") {
		t.Fatalf("unmanaged: %+v %v", ch, err)
	}
	if p, _ := hostcfg.Pending(s.Store.Dir()); len(p) != 0 {
		t.Fatalf("a preview queued %v", p)
	}
	if _, err := s.RequestSystemChange(ctx, hostcfg.Request{Kind: hostcfg.KindNetwork, Network: &hostcfg.Network{Address: netip.MustParsePrefix("10.0.0.0/24")}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a network's own address: %v", err)
	}

	systemManaged = func() bool { return true }
	ch, err = s.RequestSystemChange(ctx, req)
	if err != nil || ch.ID == "" {
		t.Fatalf("managed: %+v %v", ch, err)
	}
	if p, _ := hostcfg.Pending(s.Store.Dir()); len(p) != 1 {
		t.Fatalf("queued %v", p)
	}
	rows, _ := s.AuditTail(ctx, "", 1)
	if len(rows) != 1 || rows[0].Reason != "system_ntp" || !strings.Contains(rows[0].Detail, ch.ID) {
		t.Fatalf("not audited: %+v", rows)
	}
	a := &hostcfg.Applier{Data: s.Store.Dir(), Root: t.TempDir(), Run: func([]string) error { return nil }}
	if _, err := a.ApplyAll(); err != nil {
		t.Fatal(err)
	}
	res, err := s.SystemResult(ctx, ch.ID, 0)
	if err != nil || !res.OK {
		t.Fatalf("result %+v %v", res, err)
	}
}
