package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// c on the Devices pane: the certificate and MDM jobs that were CLI-only
// ('cert register|unregister|revoke', 'scep challenges|withdraw', 'mdm
// remove'),
// in one form, one job per save. Removing an MDM takes its name typed in
// full, as every removal does.

// DeviceJobs is what the form acts through (the admin service).
type DeviceJobs interface {
	SCEPChallenges(ctx context.Context) ([]admin.SCEPPending, error)
	WithdrawSCEPChallenge(ctx context.Context, id int64) error
	RegisterCert(ctx context.Context, user, fingerprint string) (string, error)
	UnregisterCert(ctx context.Context, fingerprint string) error
	MDMSources(ctx context.Context) ([]admin.MDMStatus, error)
	RemoveMDM(ctx context.Context, name string) (int, error)
}

// CertFileRegistrar registers a certificate from a file uploaded into
// incoming/ over SFTP ('cert register --file').
type CertFileRegistrar interface {
	RegisterCertFile(ctx context.Context, user, file string) (string, error)
}

// CertLister lists the registered certificates and the revocations
// ('cert list'), so the form can show what unregister takes.
type CertLister interface {
	Certs(ctx context.Context) ([]admin.UserCert, []admin.Revocation, error)
}

// The challenges and certificates listed, so that the form, its notes
// and an error under it fit 80×24 however many there are.
const (
	maxChallengesShown = 3
	maxCertsShown      = 2
)

func (m Model) deviceJobsCmd() tea.Cmd {
	j, ok := m.p.Devices.(DeviceJobs)
	if !ok {
		return nil
	}
	return m.act(func(ctx context.Context) doneMsg {
		chs, err := j.SCEPChallenges(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		mdms, err := j.MDMSources(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		var certs []admin.UserCert
		var revs []admin.Revocation
		if l, ok := m.p.Devices.(CertLister); ok {
			if certs, revs, err = l.Certs(ctx); err != nil {
				return doneMsg{err: err}
			}
		}
		return doneMsg{next: m.deviceJobsForm(j, chs, mdms, certs, revs)}
	})
}

func (m Model) deviceJobsForm(j DeviceJobs, chs []admin.SCEPPending, mdms []admin.MDMStatus, certs []admin.UserCert, revs []admin.Revocation) *form {
	f := newForm("Certificates, SCEP challenges and MDMs (one job per save)", func(v []string) tea.Cmd {
		reg, unreg, revoke, withdraw, rmMDM := strings.Fields(v[0]), strings.TrimSpace(v[1]), strings.Fields(v[2]), strings.TrimSpace(v[3]), strings.TrimSpace(v[4])
		// A registered certificate's number in the list stands for its
		// fingerprint (95 characters do not fit the screen).
		byNumber := func(s string) string {
			if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= len(certs) {
				return certs[n-1].Fingerprint
			}
			return s
		}
		unreg = byNumber(unreg)
		return m.act(func(ctx context.Context) doneMsg {
			jobs := 0
			for _, s := range []bool{len(reg) > 0, unreg != "", len(revoke) > 0, withdraw != "", rmMDM != ""} {
				if s {
					jobs++
				}
			}
			switch {
			case jobs == 0:
				return doneMsg{text: "devices: nothing changed"}
			case jobs > 1:
				return doneMsg{err: fmt.Errorf("%w: one job per save: fill one field", admin.ErrInvalid)}
			case len(reg) > 0:
				if len(reg) != 2 {
					return doneMsg{err: fmt.Errorf("%w: register: the user, a space, then the certificate's SHA-256 fingerprint or its file's name", admin.ErrInvalid)}
				}
				var fp string
				var err error
				if certFileName(reg[1]) {
					fr, ok := m.p.Devices.(CertFileRegistrar)
					if !ok {
						return doneMsg{err: fmt.Errorf("%w: register: this daemon takes a fingerprint only", admin.ErrInvalid)}
					}
					fp, err = fr.RegisterCertFile(ctx, reg[0], reg[1])
				} else {
					fp, err = j.RegisterCert(ctx, reg[0], reg[1])
				}
				if err != nil {
					return doneMsg{err: err}
				}
				// The fingerprint's start: all 95 characters would push
				// the rest off an 80-column line.
				return doneMsg{text: "certificate " + fpStart(fp) + "… registered to " + reg[0] + ": EAP-TLS logs it in as them"}
			case len(revoke) > 0:
				// 'cert revoke --reason': the reason goes to the audit
				// and the list of revocations.
				// A revocation is for good: the reason, typed after the
				// certificate, is what makes it deliberate (a number
				// alone is two keys).
				reason := strings.Join(revoke[1:], " ")
				if reason == "" {
					return doneMsg{err: fmt.Errorf("%w: revoke: the certificate, then why (e.g. 1 laptop stolen); nothing was revoked", admin.ErrInvalid)}
				}
				r, err := m.p.Devices.RevokeCert(ctx, byNumber(revoke[0]), reason)
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: fmt.Sprintf("certificate %s %s revoked (%s): EAP-TLS refuses it from now on", r.Kind, clip(r.Value, 24), reason)}
			case unreg != "":
				if err := j.UnregisterCert(ctx, unreg); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "certificate " + unreg + " unregistered (r revokes a certificate for good)"}
			case withdraw != "":
				id, err := strconv.ParseInt(withdraw, 10, 64)
				if err != nil {
					return doneMsg{err: fmt.Errorf("%w: withdraw: the challenge's number, as listed", admin.ErrInvalid)}
				}
				if err := j.WithdrawSCEPChallenge(ctx, id); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: fmt.Sprintf("SCEP challenge %d withdrawn: it enrols nothing more", id)}
			}
			n, err := j.RemoveMDM(ctx, rmMDM)
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: fmt.Sprintf("MDM %s removed with the %d device records it brought", rmMDM, n)}
		})
	},
		field("register", "USER FINGERPRINT or USER FILE (.pem/.cer in incoming/)", false, 4200),
		field("unregister", "a registered certificate's number below, or its SHA-256 fingerprint", false, 100),
		field("revoke", "cert number, fingerprint or serial, then why: for good", false, 300),
		field("withdraw", "the number of a SCEP challenge below, to make it unusable", false, 12),
		field("remove MDM", "type an MDM's name below to remove it and its device records", false, 16))
	if len(chs) == 0 {
		f.note = append(f.note, "SCEP challenges: none usable (n on Devices makes one)")
	}
	for i, c := range chs {
		if i == maxChallengesShown {
			f.note = append(f.note, fmt.Sprintf("… and %d more, not shown at 80×24 (the Audit pane has each: scep_challenge)", len(chs)-maxChallengesShown))
			break
		}
		f.note = append(f.note, fit(fmt.Sprintf("challenge %d: %s, %d use(s) left, until %s", c.ID, dashIfBlank(c.DeviceName), c.UsesLeft, m.clock().minute(c.ExpiresAt)), 78))
	}
	var names []string
	for _, s := range mdms {
		names = append(names, s.Name)
	}
	if len(names) > 0 {
		f.note = append(f.note, "MDMs: "+strings.Join(names, ", "))
	}
	// 'cert list': the registered certificates, then the revocations.
	if len(certs) == 0 {
		f.note = append(f.note, "Registered certificates: none (register one below)")
	}
	for i, c := range certs {
		if i == maxCertsShown {
			f.note = append(f.note, fmt.Sprintf("… and %d more, not shown: unregister or revoke those by fingerprint", len(certs)-maxCertsShown))
			break
		}
		f.note = append(f.note, fit(fmt.Sprintf("cert %d: %s %s… since %s", i+1, clip(c.UserName, 16), fpStart(c.Fingerprint), m.clock().day(c.CreatedAt)), 78))
	}
	if len(revs) > 0 {
		r := revs[0] // the newest
		why := ""
		if r.Reason != "" {
			why = " (" + r.Reason + ")"
		}
		f.note = append(f.note, fit(fmt.Sprintf("Revoked: %d; the last %s %s on %s%s", len(revs), r.Kind, clip(r.Value, 24), m.clock().day(r.RevokedAt), why), 78))
	}
	return f
}

// certFileName says whether what follows the user in the register field
// names a file: a fingerprint is hex digits and colons, a file name has a
// dot or is a path.
func certFileName(s string) bool {
	return strings.ContainsAny(s, "./")
}

// fpStart is a fingerprint's first eight bytes, as the form shows it.
func fpStart(fp string) string { return fp[:min(len(fp), 23)] }

func dashIfBlank(s string) string {
	if s == "" {
		return "any device"
	}
	return s
}
