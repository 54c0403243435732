package admin

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
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

// TestRenamedApplianceSeenByTheConsole: the daemon has a host name of its
// own (ProtectHostname), fixed when it started, so after the helper
// renames the appliance the console reads /etc/hostname: the network form
// shows the new name, and a factory reset takes the name the helper
// checks it against (the old one would be refused there).
func TestRenamedApplianceSeenByTheConsole(t *testing.T) {
	s := newService(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, hostcfg.HostnameFile), []byte("clinic-renamed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldRoot, oldManaged := systemRoot, systemManaged
	t.Cleanup(func() { systemRoot, systemManaged = oldRoot, oldManaged })
	systemRoot, systemManaged = root, func() bool { return false }
	if got := s.SystemNow(t.Context()).Hostname; got != "clinic-renamed" {
		t.Fatalf("the console sees host name %q, want clinic-renamed", got)
	}
	if _, err := s.RequestSystemChange(t.Context(), hostcfg.Request{Kind: hostcfg.KindFactoryReset, Confirm: "clinic-renamed"}); err != nil {
		t.Fatalf("a factory reset confirmed with the new name: %v", err)
	}
	if h, _ := os.Hostname(); h != "clinic-renamed" {
		if _, err := s.RequestSystemChange(t.Context(), hostcfg.Request{Kind: hostcfg.KindFactoryReset, Confirm: h}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a factory reset confirmed with the stale name %q: %v", h, err)
		}
	}
}
