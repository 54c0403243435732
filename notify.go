package main

import (
	"context"
	"net"
	"os"
	"strconv"
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
