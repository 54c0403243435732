package admin

import (
	"context"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// MaxPostureEvents bounds a listing of posture events.
const MaxPostureEvents = 500

// PostureEvents lists the newest posture events (a device turned
// noncompliant, a certificate revoked, a user disabled), newest first,
// with what the daemon's CoA worker did about each: Result says which NAS
// was asked to end or move which session and what it answered; an event
// not yet handled has a zero DoneAt (docs/coa.md).
func (s *Service) PostureEvents(ctx context.Context, limit int) ([]store.PostureEvent, error) {
	if limit <= 0 || limit > MaxPostureEvents {
		limit = MaxPostureEvents
	}
	return s.Store.RecentPostureEvents(ctx, limit)
}
