package tui

import (
	"context"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/hostcfg"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// Each pane talks to the appliance through a small interface of its own,
// declared here where it is used: a test drives a pane with a fake that
// stubs only that pane's operations. The changes are validated and
// audited by the admin service exactly as from the command line.

// AuditAdmin is what the dashboard and the audit pane read.
type AuditAdmin interface {
	// AuditAfter returns up to limit entries after seq, oldest first.
	AuditAfter(ctx context.Context, seq int64, limit int) ([]admin.AuditRow, error)
	// VerifyAudit checks the audit chain: the number of entries and the
	// problems found (none: unbroken).
	VerifyAudit(ctx context.Context) (int64, []string, error)
	// Status is the daemon's last report about itself.
	Status(ctx context.Context) (admin.DaemonStatus, bool, error)
}

// UserAdmin is what the Users pane lists and changes.
type UserAdmin interface {
	Users(ctx context.Context) ([]admin.User, error)
	AddUser(ctx context.Context, n admin.NewUser) error
	EditUser(ctx context.Context, name string, e admin.UserEdit) error
	EnrollTOTP(ctx context.Context, name string) (admin.Enrolment, error)
	// ShowTOTP shows an enrolment again until its first code is used.
	ShowTOTP(ctx context.Context, name string) (admin.Enrolment, error)
	ResetMFA(ctx context.Context, name string) error
	AddDevice(ctx context.Context, mac, user, description string) (string, error)
	DeleteUser(ctx context.Context, name string) error
}

// ClientAdmin is what the Clients pane lists and changes.
type ClientAdmin interface {
	Clients(ctx context.Context) ([]admin.Client, error)
	AddClient(ctx context.Context, n admin.NewClient) (secrets.Secret, error)
	EditClient(ctx context.Context, name string, e admin.ClientEdit) error
	RemoveClient(ctx context.Context, name string) error
}

// LoginTester sends a test login through the running daemon (the Clients
// pane, and the wizard's last step).
type LoginTester interface {
	TestLogin(ctx context.Context, t admin.LoginTest) (admin.LoginResult, error)
}

// UpstreamAdmin is what the Upstreams pane lists, changes and checks.
type UpstreamAdmin interface {
	Upstreams(ctx context.Context) ([]admin.Upstream, error)
	AddUpstream(ctx context.Context, n admin.NewUpstream) ([]string, error)
	EditUpstream(ctx context.Context, name string, e admin.UpstreamEdit) ([]string, error)
	RemoveUpstream(ctx context.Context, name string) error
	SetSyncToken(ctx context.Context, name string, token secrets.Secret) error
	TestUpstream(ctx context.Context, name, user string, pw secrets.Secret) (admin.UpstreamCheck, error)
	// The push MFA providers (m on the Upstreams pane).
	MFAProviders(ctx context.Context) ([]admin.MFAProviderStatus, error)
	SetMFAProvider(ctx context.Context, c admin.MFAProviderConfig) error
	RemoveMFAProvider(ctx context.Context, name string) error
}

// DeviceAdmin is what the Devices pane lists and removes (devices are
// bound on the Users pane).
type DeviceAdmin interface {
	Devices(ctx context.Context) ([]admin.Device, error)
	RemoveDevice(ctx context.Context, mac string) error
	OverrideDevice(ctx context.Context, id int64, state admin.Compliance, d time.Duration, reason string) error
	PostureEvents(ctx context.Context, n int) ([]admin.PostureEvent, error)
	// The MDMs the inventory is synced from (docs/mdm.md).
	MDMSources(ctx context.Context) ([]admin.MDMStatus, error)
	SetMDM(ctx context.Context, c admin.MDMConfig) error
	SyncMDM(ctx context.Context, name string, wait time.Duration) (admin.MDMSyncOutcome, error)
	// Device certificates from the appliance's CA over SCEP (docs/scep.md).
	CreateSCEPChallenge(ctx context.Context, r admin.SCEPChallengeRequest) (admin.SCEPChallenge, error)
	RevokeCert(ctx context.Context, fingerprintOrSerial, reason string) (admin.Revocation, error)
}

// LDAPAdmin is what the LDAP pane shows and changes: the bind accounts an
// EHR searches with, and the site's ldap_ settings (as stored, or their
// defaults), checked against the upstreams proxy mode may use.
type LDAPAdmin interface {
	BindAccounts(ctx context.Context) ([]admin.BindAccount, error)
	AddBindAccount(ctx context.Context, n admin.NewBindAccount) (secrets.Secret, error)
	RemoveBindAccount(ctx context.Context, name string) error
	LDAPSettings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, key, value string) error
	Upstreams(ctx context.Context) ([]admin.Upstream, error)
}

// WizardAdmin is what the first-boot wizard needs beyond the panes whose
// forms it reuses (upstreams, clients, users, the test login).
type WizardAdmin interface {
	// Fresh reports an appliance with no users and no clients yet (the
	// wizard starts then).
	Fresh(ctx context.Context) (bool, error)
	SetSetting(ctx context.Context, key, value string) error
	// SiteSettings are the settings the Dashboard's form edits after the
	// wizard (time zone, lockout, …), as stored or their defaults.
	SiteSettings(ctx context.Context) (map[string]string, error)
	// AcctSessions are the RADIUS accounting sessions (o: who is online).
	AcctSessions(ctx context.Context, active bool, n int) ([]admin.AcctSession, error)
	AddAdminKey(ctx context.Context, name, line string) (string, error)
	// AdminKeys and RemoveAdminKey manage the SSH admin keys after the
	// wizard (k on the Dashboard).
	AdminKeys(ctx context.Context) ([]admin.AdminKey, error)
	RemoveAdminKey(ctx context.Context, name string) error
	// The appliance's own system (n and p on the Dashboard).
	SystemNow(ctx context.Context) admin.SystemState
	RequestSystemChange(ctx context.Context, r hostcfg.Request) (admin.SystemChange, error)
	SystemResult(ctx context.Context, id string, wait time.Duration) (hostcfg.Result, error)
	IncomingPackages(ctx context.Context) []string
}

// Admin is every pane's interface at once: what the admin service
// provides, and what New takes.
type Admin interface {
	AuditAdmin
	UserAdmin
	ClientAdmin
	LoginTester
	UpstreamAdmin
	DeviceAdmin
	LDAPAdmin
	WizardAdmin
}

// Panes holds what each pane acts through. A nil one leaves its pane
// empty (tests open only the panes they drive); the wizard runs only with
// all of Wizard, Users, Clients, Upstreams and Logins.
type Panes struct {
	Audit     AuditAdmin // the dashboard and the audit pane
	Users     UserAdmin
	Clients   ClientAdmin
	Logins    LoginTester
	Upstreams UpstreamAdmin
	Devices   DeviceAdmin
	LDAP      LDAPAdmin
	Wizard    WizardAdmin
	// Backup is the Backups screen's (backup.go); nil: no such screen.
	Backup BackupAdmin
}

// AllPanes has a acting for every pane.
func AllPanes(a Admin) Panes {
	p := Panes{Audit: a, Users: a, Clients: a, Logins: a, Upstreams: a, Devices: a, LDAP: a, Wizard: a}
	p.Backup, _ = a.(BackupAdmin)
	return p
}

// available reports whether pane t has what it acts through.
func (p Panes) available(t tab) bool {
	switch t {
	case tabDashboard, tabAudit, tabWiFi:
		return p.Audit != nil
	case tabUsers:
		return p.Users != nil
	case tabClients:
		return p.Clients != nil
	case tabUpstreams:
		return p.Upstreams != nil
	case tabDevices:
		return p.Devices != nil
	case tabLDAP:
		return p.LDAP != nil
	}
	return false
}

// wizard reports whether the first-boot wizard can run.
func (p Panes) wizard() bool {
	return p.Wizard != nil && p.Users != nil && p.Clients != nil && p.Upstreams != nil && p.Logins != nil
}
