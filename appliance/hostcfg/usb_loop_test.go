package hostcfg

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUSBWithALoopDevice runs both USB jobs against a real block device:
// an ext4 image on a loop device stands for the stick, mounted and
// unmounted by the system's mount, as on an appliance.
func TestUSBWithALoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it attaches a loop device and mounts it (CI runs as root)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices on this machine: ", err)
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: %v", tool, err)
		}
	}
	content := t.TempDir()
	for name, body := range map[string]string{"clinicgate-20261201-080000.cgbackup": "old backup", "clinicgate_0.3.0_amd64.deb": "package", "photo.jpg": "not ours"} {
		if err := os.WriteFile(filepath.Join(content, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", content, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })

	a, _ := applier(t)
	a.USB = func() ([]string, error) { return []string{dev}, nil }
	a.Run = func(argv []string) error {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return errors.New(err.Error() + ": " + string(out))
		}
		return nil
	}
	apply := func(r Request) Result {
		t.Helper()
		r.ID = NewID()
		if err := Submit(a.Data, r); err != nil {
			t.Fatal(err)
		}
		res, err := a.ApplyAll()
		if err != nil || len(res) != 1 {
			t.Fatalf("%v %v", res, err)
		}
		return res[0]
	}
	if r := apply(Request{Kind: KindUSBFetch}); !r.OK {
		t.Fatalf("fetch: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(a.Data, "incoming", "clinicgate-20261201-080000.cgbackup")); string(b) != "old backup" {
		t.Fatalf("incoming/ after the fetch: %q", b)
	}
	if _, err := os.Stat(filepath.Join(a.Data, "incoming", "photo.jpg")); err == nil {
		t.Fatal("a file that is neither a backup nor a package was taken")
	}
	name := "clinicgate-20261204-091307.cgbackup"
	if err := os.MkdirAll(filepath.Join(a.Data, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Data, "backups", name), []byte("new backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := apply(Request{Kind: KindUSBCopy, Package: name}); !r.OK {
		t.Fatalf("copy: %+v", r)
	}
	// Unmounted by the helper; look at the stick again.
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "ro", dev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount to check: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(mnt, name))
	_ = exec.Command("umount", mnt).Run()
	if string(b) != "new backup" {
		t.Fatalf("the stick holds %q", b)
	}
}
