package admin

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// SCEPChallengeRequest describes the device a one-time SCEP challenge is
// for. Every field is optional.
type SCEPChallengeRequest struct {
	// Device names the device: an inventory record of that name (or MDM
	// id) gets the certificate; otherwise a new record of that name is
	// made. Empty: the name the device asks for (its CSR's common name).
	Device string
	User   string        // the device's owner: EAP-TLS logs in as this user
	MAC    string        // the device's Wi-Fi MAC address, for a new record
	TTL    time.Duration // how long the challenge may be used (default 24 h)
	// Uses is how many devices may enrol with it (default 1). More than
	// one is an MDM's static challenge: see docs/scep.md for what that
	// costs.
	Uses int
	// Validity is the issued certificate's lifetime (default 1 year).
	Validity time.Duration
}

// SCEPChallenge is a challenge just made: Challenge is shown once and
// only its hash is kept.
type SCEPChallenge struct {
	ID        int64
	Uses      int
	Challenge string
	ExpiresAt time.Time
	DeviceID  int64 // the inventory record it attaches to, 0 for a new one
	Validity  time.Duration
}

// String keeps the challenge out of any log line.
func (c SCEPChallenge) String() string { return "SCEPChallenge(REDACTED)" }

// Defaults and limits of SCEP challenges.
const (
	DefaultSCEPChallengeTTL = 24 * time.Hour
	MaxSCEPChallengeTTL     = 366 * 24 * time.Hour
	MaxSCEPChallengeUses    = 10000
	DefaultSCEPCertValidity = 365 * 24 * time.Hour
	MaxSCEPCertValidity     = 5 * 365 * 24 * time.Hour
)

// CreateSCEPChallenge makes a one-time challenge password for the SCEP
// endpoint, and the device CA if it does not exist yet.
func (s *Service) CreateSCEPChallenge(ctx context.Context, r SCEPChallengeRequest) (SCEPChallenge, error) {
	if r.TTL == 0 {
		r.TTL = DefaultSCEPChallengeTTL
	}
	if r.Validity == 0 {
		r.Validity = DefaultSCEPCertValidity
	}
	if r.Uses == 0 {
		r.Uses = 1
	}
	if r.TTL < time.Minute || r.TTL > MaxSCEPChallengeTTL {
		return SCEPChallenge{}, invalid("the challenge's lifetime must be from 1m to 366 days (for example 24h)")
	}
	if r.Uses < 1 || r.Uses > MaxSCEPChallengeUses {
		return SCEPChallenge{}, invalid("a challenge serves 1 to %d devices", MaxSCEPChallengeUses)
	}
	if r.Uses > 1 && (r.Device != "" || r.MAC != "") {
		return SCEPChallenge{}, invalid("a challenge for %d devices cannot name one device or MAC address: each device is named by the subject it asks for", r.Uses)
	}
	if r.Validity < time.Hour || r.Validity > MaxSCEPCertValidity {
		return SCEPChallenge{}, invalid("the certificate's validity must be from 1h to 5 years (for example 8760h for a year)")
	}
	name := strings.TrimSpace(r.Device)
	if name != "" && pki.CleanName(name) != name {
		return SCEPChallenge{}, invalid("the device name must be at most 64 characters without control characters")
	}
	ch := store.SCEPChallenge{DeviceName: name, OwnerName: r.User, Validity: r.Validity, Uses: r.Uses, CreatedBy: s.Actor}
	if r.MAC != "" {
		mac, err := policy.NormalizeMAC(r.MAC)
		if err != nil {
			return SCEPChallenge{}, invalid("%q: %v", r.MAC, err)
		}
		ch.MAC = mac
	}
	if _, err := pki.Ensure(ctx, s.Store, s.Now()); err != nil {
		return SCEPChallenge{}, err
	}
	secret, err := pki.NewChallenge(s.Rand)
	if err != nil {
		return SCEPChallenge{}, err
	}
	now := s.Now()
	ch.Hash, ch.ExpiresAt = pki.HashChallenge(secret), now.Add(r.TTL)
	detail := fmt.Sprintf("one-time SCEP challenge made, valid until %s, certificate for %s", ch.ExpiresAt.UTC().Format(time.RFC3339), r.Validity)
	if r.Uses > 1 {
		detail = fmt.Sprintf("SCEP challenge for up to %d devices made (a static challenge), valid until %s, certificates for %s", r.Uses, ch.ExpiresAt.UTC().Format(time.RFC3339), r.Validity)
	}
	// The audit entry says which record the challenge attaches to, which
	// the transaction finds: it is written at its end, in it.
	var out SCEPChallenge
	err = s.Store.WithTx(ctx, func(tx *store.Tx) error {
		if r.User != "" {
			if _, err := tx.UserByName(ctx, r.User); errors.Is(err, store.ErrNotFound) {
				return invalid("there is no user %q", r.User)
			} else if err != nil {
				return err
			}
		}
		if name != "" {
			ds, err := tx.FindDevices(ctx, name)
			if err != nil {
				return err
			}
			switch len(ds) {
			case 0:
				detail += ", a new device " + name
			case 1:
				ch.DeviceID = ds[0].ID
				detail += fmt.Sprintf(", attached to %s device %q (record %d)", ds[0].Source, ds[0].Description, ds[0].ID)
			default:
				return invalid("%d devices in the inventory are named %q; name the one you mean by its MDM id", len(ds), name)
			}
		}
		id, err := tx.AddSCEPChallenge(ctx, ch, now)
		if err != nil {
			return err
		}
		detail += fmt.Sprintf(" (challenge %d)", id)
		out.ID = id
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindAdmin, Actor: s.Actor, Outcome: "changed", User: r.User, Device: name, Reason: "scep_challenge", Detail: detail})
		return err
	})
	if err != nil {
		return SCEPChallenge{}, err
	}
	out.Challenge, out.ExpiresAt, out.DeviceID, out.Validity, out.Uses = secret, ch.ExpiresAt, ch.DeviceID, r.Validity, r.Uses
	return out, nil
}

// IssuedCerts lists the certificates the device CA issued.
func (s *Service) IssuedCerts(ctx context.Context) ([]store.IssuedCert, error) {
	return s.Store.IssuedCerts(ctx)
}

// DeviceCA is the device CA (made if missing), for Wi-Fi profiles and
// MDMs, which need its certificate.
func (s *Service) DeviceCA(ctx context.Context) (*pki.CA, error) {
	return pki.Ensure(ctx, s.Store, s.Now())
}

// SCEPChallenges lists the challenges that can still be used (never the
// challenges themselves, which are not kept).
func (s *Service) SCEPChallenges(ctx context.Context) ([]store.SCEPChallenge, error) {
	return s.Store.SCEPChallenges(ctx, s.Now())
}

// WithdrawSCEPChallenge makes a challenge unusable at once: one that was
// given out by mistake, or an MDM's static challenge once its devices
// are enrolled. Certificates already issued stay valid ('cert revoke').
func (s *Service) WithdrawSCEPChallenge(ctx context.Context, id int64) error {
	err := s.change(ctx, audit.Entry{Reason: "scep_challenge_withdrawn", Detail: fmt.Sprintf("SCEP challenge %d withdrawn", id)}, func(tx *store.Tx) error {
		return tx.WithdrawSCEPChallenge(ctx, id, s.Now())
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no usable SCEP challenge %d ('clinicgate scep challenges' lists them)", id)
	}
	return err
}

// DeviceCAPEM is the device CA's certificate, PEM ('scep ca'), made on
// first use.
func (s *Service) DeviceCAPEM(ctx context.Context) (string, error) {
	ca, err := s.DeviceCA(ctx)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})), nil
}
