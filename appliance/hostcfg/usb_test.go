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

// TestUSBDisksAndMountedDisks: a USB disk that says it is fixed is a
// stick; a disk with a mounted partition never is, removable or on USB
// (a Pi booted from a USB disk).
func TestUSBDisksAndMountedDisks(t *testing.T) {
	root := t.TempDir()
	// As in sysfs: /sys/block/NAME links to the device's place on its bus.
	dev := func(name, removable, bus string, parts ...string) {
		t.Helper()
		d := filepath.Join(root, "sys/devices", bus, "block", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "removable"), []byte(removable+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "size"), []byte("64000\n"), 0o644)
		for _, p := range parts {
			os.MkdirAll(filepath.Join(d, p), 0o755)
			os.WriteFile(filepath.Join(d, p, "partition"), []byte("1\n"), 0o644)
		}
		os.MkdirAll(filepath.Join(root, "sys/block"), 0o755)
		if err := os.Symlink(filepath.Join("..", "devices", bus, "block", name), filepath.Join(root, "sys/block", name)); err != nil {
			t.Fatal(err)
		}
	}
	dev("sda", "0", "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0", "sda1", "sda2") // the Pi's system disk, on USB
	dev("sdb", "0", "pci0000:00/0000:00:14.0/usb2/2-2/2-2:1.0/host1/target1:0:0/1:0:0:0", "sdb1")         // a USB disk that says "fixed"
	dev("vda", "0", "pci0000:00/0000:00:04.0/virtio2")                                                    // a VM's disk
	dev("sdc", "1", "pci0000:00/0000:00:1f.2/ata1/host2/target2:0:0/2:0:0:0", "sdc1")                     // removable, but mounted
	os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/self/mounts"), []byte("/dev/sda2 / ext4 rw 0 0\n/dev/sda1 /boot/firmware vfat rw 0 0\nproc /proc proc rw 0 0\n/dev/sdc1 /mnt vfat rw 0 0\n"), 0o644)
	got, err := RemovablePartitions(root)
	if err != nil || strings.Join(got, ",") != "/dev/sdb1" {
		t.Fatalf("got %q %v; want only the USB disk's partition", got, err)
	}
}

func TestRemovablePartitions(t *testing.T) {
	root := t.TempDir()
	sysfsDisk(t, root, "sda", "0", "1000", "sda1", "sda2") // the system disk
	sysfsDisk(t, root, "sdb", "1", "32000", "sdb1")        // the stick
	sysfsDisk(t, root, "sdc", "1", "0")                    // a card reader, empty
	sysfsDisk(t, root, "sdd", "1", "64000")                // a stick with no partition table
	sysfsDisk(t, root, "sr0", "1", "2097151")              // a VM's CD drive (make image-test met one)
	sysfsDisk(t, root, "fd0", "1", "2880")                 // a floppy drive
	sysfsDisk(t, root, "sde", "1", "700000")               // an optical drive by its SCSI type
	os.MkdirAll(filepath.Join(root, "sys/block/sde/device"), 0o755)
	os.WriteFile(filepath.Join(root, "sys/block/sde/device/type"), []byte("5\n"), 0o644)
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
