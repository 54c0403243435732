package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/internal/daemon"
)

// serve runs the daemon until SIGTERM or SIGINT (ctx); SIGHUP reloads.
func (c *cli) serve(ctx context.Context, args []string) error {
	var co common
	fs := c.flags("serve", &co)
	authAddr := fs.String("radius-auth", "", "RADIUS authentication address (overrides the config; \"\" turns it off)")
	acctAddr := fs.String("radius-acct", "", "RADIUS accounting address (overrides the config)")
	ldapAddr := fs.String("ldap", "", "LDAP address, with StartTLS (overrides the config; \"\" turns it off)")
	ldapsAddr := fs.String("ldaps", "", "LDAPS address (overrides the config; \"\" turns it off)")
	httpAddr := fs.String("http", "", "health and metrics address (overrides the config)")
	pprof := fs.Bool("pprof", false, "serve Go's profiler under /debug/pprof/ on the loopback health and metrics address (overrides the config)")
	sshAddr := fs.String("ssh", "", "the console's SSH address (overrides the config; \"\" turns it off)")
	sshIdle := fs.String("ssh-idle-timeout", "", "close a console left alone this long (overrides the config)")
	scepAddr := fs.String("scep", "", "the SCEP door's HTTPS address (overrides the config; \"\" turns it off)")
	demo := fs.Bool("demo", false, "on an empty store, add a loopback test client and user and print how to log in")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := co.resolve()
	if err != nil {
		return err
	}
	// A flag given as "" turns that listener off.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "radius-auth":
			cfg.RADIUS.Auth = *authAddr
		case "radius-acct":
			cfg.RADIUS.Acct = *acctAddr
		case "ldap":
			cfg.LDAP.Listen = *ldapAddr
		case "ldaps":
			cfg.LDAP.ListenTLS = *ldapsAddr
		case "http":
			cfg.HTTP = *httpAddr
		case "pprof":
			cfg.PProf = *pprof
		case "ssh":
			cfg.SSH = *sshAddr
		case "scep":
			cfg.SCEP.Listen = *scepAddr
		case "ssh-idle-timeout":
			cfg.SSHIdleTimeout = *sshIdle
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// The daemon stops itself to apply new off-box replication settings
	// (internal/daemon/replica.go); it is opened again in this process.
	for first := true; ; first = false {
		err := c.serveOnce(ctx, cfg, hup, *demo && first)
		if !errors.Is(err, daemon.ErrRestart) {
			return err
		}
		fmt.Fprintln(c.out, "clinicgate is starting again to apply new settings")
	}
}

// serveOnce opens, runs and closes one daemon.
func (c *cli) serveOnce(ctx context.Context, cfg config.Config, hup chan os.Signal, demo bool) error {
	d, err := daemon.Open(ctx, cfg, daemon.Options{Version: versionString(), Logger: newLogger(cfg, os.Stderr), Reload: hup})
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Listen(ctx); err != nil {
		return err
	}
	// The demo is set up only once the ports are ours, so a failed start
	// does not use up the one showing of the demo password.
	var demoInfo *demoSetup
	if demo {
		if demoInfo, err = setupDemo(ctx, d); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.out, "clinicgate %s is running (data: %s). Listening on:\n%s\n", versionString(), d.Dir(), strings.Join(d.Listening(), "\n"))
	if demoInfo != nil {
		demoInfo.print(c.out, cfg, d.Dir())
	} else if noClients(ctx, d) {
		fmt.Fprintf(c.out, "\nNo RADIUS clients yet. Add your Wi-Fi controller or VPN gateway:\n  clinicgate client add office-wifi --address 192.168.1.2 --data %s\n", d.Dir())
	}
	return d.Run(ctx)
}

// noClients reports a store without any client, for the first-start hint.
func noClients(ctx context.Context, d *daemon.Daemon) bool {
	svc, err := d.Admin("daemon")
	if err != nil {
		return false
	}
	cs, err := svc.Clients(ctx)
	return err == nil && len(cs) == 0
}

func newLogger(cfg config.Config, w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
