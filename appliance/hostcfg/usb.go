package hostcfg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A backup onto a USB stick (issue 14): the console has no right to mount
// anything, so the root helper does it. It looks for exactly one
// removable disk's partition (or the disk itself when it has none),
// mounts it nosuid,nodev,noexec at USBMount, copies the backup there,
// syncs, and unmounts, so the stick can be pulled at once.

// USBMount is where the stick is mounted, under the root.
const USBMount = "run/clinicgate-usb"

// RemovablePartitions lists the block devices of USB sticks, from sysfs
// and the mount table under root: each stick's partitions, or the disk
// when it has none. CD, DVD and floppy drives are never sticks. A disk counts when it says it is removable, or when
// it hangs off a USB bus (USB hard disks and many larger sticks say they
// are fixed). A disk with anything mounted from it is never one: a
// Raspberry Pi booted from a USB disk must not take its own system disk
// for a stick.
func RemovablePartitions(root string) ([]string, error) {
	disks, err := filepath.Glob(filepath.Join(root, "sys/block/*"))
	if err != nil {
		return nil, err
	}
	mounted := mountedDevices(root)
	var out []string
	for _, disk := range disks {
		name := filepath.Base(disk)
		if optical(disk, name) {
			// A VM's virtual CD drive (Proxmox, VMware and Hyper-V add
			// one) says it is removable: it is never the stick, and
			// counting it refused every stick as "more than one".
			continue
		}
		b, err := os.ReadFile(filepath.Join(disk, "removable"))
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(b)) != "1" && !onUSB(disk) {
			continue
		}
		if sz, err := os.ReadFile(filepath.Join(disk, "size")); err == nil && strings.TrimSpace(string(sz)) == "0" {
			continue // a card reader with no card
		}
		parts, _ := filepath.Glob(filepath.Join(disk, name+"*", "partition"))
		devs := []string{"/dev/" + name}
		if len(parts) > 0 {
			devs = devs[:0]
			for _, p := range parts {
				devs = append(devs, "/dev/"+filepath.Base(filepath.Dir(p)))
			}
		}
		inUse := mounted["/dev/"+name]
		for _, d := range devs {
			inUse = inUse || mounted[d]
		}
		if !inUse {
			out = append(out, devs...)
		}
	}
	return out, nil
}

// optical says whether the disk is a CD or DVD drive (sr*, or SCSI
// peripheral type 5) or a floppy drive (fd*).
func optical(disk, name string) bool {
	if strings.HasPrefix(name, "sr") || strings.HasPrefix(name, "fd") {
		return true
	}
	b, err := os.ReadFile(filepath.Join(disk, "device", "type"))
	return err == nil && strings.TrimSpace(string(b)) == "5"
}

// onUSB says whether the disk's device in sysfs sits under a USB host
// controller (its path holds a "usbN" bus directory).
func onUSB(disk string) bool {
	real, err := filepath.EvalSymlinks(disk)
	if err != nil {
		return false
	}
	for _, el := range strings.Split(real, string(filepath.Separator)) {
		if n, ok := strings.CutPrefix(el, "usb"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	return false
}

// mountedDevices lists the devices in root's mount table (/proc/self/mounts).
func mountedDevices(root string) map[string]bool {
	b, err := os.ReadFile(filepath.Join(root, "proc/self/mounts"))
	if err != nil {
		return nil
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[0], "/dev/") {
			m[f[0]] = true
		}
	}
	return m
}

func (a *Applier) usbCopy(r Request) (string, error) {
	if r.Kind == KindUSBFetch {
		return a.usbFetch()
	}
	dev, err := a.oneStick()
	if err != nil {
		return "", err
	}
	src := filepath.Join(a.Data, "backups", r.Package)
	if st, err := os.Lstat(src); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a backup in backups/", r.Package)
	}
	mnt := filepath.Join(a.Root, USBMount)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	if err := a.Run([]string{"mount", "-o", "nosuid,nodev,noexec", dev, mnt}); err != nil {
		return "", fmt.Errorf("mounting %s: %w", dev, err)
	}
	cerr := copyFile(src, filepath.Join(mnt, r.Package), 0o600)
	uerr := a.Run([]string{"umount", mnt})
	switch {
	case cerr != nil:
		return "", fmt.Errorf("copying to %s: %w", dev, cerr)
	case uerr != nil:
		return "", fmt.Errorf("%s was copied, but unmounting %s failed (do not pull it yet): %w", r.Package, dev, uerr)
	}
	return fmt.Sprintf("%s copied to the USB stick (%s); it can be pulled out now", r.Package, dev), nil
}

// oneStick is the one removable partition plugged in.
func (a *Applier) oneStick() (string, error) {
	list := a.USB
	if list == nil {
		list = func() ([]string, error) { return RemovablePartitions(a.Root) }
	}
	devs, err := list()
	if err != nil {
		return "", err
	}
	switch {
	case len(devs) == 0:
		return "", errors.New("no USB stick found: plug one in (FAT, exFAT or ext4) and try again")
	case len(devs) > 1:
		return "", fmt.Errorf("more than one removable disk or partition (%s): leave only the stick to use", strings.Join(devs, ", "))
	}
	return devs[0], nil
}

// usbFetch mounts the stick read-only and copies the backups and
// clinicgate packages at its top into incoming/ (owned like the data
// directory, for the console), where a restore or an update takes them.
func (a *Applier) usbFetch() (string, error) {
	dev, err := a.oneStick()
	if err != nil {
		return "", err
	}
	mnt := filepath.Join(a.Root, USBMount)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	if err := a.Run([]string{"mount", "-o", "ro,nosuid,nodev,noexec", dev, mnt}); err != nil {
		return "", fmt.Errorf("mounting %s: %w", dev, err)
	}
	var got []string
	ferr := func() error {
		es, err := os.ReadDir(mnt)
		if err != nil {
			return err
		}
		in := filepath.Join(a.Data, "incoming")
		if err := os.MkdirAll(in, 0o700); err != nil {
			return err
		}
		for _, e := range es {
			n := e.Name()
			if !e.Type().IsRegular() || !backupRE.MatchString(n) && !debRE.MatchString(n) {
				continue
			}
			if len(got) == 8 {
				return errors.New("more than 8 files to take: leave fewer on the stick")
			}
			dst := filepath.Join(in, n)
			if _, err := copyChecked(filepath.Join(mnt, n), dst); err != nil {
				return err
			}
			if err := a.ownLikeData(in, dst); err != nil {
				return err
			}
			got = append(got, n)
		}
		return nil
	}()
	uerr := a.Run([]string{"umount", mnt})
	switch {
	case ferr != nil:
		return "", fmt.Errorf("reading %s: %w", dev, ferr)
	case uerr != nil:
		return "", fmt.Errorf("unmounting %s failed (do not pull it yet): %w", dev, uerr)
	case len(got) == 0:
		return "", fmt.Errorf("no backup (clinicgate-….cgbackup) or package (clinicgate_….deb) at the top of the stick %s", dev)
	}
	return fmt.Sprintf("copied into incoming/: %s; the stick can be pulled out now", strings.Join(got, ", ")), nil
}
