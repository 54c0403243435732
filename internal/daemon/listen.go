package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// onDevice reads a listen address whose host is a network interface's
// name ("eth0:2222"): the socket then listens on every address of that
// interface only (SO_BINDTODEVICE), and keeps doing so when DHCP changes
// the address. Any other address is returned unchanged.
func onDevice(addr string) (net.ListenConfig, string) {
	var lc net.ListenConfig
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || net.ParseIP(host) != nil {
		return lc, addr
	}
	if _, err := net.InterfaceByName(host); err != nil {
		return lc, addr
	}
	lc.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, host)
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("binding to interface %s: %w", host, serr)
		}
		return nil
	}
	return lc, ":" + port
}

// listenTCP opens a TCP listener and explains the usual failures.
func listenTCP(ctx context.Context, addr, what string) (net.Listener, error) {
	lc, bind := onDevice(addr)
	ln, err := lc.Listen(ctx, "tcp", bind)
	if err != nil {
		inUse := "another program already uses it"
		if strings.Contains(what, "LDAP") {
			inUse = "another program, such as slapd, already uses it"
		}
		return nil, listenError(err, addr, what, inUse)
	}
	return ln, nil
}

// listenUDP opens a UDP socket and explains the usual failures.
func listenUDP(ctx context.Context, addr, what string) (net.PacketConn, error) {
	lc, bind := onDevice(addr)
	conn, err := lc.ListenPacket(ctx, "udp", bind)
	if err != nil {
		return nil, listenError(err, addr, what, "another RADIUS server, such as freeradius, already uses it")
	}
	return conn, nil
}

// listenError says, in the contractor's words, what to do about the two
// failures a port usually meets.
func listenError(err error, addr, what, inUse string) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = " (" + inUse + ": stop it or pick another port)"
	case errors.Is(err, syscall.EACCES):
		hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
	}
	return fmt.Errorf("cannot listen for %s on %s: %w%s", what, addr, err, hint)
}
