package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

func (c *cli) device(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "device", "device: add, list or remove?", args, subcommands{
		"add":    c.deviceAdd,
		"list":   c.deviceList,
		"remove": c.deviceRemove,
	})
}

func (c *cli) deviceAdd(fs *flag.FlagSet) action {
	userName := fs.String("user", "", "the user the device belongs to")
	desc := fs.String("description", "", "what the device is (e.g. 'front desk laptop')")
	return action{args: 1, what: "one MAC address",
		check: func([]string) error {
			if *userName == "" {
				return usageError{"device add: --user is required"}
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			mac, err := svc.AddDevice(ctx, pos[0], *userName, *desc)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "device %s bound to %s\n", mac, *userName)
			return nil
		}}
}

func (c *cli) deviceList(fs *flag.FlagSet) action {
	userName := fs.String("user", "", "only this user's devices")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ds, err := svc.UserDevices(ctx, *userName)
		if err != nil {
			return err
		}
		tw := c.table("MAC\tUSER\tDESCRIPTION\tADDED")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.MAC, d.UserName, dash(d.Description), d.CreatedAt.Local().Format("2006-01-02"))
		}
		return tw.Flush()
	}}
}

func (c *cli) deviceRemove(*flag.FlagSet) action {
	return action{args: 1, what: "one MAC address", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.RemoveDevice(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "device %s removed\n", pos[0])
		return nil
	}}
}
