package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

func (c *cli) cert(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "cert", "cert: register, unregister, revoke or list?", args, subcommands{
		"register":   c.certRegister,
		"unregister": c.certUnregister,
		"revoke":     c.certRevoke,
		"list":       c.certList,
	})
}

func (c *cli) certRegister(fs *flag.FlagSet) action {
	file := fs.String("file", "", "read the certificate from this PEM file instead of giving its fingerprint")
	var fingerprint string
	return action{args: -1, what: "a user name and a SHA-256 fingerprint (or --file cert.pem)",
		check: func(pos []string) error {
			switch {
			case *file == "" && len(pos) == 2:
				fingerprint = pos[1]
			case *file != "" && len(pos) == 1:
				b, err := os.ReadFile(*file)
				if err != nil {
					return err
				}
				if fingerprint, err = admin.CertFingerprintPEM(b); err != nil {
					return fmt.Errorf("%s: %w", *file, err)
				}
			default:
				return usageError{"cert register: give USER and SHA256-FINGERPRINT, or USER --file cert.pem"}
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			fp, err := svc.RegisterCert(ctx, pos[0], fingerprint)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "certificate %s registered to %s for EAP-TLS\n", fp, pos[0])
			return nil
		}}
}

func (c *cli) certUnregister(*flag.FlagSet) action {
	return action{args: 1, what: "one SHA-256 fingerprint", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.UnregisterCert(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "certificate %s no longer registered (it is not revoked; 'clinicgate cert revoke' refuses it)\n", pos[0])
		return nil
	}}
}

func (c *cli) certRevoke(fs *flag.FlagSet) action {
	reason := fs.String("reason", "", "why, for the audit and 'cert list' (e.g. 'laptop stolen')")
	return action{args: 1, what: "one SHA-256 fingerprint or serial number", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		r, err := svc.RevokeCert(ctx, pos[0], *reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "certificate %s %s revoked: EAP-TLS refuses it from now on\n", r.Kind, r.Value)
		return nil
	}}
}

func (c *cli) certList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		cs, rs, err := svc.Certs(ctx)
		if err != nil {
			return err
		}
		tw := c.table("STATE\tCERTIFICATE\tUSER\tSINCE\tREASON")
		for _, cr := range cs {
			fmt.Fprintf(tw, "registered\t%s\t%s\t%s\t-\n", cr.Fingerprint, cr.UserName, cr.CreatedAt.Local().Format("2006-01-02"))
		}
		for _, r := range rs {
			fmt.Fprintf(tw, "revoked\t%s %s\t-\t%s\t%s\n", r.Kind, r.Value, r.RevokedAt.Local().Format("2006-01-02"), dash(r.Reason))
		}
		return tw.Flush()
	}}
}
