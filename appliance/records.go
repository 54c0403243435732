package appliance

import (
	"context"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// The records a door handles, named here so that the doors reach the
// store only through the gate: a door imports appliance, never
// appliance/store (imports_test.go checks it).
type (
	// Client is a RADIUS NAS or an LDAP client, with its policy.
	Client = store.Client
	// AcctSession is one accounting session as a NAS reports it.
	AcctSession = store.AcctSession
	// AcctStatus says whether a session is still open.
	AcctStatus = store.AcctStatus
)

// Accounting session states.
const (
	AcctActive  = store.AcctActive
	AcctStopped = store.AcctStopped
)

// UpsertAcct stores what a NAS reported about a session (Start,
// Interim-Update or Stop). Accounting decides nothing, so it is no stage
// of the pipeline; it is here so that the RADIUS door needs no store.
func (g *Gate) UpsertAcct(ctx context.Context, a AcctSession) error {
	return g.store.UpsertAcct(ctx, a)
}

// StopAllAcct closes every open session of a client, for a NAS that
// reports Accounting-On or -Off (it restarted: its sessions are gone).
func (g *Gate) StopAllAcct(ctx context.Context, client string, at time.Time, cause string) error {
	return g.store.StopAllAcct(ctx, client, at, cause)
}
