// Package admin is the set of operations an operator performs — add a user,
// a client, enrol a factor, bind a device, change a setting — shared by the
// command line and the console. Every change is validated here, in the
// operator's words, and audited with the operator's name in the same
// transaction as the change itself.
//
// It never talks to a door, and the doors never call it.
package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Service performs admin operations as one actor.
type Service struct {
	Store  *store.Store
	Audit  *audit.Log
	Hasher *passwd.Hasher
	Now    func() time.Time
	Rand   io.Reader
	// Actor names who acts, for the audit ("cli:root", "ssh:alice").
	Actor string
	// Issuer is the name authenticator apps show for TOTP entries.
	Issuer string
}

// New builds a Service and refuses missing dependencies.
func New(st *store.Store, log *audit.Log, h *passwd.Hasher, actor string) (*Service, error) {
	if st == nil || log == nil || h == nil {
		return nil, errors.New("admin: needs a store, an audit log and a hasher")
	}
	if actor == "" {
		return nil, errors.New("admin: no actor name for the audit")
	}
	return &Service{Store: st, Audit: log, Hasher: h, Now: time.Now, Rand: rand.Reader, Actor: actor, Issuer: "clinicgate"}, nil
}

// ErrInvalid marks input the operator has to correct.
var ErrInvalid = errors.New("invalid input")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// change runs fn and its audit entry in one transaction.
func (s *Service) change(ctx context.Context, e audit.Entry, fn func(tx *store.Tx) error) error {
	e.Kind, e.Actor, e.Outcome = audit.KindAdmin, s.Actor, "changed"
	return s.Store.WithTx(ctx, func(tx *store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := s.Audit.AppendTx(ctx, tx, e)
		return err
	})
}

// CheckUserName validates a user name as the doors will see it.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return invalid("the user name is empty")
	case len(name) > 64:
		return invalid("the user name is longer than 64 characters")
	case !utf8.ValidString(name):
		return invalid("the user name is not valid text (UTF-8)")
	case strings.TrimSpace(name) != name:
		return invalid("the user name starts or ends with a space")
	case strings.ContainsAny(name, ",\\*()\"") || strings.ContainsFunc(name, unicode.IsControl):
		return invalid("the user name may not contain commas, backslashes, quotes, *, ( ) or control characters")
	}
	return nil
}

// CheckName validates a client, group or bind account name.
func CheckName(what, name string) error {
	if name == "" || len(name) > 64 {
		return invalid("the %s name must be 1 to 64 characters", what)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return invalid("the %s name %q may only use letters, digits, '-', '_' and '.'", what, name)
		}
	}
	return nil
}

// CheckPassword validates a new password.
func CheckPassword(pw []byte) error {
	switch {
	case len(pw) < 8:
		return invalid("the password is shorter than 8 characters")
	case len(pw) > 120:
		// RADIUS carries at most 128 bytes, and "password,123456" needs 7.
		return invalid("the password is longer than 120 bytes")
	case !utf8.Valid(pw):
		return invalid("the password is not valid text (UTF-8)")
	case strings.ContainsFunc(string(pw), unicode.IsControl):
		return invalid("the password contains control characters (a stray newline?)")
	}
	return nil
}

// ---- users

// NewUser describes a user to add.
type NewUser struct {
	Name        string
	DisplayName string
	Groups      []string
	Password    secrets.Secret // optional
	ExpiresAt   time.Time      // optional
	// Expires is the expiry as typed (ParseExpiry: a date is the end of
	// that day in the site's zone); it replaces ExpiresAt.
	Expires string
	Hours   string // optional
}

// AddUser creates a local user.
func (s *Service) AddUser(ctx context.Context, n NewUser) error {
	if err := CheckUserName(n.Name); err != nil {
		return err
	}
	if err := s.checkGroups(n.Groups); err != nil {
		return err
	}
	if _, err := s.Store.BindAccountByName(ctx, n.Name); err == nil {
		return invalid("%q is an LDAP bind account's name; a user needs another name (a bind as that name would be ambiguous)", n.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := policy.ParseHours(n.Hours); err != nil {
		return invalid("%v", err)
	}
	if len(n.DisplayName) > 128 || strings.ContainsFunc(n.DisplayName, unicode.IsControl) {
		return invalid("the display name must be at most 128 characters without control characters")
	}
	exp, err := s.expiry(ctx, n.Expires, n.ExpiresAt)
	if err != nil {
		return err
	}
	n.ExpiresAt = exp
	u := store.User{Name: n.Name, DisplayName: n.DisplayName, Groups: n.Groups, ExpiresAt: n.ExpiresAt, Hours: n.Hours}
	if n.Password != nil {
		if err := CheckPassword(n.Password); err != nil {
			return err
		}
		h, err := s.Hasher.Hash(ctx, n.Password)
		if err != nil {
			return err
		}
		u.PasswordHash = h
	}
	detail := fmt.Sprintf("user added; groups %v", n.Groups)
	keepNT := false
	if n.Password != nil {
		var err error
		if keepNT, err = s.mschapAllowed(ctx); err != nil {
			return err
		}
		if keepNT {
			detail += "; NT hash kept for MS-CHAPv2"
		}
	}
	if !n.ExpiresAt.IsZero() {
		detail += "; expires " + n.ExpiresAt.Format(time.RFC3339)
	}
	if n.Hours != "" {
		detail += "; hours " + n.Hours
	}
	err = s.change(ctx, audit.Entry{User: n.Name, Reason: "user_add", Detail: detail}, func(tx *store.Tx) error {
		id, err := tx.CreateUser(ctx, u, s.Now())
		if err != nil || !keepNT {
			return err
		}
		nt := passwd.NTHash(n.Password)
		defer clear(nt[:])
		return tx.SetNTHash(ctx, id, nt[:], s.Now())
	})
	if errors.Is(err, store.ErrConflict) {
		return invalid("a user named %q already exists", n.Name)
	}
	return err
}

func (s *Service) checkGroups(groups []string) error {
	for _, g := range groups {
		if err := CheckName("group", g); err != nil {
			return err
		}
	}
	return nil
}

// Users lists users.
func (s *Service) Users(ctx context.Context) ([]store.User, error) { return s.Store.Users(ctx) }

// UserEdit is a change to a user; nil fields stay as they are.
type UserEdit struct {
	DisplayName *string
	Groups      *[]string
	Disabled    *bool
	ExpiresAt   *time.Time // zero time clears the expiry
	// Expires is the expiry as typed (ParseExpiry: a date is the end of
	// that day in the site's zone; empty or "never" clears it); it
	// replaces ExpiresAt.
	Expires  *string
	Hours    *string
	Password secrets.Secret
	Unlock   bool
	// Version, when non-zero, must match the stored user (a lost update
	// is refused instead of silently overwriting another admin's change).
	Version int64
}

// EditUser applies e to the user called name.
func (s *Service) EditUser(ctx context.Context, name string, e UserEdit) error {
	var what []string
	if e.Expires != nil {
		var at time.Time
		if e.ExpiresAt != nil {
			at = *e.ExpiresAt
		}
		exp, err := s.expiry(ctx, *e.Expires, at)
		if err != nil {
			return err
		}
		e.ExpiresAt = &exp
	}
	if e.Groups != nil {
		if err := s.checkGroups(*e.Groups); err != nil {
			return err
		}
		what = append(what, fmt.Sprintf("groups %v", *e.Groups))
	}
	if e.Hours != nil {
		if _, err := policy.ParseHours(*e.Hours); err != nil {
			return invalid("%v", err)
		}
		what = append(what, fmt.Sprintf("hours %q", *e.Hours))
	}
	if e.DisplayName != nil {
		if len(*e.DisplayName) > 128 || strings.ContainsFunc(*e.DisplayName, unicode.IsControl) {
			return invalid("the display name must be at most 128 characters without control characters")
		}
		what = append(what, "display name")
	}
	var hash string
	var keepNT bool
	if e.Password != nil {
		if err := CheckPassword(e.Password); err != nil {
			return err
		}
		h, err := s.Hasher.Hash(ctx, e.Password)
		if err != nil {
			return err
		}
		hash = h
		what = append(what, "password reset")
		if keepNT, err = s.mschapAllowed(ctx); err != nil {
			return err
		}
		if keepNT {
			what = append(what, "NT hash kept for MS-CHAPv2")
		}
	}
	if e.Disabled != nil {
		what = append(what, map[bool]string{true: "disabled", false: "enabled"}[*e.Disabled])
	}
	if e.ExpiresAt != nil {
		if e.ExpiresAt.IsZero() {
			what = append(what, "no expiry")
		} else {
			what = append(what, "expires "+e.ExpiresAt.Format(time.RFC3339))
		}
	}
	if e.Unlock {
		what = append(what, "unlocked")
	}
	if len(what) == 0 {
		return invalid("nothing to change")
	}
	return s.change(ctx, audit.Entry{User: name, Reason: "user_edit", Detail: strings.Join(what, "; ")}, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no user %q", name)
		}
		if err != nil {
			return err
		}
		if e.Version != 0 && e.Version != u.Version {
			return fmt.Errorf("user %q was changed by someone else meanwhile; reload and try again: %w", name, store.ErrConflict)
		}
		if e.DisplayName != nil {
			u.DisplayName = *e.DisplayName
		}
		if e.Disabled != nil {
			if *e.Disabled && !u.Disabled {
				// Sessions open now end at their NAS (RFC 5176, docs/coa.md).
				if err := tx.AddPostureEvent(ctx, store.PostureEvent{Kind: store.EventUserDisabled, UserName: u.Name, Detail: "disabled by " + s.Actor}, s.Now()); err != nil {
					return err
				}
			}
			u.Disabled = *e.Disabled
		}
		if e.ExpiresAt != nil {
			u.ExpiresAt = *e.ExpiresAt
		}
		if e.Hours != nil {
			u.Hours = *e.Hours
		}
		if hash != "" {
			u.PasswordHash = hash
		}
		if err := tx.UpdateUser(ctx, u, s.Now()); err != nil {
			return err
		}
		if e.Groups != nil {
			if err := tx.SetUserGroups(ctx, u.ID, *e.Groups); err != nil {
				return err
			}
		}
		if e.Disabled != nil && *e.Disabled {
			// A disabled user must not get in from the credential cache.
			if err := tx.DeleteCachedVerifiers(ctx, u.ID, ""); err != nil {
				return err
			}
		}
		if hash != "" {
			// The NT hash follows the password, or goes: one of the old
			// password must never outlive it.
			if keepNT {
				nt := passwd.NTHash(e.Password)
				defer clear(nt[:])
				err = tx.SetNTHash(ctx, u.ID, nt[:], s.Now())
			} else {
				err = tx.DeleteNTHash(ctx, u.ID)
			}
			if err != nil {
				return err
			}
		}
		if e.Unlock || hash != "" {
			return tx.ResetFailures(ctx, u.ID)
		}
		return nil
	})
}

// DeleteUser removes a user with its factor and devices.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	return s.change(ctx, audit.Entry{User: name, Reason: "user_delete", Detail: "user deleted"}, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no user %q", name)
		}
		if err != nil {
			return err
		}
		if !u.Disabled {
			// As for a disable: the user's open sessions end now.
			if err := tx.AddPostureEvent(ctx, store.PostureEvent{Kind: store.EventUserDisabled, UserName: u.Name, Detail: "deleted by " + s.Actor}, s.Now()); err != nil {
				return err
			}
		}
		return tx.DeleteUser(ctx, u.ID)
	})
}

// ---- clients

// NewClient describes a RADIUS client to add.
type NewClient struct {
	Door    appliance.Door // "" means RADIUS
	Name    string
	Address string         // an IP address or a CIDR range
	Secret  secrets.Secret // empty: generate one
	Policy  policy.Policy
}

// MinSecret is the shortest shared secret accepted. RADIUS hides passwords
// with MD5 over the secret; a short one can be guessed offline from one
// captured request.
const MinSecret = 16

// ParseAddress reads an IP address (a /32 or /128) or a CIDR range.
func ParseAddress(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Masked() != p {
			return netip.Prefix{}, invalid("%s has host bits set; did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, invalid("%q is not an IP address or a network like 192.168.10.0/24", s)
}

// GenerateSecret returns a random 32-character secret of letters and
// digits (about 190 bits), easy to type into a NAS's web page.
func GenerateSecret(rnd io.Reader) (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	if rnd == nil {
		rnd = rand.Reader
	}
	var b strings.Builder
	for range 32 {
		n, err := rand.Int(rnd, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}

// AddClient adds a RADIUS client and returns its shared secret (generated
// unless given).
func (s *Service) AddClient(ctx context.Context, n NewClient) (secrets.Secret, error) {
	if err := CheckName("client", n.Name); err != nil {
		return nil, err
	}
	prefix, err := ParseAddress(n.Address)
	if err != nil {
		return nil, err
	}
	if err := n.Policy.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	if err := s.checkUpstream(ctx, n.Policy.Upstream); err != nil {
		return nil, err
	}
	door := n.Door
	if door == "" {
		door = appliance.DoorRADIUS
	}
	if door != appliance.DoorRADIUS && door != appliance.DoorLDAP {
		return nil, invalid("the door must be radius or ldap, not %q", door)
	}
	secret := n.Secret
	if door == appliance.DoorLDAP {
		// LDAP clients have no shared secret: the bind accounts and the
		// users' own passwords authenticate them.
		if len(secret) > 0 {
			return nil, invalid("an LDAP client has no shared secret (add a bind account for the EHR instead)")
		}
		secret = secrets.Secret{}
	} else if len(secret) == 0 {
		g, err := GenerateSecret(s.Rand)
		if err != nil {
			return nil, err
		}
		secret = secrets.Secret(g)
	} else if err := checkSecret(secret); err != nil {
		return nil, err
	}
	c := store.Client{Name: n.Name, Door: string(door), Prefix: prefix, Secret: secret, Policy: n.Policy}
	kind := "RADIUS"
	if door == appliance.DoorLDAP {
		kind = "LDAP"
	}
	err = s.change(ctx, audit.Entry{Client: n.Name, Reason: "client_add", Detail: fmt.Sprintf("%s client %s added; %s", kind, prefix, describePolicy(n.Policy))}, func(tx *store.Tx) error {
		_, err := tx.CreateClient(ctx, c, s.Now())
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, invalid("a client with the name %q or the address %s already exists", n.Name, prefix)
	}
	return secret, err
}

func checkSecret(secret []byte) error {
	switch {
	case len(secret) < MinSecret:
		return invalid("the shared secret is shorter than %d characters; leave it out and one will be generated", MinSecret)
	case len(secret) > 128:
		return invalid("the shared secret is longer than 128 characters")
	case strings.ContainsFunc(string(secret), func(r rune) bool { return r < 0x21 || r > 0x7e }):
		return invalid("the shared secret may only contain printable ASCII without spaces (many NASes accept nothing else)")
	}
	return nil
}

func describePolicy(p policy.Policy) string {
	d := fmt.Sprintf("upstream %s (failmode %s), mfa %s (%s), device binding %v, allowed groups %v, %d group rules, message-authenticator required %v",
		p.Upstream, p.Failmode, p.MFA, p.Style, p.RequireDevice, p.AllowedGroups, len(p.Rules), p.RequireMessageAuthenticator)
	if p.AllowPlainLDAP {
		d += ", plain LDAP binds allowed"
	}
	if p.MFARemember > 0 {
		d += fmt.Sprintf(", codes remembered %ds", p.MFARemember)
	}
	d += fmt.Sprintf(", EAP methods %s, MS-CHAPv2 allowed %v, EAP identity %s", strings.Join(p.EAPAllowed(), ","), p.AllowMSCHAP, EAPIdentity(p))
	if p.Push.Provider != "" {
		d += fmt.Sprintf(", push %s (%d group choices, mode %s, held at most %ds, fallback %s)", p.Push.Provider, len(p.Push.Groups), p.Push.EffectiveMode(), p.Push.BudgetSeconds(), p.Push.Fallback)
	}
	return d
}

// EAPIdentity is a policy's outer identity rule as shown: "any" when unset.
func EAPIdentity(p policy.Policy) string {
	if p.EAPIdentity == "" {
		return policy.EAPIdentityAny
	}
	return p.EAPIdentity
}

// mschapAllowed reports whether any client allows MS-CHAPv2: only then is
// an NT hash kept at a password set.
func (s *Service) mschapAllowed(ctx context.Context) (bool, error) {
	cs, err := s.Store.Clients(ctx, "")
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if c.Policy.AllowMSCHAP {
			return true, nil
		}
	}
	return false, nil
}

// dropUnusedNTHashes deletes every kept NT hash once no client allows
// MS-CHAPv2 any more: nothing can use them then, and each is a
// password-equivalent (docs/mschap.md).
func (s *Service) dropUnusedNTHashes(ctx context.Context) error {
	if on, err := s.mschapAllowed(ctx); on || err != nil {
		return err
	}
	var n int64
	err := s.Store.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if n, err = tx.DeleteAllNTHashes(ctx); err != nil || n == 0 {
			return err
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindAdmin, Actor: s.Actor, Outcome: "changed", Reason: "nt_hash_drop",
			Detail: fmt.Sprintf("%d NT hashes deleted: no client allows MS-CHAPv2 any more", n)})
		return err
	})
	if err != nil {
		return fmt.Errorf("the change is saved, but the NT hashes no client needs any more could not be deleted: %w", err)
	}
	return nil
}

func (s *Service) checkUpstream(ctx context.Context, name string) error {
	if name == "local" {
		return nil
	}
	if _, err := s.Store.UpstreamByName(ctx, name); errors.Is(err, store.ErrNotFound) {
		return invalid("there is no upstream %q (add it with 'clinicgate upstream add', or use local)", name)
	} else if err != nil {
		return err
	}
	return nil
}

// Clients lists the clients of every door.
func (s *Service) Clients(ctx context.Context) ([]store.Client, error) {
	return s.Store.Clients(ctx, "")
}

// RemoveClient deletes a client.
func (s *Service) RemoveClient(ctx context.Context, name string) error {
	err := s.change(ctx, audit.Entry{Client: name, Reason: "client_remove", Detail: "client removed"}, func(tx *store.Tx) error {
		return tx.DeleteClient(ctx, name)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no client %q", name)
	}
	if err != nil {
		return err
	}
	return s.dropUnusedNTHashes(ctx)
}

// ClientEdit changes a client; nil fields stay.
type ClientEdit struct {
	Address *string
	Secret  secrets.Secret
	// Policy changes the client's policy; an error aborts the edit.
	Policy  func(*policy.Policy) error
	Version int64
}

// EditClient applies e to the client called name.
func (s *Service) EditClient(ctx context.Context, name string, e ClientEdit) error {
	if e.Secret != nil {
		if err := checkSecret(e.Secret); err != nil {
			return err
		}
	}
	var prefix netip.Prefix
	if e.Address != nil {
		p, err := ParseAddress(*e.Address)
		if err != nil {
			return err
		}
		prefix = p
	}
	var detail string
	err := s.Store.WithTx(ctx, func(tx *store.Tx) error {
		c, err := tx.ClientByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no client %q", name)
		}
		if err != nil {
			return err
		}
		if e.Version != 0 && e.Version != c.Version {
			return fmt.Errorf("client %q was changed by someone else meanwhile; reload and try again: %w", name, store.ErrConflict)
		}
		var what []string
		if e.Address != nil {
			c.Prefix = prefix
			what = append(what, "address "+prefix.String())
		}
		if e.Secret != nil {
			c.Secret = e.Secret
			what = append(what, "shared secret replaced")
		}
		if e.Policy != nil {
			if err := e.Policy(&c.Policy); err != nil {
				return err
			}
			if err := c.Policy.Validate(); err != nil {
				return invalid("%v", err)
			}
			if err := s.checkUpstream(ctx, c.Policy.Upstream); err != nil {
				return err
			}
			if err := s.checkPushProviders(ctx, c.Policy.Push); err != nil {
				return err
			}
			what = append(what, "policy: "+describePolicy(c.Policy))
		}
		if len(what) == 0 {
			return invalid("nothing to change")
		}
		detail = strings.Join(what, "; ")
		if err := tx.UpdateClient(ctx, c, s.Now()); err != nil {
			if errors.Is(err, store.ErrConflict) && e.Address != nil {
				return invalid("another client already has the address %s", prefix)
			}
			return err
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindAdmin, Actor: s.Actor, Outcome: "changed", Client: name, Reason: "client_edit", Detail: detail})
		return err
	})
	if err != nil || e.Policy == nil {
		return err
	}
	return s.dropUnusedNTHashes(ctx)
}

// ---- MFA

// Enrolment is what an operator hands to the user once.
type Enrolment struct {
	URI    string // otpauth://
	Secret string // base32, for typing in by hand or oathtool
}

// EnrollTOTP gives the user a new TOTP seed (replacing any old one).
func (s *Service) EnrollTOTP(ctx context.Context, name string) (Enrolment, error) {
	seed, err := mfa.NewSeed(s.Rand)
	if err != nil {
		return Enrolment{}, err
	}
	var out Enrolment
	err = s.change(ctx, audit.Entry{User: name, Reason: "mfa_enroll", Detail: "TOTP enrolled (new seed)"}, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no user %q", name)
		}
		if err != nil {
			return err
		}
		out = Enrolment{
			URI:    mfa.URI(s.Issuer, u.Name, seed, mfa.DefaultDigits, mfa.DefaultPeriod, mfa.DefaultAlgorithm),
			Secret: mfa.Base32(seed),
		}
		return tx.SetTOTP(ctx, store.TOTP{UserID: u.ID, Seed: seed, Digits: mfa.DefaultDigits, Period: mfa.DefaultPeriod, Algorithm: mfa.DefaultAlgorithm}, s.Now())
	})
	return out, err
}

// ShowTOTP gives the user's TOTP enrolment again, as EnrollTOTP gave it,
// while no code of it has been accepted yet (the user has not confirmed
// it by logging in): a contractor whose QR code scrolled away, or whose
// user's phone died during enrolment, need not make a new seed. Once a
// code was accepted the seed is never shown again. Audited.
func (s *Service) ShowTOTP(ctx context.Context, name string) (Enrolment, error) {
	u, err := s.Store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Enrolment{}, invalid("there is no user %q", name)
	}
	if err != nil {
		return Enrolment{}, err
	}
	t, err := s.Store.TOTP(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return Enrolment{}, invalid("%s has no TOTP enrolment: enrol one", name)
	}
	if err != nil {
		return Enrolment{}, err
	}
	if t.LastStep != 0 {
		return Enrolment{}, invalid("%s has already logged in with a code of this enrolment: its secret is not shown again (enrol a new one if the phone was lost)", name)
	}
	// The showing is audited before the secret leaves the service.
	err = s.change(ctx, audit.Entry{User: u.Name, Reason: "mfa_show", Detail: "TOTP secret shown again (not yet confirmed by a login)"}, func(*store.Tx) error { return nil })
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{URI: mfa.URI(s.Issuer, u.Name, t.Seed, t.Digits, t.Period, t.Algorithm), Secret: mfa.Base32(t.Seed)}, nil
}

// ResetMFA removes the user's factor.
func (s *Service) ResetMFA(ctx context.Context, name string) error {
	return s.change(ctx, audit.Entry{User: name, Reason: "mfa_reset", Detail: "TOTP enrolment removed"}, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no user %q", name)
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteTOTP(ctx, u.ID); errors.Is(err, store.ErrNotFound) {
			return invalid("user %q has no enrolled factor", name)
		} else if err != nil {
			return err
		}
		return nil
	})
}

// ---- devices

// AddDevice binds a MAC address to a user.
func (s *Service) AddDevice(ctx context.Context, mac, user, description string) (string, error) {
	norm, err := policy.NormalizeMAC(mac)
	if err != nil {
		return "", invalid("%q: %v", mac, err)
	}
	if len(description) > 128 || strings.ContainsFunc(description, unicode.IsControl) {
		return "", invalid("the description must be at most 128 characters without control characters")
	}
	err = s.change(ctx, audit.Entry{User: user, Device: norm, Reason: "device_add", Detail: "device bound: " + description}, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("there is no user %q", user)
		}
		if err != nil {
			return err
		}
		_, err = tx.AddDevice(ctx, store.Device{MAC: norm, UserID: u.ID, Description: description}, s.Now())
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return "", invalid("the device %s is already registered", norm)
	}
	return norm, err
}

// RemoveDevice unbinds a MAC address.
func (s *Service) RemoveDevice(ctx context.Context, mac string) error {
	norm, err := policy.NormalizeMAC(mac)
	if err != nil {
		return invalid("%q: %v", mac, err)
	}
	err = s.change(ctx, audit.Entry{Device: norm, Reason: "device_remove", Detail: "device removed"}, func(tx *store.Tx) error {
		return tx.DeleteDevice(ctx, norm)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("no device %s is registered", norm)
	}
	return err
}

// ---- settings

// SetSetting changes a site setting.
func (s *Service) SetSetting(ctx context.Context, key, value string) error {
	if err := appliance.CheckSetting(key, value); err != nil {
		return invalid("%v", err)
	}
	return s.change(ctx, audit.Entry{Reason: "setting", Detail: fmt.Sprintf("%s = %q", key, value)}, func(tx *store.Tx) error {
		return tx.SetSetting(ctx, "site."+key, value)
	})
}

// SiteSettings returns the site settings that are not the LDAP door's
// (time zone, lockout, code prompt, TOTP window, cache), as stored or else
// their defaults, for the console.
func (s *Service) SiteSettings(ctx context.Context) (map[string]string, error) {
	all, err := appliance.SiteValues(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range all {
		if !strings.HasPrefix(k, "ldap_") {
			out[k] = v
		}
	}
	return out, nil
}

// LDAPSettings returns the LDAP door's site settings (the ldap_ keys), as
// stored or else their defaults, for the console.
func (s *Service) LDAPSettings(ctx context.Context) (map[string]string, error) {
	all, err := appliance.SiteValues(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, "ldap_") {
			out[k] = v
		}
	}
	return out, nil
}

// ---- reading, for the console

// AuditAfter returns up to limit audit entries after seq, oldest first.
func (s *Service) AuditAfter(ctx context.Context, seq int64, limit int) ([]store.AuditRow, error) {
	return s.Store.AuditRows(ctx, store.AuditFilter{AfterSeq: seq, Limit: limit})
}

// VerifyAudit walks the audit chain.
func (s *Service) VerifyAudit(ctx context.Context) (int64, []string, error) {
	rep, err := s.Audit.Verify(ctx)
	return rep.Entries, rep.Problems, err
}

// Fresh reports an appliance with no users and no clients.
func (s *Service) Fresh(ctx context.Context) (bool, error) {
	us, err := s.Store.Users(ctx)
	if err != nil || len(us) > 0 {
		return false, err
	}
	cs, err := s.Store.Clients(ctx, "")
	if err != nil {
		return false, err
	}
	return len(cs) == 0, nil
}

// Devices lists every bound device.
func (s *Service) Devices(ctx context.Context) ([]store.Device, error) {
	return s.Store.Devices(ctx, "")
}
