package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/hostcfg"
)

// TestSystemHelperStaysRoot: the root helper (clinicgate-system.service
// runs 'clinicgate system apply' as root) must not become the data
// directory's owner as the admin commands do: as that user it refused
// every request ("it runs as root"), so on the images no console change
// to the network, time or power was ever made (found by make image-test).
func TestSystemHelperStaysRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root in CI)")
	}
	data := filepath.Join(t.TempDir(), "data")
	if err := admin.Create(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	id := hostcfg.NewID()
	if err := hostcfg.Submit(data, hostcfg.Request{ID: id, Kind: hostcfg.KindNTP, NTP: []string{"192.0.2.123"}}); err != nil {
		t.Fatal(err)
	}
	// The data directory belongs to the service user, as on an image.
	for p := filepath.Dir(data); p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", data).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	// A scratch root only root may write, as /etc is; dry run: the
	// commands are printed, not run.
	root := t.TempDir()
	out, err := exec.Command(binPath, "system", "apply", "--data", data, "--root", root, "--dry-run").CombinedOutput()
	if err != nil || !strings.Contains(string(out), id+" done: NTP servers 192.0.2.123") {
		t.Fatalf("system apply as root on the service user's data: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(root, hostcfg.NTPFile)); err != nil || !strings.Contains(string(b), "NTP=192.0.2.123") {
		t.Fatalf("timesyncd's file: %q %v", b, err)
	}
	// The answer is the console's to read: it belongs to the data owner,
	// and appears under its name only once it does (nothing half-done is
	// left beside it).
	es, err := os.ReadDir(filepath.Join(data, "system", "results"))
	if err != nil || len(es) != 1 || es[0].Name() != id+".json" {
		t.Fatalf("the results directory holds %v (%v), want only %s.json", es, err, id)
	}
	fi, err := os.Stat(filepath.Join(data, "system", "results", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
		t.Errorf("the helper's answer is owned by uid %d, want the data owner 65534", st.Uid)
	}
}
