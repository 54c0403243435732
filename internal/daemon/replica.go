package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/backup"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// ErrRestart is returned by Run when the daemon stopped to start again
// (new replication settings): the caller opens a new Daemon.
var ErrRestart = errors.New("daemon: restarting to apply new settings")

// startReplica starts the off-box replication when it is set. Litestream
// holds its own connection and descriptor on the database for as long as
// the store is open (appliance/replica), so new settings are applied by a
// restart, never by stopping it under the store.
func (d *Daemon) startReplica(ctx context.Context) error {
	svc, err := d.Admin("daemon")
	if err != nil {
		return err
	}
	cfg, version, ok, err := svc.ReplicaConfig(ctx)
	d.replicaVersion = version
	if err != nil {
		// A broken setting must not keep RADIUS down: say so, run
		// without replication, and show it on the console.
		d.log.Error("off-box replication not started", "err", err)
		d.replicaErr = err.Error()
		return nil
	}
	if !ok {
		return nil
	}
	r, err := replica.Start(ctx, filepath.Join(d.store.Dir(), store.DBFile), cfg, d.log)
	if err != nil {
		d.log.Error("off-box replication not started", "target", cfg.Target.String(), "err", err)
		d.replicaErr = err.Error()
		return nil
	}
	d.replica = r
	d.log.Info("off-box replication started", "target", cfg.Target.String())
	return nil
}

// watchReplica restarts the daemon when the replication settings change.
func (d *Daemon) watchReplica(svc *admin.Service) func(context.Context) {
	return func(ctx context.Context) {
		_, version, _, err := svc.ReplicaConfig(ctx)
		if err != nil && ctx.Err() != nil {
			return
		}
		switch {
		case version != d.replicaVersion:
			d.log.Info("the off-box replication settings changed: restarting to apply them")
			d.requestRestart()
		case backup.Pending(d.store.Dir()):
			d.log.Info("a checked backup waits to be restored: restarting to put it in place")
			d.requestRestart()
		}
	}
}

// replicaStatus is the replication's state for the console (nil: off).
func (d *Daemon) replicaStatus() *replica.Status {
	switch {
	case d.replica != nil:
		st := d.replica.Status(time.Now())
		return &st
	case d.replicaErr != "":
		return &replica.Status{LastError: d.replicaErr, ErrorAt: time.Now()}
	}
	return nil
}

// installPendingRestore puts in place a restore the console's wizard
// checked and staged (admin.StageRestore), before the store opens.
func (d *Daemon) installPendingRestore(ctx context.Context) error {
	done, err := backup.InstallPending(ctx, d.cfg.DataDir, backup.RestoreOptions{Actor: "daemon"})
	if err != nil {
		return fmt.Errorf("restoring the backup chosen in the console: %w (it stays in %s)", err, filepath.Join(d.cfg.DataDir, backup.PendingDir))
	}
	if done {
		d.log.Warn("restored the backup chosen in the console; the store it replaced is kept in a replaced-TIME directory", "data", d.cfg.DataDir)
	}
	return nil
}

// requestRestart stops Run, which then returns ErrRestart.
func (d *Daemon) requestRestart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.restart = true
	if d.stopRun != nil {
		d.stopRun()
	}
}

// closeReplica stops replicating, after the store is closed.
func (d *Daemon) closeReplica() error {
	if d.replica == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := d.replica.Close(ctx)
	d.replica = nil
	return err
}
