package tui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// The Audit pane's jobs beyond reading (issue 14, "every job on screen"):
// x writes a HIPAA review export (the same as 'clinicgate audit hipaa'),
// f sets where the trail is forwarded and how long it is kept (as 'audit
// forward set|off' and 'audit retention'). Certificates for forwarding
// are files on the appliance: uploaded over SFTP into incoming/, or on a
// USB stick, and named here by path.

// AuditJobs is what those forms act through (the admin service).
type AuditJobs interface {
	ParseRange(ctx context.Context, from, to string) (time.Time, time.Time, error)
	ExportHIPAA(ctx context.Context, from, to time.Time, user, dir string) (admin.HIPAAExport, error)
	SetAuditForward(ctx context.Context, in admin.AuditForwardSettings) error
	DisableAuditForward(ctx context.Context) error
	SetAuditRetention(ctx context.Context, text string) error
}

func (m Model) auditJobs() (AuditJobs, bool) {
	j, ok := m.p.Audit.(AuditJobs)
	return j, ok
}

func (m Model) hipaaForm(j AuditJobs) *form {
	now := m.opts.Now()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	last := first.AddDate(0, 1, -1)
	f := newForm("HIPAA review export: the audit of a date range", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			from, to, err := j.ParseRange(ctx, v[0], v[1])
			if err != nil {
				return doneMsg{err: err}
			}
			res, err := j.ExportHIPAA(ctx, from, to, strings.TrimSpace(v[2]), "")
			if err != nil {
				return doneMsg{err: err}
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%d entries, %d users with logins, written (0600):\n\n", res.Entries, res.Users)
			for _, p := range res.Files {
				b.WriteString("  " + p + "\n")
			}
			b.WriteString("\n.csv and .jsonl: every entry with its chain hashes; -proof.txt: the\nchain's verification at export time; -access.txt: one page per user\n(when, where, device, factor, outcome). Fetch them over SFTP from\nexports/ with an admin key (docs/backup.md), or copy them to a USB stick.")
			return doneMsg{text: "HIPAA export written", show: b.String()}
		})
	},
		withValue(field("from", "first day, YYYY-MM-DD (the site's zone)", false, 10), first.Format(time.DateOnly)),
		withValue(field("to", "last day, YYYY-MM-DD (included)", false, 10), last.Format(time.DateOnly)),
		field("user", "only this user (empty: everyone)", false, 64))
	return f
}

func (m Model) forwardForm(j AuditJobs) *form {
	f := newForm("Audit forwarding (syslog over TLS, RFC 5425) and retention", func(v []string) tea.Cmd {
		addr, ca, cert, key, off, keep := strings.TrimSpace(v[0]), strings.TrimSpace(v[1]), strings.TrimSpace(v[2]), strings.TrimSpace(v[3]), strings.TrimSpace(v[4]), strings.TrimSpace(v[5])
		return m.act(func(ctx context.Context) doneMsg {
			var done []string
			switch {
			case off == "off" && addr != "":
				return doneMsg{err: fmt.Errorf("%w: give a collector or turn forwarding off, not both", admin.ErrInvalid)}
			case off == "off":
				if err := j.DisableAuditForward(ctx); err != nil {
					return doneMsg{err: err}
				}
				done = append(done, "forwarding off")
			case off != "":
				return doneMsg{err: fmt.Errorf("%w: type off to stop forwarding, or leave it empty", admin.ErrInvalid)}
			case addr != "":
				in := admin.AuditForwardSettings{Address: addr}
				read := func(label, path string) (string, error) {
					if path == "" {
						return "", nil
					}
					b, err := os.ReadFile(path)
					if err != nil {
						return "", fmt.Errorf("%w: %s: %v (upload it over SFTP into incoming/, or mount a USB stick)", admin.ErrInvalid, label, err)
					}
					return string(b), nil
				}
				var err error
				if in.CAPEM, err = read("CA file", ca); err != nil {
					return doneMsg{err: err}
				}
				if in.CertPEM, err = read("certificate file", cert); err != nil {
					return doneMsg{err: err}
				}
				k, err := read("key file", key)
				if err != nil {
					return doneMsg{err: err}
				}
				if k != "" {
					in.Key = secrets.Secret(k)
				}
				if err := j.SetAuditForward(ctx, in); err != nil {
					return doneMsg{err: err}
				}
				done = append(done, "forwarding to "+addr+" (v shows whether it is connected)")
			}
			if keep != "" {
				if err := j.SetAuditRetention(ctx, keep); err != nil {
					return doneMsg{err: err}
				}
				done = append(done, "entries kept "+keep)
			}
			if len(done) == 0 {
				return doneMsg{text: "audit forwarding: nothing changed"}
			}
			return doneMsg{text: strings.Join(done, "; ")}
		})
	},
		field("collector", "host:port of the syslog/SIEM, e.g. siem.clinic.lan:6514 (empty: unchanged)", false, 255),
		field("CA file", "path of the collector's CA (PEM), e.g. /var/lib/clinicgate/incoming/siem-ca.pem", false, 255),
		field("cert file", "the appliance's client certificate, if the collector asks for one", false, 255),
		field("key file", "its key (stored sealed; the file can then be deleted)", false, 255),
		field("off", "type off to stop forwarding", false, 3),
		field("keep", "how long entries are kept: 6y (HIPAA's period, the default), 400d …", false, 8))
	f.note = []string{"v on this pane shows the forwarding state: connected, last entry, lag."}
	return f
}

// AuditCopier writes and checks whole copies of the log (c on the Audit
// pane: 'audit export' and 'audit verify --against').
type AuditCopier interface {
	WriteAuditCopy(ctx context.Context) (string, int64, error)
	VerifyAuditAgainstFile(ctx context.Context, path string) (admin.AuditCheck, error)
}

func (m Model) auditCopyForm(j AuditCopier) *form {
	return newForm("A whole copy of the log: write one, or check the log against one", func(v []string) tea.Cmd {
		write, against := strings.ToLower(strings.TrimSpace(v[0])), strings.TrimSpace(v[1])
		return m.act(func(ctx context.Context) doneMsg {
			switch {
			case write == "yes" && against == "":
				p, n, err := j.WriteAuditCopy(ctx)
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: fmt.Sprintf("%d entries written to %s (fetch it over SFTP from exports/)", n, p)}
			case write == "" && against != "":
				c, err := j.VerifyAuditAgainstFile(ctx, against)
				if err != nil {
					return doneMsg{err: err}
				}
				var b strings.Builder
				if c.OK() {
					fmt.Fprintf(&b, "The log (%d entries) agrees with the copy %s.\n", c.Entries, against)
				} else {
					fmt.Fprintf(&b, "THE LOG DOES NOT AGREE WITH THE COPY %s:\n", against)
				}
				for _, p := range c.Problems {
					b.WriteString("  " + p + "\n")
				}
				if a := c.Against; a != nil {
					fmt.Fprintf(&b, "\nThe copy holds %d entries and %d checkpoints; %d compared.\n", a.CopyEntries, a.CopyCheckpoints, a.Compared)
					for _, p := range a.Problems {
						b.WriteString("  " + p + "\n")
					}
					for _, n := range a.Notes {
						b.WriteString("  (" + n + ")\n")
					}
				}
				return doneMsg{show: strings.TrimRight(b.String(), "\n")}
			}
			return doneMsg{err: fmt.Errorf("%w: type yes to write a copy, or give a copy's path to check against, one at a time", admin.ErrInvalid)}
		})
	},
		field("write a copy", "yes: the whole log into exports/, as 'audit export' writes it", false, 3),
		field("check against", "a copy's path: the SIEM's file uploaded into incoming/, or on a USB stick", false, 255))
}
