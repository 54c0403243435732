package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/atomicfile"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// auditForward is `audit forward set|show|off` (docs/audit.md).
func (c *cli) auditForward(ctx context.Context, args []string) error {
	return c.dispatch(ctx, "audit forward", "audit forward: set, show or off?", args, subcommands{
		"set":  c.auditForwardSet,
		"show": c.auditForwardShow,
		"off":  c.auditForwardOff,
	})
}

func (c *cli) auditForwardSet(fs *flag.FlagSet) action {
	addr := fs.String("address", "", "the collector, host:port (RFC 5425's port is 6514)")
	caFile := fs.String("ca", "", "PEM file of the CA that issued the collector's certificate")
	certFile := fs.String("cert", "", "PEM file of this appliance's client certificate, if the collector asks for one")
	keyFile := fs.String("key", "", "PEM file of the client certificate's private key (stored sealed)")
	every := fs.Duration("checkpoint", admin.DefaultCheckpoint, "how often the chain's head is sent")
	var in admin.AuditForwardSettings
	return action{
		check: func([]string) error {
			if *addr == "" || *caFile == "" {
				return usageError{"audit forward set: --address and --ca are required"}
			}
			if (*certFile == "") != (*keyFile == "") {
				return usageError{"audit forward set: --cert and --key go together"}
			}
			ca, err := os.ReadFile(*caFile)
			if err != nil {
				return err
			}
			in = admin.AuditForwardSettings{Address: *addr, CAPEM: string(ca), Checkpoint: *every}
			if *certFile != "" {
				cert, err := os.ReadFile(*certFile)
				if err != nil {
					return err
				}
				key, err := os.ReadFile(*keyFile)
				if err != nil {
					return err
				}
				in.CertPEM, in.Key = string(cert), secrets.Secret(key)
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, _ []string) error {
			if err := svc.SetAuditForward(ctx, in); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "audit forwarding set to %s; the daemon connects within seconds and sends every entry not yet delivered ('clinicgate audit forward show' tells how far it got)\n", in.Address)
			if in.Key != nil {
				fmt.Fprintf(c.out, "the client key is stored sealed in the database; you may delete %s\n", *keyFile)
			}
			return nil
		},
	}
}

func (c *cli) auditForwardShow(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		st, err := svc.AuditForwardStatus(ctx)
		if err != nil {
			return err
		}
		p := func(k, v string) { fmt.Fprintf(c.out, "%-12s %s\n", k+":", v) }
		switch {
		case !st.Configured:
			p("forwarding", "not set up ('clinicgate audit forward set --address HOST:6514 --ca CA.pem')")
		case !st.Enabled:
			p("forwarding", "off (settings kept; 'audit forward set' turns it on again)")
		default:
			p("forwarding", "on")
		}
		if st.Configured {
			p("collector", st.Address+" (TLS)")
			p("ca", st.CASubject)
			if st.ClientCert != "" {
				p("client cert", st.ClientCert)
			}
			p("checkpoints", "every "+st.Checkpoint.String())
		}
		if st.Configured && st.Enabled {
			now := time.Now()
			switch {
			case st.Stale(now):
				p("connection", "unknown: the daemon has not reported (is it running?)")
			case st.Connected:
				p("connection", "connected")
			default:
				p("connection", "not connected: "+st.LastError)
			}
		}
		p("delivered", fmt.Sprintf("up to entry %d of %d%s", st.SentSeq, st.HeadSeq, at(st.SentAt)))
		p("lag", fmt.Sprintf("%d entries", st.Lag))
		if st.CheckpointSeq > 0 || !st.CheckpointAt.IsZero() {
			p("checkpoint", fmt.Sprintf("entry %d%s", st.CheckpointSeq, at(st.CheckpointAt)))
		}
		return nil
	}}
}

// at says when, after a comma ("" for a time never set).
func at(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ", at " + when(t)
}

func (c *cli) auditForwardOff(*flag.FlagSet) action {
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		if err := svc.DisableAuditForward(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "audit forwarding is off; entries written from now on wait in the log until it is set again")
		return nil
	}}
}

// auditExport is `audit export [--out FILE]`: the whole log in the form
// the collector receives, for `audit verify --against` on another day.
func (c *cli) auditExport(fs *flag.FlagSet) action {
	out := fs.String("out", "", "write to FILE (0600) instead of standard output")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		if *out == "" {
			_, err := svc.ExportAudit(ctx, c.out)
			return err
		}
		var b strings.Builder
		n, err := svc.ExportAudit(ctx, &b)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(*out, []byte(b.String()), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(c.errw, "%d entries written to %s; keep it off this machine\n", n, *out)
		return nil
	}}
}

// auditRetention is `audit retention [DURATION]`.
func (c *cli) auditRetention(*flag.FlagSet) action {
	return action{args: -1, what: "at most one retention, such as 6y or 400d",
		check: func(pos []string) error {
			if len(pos) > 1 {
				return usageError{"audit retention: at most one value, such as 6y or 400d"}
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, pos []string) error {
			if len(pos) == 1 {
				if err := svc.SetAuditRetention(ctx, pos[0]); err != nil {
					return err
				}
			}
			r, err := svc.AuditRetention(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "audit entries are kept for %s; older ones are removed by the daemon, with a checkpoint in the log\n", r)
			return nil
		}}
}

// verifyAgainst is `audit verify --against FILE`.
func (c *cli) verifyAgainst(ctx context.Context, svc *admin.Service, file string) error {
	var r io.Reader
	if file == "-" {
		r = c.stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	res, err := svc.VerifyAuditAgainst(ctx, r)
	if err != nil {
		return err
	}
	ag := res.Against
	if res.OK() {
		fmt.Fprintf(c.out, "audit log verified: %d entries, chain unbroken; %d entries agree with %s (%d checkpoints)\n", res.Entries, ag.Compared, file, ag.CopyCheckpoints)
		for _, n := range ag.Notes {
			fmt.Fprintln(c.out, "  note:", n)
		}
		return nil
	}
	fmt.Fprintf(c.out, "AUDIT LOG BROKEN: %d entries read, compared with %s (%d entries, %d checkpoints):\n", res.Entries, file, ag.CopyEntries, ag.CopyCheckpoints)
	for _, p := range append(append([]string(nil), res.Problems...), ag.Problems...) {
		fmt.Fprintln(c.out, "  -", p)
	}
	for _, n := range ag.Notes {
		fmt.Fprintln(c.out, "  note:", n)
	}
	if first := ag.First(); first > 0 {
		return fmt.Errorf("the audit log differs from the copy from entry %d on; keep a copy of the data directory and of %s for investigation", first, file)
	}
	return errors.New("the audit log does not match its copy; keep a copy of the data directory and of the copy for investigation")
}
