package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// CertFingerprintPEM reads the first certificate of a PEM file's contents
// and returns its fingerprint, in the form certificates are registered.
func CertFingerprintPEM(b []byte) (string, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return "", invalid("no PEM certificate found (want a file starting with -----BEGIN CERTIFICATE-----)")
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return "", invalid("the certificate cannot be read: %v", err)
		}
		return selfcert.FingerprintDER(blk.Bytes), nil
	}
}

// RegisterCertFile registers the certificate in a file uploaded into
// IncomingDir over SFTP (a bare name; a full path also works where the
// file system is mounted), PEM or DER, to a user: the console's 'cert
// register --file'. The appliance
// has no shell to take a fingerprint in, and the console no paste of 95
// characters. The file is public and stays where it is.
func (s *Service) RegisterCertFile(ctx context.Context, user, file string) (string, error) {
	f, p, err := s.openUploaded(file)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	f.Close()
	if err != nil {
		return "", invalid("cannot read %s: %v", p, err)
	}
	var fp string
	if _, derr := x509.ParseCertificate(b); derr == nil {
		fp = selfcert.FingerprintDER(b) // DER, as Windows exports a .cer
	} else if fp, err = CertFingerprintPEM(b); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Base(p), err)
	}
	return s.RegisterCert(ctx, user, fp)
}

// RegisterCert registers a client certificate, by its SHA-256
// fingerprint, to a user: an EAP-TLS login with it is that user's,
// whatever names the certificate carries.
func (s *Service) RegisterCert(ctx context.Context, user, fingerprint string) (string, error) {
	fp, err := policy.NormalizeFingerprint(fingerprint)
	if err != nil {
		return "", invalid("%q: %v", fingerprint, err)
	}
	err = s.change(ctx, audit.Entry{User: user, Reason: "cert_register", Detail: "client certificate " + fp + " registered for EAP-TLS"}, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no user %q", user)
		}
		if err != nil {
			return err
		}
		return tx.RegisterCert(ctx, store.UserCert{Fingerprint: fp, UserID: u.ID}, s.Now())
	})
	if errors.Is(err, store.ErrConflict) {
		return "", invalid("the certificate %s is already registered (to one user only)", fp)
	}
	return fp, err
}

// UnregisterCert removes a certificate's registration (it is not revoked:
// its names may still map it to a user).
func (s *Service) UnregisterCert(ctx context.Context, fingerprint string) error {
	fp, err := policy.NormalizeFingerprint(fingerprint)
	if err != nil {
		return invalid("%q: %v", fingerprint, err)
	}
	err = s.change(ctx, audit.Entry{Reason: "cert_unregister", Detail: "client certificate " + fp + " no longer registered"}, func(tx *store.Tx) error {
		return tx.DeleteCert(ctx, fp)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("the certificate %s is not registered", fp)
	}
	return err
}

// RevokeCert puts a certificate on the appliance's revocation list, by
// its SHA-256 fingerprint or its serial number (hex): EAP-TLS refuses it
// from then on, whoever it belongs to.
func (s *Service) RevokeCert(ctx context.Context, fingerprintOrSerial, reason string) (store.Revocation, error) {
	if len(reason) > 200 || strings.ContainsFunc(reason, unicode.IsControl) {
		return store.Revocation{}, invalid("the reason must be at most 200 characters without control characters")
	}
	r := store.Revocation{Reason: reason}
	if fp, err := policy.NormalizeFingerprint(fingerprintOrSerial); err == nil {
		r.Kind, r.Value = store.RevokeFingerprint, fp
	} else if sn, err := policy.NormalizeSerial(fingerprintOrSerial); err == nil {
		r.Kind, r.Value = store.RevokeSerial, sn
	} else {
		return store.Revocation{}, invalid("%q is neither a SHA-256 fingerprint (64 hex digits) nor a serial number (hex)", fingerprintOrSerial)
	}
	detail := fmt.Sprintf("client certificate %s %s revoked", r.Kind, r.Value)
	if reason != "" {
		detail += ": " + reason
	}
	err := s.change(ctx, audit.Entry{Reason: "cert_revoke", Detail: detail}, func(tx *store.Tx) error {
		if err := tx.Revoke(ctx, r, s.Now()); err != nil {
			return err
		}
		// One the device CA issued also goes on its published CRL.
		if _, err := tx.RevokeIssuedCert(ctx, r.Kind, r.Value, reason, s.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return s.queueRevocation(ctx, tx, r)
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Revocation{}, invalid("%s %s is already revoked", r.Kind, r.Value)
	}
	return r, err
}

// queueRevocation queues the posture event of a revocation, in its
// transaction: the sessions of the certificate's devices (by MAC) end at
// their NAS; when no device is known, the sessions of the user it is
// registered to (docs/coa.md).
func (s *Service) queueRevocation(ctx context.Context, tx *store.Tx, r store.Revocation) error {
	var fp, serial string
	if r.Kind == store.RevokeFingerprint {
		fp = r.Value
	} else {
		serial = r.Value
	}
	devs, err := tx.DevicesByCert(ctx, fp, serial)
	if err != nil {
		return err
	}
	e := store.PostureEvent{Kind: store.EventCertRevoked, Detail: fmt.Sprintf("certificate %s %s revoked by %s", r.Kind, r.Value, s.Actor)}
	for _, d := range devs {
		e.MACs = append(e.MACs, d.MACs...)
		if e.DeviceID == 0 {
			e.DeviceID = d.ID
		}
		if e.UserName == "" && !d.Shared {
			e.UserName = d.UserName
		}
	}
	if fp != "" {
		owner, err := tx.CertOwnerName(ctx, fp)
		if err == nil {
			e.UserName = owner
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if len(e.MACs) == 0 && e.UserName == "" {
		return nil // no one to reach: the revocation takes effect at the next handshake
	}
	return tx.AddPostureEvent(ctx, e, s.Now())
}

// Certs lists the registered certificates and the revocation list.
func (s *Service) Certs(ctx context.Context) ([]store.UserCert, []store.Revocation, error) {
	cs, err := s.Store.UserCerts(ctx)
	if err != nil {
		return nil, nil, err
	}
	rs, err := s.Store.Revocations(ctx)
	return cs, rs, err
}
