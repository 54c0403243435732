package daemon

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestartIsAReloadToSystemd: a daemon starting again in its process
// (new replication settings, a restore chosen in the wizard) tells
// systemd it reloads, not that it stops: after STOPPING=1 systemd killed
// the process TimeoutStopSec later, in the middle of whatever the new
// daemon was doing (a backup, an SSH console).
func TestRestartIsAReloadToSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) []string {
		t.Helper()
		var seen []string
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				seen = append(seen, m)
				if strings.HasPrefix(m, want) {
					return seen
				}
			case <-deadline:
				t.Fatalf("no %q from the daemon; it sent %q", want, seen)
			}
		}
	}
	d := open(t, loopback(t))
	if err := d.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(t.Context()) }()
	next("READY=1")
	d.requestRestart()
	seen := next("RELOADING=1")
	if err := <-ran; err != ErrRestart {
		t.Fatalf("Run: %v, want ErrRestart", err)
	}
	for _, m := range seen {
		if strings.Contains(m, "STOPPING=1") {
			t.Fatalf("a restart told systemd it stops: %q", seen)
		}
	}
}
