package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/config"
	"github.com/clinicgate/clinicgate/tui"
)

// adminCmd manages who may open the console over SSH.
func (c *cli) adminCmd(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "admin", "admin: add-key, list-keys, remove-key or hostkey?", args, subcommands{
		"add-key":    c.adminAddKey,
		"remove-key": c.adminRemoveKey,
		"list-keys":  c.adminListKeys,
		"hostkey":    c.adminHostKey,
	})
}

func (c *cli) adminAddKey(*flag.FlagSet) action {
	var key []byte
	return action{args: 1, what: "one admin name (the key comes on standard input)",
		check: func([]string) (err error) {
			key, err = io.ReadAll(io.LimitReader(c.stdin, 16384))
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			fp, err := svc.AddAdminKey(ctx, pos[0], string(key))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "admin %s may open the console over SSH with key %s\n", pos[0], fp)
			return nil
		}}
}

func (c *cli) adminRemoveKey(*flag.FlagSet) action {
	return action{args: 1, what: "one admin name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.RemoveAdminKey(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "admin %s removed\n", pos[0])
		return nil
	}}
}

func (c *cli) adminListKeys(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ks, err := svc.AdminKeys(ctx)
		if err != nil {
			return err
		}
		tw := c.table("ADMIN\tKEY\tADDED")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Name, k.Fingerprint, k.CreatedAt.Local().Format("2006-01-02"))
		}
		return tw.Flush()
	}}
}

// adminHostKey prints the console's SSH host key fingerprint, for admins
// to compare with what their SSH client shows at the first connection.
func (c *cli) adminHostKey(*flag.FlagSet) action {
	return action{offline: func(cfg config.Config, _ []string) error {
		path := filepath.Join(cfg.DataDir, tui.HostKeyFile)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no host key yet in %s: the daemon makes one at its first start", cfg.DataDir)
		}
		fp, err := tui.HostKeyFingerprint(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%s\n", fp)
		return nil
	}}
}
