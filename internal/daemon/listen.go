package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// listenTCP opens a TCP listener and explains the usual failures.
func listenTCP(ctx context.Context, addr, what string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
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
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp", addr)
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
