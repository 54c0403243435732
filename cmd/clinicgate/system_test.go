package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/hostcfg"
)

// system apply is the root helper: it carries out what the console
// queued (here into a scratch root, printing the commands) and leaves
// the result for the console.
func TestSystemApplyDryRun(t *testing.T) {
	data, root := newData(t), t.TempDir()
	id := hostcfg.NewID()
	if err := hostcfg.Submit(data, hostcfg.Request{ID: id, Kind: hostcfg.KindNTP, NTP: []string{"192.168.1.1"}}); err != nil {
		t.Fatal(err)
	}
	out := mustCG(t, data, "", "system", "apply", "--root", root, "--dry-run")
	if !strings.Contains(out, "would run: systemctl restart systemd-timesyncd.service") || !strings.Contains(out, id+" done: NTP servers 192.168.1.1") {
		t.Fatalf("output:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(root, hostcfg.NTPFile))
	if err != nil || !strings.Contains(string(b), "NTP=192.168.1.1") {
		t.Fatalf("timesyncd file: %q %v", b, err)
	}
	if r, ok, _ := hostcfg.ResultOf(data, id); !ok || !r.OK {
		t.Fatalf("result %+v", r)
	}
}
