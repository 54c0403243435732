package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

func (c *cli) acct(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "acct", "acct: list?", args, subcommands{"list": c.acctList})
}

func (c *cli) acctList(fs *flag.FlagSet) action {
	active := fs.Bool("active", false, "only sessions still open")
	n := fs.Int("n", 50, "how many sessions")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ss, err := svc.AcctSessions(ctx, *active, *n)
		if err != nil {
			return err
		}
		// Times in the site's zone, as the console shows them, named in
		// the header.
		loc, err := svc.SiteZone(ctx)
		if err != nil {
			return err
		}
		tw := c.table("CLIENT\tSESSION\tUSER\tDEVICE\tSTATUS\tSTARTED (" + admin.ZoneName(loc, svc.Now()) + ")\tSECONDS\tIN\tOUT\tCAUSE")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Client, s.SessionID, dash(s.UserName), dash(s.CallingStation), s.Status,
				s.StartedAt.In(loc).Format("2006-01-02 15:04:05"), s.SessionTime, s.InputOctets, s.OutputOctets, dash(s.TerminateCause))
		}
		return tw.Flush()
	}}
}
