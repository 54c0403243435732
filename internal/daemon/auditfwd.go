package daemon

import (
	"context"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/auditfwd"
)

// checkAuditHead runs at start (issue 16): it writes the audit head file
// on an appliance upgraded from a version without it, and reports at once
// a database that is behind the file (put back from an older copy) or a
// file altered outside clinicgate, in the log and as a system entry, which
// the forwarder then carries off the box.
func (d *Daemon) checkAuditHead(ctx context.Context) error {
	d.audit.OnAnchorError(func(err error) {
		d.log.Error("the audit head file could not be written; entries are safe in the database, but a rollback after this point is caught only by the off-box copy", "file", audit.AnchorFile, "err", err)
	})
	created, err := d.audit.EnsureAnchor(ctx)
	if err != nil {
		return err
	}
	if created {
		// Said only on an upgrade: a new data directory starts with it.
		if seq, _, err := d.store.AuditHead(ctx); err == nil && seq > 0 {
			d.log.Info("the audit log's head is now also kept outside the database", "file", audit.AnchorFile)
		}
	}
	problems, err := d.audit.CheckHead(ctx)
	if err != nil {
		return err
	}
	for _, p := range problems {
		d.log.Error("AUDIT LOG: "+p+"; run 'clinicgate audit verify --against' with the collector's copy", "file", audit.AnchorFile)
		if _, err := d.audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "audit_rollback", Actor: "daemon", Outcome: "detected", Detail: p}); err != nil {
			return err
		}
	}
	// A record torn by a power cut hides nothing (the database is beyond
	// the other record); the entry that names it also rewrites it.
	torn, err := d.audit.TornHead(ctx)
	if err != nil {
		return err
	}
	if torn != "" {
		d.log.Warn("audit head file: "+torn+"; rewriting it", "file", audit.AnchorFile)
		if _, err := d.audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "audit_head_repaired", Actor: "daemon", Outcome: "changed", Detail: torn}); err != nil {
			return err
		}
	}
	return nil
}

// auditForwarder sends the audit off the box for the daemon's lifetime
// (appliance/auditfwd). It runs on its own context, which the daemon ends
// only after the stop entry is written, so that entry and the last
// checkpoint reach the collector too.
func (d *Daemon) auditForwarder() (*auditfwd.Forwarder, error) {
	return auditfwd.New(d.audit, d.log)
}

// retentionJob removes audit entries older than the retention, in
// batches of bounded size (each its own short transaction, so logins
// queue behind none of them for long), up to a bounded amount per run.
func (d *Daemon) retentionJob() job {
	return job{every: time.Hour, run: func(ctx context.Context) {
		total := 0
		for range 200 {
			p, err := d.audit.Prune(ctx, time.Now(), 500)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("audit retention: could not remove old entries", "err", err)
				}
				return
			}
			if p.Entries == 0 {
				break
			}
			total += p.Entries
			if total > 0 && p.Entries < 500 {
				break
			}
		}
		if total > 0 {
			d.log.Info("audit retention: old entries removed", "entries", total)
		}
	}}
}
