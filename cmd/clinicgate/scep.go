package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// scep manages device certificates over SCEP (docs/scep.md): one-time
// challenges, the device CA, the certificates it issued.
func (c *cli) scep(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "scep", "scep: challenge, challenges, withdraw, ca or list?", args, subcommands{
		"challenge":  c.scepChallenge,
		"challenges": c.scepChallenges,
		"withdraw":   c.scepWithdraw,
		"ca":         c.scepCA,
		"list":       c.scepList,
	})
}

// scepChallengeFlags declares the flags that describe the device a
// challenge is for (shared with 'wifi profile --scep').
func scepChallengeFlags(fs *flag.FlagSet) *admin.SCEPChallengeRequest {
	r := &admin.SCEPChallengeRequest{}
	fs.StringVar(&r.Device, "device", "", "the device's name: its inventory record gets the certificate (a new record of that name if there is none); default the name the device asks for")
	fs.StringVar(&r.User, "user", "", "the device's owner: EAP-TLS logs in as this user")
	fs.StringVar(&r.MAC, "mac", "", "the device's Wi-Fi MAC address, for a new inventory record")
	fs.DurationVar(&r.TTL, "ttl", admin.DefaultSCEPChallengeTTL, "how long the challenge can be used")
	fs.DurationVar(&r.Validity, "validity", admin.DefaultSCEPCertValidity, "how long the issued certificate is valid (8760h is a year)")
	return r
}

func (c *cli) scepChallenge(fs *flag.FlagSet) action {
	r := scepChallengeFlags(fs)
	fs.IntVar(&r.Uses, "uses", 1, "how many devices may enrol with it: more than 1 is an MDM's static challenge (read docs/scep.md first)")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		ch, err := svc.CreateSCEPChallenge(ctx, *r)
		if err != nil {
			return err
		}
		// The challenge alone on stdout, once: it is not stored and
		// cannot be shown again.
		fmt.Fprintln(c.out, ch.Challenge)
		if ch.Uses > 1 {
			fmt.Fprintf(c.errw, "SCEP challenge %d for up to %d devices, until %s: anyone who reads it can enrol a device until then.\nWithdraw it once your devices are enrolled: clinicgate scep withdraw %d\n", ch.ID, ch.Uses, ch.ExpiresAt.Local().Format("2006-01-02 15:04"), ch.ID)
		} else {
			fmt.Fprintf(c.errw, "one-time SCEP challenge %d, usable once until %s; the certificate it buys is valid for %s.\n", ch.ID, ch.ExpiresAt.Local().Format("2006-01-02 15:04"), ch.Validity)
		}
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

func (c *cli) scepChallenges(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		cs, err := svc.SCEPChallenges(ctx)
		if err != nil {
			return err
		}
		tw := c.table("ID\tDEVICE\tUSER\tUSES LEFT\tEXPIRES\tMADE BY")
		for _, ch := range cs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d of %d\t%s\t%s\n", ch.ID, dash(ch.DeviceName), dash(ch.OwnerName), ch.UsesLeft, ch.Uses, ch.ExpiresAt.Local().Format("2006-01-02 15:04"), ch.CreatedBy)
		}
		return tw.Flush()
	}}
}

func (c *cli) scepWithdraw(*flag.FlagSet) action {
	return action{args: 1, what: "one challenge id (see 'clinicgate scep challenges')", run: func(ctx context.Context, svc *admin.Service, pos []string) error {
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return usageError{fmt.Sprintf("scep withdraw: %q is not a challenge id (a number from 'clinicgate scep challenges')", pos[0])}
		}
		if err := svc.WithdrawSCEPChallenge(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "SCEP challenge %d withdrawn: no device can enrol with it any more (certificates already issued stay valid; 'clinicgate cert revoke' revokes one)\n", id)
		return nil
	}}
}
