package hostcfg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildDeb makes a real clinicgate package with dpkg-deb: a /usr/bin/clinicgate
// that says its version.
func buildDeb(t *testing.T, dir, version, arch string) string {
	t.Helper()
	src := filepath.Join(dir, "src-"+version)
	for _, d := range []string{"DEBIAN", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	control := "Package: clinicgate\nVersion: " + version + "\nArchitecture: " + arch + "\nMaintainer: test <t@example.invalid>\nDescription: test package\n"
	if err := os.WriteFile(filepath.Join(src, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "usr/bin/clinicgate"), []byte("#!/bin/sh\necho clinicgate "+version+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, "clinicgate_"+version+"_"+arch+".deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", src, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	return deb
}

// TestUpdateWithRealDpkg installs a real package with the system's dpkg
// into a scratch root (dpkg --root), as the helper does on an appliance,
// and rolls back when the new daemon is not healthy. Only systemctl and
// the health check are stand-ins.
func TestUpdateWithRealDpkg(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root installs as root (CI runs the tests as root)")
	}
	arch, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := applier(t)
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(a.Root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(a.Root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rooted := func(argv []string) []string {
		if argv[0] == "dpkg" && argv[1] != "--print-architecture" && argv[1] != "--compare-versions" || argv[0] == "dpkg-query" {
			return append([]string{argv[0], "--root=" + a.Root}, argv[1:]...)
		}
		return argv
	}
	var systemctl []string
	healthy := true
	a.Run = func(argv []string) error {
		if argv[0] == "systemctl" {
			systemctl = append(systemctl, strings.Join(argv, " "))
			return nil
		}
		out, err := exec.Command(argv[0], rooted(argv)[1:]...).CombinedOutput()
		if err != nil {
			return errors.New(err.Error() + ": " + string(out))
		}
		return nil
	}
	a.Output = func(argv []string) (string, error) {
		out, err := exec.Command(argv[0], rooted(argv)[1:]...).Output()
		return string(out), err
	}
	a.Health = func(context.Context) error {
		if healthy {
			return nil
		}
		return errors.New("healthz: connection refused")
	}
	work := t.TempDir()
	a2 := strings.TrimSpace(string(arch))
	install := func(version string) Result {
		t.Helper()
		deb := buildDeb(t, work, version, a2)
		b, _ := os.ReadFile(deb)
		if err := os.MkdirAll(filepath.Join(a.Data, "incoming"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(a.Data, "incoming", filepath.Base(deb)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if err := Submit(a.Data, Request{ID: NewID(), Kind: KindUpdate, Package: filepath.Base(deb), SHA256: hex.EncodeToString(sum[:])}); err != nil {
			t.Fatal(err)
		}
		res, err := a.ApplyAll()
		if err != nil || len(res) != 1 {
			t.Fatalf("%v %v", res, err)
		}
		return res[0]
	}
	binary := func() string {
		b, _ := os.ReadFile(filepath.Join(a.Root, binaryPath))
		return string(b)
	}
	if err := os.WriteFile(filepath.Join(a.Root, binaryPath), []byte("#!/bin/sh\necho clinicgate image\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := install("0.2.0"); !r.OK || !strings.Contains(binary(), "clinicgate 0.2.0") {
		t.Fatalf("first update: %+v, binary %q", r, binary())
	}
	if r := install("0.1.0"); r.OK || !strings.Contains(r.Message, "not newer than the running 0.2.0") {
		t.Fatalf("an older package: %+v", r)
	}
	healthy = false
	if r := install("0.3.0"); r.OK || !strings.Contains(r.Message, "rolled back") || !strings.Contains(binary(), "clinicgate 0.2.0") {
		t.Fatalf("an unhealthy update: %+v, binary %q", r, binary())
	}
	healthy = true
	if r := install("0.4.0"); !r.OK || !strings.Contains(r.Message, "to 0.4.0") || !strings.Contains(binary(), "clinicgate 0.4.0") {
		t.Fatalf("a good update after the rollback: %+v, binary %q", r, binary())
	}
	if len(systemctl) == 0 {
		t.Fatal("the daemon was never restarted")
	}
}
