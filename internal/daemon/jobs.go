package daemon

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/clinicgate/clinicgate/appliance/dirsync"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// job is work the daemon repeats in the background.
type job struct {
	every time.Duration
	run   func(context.Context)
}

// loop runs the job at once and then every interval until ctx ends. A run
// in progress finishes first: runs never overlap.
func (j job) loop(ctx context.Context) {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		j.run(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// jobs are the daemon's background work.
func (d *Daemon) jobs() ([]job, error) {
	statusSvc, err := d.Admin("daemon")
	if err != nil {
		return nil, err
	}
	js := []job{
		// Directory sync (Graph, Okta) for upstreams that have it, checked
		// against each one's interval.
		{every: time.Minute, run: func(ctx context.Context) {
			dirsync.Due(ctx, d.store, d.audit, time.Now, func(up string, stats store.DirStats, err error) {
				if err != nil {
					d.log.Warn("directory sync failed", "upstream", up, "err", err)
					return
				}
				d.log.Info("directory sync", "upstream", up, "users", stats.Users, "groups", stats.Groups, "created", stats.Created, "updated", stats.Updated, "disabled", stats.Disabled, "skipped", len(stats.Conflicts))
			})
		}},
		// The daemon's status, for the console: where it listens, since
		// when, and its upstreams' health.
		{every: 5 * time.Second, run: d.status(statusSvc, time.Now())},
		// Upstreams that can be checked without a login are checked in the
		// background, so the console and metrics show an outage before the
		// first nurse meets it.
		{every: 30 * time.Second, run: d.upstreams.ProbeAll},
		// Posture events end or move sessions at their NAS (RFC 5176,
		// internal/daemon/coa.go).
		{every: time.Second, run: newCoAWorker(d.store, d.audit, d.log).run},
		// The appliance's own server certificates are renewed a month
		// before their end, or when this host's addresses change
		// (servercert.go).
		{every: 24 * time.Hour, run: d.renewOwnCerts},
		// The clock, against an NTP server: TOTP fails when it is off
		// (clock.go).
		{every: clockEvery, run: d.clockJob},
		// Audit retention (issue 15): entries older than the setting go.
		d.retentionJob(),
		// New off-box replication settings are applied by a restart
		// (replica.go).
		// So does a restore chosen in the console's wizard.
		{every: 3 * time.Second, run: d.watchReplica(statusSvc)},
	}
	// MDM device syncs (Intune, Jamf, Google): one long-running job.
	mj, err := d.mdmJob()
	if err != nil {
		return nil, err
	}
	js = append(js, mj)
	if every := watchdogInterval(); every > 0 {
		js = append(js, job{every: every, run: func(ctx context.Context) {
			// A daemon whose store hangs is restarted instead of
			// answering nothing forever.
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if d.store.Ping(cctx) == nil {
				sdNotify("WATCHDOG=1")
			}
		}})
	}
	return js, nil
}

// watchdogInterval is half systemd's WatchdogSec, or 0 outside a unit
// with a watchdog.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
