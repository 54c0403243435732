package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/mdp/qrterminal/v3"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

func (c *cli) mfa(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "provider" {
		return c.mfaProvider(ctx, args[1:])
	}
	return c.dispatch(ctx, "mfa", "mfa: enroll, reset, push or provider?", args, subcommands{
		"enroll": c.mfaEnroll,
		"reset":  c.mfaReset,
		"push":   c.mfaPush,
	})
}

func (c *cli) mfaEnroll(fs *flag.FlagSet) action {
	noQR := fs.Bool("no-qr", false, "print only the URI and the secret, no QR code")
	return action{args: 1, what: "one user name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		e, err := svc.EnrollTOTP(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "TOTP enrolled for %s. Show this once to the user, then clear the screen.\n\n", pos[0])
		if !*noQR {
			qrterminal.GenerateWithConfig(e.URI, qrterminal.Config{
				Level: qrterminal.L, Writer: c.out, HalfBlocks: true,
				BlackChar: qrterminal.BLACK_BLACK, WhiteChar: qrterminal.WHITE_WHITE,
				BlackWhiteChar: qrterminal.BLACK_WHITE, WhiteBlackChar: qrterminal.WHITE_BLACK, QuietZone: 2,
			})
			fmt.Fprintln(c.out)
		}
		fmt.Fprintf(c.out, "URI:    %s\nSecret: %s  (for typing into an app by hand, or: oathtool --totp -b %s)\n", e.URI, e.Secret, e.Secret)
		return nil
	}}
}

func (c *cli) mfaReset(*flag.FlagSet) action {
	return action{args: 1, what: "one user name", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		if err := svc.ResetMFA(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "MFA reset for %s\n", pos[0])
		return nil
	}}
}
