package admin

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/replica"
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
	Listeners []Listener       `json:"listeners"`
	Upstreams []UpstreamStatus `json:"upstreams,omitempty"`
	// EAP is the 802.1X server's certificate, when the RADIUS door runs
	// one: what every Wi-Fi device must be told to trust.
	EAP *EAPStatus `json:"eap,omitempty"`
	// LDAPCert is the LDAP door's certificate when it is the appliance's
	// own (nil: the clinic's own, set in the config file, or no LDAP).
	LDAPCert *CertStatus `json:"ldap_cert,omitempty"`
	// Clock is the last clock check (nil: not yet).
	Clock *ClockStatus `json:"clock,omitempty"`
	// Drops counts the RADIUS requests dropped without an answer, by
	// cause, the latest first: a wrong shared secret or a NAS that is no
	// client shows nowhere else on screen.
	Drops []RADIUSDrop `json:"radius_drops,omitempty"`
	// Throttled are the sources the smart lockout is slowing down or
	// refusing (appliance/throttle.go), the latest first: the daemon
	// keeps them in memory only, so the console learns them from here.
	Throttled []appliance.Throttled `json:"throttled,omitempty"`
	// AuditForward is the audit log's forwarding off the box, when it is
	// set up (auditfwd.go).
	AuditForward *AuditForwardStatus `json:"audit_forward,omitempty"`
	// Replica is the off-box replication's state (nil: off).
	Replica *replica.Status `json:"replica,omitempty"`
	// SCEP is the SCEP door, when it runs (nil: off).
	SCEP *SCEPDoorStatus `json:"scep,omitempty"`
	// OldListeners is set when the report came from a daemon older than
	// this console, which described its listeners as display text: they
	// are not read back (the daemon's restart with this version fixes it).
	OldListeners bool `json:"-"`
}

// SCEPDoorStatus is where devices enrol certificates over SCEP: the URL
// they are given (scep.public_url, or the listen address's) and the
// door's HTTPS certificate, whose CA a profile's SCEP payload trusts.
type SCEPDoorStatus struct {
	URL      string `json:"url"`
	CertFile string `json:"cert_file"`
}

// RADIUSDrop is one cause of dropped RADIUS requests since the daemon
// started: how many, and the last one's client (if any) and source.
type RADIUSDrop struct {
	Cause  string    `json:"cause"`
	Count  int64     `json:"count"`
	Client string    `json:"client,omitempty"`
	From   string    `json:"from"`
	Last   time.Time `json:"last"`
}

// EAPStatus describes the EAP server's certificate. All of it is public:
// the key never leaves the daemon.
type EAPStatus struct {
	// CAPEM is the CA a device must trust, PEM: the server certificate
	// itself when self-signed (the appliance's own), else the last CA
	// certificate of the configured file ("" when the file lacks it).
	CAPEM      string    `json:"ca_pem,omitempty"`
	CASubject  string    `json:"ca_subject,omitempty"`
	CASHA256   string    `json:"ca_sha256,omitempty"`
	CAThumb    string    `json:"ca_sha1,omitempty"` // what Windows shows
	ServerName []string  `json:"server_names,omitempty"`
	NotAfter   time.Time `json:"not_after"`
	CertFile   string    `json:"cert_file"`
	// Anchors names the trust anchors for EAP-TLS client certificates
	// ("subject SHA-256"); none: EAP-TLS is not offered.
	Anchors []string `json:"anchors,omitempty"`
}

// ClockTolerance is how far the clock may be off before the console
// raises its red banner: one TOTP step.
const ClockTolerance = 30 * time.Second

// ClockStatus is the daemon's last check of this machine's clock against
// an NTP server (internal/sntp).
type ClockStatus struct {
	CheckedAt time.Time `json:"checked_at"`
	// Measured is set when a server answered: Offset is then its time
	// minus ours (positive: this clock is behind).
	Measured bool          `json:"measured"`
	Server   string        `json:"server,omitempty"`
	Offset   time.Duration `json:"offset_ns"`
	// Err says why nothing was measured.
	Err string `json:"error,omitempty"`
	// SyncedAt is when systemd-timesyncd last synchronised the clock
	// (zero: never, or timesyncd is not in use).
	SyncedAt time.Time `json:"synced_at,omitzero"`
}

// Off reports a clock measured off by more than ClockTolerance.
func (c *ClockStatus) Off() bool {
	return c != nil && c.Measured && c.Offset.Abs() > ClockTolerance
}

// CertStatus describes one of the appliance's own TLS certificates, a
// leaf of the appliance CA (appliance/pki/server.go). All of it is public.
type CertStatus struct {
	File     string    `json:"file"`
	SHA256   string    `json:"sha256"`
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"not_after"`
	// SelfSigned is a first-wave certificate kept as it was.
	SelfSigned bool `json:"self_signed,omitempty"`
	// The CA clients must trust (empty when SelfSigned).
	CAFile    string `json:"ca_file,omitempty"`
	CASubject string `json:"ca_subject,omitempty"`
	CASHA256  string `json:"ca_sha256,omitempty"`
	// Changed is the last time the daemon issued it other than at first
	// start: a migration from the first wave's self-signed CA asks the
	// operator to hand out the CA once.
	Changed *CertChange `json:"changed,omitempty"`
}

// CertChange records a certificate the daemon issued again, and why
// (pki.LeafMigrated, LeafExpiring, …).
type CertChange struct {
	At       time.Time `json:"at"`
	Why      string    `json:"why"`
	SHA256   string    `json:"sha256"`
	CASHA256 string    `json:"ca_sha256"`
}

// CertChangeKey is the setting that keeps door's last CertChange.
func CertChangeKey(door string) string { return "servercert." + door + ".changed" }

// ListenDoor names what a listener answers.
type ListenDoor string

const (
	ListenRADIUSAuth ListenDoor = "radius-auth" // RADIUS authentication, udp
	ListenRADIUSAcct ListenDoor = "radius-acct" // RADIUS accounting, udp
	ListenLDAP       ListenDoor = "ldap"        // LDAP with StartTLS, tcp
	ListenLDAPS      ListenDoor = "ldaps"       // LDAP over TLS from the first byte, tcp
	ListenSSH        ListenDoor = "ssh"         // the console over SSH, tcp
	ListenHTTP       ListenDoor = "http"        // health and metrics, tcp
	ListenSCEP       ListenDoor = "scep"        // SCEP and the device CA's CRL over HTTPS, tcp
)

// Listener is one socket the daemon answers on.
type Listener struct {
	Door    ListenDoor `json:"door"`
	Network string     `json:"network"` // "udp" or "tcp"
	// Address is host:port as bound (a wildcard host answers on every
	// address, loopback included).
	Address string `json:"address"`
	// CertSHA256 is the SHA-256 of the TLS certificate's DER, upper-case
	// hex in colon-separated pairs (ldap, ldaps): what a client that cannot
	// check a CA (the certificate is self-signed) pins.
	CertSHA256 string `json:"cert_sha256,omitempty"`
	// HostKey is the SSH host key's fingerprint as OpenSSH shows it
	// ("SHA256:…"; ssh only).
	HostKey string `json:"host_key,omitempty"`
}

// UnmarshalJSON reads a listener, and leaves an older daemon's display
// text ("RADIUS authentication 0.0.0.0:1812/udp") empty instead of
// refusing the whole report: a console upgraded before the daemon is
// restarted still shows the rest.
func (l *Listener) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*l = Listener{}
		return nil
	}
	type plain Listener
	return json.Unmarshal(b, (*plain)(l))
}

// Listener returns the first listener for door (ok false: none).
func (d DaemonStatus) Listener(door ListenDoor) (Listener, bool) {
	for _, l := range d.Listeners {
		if l.Door == door {
			return l, true
		}
	}
	return Listener{}, false
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
// reported (or its report cannot be read at all).
func (s *Service) Status(ctx context.Context) (DaemonStatus, bool, error) {
	v, err := s.Store.Setting(ctx, statusKey)
	if errors.Is(err, store.ErrNotFound) {
		return DaemonStatus{}, false, nil
	}
	if err != nil {
		return DaemonStatus{}, false, err
	}
	st, ok := ParseStatus(v)
	return st, ok, nil
}

// ParseStatus reads a stored report leniently: listeners an older daemon
// wrote as text are dropped (and OldListeners set), and a report that is
// not JSON at all is no report (ok false), never a crash.
func ParseStatus(v string) (DaemonStatus, bool) {
	var st DaemonStatus
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return DaemonStatus{}, false
	}
	kept := st.Listeners[:0]
	for _, l := range st.Listeners {
		if l.Door == "" {
			st.OldListeners = true
			continue
		}
		kept = append(kept, l)
	}
	st.Listeners = kept
	return st, true
}
