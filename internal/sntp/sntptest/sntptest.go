// Package sntptest runs a real NTP server, chronyd, for tests of the
// clock check: on a free loopback port, never touching this machine's
// clock. It is for tests only.
package sntptest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/internal/sntp"
)

// chronydPath finds chrony's server: installed, or unpacked by
// .ci/install-test-deps into the test cache (installing the package would
// replace systemd-timesyncd).
func chronydPath() string {
	if p, err := exec.LookPath("chronyd"); err == nil {
		return p
	}
	cache := os.Getenv("CLINICGATE_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "clinicgate-test")
	}
	for _, p := range []string{"/usr/sbin/chronyd", filepath.Join(cache, "chrony", "usr", "sbin", "chronyd")} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Chrony runs a real NTP server (chronyd, not touching this machine's
// clock) on a free loopback port; synced makes it serve its local clock
// at stratum 8, as a LAN time server does.
func Chrony(t *testing.T, synced bool) string {
	t.Helper()
	bin := chronydPath()
	if bin == "" {
		t.Fatal("chronyd is not on this machine: make test (.ci/install-test-deps) unpacks it into ~/.cache/clinicgate-test/chrony")
	}
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := "port " + strconv.Itoa(port) + "\nbindaddress 127.0.0.1\nallow 127.0.0.1\ncmdport 0\npidfile " + filepath.Join(dir, "pid") + "\n"
	if synced {
		conf += "local stratum 8\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "chrony.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd := exec.Command(bin, "-d", "-x", "-u", "root", "-f", filepath.Join(dir, "chrony.conf"))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Ready when it answers; a chronyd that exits fails the test at once
	// with its own log.
	for range 50 {
		select {
		case err := <-done:
			t.Fatalf("chronyd exited: %v\n%s", err, log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		_, err := sntp.Query(ctx, addr, nil)
		cancel()
		if err == nil || errors.Is(err, sntp.ErrUnsynchronised) {
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("chronyd does not answer on %s:\n%s", addr, log.String())
	return ""
}
