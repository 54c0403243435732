package hostcfg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// An update, on the images (issue 14): the admin uploads a clinicgate
// .deb over SFTP into incoming/ and types its SHA-256 from the release.
// The root helper copies the file out of the unprivileged directory into
// its own (so it cannot be swapped after the check), checks the checksum,
// that it is clinicgate for this architecture and newer than what runs,
// keeps the running binary, installs the package, and waits for the
// daemon to answer its health check. A daemon that does not come up
// healthy within UpdateHealthWait gets the kept binary back, restarted,
// and the answer says so.

// UpdatesDir is the helper's own directory, under the root.
const UpdatesDir = "var/lib/clinicgate-updates"

// UpdateHealthWait is how long the new daemon has to answer healthily.
var UpdateHealthWait = 60 * time.Second

// maxDeb bounds an update package.
const maxDeb = 200 << 20

// The binary kept for a rollback, under the root.
const binaryPath = "usr/bin/clinicgate"

func (a *Applier) update(r Request) (string, error) {
	if a.Output == nil || a.Health == nil {
		return "", errors.New("updates need the system's package tools")
	}
	dir := filepath.Join(a.Root, UpdatesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	deb := filepath.Join(dir, r.Package)
	sum, err := copyChecked(filepath.Join(a.Data, "incoming", r.Package), deb)
	if err != nil {
		return "", err
	}
	if sum != r.SHA256 {
		os.Remove(deb)
		return "", fmt.Errorf("%s's SHA-256 is %s, not the %s typed: not installed (a damaged upload, or not the release's file)", r.Package, sum, r.SHA256)
	}
	fields, err := a.Output([]string{"dpkg-deb", "-f", deb, "Package", "Version", "Architecture"})
	if err != nil {
		return "", fmt.Errorf("%s is not a readable package: %v", r.Package, err)
	}
	info := map[string]string{}
	for _, l := range strings.Split(fields, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			info[k] = strings.TrimSpace(v)
		}
	}
	arch, _ := a.Output([]string{"dpkg", "--print-architecture"})
	switch {
	case info["Package"] != "clinicgate":
		return "", fmt.Errorf("%s holds the package %q, not clinicgate", r.Package, info["Package"])
	case info["Architecture"] != strings.TrimSpace(arch):
		return "", fmt.Errorf("%s is for %s; this appliance is %s", r.Package, info["Architecture"], strings.TrimSpace(arch))
	}
	now, _ := a.Output([]string{"dpkg-query", "-W", "-f", "${Version}", "clinicgate"})
	now = strings.TrimSpace(now)
	if now != "" {
		if _, err := a.Output([]string{"dpkg", "--compare-versions", info["Version"], "gt", now}); err != nil {
			return "", fmt.Errorf("%s is version %s, not newer than the running %s: not installed", r.Package, info["Version"], now)
		}
	}
	kept := filepath.Join(dir, "clinicgate.previous")
	if err := copyFile(filepath.Join(a.Root, binaryPath), kept, 0o755); err != nil {
		return "", fmt.Errorf("keeping the running binary for a rollback: %w", err)
	}
	if err := a.Run([]string{"dpkg", "-i", deb}); err != nil {
		return "", a.rollback(kept, now, fmt.Errorf("dpkg -i: %w", err))
	}
	_ = a.Run([]string{"systemctl", "restart", "clinicgate.service"})
	ctx, cancel := context.WithTimeout(context.Background(), UpdateHealthWait)
	defer cancel()
	if err := a.Health(ctx); err != nil {
		return "", a.rollback(kept, now, fmt.Errorf("the new daemon was not healthy within %s: %w", UpdateHealthWait, err))
	}
	return fmt.Sprintf("clinicgate updated from %s to %s; the daemon answers its health check", dashIf(now), info["Version"]), nil
}

// rollback puts the kept binary back and restarts the daemon.
func (a *Applier) rollback(kept, was string, why error) error {
	if err := copyFile(kept, filepath.Join(a.Root, binaryPath), 0o755); err != nil {
		return fmt.Errorf("%v; and the rollback failed too: %w (reinstall %s's package by hand)", why, err, dashIf(was))
	}
	_ = a.Run([]string{"systemctl", "restart", "clinicgate.service"})
	return fmt.Errorf("%v: rolled back to the previous binary (%s) and restarted; the package database still names the new version until an update succeeds", why, dashIf(was))
}

func dashIf(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// copyChecked copies src (a regular file, not a link: the unprivileged
// side wrote it) to dst (0600) and returns its SHA-256.
func copyChecked(src, dst string) (string, error) {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("%s: %w (upload it over SFTP into incoming/)", filepath.Base(src), err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() || st.Size() > maxDeb {
		return "", fmt.Errorf("%s is not a package file (a regular file under %d MiB)", filepath.Base(src), maxDeb>>20)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), io.LimitReader(in, maxDeb+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err = io.Copy(out, in); err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
