package admin

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The HIPAA review export (issue 14): the audit for a date range as CSV
// and as JSON lines, each entry with its chain hashes; a proof of the
// range's place in the chain; and a one-page access report per user (who
// logged in where, when, with which factor and device) an auditor reads
// without tools. Written into ExportsDir, fetched over SFTP or from the
// console's USB stick; each export is itself audited.

// ExportsDir is where exports are written in the data directory.
const ExportsDir = "exports"

// HIPAAExport is what ExportHIPAA wrote.
type HIPAAExport struct {
	Files   []string // paths
	Entries int
	Users   int
}

// hipaaColumns are the CSV's columns (the JSON lines' keys).
var hipaaColumns = []string{"seq", "time", "kind", "door", "client", "user", "device", "source", "outcome", "reason", "actor", "detail", "prev_hash", "hash"}

func hipaaRecord(r store.AuditRow) []string {
	return []string{strconv.FormatInt(r.Seq, 10), r.At.UTC().Format(time.RFC3339Nano), r.Kind, r.Door, r.Client, r.User, r.Device, r.Source,
		r.Outcome, r.Reason, r.Actor, r.Detail, hex.EncodeToString(r.PrevHash), hex.EncodeToString(r.Hash)}
}

// ExportHIPAA writes the audit of [from, to) (of one user when user is
// not empty) into dir (ExportsDir in the data directory when empty):
// NAME.csv, NAME.jsonl, NAME-proof.txt and NAME-access.txt.
func (s *Service) ExportHIPAA(ctx context.Context, from, to time.Time, user, dir string) (HIPAAExport, error) {
	if !to.After(from) {
		return HIPAAExport{}, invalid("the range ends before it starts")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return HIPAAExport{}, invalid("export at most about a year at a time")
	}
	if dir == "" {
		dir = filepath.Join(s.Store.Dir(), ExportsDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return HIPAAExport{}, err
	}
	name := "audit-" + from.Format("20060102") + "-" + to.Add(-time.Second).Format("20060102")
	if user != "" {
		name += "-" + strings.Map(func(r rune) rune {
			if r == '/' || r == '\\' || r == '.' || r < ' ' {
				return '_'
			}
			return r
		}, user)
	}
	var csvB, jsonB strings.Builder
	cw := csv.NewWriter(&csvB)
	_ = cw.Write(hipaaColumns)
	acc := newAccessReport()
	var first, last store.AuditRow
	n := 0
	broken := []string{}
	err := s.Store.EachAuditBetween(ctx, from, to, user, func(r store.AuditRow) error {
		if n == 0 {
			first = r
		} else if user == "" && r.Seq == last.Seq+1 && hex.EncodeToString(r.PrevHash) != hex.EncodeToString(last.Hash) {
			broken = append(broken, strconv.FormatInt(r.Seq, 10))
		}
		last = r
		n++
		rec := hipaaRecord(r)
		_ = cw.Write(rec)
		m := make(map[string]string, len(rec))
		for i, c := range hipaaColumns {
			m[c] = rec[i]
		}
		b, _ := json.Marshal(m)
		jsonB.Write(append(b, '\n'))
		acc.add(r)
		return nil
	})
	if err != nil {
		return HIPAAExport{}, err
	}
	cw.Flush()
	rep, err := s.Verify(ctx)
	if err != nil {
		return HIPAAExport{}, err
	}
	proof := s.hipaaProof(from, to, user, n, first, last, rep, broken)
	out := HIPAAExport{Entries: n, Users: len(acc.users)}
	for _, f := range []struct{ suffix, body string }{
		{".csv", csvB.String()}, {".jsonl", jsonB.String()}, {"-proof.txt", proof}, {"-access.txt", acc.render(from, to, s.Now())},
	} {
		p := filepath.Join(dir, name+f.suffix)
		if err := atomicfile.Write(p, []byte(f.body), 0o600); err != nil {
			return out, err
		}
		out.Files = append(out.Files, p)
	}
	who := "every user"
	if user != "" {
		who = user
	}
	err = s.change(ctx, audit.Entry{Reason: "audit_export", Detail: fmt.Sprintf("HIPAA export of %s, %s to %s: %d entries into %s", who, from.Format(time.DateOnly), to.Format(time.DateOnly), n, dir)}, func(*store.Tx) error { return nil })
	return out, err
}

// Verify is the whole chain's verification (the export's proof states it).
func (s *Service) Verify(ctx context.Context) (audit.Report, error) {
	if s.Audit == nil {
		return audit.Report{}, errors.New("no audit log")
	}
	return s.Audit.Verify(ctx)
}

func (s *Service) hipaaProof(from, to time.Time, user string, n int, first, last store.AuditRow, rep audit.Report, broken []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "clinicgate audit export: chain proof\n\nrange     %s to %s (UTC, end excluded)\n", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	if user != "" {
		fmt.Fprintf(&b, "user      %s (only this user's entries: the chain is proved by the whole log, below)\n", user)
	}
	fmt.Fprintf(&b, "entries   %d\nexported  %s by %s\n\n", n, s.Now().UTC().Format(time.RFC3339), s.Actor)
	if n > 0 {
		fmt.Fprintf(&b, "first     seq %d, prev_hash %x\nlast      seq %d, hash %x\n\n", first.Seq, first.PrevHash, last.Seq, last.Hash)
	}
	if rep.OK() {
		fmt.Fprintf(&b, "The appliance verified its whole audit chain at export time: unbroken.\n")
	} else {
		fmt.Fprintf(&b, "THE APPLIANCE'S AUDIT CHAIN DID NOT VERIFY AT EXPORT TIME:\n")
		for _, p := range rep.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	if len(broken) > 0 {
		fmt.Fprintf(&b, "Within this range, entries whose prev_hash is not the previous entry's hash: %s\n", strings.Join(broken, ", "))
	}
	b.WriteString(`
How to check it: each entry's prev_hash is the hash of the entry before
it, and each hash is an HMAC-SHA256 under the appliance's audit key over
the entry and its prev_hash (docs/audit.md). The hashes can be recomputed
only on the appliance: 'clinicgate audit verify' there re-checks the whole
chain, and a copy forwarded to the clinic's syslog or SIEM
('clinicgate audit verify --against FILE') shows that nothing was changed
since it left the box.
`)
	return b.String()
}

// accessReport is the per-user page: each login decision, where, when,
// with which factor and device.
type accessReport struct {
	users map[string][]accessLine
}

type accessLine struct {
	at                                    time.Time
	door, client, source, device, outcome string
	reason, factor                        string
}

func newAccessReport() *accessReport { return &accessReport{users: map[string][]accessLine{}} }

func (a *accessReport) add(r store.AuditRow) {
	if r.Kind != audit.KindDecision || r.User == "" {
		return
	}
	l := accessLine{at: r.At, door: r.Door, client: r.Client, source: r.Source, device: r.Device, outcome: r.Outcome, reason: r.Reason, factor: "password"}
	if d, err := audit.ParseDecisionDetail(r.Detail); err == nil {
		l.factor = factorOf(d.Steps)
	}
	if len(a.users[r.User]) < 10000 { // a page per user, not a dump
		a.users[r.User] = append(a.users[r.User], l)
	}
}

// factorOf reads which factors a decision's story shows (the gate's step
// texts, appliance/stages.go and push.go).
func factorOf(steps []audit.Step) string {
	factor, provider := "password", "push"
	for _, st := range steps {
		res := st.Result
		switch st.Stage {
		case "push":
			if p, ok := strings.CutPrefix(res, "sent by "); ok {
				provider, _, _ = strings.Cut(p, " ")
			}
			if strings.HasPrefix(res, "approved") {
				factor = "password + " + provider + " push"
			}
		case "mfa":
			switch {
			case res == "code accepted":
				factor = "password + TOTP code"
			case strings.HasSuffix(res, "accepted the passcode"):
				factor = "password + " + strings.TrimSuffix(res, " accepted the passcode") + " passcode"
			case strings.HasPrefix(res, "a code was verified for this user"):
				factor = "password + remembered code"
			case strings.HasPrefix(res, "the client certificate's private key"):
				factor = "certificate"
			}
		}
	}
	return factor
}

func (a *accessReport) render(from, to, now time.Time) string {
	var b strings.Builder
	names := make([]string, 0, len(a.users))
	for u := range a.users {
		names = append(names, u)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "Access report, %s to %s (UTC), made %s\n", from.UTC().Format(time.DateOnly), to.Add(-time.Second).UTC().Format(time.DateOnly), now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Every login decision for each user: when, through which door and client, from where, on which device, with which factor, and the outcome.\n")
	if len(names) == 0 {
		b.WriteString("\n(no login decisions in this range)\n")
	}
	for _, u := range names {
		ls := a.users[u]
		acc, rej := 0, 0
		for _, l := range ls {
			if l.outcome == "accept" {
				acc++
			} else if l.outcome == "reject" {
				rej++
			}
		}
		fmt.Fprintf(&b, "\n== %s: %d accepted, %d refused ==\n", u, acc, rej)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME (UTC)\tDOOR\tCLIENT\tFROM\tDEVICE\tFACTOR\tOUTCOME")
		for _, l := range ls {
			out := l.outcome
			if l.outcome != "accept" {
				out += " (" + l.reason + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.at.UTC().Format("2006-01-02 15:04"), l.door, dashIfEmpty(l.client), dashIfEmpty(l.source), dashIfEmpty(l.device), l.factor, out)
		}
		_ = tw.Flush()
	}
	return b.String()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ParseRange reads a HIPAA export's dates (YYYY-MM-DD, both included) in
// the site's zone: from the start of the first day to the end of the last.
func (s *Service) ParseRange(ctx context.Context, from, to string) (time.Time, time.Time, error) {
	loc, err := s.SiteZone(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	f, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(from), loc)
	if err != nil {
		return time.Time{}, time.Time{}, invalid("from %q: give a date, 2026-11-01", from)
	}
	t, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(to), loc)
	if err != nil {
		return time.Time{}, time.Time{}, invalid("to %q: give a date, 2026-11-30", to)
	}
	return f, t.AddDate(0, 0, 1), nil
}

// WriteAuditCopy writes the whole log in the forwarded copy's form (what
// 'audit export' writes) into ExportsDir, for the clinic's SIEM or a
// later 'audit verify --against'; it returns the file and the entries.
func (s *Service) WriteAuditCopy(ctx context.Context) (string, int64, error) {
	dir := filepath.Join(s.Store.Dir(), ExportsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, err
	}
	var b strings.Builder
	n, err := s.ExportAudit(ctx, &b)
	if err != nil {
		return "", 0, err
	}
	p := filepath.Join(dir, "audit-copy-"+s.Now().UTC().Format("20060102-150405")+".log")
	return p, n, atomicfile.Write(p, []byte(b.String()), 0o600)
}

// VerifyAuditAgainstFile is VerifyAuditAgainst with a file on the
// appliance (uploaded over SFTP into incoming/, or on a USB stick).
func (s *Service) VerifyAuditAgainstFile(ctx context.Context, path string) (AuditCheck, error) {
	f, err := os.Open(path)
	if err != nil {
		return AuditCheck{}, invalid("%v", err)
	}
	defer f.Close()
	return s.VerifyAuditAgainst(ctx, f)
}
