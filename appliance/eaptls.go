package appliance

// EAP-TLS, a branch of the password stage: the EAP server verified the
// certificate's chain, dates and CRL; the gate checks the appliance's own
// revocation list and finds whose certificate it is. No upstream is asked
// (there is no password), so an upstream's users need a local record
// already, from an earlier login or a directory sync.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// certFactor maps the verified certificate to a user.
func (g *Gate) certFactor(ctx context.Context, r *run) (verdict, error) {
	c := r.req.Cert
	fp, fpErr := policy.NormalizeFingerprint(c.Fingerprint)
	serial, _ := policy.NormalizeSerial(c.Serial)
	rev, err := g.store.Revoked(ctx, fp, serial)
	if err == nil {
		why := ""
		if rev.Reason != "" {
			why = " (" + rev.Reason + ")"
		}
		r.step("certificate", fmt.Sprintf("%s %s was revoked on the appliance at %s%s", rev.Kind, rev.Value, rev.RevokedAt.Format(time.RFC3339), why))
		return r.refuse(ReasonCertRevoked, MsgDenied), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return stop, err
	}
	u, how, err := g.certUser(ctx, c, fp, fpErr == nil)
	if errors.Is(err, store.ErrNotFound) {
		r.step("certificate", fmt.Sprintf("no user for the certificate of %q (issuer %q): its fingerprint is not registered ('clinicgate cert register') and no user is named after its UPN, e-mail or common name",
			auditName(c.Subject), auditName(c.Issuer)))
		return r.refuse(ReasonUnknownUser, MsgDenied), nil
	}
	if err != nil {
		return stop, err
	}
	r.step("certificate", how)
	if u.LockedUntil.After(r.now) {
		r.step("lockout", "locked until "+u.LockedUntil.Format(time.RFC3339))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	}
	if r.req.User != "" && !strings.EqualFold(r.req.User, u.Name) {
		r.d.Notes = append(r.d.Notes, "eap_identity:"+auditName(r.req.User))
	}
	r.user = u
	r.d.User, r.d.Groups = u.Name, u.Groups
	return pass, nil
}

// certUser finds the user a certificate belongs to: a registered
// fingerprint, else a SAN UPN, else a SAN e-mail address, else the
// subject's common name, each tried as a user name as it is and then the
// part before '@'. how says which matched.
func (g *Gate) certUser(ctx context.Context, c *Certificate, fp string, fpOK bool) (store.User, string, error) {
	if fpOK {
		id, err := g.store.CertOwner(ctx, fp)
		if err == nil {
			u, err := g.store.UserByID(ctx, id)
			return u, "registered certificate " + fp + " belongs to " + u.Name, err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.User{}, "", err
		}
	}
	type source struct{ what, value string }
	var names []source
	for _, v := range c.UPNs {
		names = append(names, source{"SAN UPN", v})
	}
	for _, v := range c.Emails {
		names = append(names, source{"SAN e-mail", v})
	}
	if c.Subject != "" {
		names = append(names, source{"subject CN", c.Subject})
	}
	for _, n := range names {
		tries := []string{n.value}
		if local, _, ok := strings.Cut(n.value, "@"); ok && local != "" {
			tries = append(tries, local)
		}
		for i, name := range tries {
			if !validUserName(name) {
				continue
			}
			u, err := g.store.UserByName(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return store.User{}, "", err
			}
			how := fmt.Sprintf("certificate %s %q is user %s", n.what, auditName(n.value), u.Name)
			if i > 0 {
				how = fmt.Sprintf("certificate %s %q: the part before '@' is user %s", n.what, auditName(n.value), u.Name)
			}
			return u, how, nil
		}
	}
	return store.User{}, "", store.ErrNotFound
}
