package hostcfg

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckNetwork(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	ok := []Network{
		{DHCP: true},
		{Interface: "eth0", DHCP: true, DNS: []netip.Addr{a("192.168.1.1")}},
		{Interface: "enp1s0", Address: p("192.168.1.5/24"), Gateway: a("192.168.1.1"), DNS: []netip.Addr{a("1.1.1.1")}},
	}
	for _, n := range ok {
		if err := CheckNetwork(&n); err != nil {
			t.Errorf("%+v: %v", n, err)
		}
	}
	bad := map[string]Network{
		"path in name":       {Interface: "../../etc", DHCP: true},
		"newline in name":    {Interface: "eth0\nDHCP=yes", DHCP: true},
		"no prefix":          {Address: netip.Prefix{}},
		"network address":    {Address: p("192.168.1.0/24")},
		"gateway outside":    {Address: p("192.168.1.5/24"), Gateway: a("10.0.0.1")},
		"gateway is self":    {Address: p("192.168.1.5/24"), Gateway: a("192.168.1.5")},
		"loopback":           {Address: p("127.0.0.5/8")},
		"dhcp with address":  {DHCP: true, Address: p("192.168.1.5/24")},
		"too many dns":       {DHCP: true, DNS: []netip.Addr{a("1.1.1.1"), a("1.1.1.2"), a("1.1.1.3"), a("1.1.1.4")}},
		"/31 leaves no host": {Address: p("192.168.1.5/31")},
	}
	for name, n := range bad {
		if err := CheckNetwork(&n); err == nil {
			t.Errorf("%s: accepted %+v", name, n)
		}
	}
}

func TestCheckHostnameAndNTP(t *testing.T) {
	for _, h := range []string{"gate", "clinic-gate-1", "gate.clinic.lan"} {
		if err := CheckHostname(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	for _, h := range []string{"", "Gate", "-gate", "gate-", "a b", "gate;reboot", "a.b.c.d.e", strings.Repeat("x", 64)} {
		if CheckHostname(h) == nil {
			t.Errorf("accepted host name %q", h)
		}
	}
	if err := CheckNTP([]string{"192.168.1.1", "ntp.clinic.lan:123", "[fd00::1]:123"}); err != nil {
		t.Error(err)
	}
	for _, s := range [][]string{nil, {"a", "b", "c", "d", "e"}, {"ntp;rm"}, {"host:99999"}} {
		if CheckNTP(s) == nil {
			t.Errorf("accepted NTP %q", s)
		}
	}
}

type recorder struct{ ran []string }

func (r *recorder) run(argv []string) error {
	r.ran = append(r.ran, strings.Join(argv, " "))
	return nil
}

func applier(t *testing.T) (*Applier, *recorder) {
	t.Helper()
	root, data := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, HostsFile), []byte("127.0.0.1\tlocalhost\n127.0.1.1\tclinicgate\n::1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return &Applier{Data: data, Root: root, Run: rec.run, Hostname: "clinicgate", Now: func() time.Time { return time.Unix(1e9, 0) }}, rec
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyNetworkHostnameNTP(t *testing.T) {
	a, rec := applier(t)
	reqs := []Request{
		{ID: NewID(), Kind: KindNetwork, Network: &Network{Interface: "eth0", Address: netip.MustParsePrefix("192.168.10.5/24"), Gateway: netip.MustParseAddr("192.168.10.1"), DNS: []netip.Addr{netip.MustParseAddr("192.168.10.1")}}},
		{ID: NewID(), Kind: KindHostname, Hostname: "dyer-gate"},
		{ID: NewID(), Kind: KindNTP, NTP: []string{"192.168.10.1", "ntp.clinic.lan"}},
	}
	for i, r := range reqs {
		r.ID = strings.Repeat("0", 15) + string(rune('a'+i)) // applied in order
		reqs[i] = r
		if err := Submit(a.Data, r); err != nil {
			t.Fatal(err)
		}
	}
	res, err := a.ApplyAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.OK {
			t.Fatalf("%+v", r)
		}
		if got, ok, _ := ResultOf(a.Data, r.ID); !ok || got.Message != r.Message {
			t.Fatalf("result of %s not kept: %+v", r.ID, got)
		}
	}
	if n := read(t, filepath.Join(a.Root, NetworkFile)); !strings.Contains(n, "Name=eth0\n") || !strings.Contains(n, "Address=192.168.10.5/24\nGateway=192.168.10.1\nDNS=192.168.10.1\n") {
		t.Fatalf("network file:\n%s", n)
	}
	if h := read(t, filepath.Join(a.Root, HostsFile)); !strings.Contains(h, "127.0.1.1\tdyer-gate\n") || strings.Contains(h, "clinicgate") || !strings.Contains(h, "::1\tlocalhost") {
		t.Fatalf("hosts:\n%s", h)
	}
	if n := read(t, filepath.Join(a.Root, NTPFile)); !strings.Contains(n, "NTP=192.168.10.1 ntp.clinic.lan\n") {
		t.Fatalf("timesyncd:\n%s", n)
	}
	want := "networkctl reload|networkctl reconfigure eth0|hostname dyer-gate|systemctl restart systemd-timesyncd.service"
	if got := strings.Join(rec.ran, "|"); got != want {
		t.Fatalf("ran %s, want %s", got, want)
	}
	if p, _ := Pending(a.Data); len(p) != 0 {
		t.Fatalf("requests left: %v", p)
	}
}

// The root helper trusts nothing the unprivileged side wrote: a request
// edited by hand, or naming a path, is refused and changes nothing.
func TestApplyRefusesHostileRequests(t *testing.T) {
	a, rec := applier(t)
	dir := filepath.Join(a.Data, "system", "requests")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"00000000000000a1.json": `{"id":"00000000000000a1","kind":"network","network":{"interface":"../../../etc/passwd","dhcp":true}}`,
		"00000000000000a2.json": `{"id":"00000000000000a2","kind":"network","network":{"dhcp":true},"command":"rm -rf /"}`,
		"00000000000000a3.json": `{"id":"00000000000000ff","kind":"reboot","confirm":"reboot"}`,
		"00000000000000a4.json": `{"id":"00000000000000a4","kind":"factory-reset","confirm":"yes"}`,
		"00000000000000a5.json": `{"id":"00000000000000a5","kind":"shell","confirm":"x"}`,
		"00000000000000a6.json": `{"id":"00000000000000a6","kind":"hostname","hostname":"gate\nx"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a.Data, "clinicgate.db"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := a.ApplyAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.OK {
			t.Fatalf("accepted %+v", r)
		}
	}
	if len(rec.ran) != 0 {
		t.Fatalf("ran %v", rec.ran)
	}
	if _, err := os.Stat(filepath.Join(a.Root, NetworkFile)); err == nil {
		t.Fatal("a refused request wrote the network file")
	}
	if read(t, filepath.Join(a.Data, "clinicgate.db")) != "keep" {
		t.Fatal("a refused factory reset erased data")
	}
}

func TestFactoryResetNeedsTheHostName(t *testing.T) {
	a, rec := applier(t)
	for _, f := range []string{NetworkFile, NTPFile} {
		p := filepath.Join(a.Root, f)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte("x"), 0o644)
	}
	_ = os.WriteFile(filepath.Join(a.Data, "clinicgate.db"), []byte("data"), 0o600)
	if err := Submit(a.Data, Request{ID: NewID(), Kind: KindFactoryReset, Confirm: "clinicgate"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyAll(); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(a.Data); len(es) != 0 {
		t.Fatalf("data left after the factory reset: %v", es)
	}
	for _, f := range []string{NetworkFile, NTPFile} {
		if _, err := os.Stat(filepath.Join(a.Root, f)); err == nil {
			t.Fatalf("%s left", f)
		}
	}
	if got := strings.Join(rec.ran, "|"); got != "systemctl stop clinicgate.service|systemctl reboot" {
		t.Fatalf("ran %s", got)
	}
}
