package daemon

import (
	"context"
	"time"

	"github.com/clinicgate/clinicgate/appliance/posture"
)

// mdmJob runs the MDM syncer (appliance/posture) for the daemon's
// lifetime: it reads the configured sources from the store each second,
// so `clinicgate mdm set` and `mdm sync` take effect without a restart,
// and its syncs in progress end before the store closes.
func (d *Daemon) mdmJob() (job, error) {
	s, err := posture.NewSyncer(d.store, d.audit, d.log)
	if err != nil {
		return job{}, err
	}
	return job{every: time.Second, run: func(ctx context.Context) { _ = s.Run(ctx) }}, nil
}
