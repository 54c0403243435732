package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
)

func (c *cli) settings(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "settings", "settings: list or set?", args, subcommands{
		"list": c.settingsList,
		"set":  c.settingsSet,
	})
}

func (c *cli) settingsList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		vals, err := svc.Settings(ctx)
		if err != nil {
			return err
		}
		tw := c.table("SETTING\tVALUE\tMEANING")
		for _, k := range appliance.SettingKeys() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k, dash(vals[k]), appliance.SettingSpecs[k].Help)
		}
		return tw.Flush()
	}}
}

func (c *cli) settingsSet(*flag.FlagSet) action {
	return action{args: 2, what: "KEY VALUE", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.SetSetting(ctx, pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%s = %s\n", pos[0], pos[1])
		return nil
	}}
}
