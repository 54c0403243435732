package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func (c *cli) device(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "device", "device: list, show, add, remove or override?", args, subcommands{
		"add":      c.deviceAdd,
		"list":     c.deviceList,
		"show":     c.deviceShow,
		"remove":   c.deviceRemove,
		"override": c.deviceOverride,
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
	source := fs.String("source", "", "only this source's: "+strings.Join(store.Sources, ", "))
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		var ds []store.Device
		var err error
		if *userName != "" {
			ds, err = svc.UserDevices(ctx, *userName)
		} else {
			ds, err = svc.Inventory(ctx, *source)
		}
		if err != nil {
			return err
		}
		now := svc.Now()
		tw := c.table("#\tSOURCE\tNAME\tOWNER\tMAC\tSTATE\tLAST SYNC")
		for _, d := range ds {
			if *source != "" && d.Source != *source {
				continue
			}
			state, _ := d.State(now, policy.DefaultStaleGrace*time.Second)
			st := string(state)
			if d.Override != "" && now.Before(d.OverrideUntil) {
				st += " (override)"
			}
			macs := dash(d.MAC)
			if len(d.MACs) > 1 {
				macs += fmt.Sprintf(" +%d", len(d.MACs)-1)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Source, dash(d.Description), owner(d), macs, st, when(d.SyncedAt))
		}
		return tw.Flush()
	}}
}

func (c *cli) deviceShow(*flag.FlagSet) action {
	return action{args: 1, what: "one device: its number, a MAC address, a serial or its owner", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		ds, err := svc.FindDevices(ctx, pos[0])
		if err != nil {
			return err
		}
		now := svc.Now()
		for i, d := range ds {
			if i > 0 {
				fmt.Fprintln(c.out)
			}
			state, why := d.State(now, policy.DefaultStaleGrace*time.Second)
			tw := c.table("FIELD\tVALUE")
			rows := [][2]string{
				{"device", fmt.Sprintf("#%d", d.ID)}, {"source", d.Source + " " + d.SourceID},
				{"name", dash(d.Description)}, {"serial", dash(d.Serial)}, {"owner", owner(d)},
				{"macs", dash(strings.Join(d.MACs, ", "))},
				{"compliance", fmt.Sprintf("%s (%s)", state, why)},
				{"mdm says", dash(string(d.Compliance) + " " + d.ComplianceReason)},
				{"last check-in", when(d.LastSeen)}, {"last sync", when(d.SyncedAt)},
			}
			if d.Override != "" {
				rows = append(rows, [2]string{"override", fmt.Sprintf("%s until %s by %s: %s", d.Override, when(d.OverrideUntil), d.OverrideBy, d.OverrideReason)})
			}
			for _, ct := range d.Certs {
				rows = append(rows, [2]string{"certificate", fmt.Sprintf("serial %s, %s, expires %s", ct.Serial, ct.Fingerprint, when(ct.NotAfter))})
			}
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.out, "\n(stale after %s without a sync by default; each client may set its own --stale-grace)\n", time.Duration(policy.DefaultStaleGrace)*time.Second)
		return nil
	}}
}

func (c *cli) deviceOverride(fs *flag.FlagSet) action {
	dur := fs.Duration("for", 24*time.Hour, "how long the override lasts (at most 720h)")
	reason := fs.String("reason", "", "why (required; kept in the audit)")
	return action{args: 2, what: "a device number and compliant, noncompliant or clear", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		ds, err := svc.FindDevices(ctx, pos[0])
		if err != nil {
			return err
		}
		if len(ds) != 1 {
			return fmt.Errorf("%q matches %d devices: use the number from `clinicgate device list`", pos[0], len(ds))
		}
		state := store.Compliance(pos[1])
		if pos[1] == "clear" {
			state = ""
		}
		if err := svc.OverrideDevice(ctx, ds[0].ID, state, *dur, *reason); err != nil {
			return err
		}
		if state == "" {
			fmt.Fprintf(c.out, "device #%d: override cleared\n", ds[0].ID)
		} else {
			fmt.Fprintf(c.out, "device #%d: %s until %s\n", ds[0].ID, state, svc.Now().Add(*dur).Local().Format("2006-01-02 15:04"))
		}
		return nil
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

func owner(d store.Device) string {
	switch {
	case d.Shared:
		return "(shared)"
	case d.UserName == "":
		return "-"
	case d.UserID == 0:
		return d.UserName + " (not a local user)"
	}
	return d.UserName
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
