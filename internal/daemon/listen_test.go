package daemon

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// A listen address naming an interface ("lo:0") listens on that
// interface only, for the console's SSH on one network of an appliance
// with several (issue 16).
func TestListenOnInterfaceName(t *testing.T) {
	ln, err := listenTCP(t.Context(), "lo:0", "the console's SSH")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dev string
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		dev, gerr = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if dev != "lo" {
		t.Fatalf("listener bound to device %q, want lo", dev)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", portOf(t, ln.Addr())))
	if err != nil {
		t.Fatalf("connecting over lo: %v", err)
	}
	c.Close()

	pc, err := listenUDP(t.Context(), "lo:0", "RADIUS authentication")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	// An address that names no interface is an ordinary host.
	if _, bind := onDevice("127.0.0.1:0"); bind != "127.0.0.1:0" {
		t.Fatalf("onDevice changed an IP address to %q", bind)
	}
	if _, err := listenTCP(t.Context(), "no-such-if0:0", "x"); err == nil {
		t.Fatal("listened on a host name that resolves nowhere")
	}
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
