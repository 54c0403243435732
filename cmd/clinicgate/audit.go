package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
)

func (c *cli) audit(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "forward" {
		return c.auditForward(ctx, args[1:]) // auditfwd.go
	}
	return c.dispatch(ctx, "audit", "audit: tail, show, verify, export, hipaa, retention or forward?", args, subcommands{
		"tail":      c.auditTail,
		"show":      c.auditShow,
		"verify":    c.auditVerify,
		"export":    c.auditExport,
		"retention": c.auditRetention,
		"hipaa":     c.auditHIPAA,
	})
}

// auditHIPAA writes a date range's audit for a HIPAA review: CSV, JSON
// lines, the chain proof and the per-user access report.
func (c *cli) auditHIPAA(fs *flag.FlagSet) action {
	from := fs.String("from", "", "first day, YYYY-MM-DD (the site's zone)")
	to := fs.String("to", "", "last day, YYYY-MM-DD (included)")
	userName := fs.String("user", "", "only this user's entries")
	out := fs.String("out", "", "directory to write into (default: exports/ in the data directory, fetched over SFTP)")
	return action{check: func([]string) error {
		if *from == "" || *to == "" {
			return usageError{"audit hipaa: give --from and --to (YYYY-MM-DD)"}
		}
		return nil
	}, run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		f, t, err := svc.ParseRange(ctx, *from, *to)
		if err != nil {
			return err
		}
		res, err := svc.ExportHIPAA(ctx, f, t, *userName, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%d entries, %d users with logins:\n", res.Entries, res.Users)
		for _, p := range res.Files {
			fmt.Fprintln(c.out, "  "+p)
		}
		return nil
	}}
}

func (c *cli) auditTail(fs *flag.FlagSet) action {
	n := fs.Int("n", 20, "tail: how many entries (0: all)")
	follow := fs.Bool("follow", false, "keep printing new entries")
	userName := fs.String("user", "", "only this user's entries")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		rows, err := svc.AuditTail(ctx, *userName, *n)
		if err != nil {
			return err
		}
		var last int64
		for _, r := range rows {
			fmt.Fprintln(c.out, formatAudit(r))
			last = r.Seq
		}
		if len(rows) == 0 {
			if seq, err := svc.LastAuditSeq(ctx); err == nil {
				last = seq
			}
		}
		for *follow {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
			rows, err := svc.AuditSince(ctx, last, *userName)
			if err != nil {
				return err
			}
			for _, r := range rows {
				fmt.Fprintln(c.out, formatAudit(r))
				last = r.Seq
			}
		}
		return nil
	}}
}

func (c *cli) auditShow(*flag.FlagSet) action {
	var seq int64
	return action{args: 1, what: "one entry number (from audit tail)",
		check: func(pos []string) (err error) {
			seq, err = strconv.ParseInt(pos[0], 10, 64)
			if err != nil || seq < 1 {
				return usageError{"audit show: the entry number is a whole number, as audit tail prints it"}
			}
			return nil
		},
		run: func(ctx context.Context, svc *admin.Service, _ []string) error {
			r, err := svc.AuditEntry(ctx, seq)
			if errors.Is(err, admin.ErrNoAuditEntry) {
				return fmt.Errorf("there is no audit entry %d", seq)
			}
			if err != nil {
				return err
			}
			c.showAudit(r)
			return nil
		}}
}

func (c *cli) auditVerify(fs *flag.FlagSet) action {
	against := fs.String("against", "", "also compare with a copy kept off the box: the collector's file or an 'audit export' (- for standard input)")
	return action{run: func(ctx context.Context, svc *admin.Service, _ []string) error {
		if *against != "" {
			return c.verifyAgainst(ctx, svc, *against) // auditfwd.go
		}
		entries, problems, err := svc.VerifyAudit(ctx)
		if err != nil {
			return err
		}
		if len(problems) == 0 {
			fmt.Fprintf(c.out, "audit log verified: %d entries, chain unbroken\n", entries)
			return nil
		}
		fmt.Fprintf(c.out, "AUDIT LOG BROKEN: %d entries read, %d problems:\n", entries, len(problems))
		for _, p := range problems {
			fmt.Fprintln(c.out, "  -", p)
		}
		return errors.New("the audit log has been tampered with or damaged; keep a copy of the data directory for investigation")
	}}
}

// showAudit prints one entry with the story of a decision: each stage of
// the pipeline and what it found.
func (c *cli) showAudit(r admin.AuditRow) {
	p := func(k, v string) {
		if v != "" {
			fmt.Fprintf(c.out, "%-9s %s\n", k+":", v)
		}
	}
	p("entry", strconv.FormatInt(r.Seq, 10))
	p("time", r.At.Local().Format("2006-01-02 15:04:05 MST"))
	p("kind", r.Kind)
	p("outcome", r.Outcome)
	p("reason", r.Reason)
	p("door", r.Door)
	p("client", r.Client)
	p("user", r.User)
	p("device", r.Device)
	p("from", r.Source)
	p("by", r.Actor)
	if d, err := audit.ParseDecisionDetail(r.Detail); r.Kind == audit.KindDecision && err == nil {
		p("nas", d.NAS)
		if d.VLAN > 0 {
			p("vlan", strconv.Itoa(d.VLAN))
		}
		p("notes", strings.Join(d.Notes, ", "))
		fmt.Fprintln(c.out, "steps:")
		for i, s := range d.Steps {
			fmt.Fprintf(c.out, "  %d. %-10s %s\n", i+1, s.Stage, s.Result)
		}
		return
	}
	p("detail", r.Detail)
}

func formatAudit(r admin.AuditRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d %s %-8s", r.Seq, r.At.Local().Format("2006-01-02 15:04:05"), r.Kind)
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, strconv.Quote(v))
		}
	}
	if r.Kind == audit.KindDecision {
		fmt.Fprintf(&b, " %-9s %-18s", r.Outcome, r.Reason)
	} else {
		add("what", r.Reason)
	}
	add("door", r.Door)
	add("client", r.Client)
	add("user", r.User)
	add("device", r.Device)
	add("from", r.Source)
	add("by", r.Actor)
	if r.Kind != audit.KindDecision {
		add("detail", r.Detail)
	}
	return b.String()
}
