package hostcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sysfsDisk makes /sys/block/NAME under root, removable or not, with the
// given partitions and size.
func sysfsDisk(t *testing.T, root, name, removable, size string, parts ...string) {
	t.Helper()
	d := filepath.Join(root, "sys/block", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "removable"), []byte(removable+"\n"), 0o644)
	os.WriteFile(filepath.Join(d, "size"), []byte(size+"\n"), 0o644)
	for _, p := range parts {
		os.MkdirAll(filepath.Join(d, p), 0o755)
		os.WriteFile(filepath.Join(d, p, "partition"), []byte("1\n"), 0o644)
	}
}

func TestRemovablePartitions(t *testing.T) {
	root := t.TempDir()
	sysfsDisk(t, root, "sda", "0", "1000", "sda1", "sda2") // the system disk
	sysfsDisk(t, root, "sdb", "1", "32000", "sdb1")        // the stick
	sysfsDisk(t, root, "sdc", "1", "0")                    // a card reader, empty
	sysfsDisk(t, root, "sdd", "1", "64000")                // a stick with no partition table
	got, err := RemovablePartitions(root)
	if err != nil || strings.Join(got, ",") != "/dev/sdb1,/dev/sdd" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestUSBCopy(t *testing.T) {
	a, rec := applier(t)
	name := "clinicgate-20261204-091307.cgbackup"
	if err := os.MkdirAll(filepath.Join(a.Data, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Data, "backups", name), []byte("age-encrypted"), 0o600); err != nil {
		t.Fatal(err)
	}
	devs := []string{}
	a.USB = func() ([]string, error) { return devs, nil }
	try := func() Result {
		t.Helper()
		if err := Submit(a.Data, Request{ID: NewID(), Kind: KindUSBCopy, Package: name}); err != nil {
			t.Fatal(err)
		}
		res, err := a.ApplyAll()
		if err != nil || len(res) != 1 {
			t.Fatalf("%v %v", res, err)
		}
		return res[0]
	}
	if r := try(); r.OK || !strings.Contains(r.Message, "no USB stick found") {
		t.Fatalf("%+v", r)
	}
	devs = []string{"/dev/sdb1", "/dev/sdc1"}
	if r := try(); r.OK || !strings.Contains(r.Message, "more than one") || len(rec.ran) != 0 {
		t.Fatalf("%+v, ran %q", r, rec.ran)
	}
	devs = []string{"/dev/sdb1"}
	r := try()
	mnt := filepath.Join(a.Root, USBMount)
	if !r.OK || !strings.Contains(r.Message, "can be pulled out now") {
		t.Fatalf("%+v", r)
	}
	if got := strings.Join(rec.ran, "|"); got != "mount -o nosuid,nodev,noexec /dev/sdb1 "+mnt+"|umount "+mnt {
		t.Fatalf("ran %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(mnt, name)); string(b) != "age-encrypted" {
		t.Fatalf("copied %q", b)
	}
	if (Request{ID: NewID(), Kind: KindUSBCopy, Package: "../clinicgate.key"}).Check("gate") == nil {
		t.Fatal("a path outside backups/ was accepted")
	}
}

// usb-fetch mounts the stick read-only and takes its backups and
// clinicgate packages into incoming/, nothing else.
func TestUSBFetch(t *testing.T) {
	a, rec := applier(t)
	a.USB = func() ([]string, error) { return []string{"/dev/sdb1"}, nil }
	// The test's "mount" puts the stick's files where the helper mounts it.
	stick := filepath.Join(a.Root, USBMount)
	if err := os.MkdirAll(stick, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"clinicgate-20261204-091307.cgbackup": "backup",
		"clinicgate_0.3.0_arm64.deb":          "package",
		"notes.txt":                           "ignored",
		".hidden.cgbackup":                    "ignored",
	} {
		if err := os.WriteFile(filepath.Join(stick, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Submit(a.Data, Request{ID: NewID(), Kind: KindUSBFetch}); err != nil {
		t.Fatal(err)
	}
	res, err := a.ApplyAll()
	if err != nil || len(res) != 1 || !res[0].OK {
		t.Fatalf("%+v %v", res, err)
	}
	es, _ := os.ReadDir(filepath.Join(a.Data, "incoming"))
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "clinicgate-20261204-091307.cgbackup,clinicgate_0.3.0_arm64.deb" {
		t.Fatalf("incoming/ holds %q", names)
	}
	if got := strings.Join(rec.ran, "|"); got != "mount -o ro,nosuid,nodev,noexec /dev/sdb1 "+stick+"|umount "+stick {
		t.Fatalf("ran %s", got)
	}
}
