package admin

import (
	"context"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// AcctSessions lists up to n RADIUS accounting sessions, newest first;
// with active set, only those still open.
func (s *Service) AcctSessions(ctx context.Context, active bool, n int) ([]store.AcctSession, error) {
	return s.Store.AcctSessions(ctx, active, n)
}
