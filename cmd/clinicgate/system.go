package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/appliance/hostcfg"
)

// system is the root helper's side of the console's system screens
// (appliance/hostcfg): clinicgate-system.service runs `system apply` as
// root when the console queues a change. It opens no store: it reads the
// queue in the data directory, checks each request again, and acts.
func (c *cli) system(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "system", "system: apply?", args, subcommands{"apply": c.systemApply})
}

func (c *cli) systemApply(fs *flag.FlagSet) action {
	root := fs.String("root", "/", "the system's root (a scratch directory to try it)")
	dry := fs.Bool("dry-run", false, "print the commands instead of running them")
	return action{root: true, offline: func(cfg config.Config, _ []string) error {
		if os.Geteuid() != 0 && !*dry {
			return errors.New("system apply changes the network and reboots: it runs as root, from clinicgate-system.service")
		}
		host := hostcfg.Hostname(*root)
		a := &hostcfg.Applier{Data: cfg.DataDir, Root: *root, Hostname: host, Run: func(argv []string) error {
			if *dry {
				fmt.Fprintln(c.out, "would run:", strings.Join(argv, " "))
				return nil
			}
			// Fixed commands (hostcfg.PlanFor), looked up on the
			// system's PATH, their output kept for the journal.
			out, err := exec.CommandContext(context.Background(), argv[0], argv[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
			}
			return nil
		}}
		a.Output = func(argv []string) (string, error) {
			out, err := exec.CommandContext(context.Background(), argv[0], argv[1:]...).Output()
			return string(out), err
		}
		a.Health = func(ctx context.Context) error { return daemonHealthy(ctx, cfg.HTTP) }
		res, err := a.ApplyAll()
		for _, r := range res {
			if r.ID == "" {
				continue
			}
			state := "done"
			if !r.OK {
				state = "refused"
			}
			fmt.Fprintf(c.out, "%s %s: %s\n", r.ID, state, r.Message)
		}
		return err
	}}
}

// daemonHealthy waits for the daemon to answer /healthz on its metrics
// address three times in a row, two seconds apart (or, with that address
// off, for systemd to report it active as long), until ctx ends.
func daemonHealthy(ctx context.Context, httpAddr string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	check := func() error {
		if httpAddr == "" {
			return exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", "clinicgate.service").Run()
		}
		host, port, err := net.SplitHostPort(httpAddr)
		if err != nil {
			return err
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}
	good := 0
	var last error
	for good < 3 {
		if last = check(); last == nil {
			good++
		} else {
			good = 0
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}
