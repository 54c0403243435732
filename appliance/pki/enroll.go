package pki

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// NewChallenge makes a one-time challenge password: 128 random bits in
// lower-case base32, easy to paste into an MDM's SCEP profile.
func NewChallenge(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", err
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

// HashChallenge is the form a challenge is stored in. A fast hash is
// enough for 128 random bits; the password-hash cost would only slow a
// flood of requests down on the appliance's side.
func HashChallenge(challenge string) string {
	h := sha256.Sum256([]byte(strings.TrimSpace(challenge)))
	return hex.EncodeToString(h[:])
}

// Refusal is why the CA refused a request; each is a stable audit reason.
type Refusal string

const (
	RefuseNone              Refusal = ""
	RefuseBadChallenge      Refusal = "scep_bad_challenge"
	RefuseChallengeUsed     Refusal = "scep_challenge_used"
	RefuseChallengeExpired  Refusal = "scep_challenge_expired"
	RefuseBadKey            Refusal = "scep_bad_key"
	RefuseBadCSR            Refusal = "scep_bad_csr"
	RefuseBadMessage        Refusal = "scep_bad_message"
	RefuseUnsupportedMethod Refusal = "scep_unsupported"
)

// Enroller issues device certificates against one-time challenges.
type Enroller struct {
	Store *store.Store
	Audit *audit.Log
	CA    *CA
	// CRLURL is the URL the certificates name as their CRL distribution
	// point.
	CRLURL string
	Now    func() time.Time // nil: time.Now
	Rand   io.Reader
	Log    *slog.Logger

	// A flood of refused requests (garbage, a replayed request with a
	// wrong challenge) must not fill the audit log: at most
	// refusalsPerSecond are audited, the rest counted into the next one.
	mu         sync.Mutex
	window     time.Time
	inWindow   int
	notAudited int
}

// refusalsPerSecond bounds the refusals audited in one second.
const refusalsPerSecond = 20

// auditBudget says whether a refusal at now may be audited, and how many
// were held back before it.
func (e *Enroller) auditBudget(now time.Time) (bool, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.window) >= time.Second || now.Before(e.window) {
		e.window, e.inWindow = now, 0
	}
	if e.inWindow >= refusalsPerSecond {
		e.notAudited++
		return false, 0
	}
	e.inWindow++
	held := e.notAudited
	e.notAudited = 0
	return true, held
}

func (e *Enroller) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// EnrollRequest is a SCEP PKCSReq, decoded and decrypted.
type EnrollRequest struct {
	CSR           *x509.CertificateRequest
	Challenge     string
	TransactionID string
	Remote        string // the client's address, for the audit
}

// Enroll checks the CSR and the challenge, then issues and records the
// certificate: a refusal comes back as a Refusal (audited) with a nil
// error; an error means nothing could be decided (the store failed).
func (e *Enroller) Enroll(ctx context.Context, r EnrollRequest) (*x509.Certificate, Refusal, error) {
	now := e.now()
	if err := r.CSR.CheckSignature(); err != nil {
		return e.refuse(ctx, r, RefuseBadCSR, "the CSR's signature does not verify: "+err.Error())
	}
	if err := CheckKey(r.CSR.PublicKey); err != nil {
		return e.refuse(ctx, r, RefuseBadKey, err.Error())
	}
	if r.Challenge == "" {
		return e.refuse(ctx, r, RefuseBadChallenge, "the request carries no challenge password")
	}
	var cert *x509.Certificate
	var refusal Refusal
	var why string
	// Looked up by its SHA-256: the stored value reveals nothing of the
	// challenge, and the lookup's timing nothing of a near miss.
	hash := HashChallenge(r.Challenge)
	err := e.Store.WithTx(ctx, func(tx *store.Tx) error {
		ch, err := tx.UseSCEPChallenge(ctx, hash, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			refusal, why = RefuseBadChallenge, "the challenge password is not one the appliance made"
			return nil
		case errors.Is(err, store.ErrChallengeUsed):
			refusal, why = RefuseChallengeUsed, fmt.Sprintf("challenge %d, made by %s at %s, was already used (%d of %d uses; the last at %s)", ch.ID, ch.CreatedBy, stamp(ch.CreatedAt), ch.Uses-ch.UsesLeft, ch.Uses, stamp(ch.UsedAt))
			return nil
		case errors.Is(err, store.ErrChallengeExpired):
			refusal, why = RefuseChallengeExpired, fmt.Sprintf("challenge %d, made by %s, expired at %s", ch.ID, ch.CreatedBy, stamp(ch.ExpiresAt))
			return nil
		case err != nil:
			return err
		}
		cert, err = e.issue(ctx, tx, r, ch, now)
		return err
	})
	if err != nil {
		return nil, RefuseNone, err
	}
	if refusal != RefuseNone {
		return e.refuse(ctx, r, refusal, why)
	}
	return cert, RefuseNone, nil
}

// issue signs the certificate and records it, its device and the audit
// entry, in the transaction that consumed the challenge.
func (e *Enroller) issue(ctx context.Context, tx *store.Tx, r EnrollRequest, ch store.SCEPChallenge, now time.Time) (*x509.Certificate, error) {
	var dev store.Device
	name := ch.DeviceName
	if ch.DeviceID != 0 {
		ds, err := tx.FindDeviceByID(ctx, ch.DeviceID)
		if err != nil {
			return nil, fmt.Errorf("the challenge's device: %w", err)
		}
		dev = ds
		if name == "" {
			name = dev.Description
		}
	}
	if name == "" {
		name = CleanName(r.CSR.Subject.CommonName)
	}
	if name == "" {
		name = "device"
	}
	cert, err := e.CA.Issue(e.rand(), r.CSR, IssueOptions{Name: name, Validity: ch.Validity, CRLURL: e.CRLURL}, now)
	if err != nil {
		return nil, err
	}
	serial := cert.SerialNumber.Text(16)
	fp := selfcert.FingerprintDER(cert.Raw)
	if ch.DeviceID == 0 {
		dev = store.Device{Source: store.SourceCert, SourceID: serial, Description: name, UserName: ch.OwnerName, Compliance: store.Unknown,
			ComplianceReason: "certificate enrolled over SCEP", SyncedAt: now, LastSeen: now}
		if ch.DeviceName != "" {
			// A device the admin named keeps one record across renewals.
			dev.SourceID = "name:" + strings.ToLower(ch.DeviceName)
		}
		if ch.MAC != "" {
			dev.MACs = []string{ch.MAC}
		}
		if ch.OwnerName != "" {
			if u, err := tx.UserByName(ctx, ch.OwnerName); err == nil {
				dev.UserID = u.ID
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		if dev.ID, err = tx.PutDevice(ctx, dev, now); err != nil {
			return nil, err
		}
	}
	if err := tx.AddDeviceCert(ctx, dev.ID, store.DeviceCert{Fingerprint: fp, Serial: serial, NotAfter: cert.NotAfter}, now); err != nil {
		return nil, err
	}
	if err := tx.AddIssuedCert(ctx, store.IssuedCert{Serial: serial, Fingerprint: fp, DeviceID: dev.ID, Subject: name, NotAfter: cert.NotAfter}, now); err != nil {
		return nil, err
	}
	owner := ch.OwnerName
	if owner == "" {
		owner = dev.UserName
	}
	if owner != "" {
		// EAP-TLS maps a certificate to its user by a registered
		// fingerprint first: the device's owner logs in with it.
		if u, err := tx.UserByName(ctx, owner); err == nil {
			if err := tx.RegisterCert(ctx, store.UserCert{Fingerprint: fp, UserID: u.ID}, now); err != nil {
				return nil, err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	_, err = e.Audit.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindSystem, Door: "scep", User: owner, Device: name, Source: r.Remote, Outcome: "issued", Reason: "scep_issued", Actor: "scep",
		Detail: fmt.Sprintf("device certificate serial %s (SHA-256 %s) issued to %q until %s, inventory record %d, challenge %d made by %s (%d of %d uses left)", serial, fp, name, stamp(cert.NotAfter), dev.ID, ch.ID, ch.CreatedBy, ch.UsesLeft, ch.Uses)})
	if err != nil {
		return nil, err
	}
	return cert, nil
}

// Refuse audits a refusal the SCEP door found before a CSR was read (a
// garbage message, an unsupported operation).
func (e *Enroller) Refuse(ctx context.Context, remote string, why Refusal, detail string) error {
	_, _, err := e.refuse(ctx, EnrollRequest{Remote: remote}, why, detail)
	return err
}

func (e *Enroller) refuse(ctx context.Context, r EnrollRequest, why Refusal, detail string) (*x509.Certificate, Refusal, error) {
	if r.TransactionID != "" {
		detail += " (transaction " + CleanName(r.TransactionID) + ")"
	}
	dev := ""
	if r.CSR != nil {
		dev = CleanName(r.CSR.Subject.CommonName)
	}
	ok, held := e.auditBudget(e.now())
	if !ok {
		if e.Log != nil {
			e.Log.Debug("SCEP refusal not audited: too many this second", "door", "scep", "reason", string(why), "source", r.Remote)
		}
		return nil, why, nil
	}
	if held > 0 {
		detail += fmt.Sprintf("; %d refusals before this one were not audited (more than %d a second)", held, refusalsPerSecond)
	}
	_, err := e.Audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Door: "scep", Device: dev, Source: r.Remote, Outcome: "refused", Reason: string(why), Actor: "scep", Detail: detail})
	if err != nil {
		return nil, why, fmt.Errorf("audit: %w", err)
	}
	if e.Log != nil {
		e.Log.Info("SCEP request refused", "door", "scep", "reason", string(why), "source", r.Remote)
	}
	return nil, why, nil
}

func (e *Enroller) rand() io.Reader {
	if e.Rand == nil {
		return rand.Reader
	}
	return e.Rand
}

// CleanName keeps a name from a request printable and short, for the
// certificate and the audit.
func CleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// CRLCache signs the device CA's CRL again when a certificate is revoked
// and before the last one goes stale, and hands out the DER otherwise.
type CRLCache struct {
	Store *store.Store
	CA    *CA
	Now   func() time.Time // nil: time.Now

	mu      sync.Mutex
	der     []byte
	version string
	signed  time.Time
}

// DER is the current CRL.
func (c *CRLCache) DER(ctx context.Context) ([]byte, error) {
	v, err := c.Store.IssuedCertsVersion(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.der != nil && v == c.version && now.Sub(c.signed) < CRLValidity/2 {
		return c.der, nil
	}
	revoked, err := c.Store.RevokedIssuedCerts(ctx, now)
	if err != nil {
		return nil, err
	}
	var n int64
	if err := c.Store.WithTx(ctx, func(tx *store.Tx) error {
		n, err = tx.NextCRLNumber(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	der, err := c.CA.CRL(rand.Reader, n, revoked, now)
	if err != nil {
		return nil, err
	}
	c.der, c.version, c.signed = der, v, now
	return der, nil
}
