package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// scep manages device certificates over SCEP (docs/scep.md): one-time
// challenges, the device CA, the certificates it issued.
func (c *cli) scep(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "scep", "scep: challenge, ca or list?", args, subcommands{
		"challenge": c.scepChallenge,
		"ca":        c.scepCA,
		"list":      c.scepList,
	})
}

// scepChallengeFlags declares the flags that describe the device a
// challenge is for (shared with 'wifi profile --scep').
func scepChallengeFlags(fs *flag.FlagSet) *admin.SCEPChallengeRequest {
	r := &admin.SCEPChallengeRequest{}
	fs.StringVar(&r.Device, "device", "", "the device's name: its inventory record gets the certificate (a new record of that name if there is none); default the name the device asks for")
	fs.StringVar(&r.User, "user", "", "the device's owner: EAP-TLS logs in as this user")
	fs.StringVar(&r.MAC, "mac", "", "the device's Wi-Fi MAC address, for a new inventory record")
	fs.DurationVar(&r.TTL, "ttl", admin.DefaultSCEPChallengeTTL, "how long the challenge can be used (it works once)")
	fs.DurationVar(&r.Validity, "validity", admin.DefaultSCEPCertValidity, "how long the issued certificate is valid (8760h is a year)")
	return r
}

func (c *cli) scepChallenge(fs *flag.FlagSet) action {
	r := scepChallengeFlags(fs)
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ch, err := svc.CreateSCEPChallenge(ctx, *r)
		if err != nil {
			return err
		}
		// The challenge alone on stdout, once: it is not stored and
		// cannot be shown again.
		fmt.Fprintln(c.out, ch.Challenge)
		fmt.Fprintf(c.errw, "one-time SCEP challenge, usable once until %s; the certificate it buys is valid for %s.\n", ch.ExpiresAt.Local().Format("2006-01-02 15:04"), ch.Validity)
		fmt.Fprintln(c.errw, "It is shown only now: put it in the device's SCEP profile (docs/scep.md).")
		return nil
	}}
}

func (c *cli) scepCA(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ca, err := svc.DeviceCA(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.errw, "device CA:    %s, valid until %s\nSHA-256:      %s\n", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.Format("2006-01-02"), selfcert.FingerprintDER(ca.Cert.Raw))
		return pem.Encode(c.out, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	}}
}

func (c *cli) scepList(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		cs, err := svc.IssuedCerts(ctx)
		if err != nil {
			return err
		}
		tw := c.table("SERIAL\tDEVICE\tISSUED\tEXPIRES\tSTATE")
		for _, ic := range cs {
			state := "valid"
			switch {
			case !ic.RevokedAt.IsZero():
				state = "revoked " + ic.RevokedAt.Local().Format("2006-01-02")
				if ic.RevokeReason != "" {
					state += " (" + ic.RevokeReason + ")"
				}
			case time.Now().After(ic.NotAfter):
				state = "expired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ic.Serial, dash(ic.Subject), ic.IssuedAt.Local().Format("2006-01-02"), ic.NotAfter.Local().Format("2006-01-02"), state)
		}
		return tw.Flush()
	}}
}
