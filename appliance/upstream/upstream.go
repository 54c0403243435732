// Package upstream checks primary credentials where the clinic's identities
// live. Each kind of identity source is one connector behind the Verifier
// interface; the gate picks the one a client's policy names.
//
// Connectors answer "is this password right for this user?" and nothing
// else: MFA, posture and authorization are the gate's.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

var (
	// ErrBadCredentials means the password is wrong (or the account has no
	// password).
	ErrBadCredentials = errors.New("upstream: wrong password")
	// ErrUnknownUser means the source has no such user.
	ErrUnknownUser = errors.New("upstream: unknown user")
	// ErrUnreachable means the source could not be asked (timeout, refused
	// connection, TLS failure, server error). Only this error lets a
	// client's "cached" failmode step in.
	ErrUnreachable = errors.New("upstream: unreachable")
	// ErrUpstreamRefused means the source refused for a reason other than
	// the password (its own MFA policy, consent missing, ...); the wrapped
	// text says which.
	ErrUpstreamRefused = errors.New("upstream: refused")
	// Account states an upstream can report (Active Directory's bind
	// sub-codes, identity providers' error codes).
	ErrAccountDisabled  = errors.New("upstream: account disabled")
	ErrAccountExpired   = errors.New("upstream: account expired")
	ErrPasswordExpired  = errors.New("upstream: password expired")
	ErrMustChange       = errors.New("upstream: password must be changed")
	ErrAccountLockedOut = errors.New("upstream: account locked out")
)

// Identity is what a source says about a verified user.
type Identity struct {
	Name   string
	Groups []string
	// Reply holds attributes the source answered with that its settings
	// allow to pass on to the NAS (RADIUS upstreams only).
	Reply []ReplyAttribute
}

// ReplyAttribute is a RADIUS attribute from an upstream's Access-Accept.
type ReplyAttribute struct {
	Type  byte
	Value []byte
}

// Verifier checks a user's primary credential.
type Verifier interface {
	Verify(ctx context.Context, user string, password secrets.Secret) (Identity, error)
}

// Local verifies against users kept in the appliance's own store.
type Local struct {
	store  *store.Store
	hasher *passwd.Hasher
}

// NewLocal builds the local connector.
func NewLocal(st *store.Store, h *passwd.Hasher) (*Local, error) {
	if st == nil || h == nil {
		return nil, errors.New("upstream: local connector needs a store and a hasher")
	}
	return &Local{store: st, hasher: h}, nil
}

// Verify checks password against the user's argon2id hash. An unknown user
// or a user without a password costs the same hash as a known one, so the
// answer's timing does not reveal which accounts exist.
func (l *Local) Verify(ctx context.Context, user string, password secrets.Secret) (Identity, error) {
	u, err := l.store.CachedUserByName(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		if err := l.hasher.Dummy(ctx, password); err != nil {
			return Identity{}, err
		}
		return Identity{}, ErrUnknownUser
	}
	if err != nil {
		return Identity{}, fmt.Errorf("local: %w", err)
	}
	if u.PasswordHash == "" {
		if err := l.hasher.Dummy(ctx, password); err != nil {
			return Identity{}, err
		}
		return Identity{}, ErrBadCredentials
	}
	ok, err := l.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return Identity{}, fmt.Errorf("local: user %q: %w", u.Name, err)
	}
	if !ok {
		return Identity{}, ErrBadCredentials
	}
	return Identity{Name: u.Name, Groups: u.Groups}, nil
}

// tlsConfig is TLS 1.2 or newer, trusting caFile instead of the system's
// roots when it is given.
func tlsConfig(name, caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: ca_file: %w", name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("upstream %s: ca_file %s holds no PEM certificate", name, caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

// parseConfig reads a kind's JSON settings: decode, fill defaults, validate.
func parseConfig(name, config string, c interface {
	Defaults()
	Validate() error
}) error {
	if err := json.Unmarshal([]byte(config), c); err != nil {
		return fmt.Errorf("upstream %s: config: %w", name, err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("upstream %s: %w", name, err)
	}
	return nil
}
