package main

// Small pieces of living under systemd as a service user.

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// sdNotify tells systemd about the daemon's state (Type=notify). Outside
// systemd NOTIFY_SOCKET is unset and it does nothing.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}

// watchdog pings systemd at half the WatchdogSec interval while alive()
// answers: a daemon whose store hangs is restarted instead of answering
// nothing forever.
func watchdog(ctx context.Context, alive func(context.Context) error) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if alive(cctx) == nil {
				sdNotify("WATCHDOG=1")
			}
			cancel()
		}
	}
}

// becomeOwner switches a root process to the owner of dir when dir belongs
// to someone else. Go applies setuid to every thread (Linux).
func becomeOwner(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // the store reports a missing directory in its own words
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("cannot drop root to act as the owner of %s: %w", dir, err)
	}
	if err := syscall.Setgid(int(st.Gid)); err != nil {
		return fmt.Errorf("cannot drop root to act as the owner of %s: %w", dir, err)
	}
	if err := syscall.Setuid(int(st.Uid)); err != nil {
		return fmt.Errorf("cannot drop root to act as the owner of %s: %w", dir, err)
	}
	return nil
}
