package admin

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// DaemonStatus is what the running daemon last reported about itself. The
// daemon writes it every few seconds, so the console (a separate process,
// or an SSH session) can show whether it runs, where it listens and how
// its upstreams are.
type DaemonStatus struct {
	Version   string           `json:"version"`
	StartedAt time.Time        `json:"started_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	Listeners []string         `json:"listeners"`
	Upstreams []UpstreamStatus `json:"upstreams,omitempty"`
}

// UpstreamStatus is one upstream's health as the daemon sees it.
type UpstreamStatus struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
}

const statusKey = "daemon.status"

// ReportStatus records the daemon's status (called by the daemon).
func (s *Service) ReportStatus(ctx context.Context, st DaemonStatus) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.Store.WithTx(ctx, func(tx *store.Tx) error { return tx.SetSetting(ctx, statusKey, string(b)) })
}

// Status returns the daemon's last report; ok is false if it never
// reported.
func (s *Service) Status(ctx context.Context) (DaemonStatus, bool, error) {
	v, err := s.Store.Setting(ctx, statusKey)
	if errors.Is(err, store.ErrNotFound) {
		return DaemonStatus{}, false, nil
	}
	if err != nil {
		return DaemonStatus{}, false, err
	}
	var st DaemonStatus
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return DaemonStatus{}, false, nil
	}
	return st, true, nil
}
