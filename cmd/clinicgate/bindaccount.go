package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

func (c *cli) bindAccount(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "bindaccount", "bindaccount: add, list or remove?", args, subcommands{
		"add":    c.bindAccountAdd,
		"list":   c.bindAccountList,
		"remove": c.bindAccountRemove,
	})
}

func (c *cli) bindAccountAdd(fs *flag.FlagSet) action {
	var nets multi
	fs.Var(&nets, "network", "an address or CIDR range the EHR binds from (repeat for several)")
	secretStdin := fs.Bool("secret-stdin", false, "read the secret from standard input instead of generating one")
	var secret secrets.Secret
	return action{args: 1, what: "one bind account name",
		check: func([]string) (err error) {
			if *secretStdin {
				secret, err = c.readSecret("bind account secret")
			}
			return err
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			got, err := svc.AddBindAccount(ctx, admin.NewBindAccount{Name: pos[0], Networks: nets, Secret: secret})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "bind account %s added; it may search, from %s\n", pos[0], strings.Join(nets, ", "))
			if secret == nil {
				fmt.Fprintf(c.out, "secret (shown once; enter it in the EHR's LDAP settings): %s\n", string(got))
			}
			return nil
		}}
}

func (c *cli) bindAccountList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		bs, err := svc.BindAccounts(ctx)
		if err != nil {
			return err
		}
		tw := c.table("NAME\tNETWORKS\tADDED")
		for _, b := range bs {
			nets := make([]string, len(b.Networks))
			for i, p := range b.Networks {
				nets[i] = p.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, strings.Join(nets, ","), b.CreatedAt.Format("2006-01-02"))
		}
		return tw.Flush()
	}}
}

func (c *cli) bindAccountRemove(*flag.FlagSet) action {
	return action{args: 1, what: "one bind account name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.RemoveBindAccount(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "bind account %s removed\n", pos[0])
		return nil
	}}
}
