package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// coa shows what the daemon's CoA worker did (docs/coa.md).
func (c *cli) coa(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "coa", "coa: events?", args, subcommands{"events": c.coaEvents})
}

func (c *cli) coaEvents(fs *flag.FlagSet) action {
	n := fs.Int("n", 20, "how many events, newest first")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		evs, err := svc.PostureEvents(ctx, *n)
		if err != nil {
			return err
		}
		tw := c.table("ID\tWHEN\tEVENT\tUSER\tDEVICES\tDONE\tRESULT")
		for _, e := range evs {
			done := "pending"
			if !e.DoneAt.IsZero() {
				done = e.DoneAt.Local().Format("01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.CreatedAt.Local().Format("01-02 15:04:05"), e.Kind, dash(e.UserName),
				dash(strings.Join(e.MACs, ",")), done, dash(e.Result))
		}
		return tw.Flush()
	}}
}
