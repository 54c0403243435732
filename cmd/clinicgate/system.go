package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

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
	return action{offline: func(cfg config.Config, _ []string) error {
		if os.Geteuid() != 0 && !*dry {
			return errors.New("system apply changes the network and reboots: it runs as root, from clinicgate-system.service")
		}
		host, _ := os.Hostname()
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
