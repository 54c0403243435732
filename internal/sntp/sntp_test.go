package sntp

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
)

// chronyd finds chrony's server: installed, or unpacked by
// .ci/install-test-deps into the test cache (installing the package would
// replace systemd-timesyncd).
func chronyd() string {
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

// chrony runs a real NTP server (chronyd, not touching this machine's
// clock) on a free loopback port; synced makes it serve its local clock
// at stratum 8, as a LAN time server does.
func chrony(t *testing.T, synced bool) string {
	t.Helper()
	bin := chronyd()
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
		_, err := Query(ctx, addr, nil)
		cancel()
		if err == nil || errors.Is(err, ErrUnsynchronised) {
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("chronyd does not answer on %s:\n%s", addr, log.String())
	return ""
}

func TestOffsetAgainstChrony(t *testing.T) {
	addr := chrony(t, true)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	r, err := Query(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stratum != 8 || r.Offset.Abs() > time.Second || r.RTT < 0 {
		t.Fatalf("%+v, want stratum 8 and about no offset", r)
	}
	// This machine's clock 47 s slow, as a Pi without its RTC after a
	// power cut: the server is 47 s ahead.
	slow := func() time.Time { return time.Now().Add(-47 * time.Second) }
	r, err = Query(ctx, addr, slow)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Offset - 47*time.Second; d.Abs() > time.Second {
		t.Fatalf("offset %v with the clock 47 s slow", r.Offset)
	}
}

func TestUnsynchronisedServerIsNotTrusted(t *testing.T) {
	addr := chrony(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := Query(ctx, addr, nil); !errors.Is(err, ErrUnsynchronised) {
		t.Fatalf("got %v, want ErrUnsynchronised", err)
	}
}

// An answer that does not echo the request is not taken, however
// plausible its time (an off-path spoofer's): the query times out.
func TestSpoofedAnswerIgnored(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 128)
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		ans := make([]byte, 48)
		ans[0], ans[1] = 4<<3|4, 2
		now := toNTP(time.Now().Add(time.Hour))
		for _, off := range []int{32, 40} {
			for i := range 8 {
				ans[off+i] = byte(now >> (56 - 8*i))
			}
		}
		_, _ = pc.WriteTo(ans, from) // origin left zero
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if r, err := Query(ctx, pc.LocalAddr().String(), nil); err == nil {
		t.Fatalf("took a spoofed answer: %+v", r)
	}
}
