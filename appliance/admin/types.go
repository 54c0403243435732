package admin

import (
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/posture"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The records the admin operations list, under the admin service's names:
// the console and the command line read them from here and never import
// the store. They are the store's own record types (aliases, not copies),
// so a field added there is here at once.
type (
	AuditRow    = store.AuditRow
	User        = store.User
	Client      = store.Client
	Upstream    = store.Upstream
	Device      = store.Device
	BindAccount = store.BindAccount
	Compliance  = store.Compliance
	Revocation  = store.Revocation
	// UserCert is a certificate registered to a user ('cert register').
	UserCert    = store.UserCert
	AcctSession = store.AcctSession
	AdminKey    = store.AdminKey
	// DirStats is what a directory sync did.
	DirStats = store.DirStats
	// SCEPPending is a SCEP challenge still usable ('scep challenges').
	SCEPPending = store.SCEPChallenge
	DeviceCert  = store.DeviceCert
	// PostureEvent is a change that ended or moved sessions (CoA).
	PostureEvent = store.PostureEvent
	// The MDM connectors' settings, for MDMConfig.
	IntuneSettings = posture.IntuneSettings
	JamfSettings   = posture.JamfSettings
	GoogleSettings = posture.GoogleSettings
	// The push MFA providers' settings, for MFAProviderConfig.
	DuoSettings  = mfa.DuoSettings
	OktaSettings = mfa.OktaSettings
)

// The compliance states and device sources, for the console.
const (
	Compliant    = store.Compliant
	Noncompliant = store.Noncompliant
	Stale        = store.Stale
	SourceManual = store.SourceManual
	// AcctActive is an accounting session still open.
	AcctActive = store.AcctActive
)

// Errors an operation can end with that the operator should read as more
// than a failure.
var (
	// ErrConflict: someone else changed the record meanwhile (the version
	// given no longer matches), or a name or address is taken.
	ErrConflict = store.ErrConflict
	// ErrBusy: another writer held the database past the busy timeout.
	ErrBusy = store.ErrBusy
)
