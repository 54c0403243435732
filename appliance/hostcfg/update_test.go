package hostcfg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakeDpkg struct {
	pkg, version, arch, installed string
	ran                           []string
	healthy                       bool
	newBinary                     []byte
	root                          string
}

func (f *fakeDpkg) output(argv []string) (string, error) {
	switch argv[0] {
	case "dpkg-deb":
		return "Package: " + f.pkg + "\nVersion: " + f.version + "\nArchitecture: " + f.arch + "\n", nil
	case "dpkg-query":
		return f.installed, nil
	}
	if len(argv) > 1 && argv[1] == "--print-architecture" {
		return "amd64\n", nil
	}
	if len(argv) > 1 && argv[1] == "--compare-versions" {
		if argv[2] > argv[4] { // enough for these versions
			return "", nil
		}
		return "", errors.New("exit status 1")
	}
	return "", errors.New("unexpected " + strings.Join(argv, " "))
}

func (f *fakeDpkg) run(argv []string) error {
	f.ran = append(f.ran, strings.Join(argv, " "))
	if argv[0] == "dpkg" && argv[1] == "-i" {
		return os.WriteFile(filepath.Join(f.root, binaryPath), f.newBinary, 0o755)
	}
	return nil
}

func (f *fakeDpkg) health(context.Context) error {
	if f.healthy {
		return nil
	}
	return errors.New("healthz: connection refused")
}

func updateEnv(t *testing.T, deb []byte) (*Applier, *fakeDpkg, string) {
	t.Helper()
	a, _ := applier(t)
	f := &fakeDpkg{pkg: "clinicgate", version: "0.3.0", arch: "amd64", installed: "0.2.0", healthy: true, newBinary: []byte("new binary"), root: a.Root}
	a.Run, a.Output, a.Health = f.run, f.output, f.health
	if err := os.MkdirAll(filepath.Join(a.Root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Root, binaryPath), []byte("old binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(a.Data, "incoming"), 0o700); err != nil {
		t.Fatal(err)
	}
	name := "clinicgate_0.3.0_amd64.deb"
	if err := os.WriteFile(filepath.Join(a.Data, "incoming", name), deb, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(deb)
	return a, f, hex.EncodeToString(sum[:])
}

func runUpdate(t *testing.T, a *Applier, sum string) Result {
	t.Helper()
	if err := Submit(a.Data, Request{ID: NewID(), Kind: KindUpdate, Package: "clinicgate_0.3.0_amd64.deb", SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	res, err := a.ApplyAll()
	if err != nil || len(res) != 1 {
		t.Fatalf("%v %v", res, err)
	}
	return res[0]
}

func TestUpdateInstallsACheckedNewerPackage(t *testing.T) {
	a, f, sum := updateEnv(t, []byte("a real package"))
	res := runUpdate(t, a, sum)
	if !res.OK || !strings.Contains(res.Message, "updated from 0.2.0 to 0.3.0") {
		t.Fatalf("%+v", res)
	}
	want := "dpkg -i " + filepath.Join(a.Root, UpdatesDir, "clinicgate_0.3.0_amd64.deb")
	if len(f.ran) < 1 || f.ran[0] != want {
		t.Fatalf("ran %q, want %q first", f.ran, want)
	}
	if b, _ := os.ReadFile(filepath.Join(a.Root, UpdatesDir, "clinicgate.previous")); string(b) != "old binary" {
		t.Fatalf("kept binary %q", b)
	}
}

func TestUpdateRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		mut  func(f *fakeDpkg)
		sum  func(string) string
		want string
	}{
		"wrong checksum":  {sum: func(string) string { return strings.Repeat("0", 64) }, want: "not the " + strings.Repeat("0", 64)},
		"another package": {mut: func(f *fakeDpkg) { f.pkg = "openssh-server" }, want: "not clinicgate"},
		"other arch":      {mut: func(f *fakeDpkg) { f.arch = "arm64" }, want: "this appliance is amd64"},
		"not newer":       {mut: func(f *fakeDpkg) { f.installed = "0.4.0" }, want: "not newer than the running 0.4.0"},
	} {
		t.Run(name, func(t *testing.T) {
			a, f, sum := updateEnv(t, []byte("pkg"))
			if c.mut != nil {
				c.mut(f)
			}
			if c.sum != nil {
				sum = c.sum(sum)
			}
			res := runUpdate(t, a, sum)
			if res.OK || !strings.Contains(res.Message, c.want) || len(f.ran) != 0 {
				t.Fatalf("%+v, ran %q; want a refusal saying %q and nothing run", res, f.ran, c.want)
			}
		})
	}
}

// A new daemon that does not come up healthy gets the kept binary back.
func TestUpdateRolledBackWhenUnhealthy(t *testing.T) {
	a, f, sum := updateEnv(t, []byte("pkg"))
	f.healthy = false
	res := runUpdate(t, a, sum)
	if res.OK || !strings.Contains(res.Message, "rolled back to the previous binary (0.2.0)") {
		t.Fatalf("%+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(a.Root, binaryPath)); string(b) != "old binary" {
		t.Fatalf("binary after the rollback: %q", b)
	}
	if last := f.ran[len(f.ran)-1]; last != "systemctl restart clinicgate.service" {
		t.Fatalf("ran %q", f.ran)
	}
}

// The unprivileged side cannot point the helper elsewhere: a link in
// incoming/ or a name outside the pattern is refused.
func TestUpdateRefusesLinksAndOtherNames(t *testing.T) {
	a, f, sum := updateEnv(t, []byte("pkg"))
	p := filepath.Join(a.Data, "incoming", "clinicgate_0.3.0_amd64.deb")
	os.Remove(p)
	if err := os.Symlink("/etc/shadow", p); err != nil {
		t.Fatal(err)
	}
	if res := runUpdate(t, a, sum); res.OK || len(f.ran) != 0 {
		t.Fatalf("followed a link: %+v", res)
	}
	for _, bad := range []string{"../../etc/passwd", "clinicgate_1_amd64.deb/../x", "other_1.0_amd64.deb"} {
		if err := (Request{ID: NewID(), Kind: KindUpdate, Package: bad, SHA256: sum}).Check("gate"); err == nil {
			t.Errorf("accepted package name %q", bad)
		}
	}
}
