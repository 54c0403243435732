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
// ('cert register|unregister', 'scep challenges|withdraw', 'mdm remove'),
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
		return doneMsg{next: m.deviceJobsForm(j, chs, mdms)}
	})
}

func (m Model) deviceJobsForm(j DeviceJobs, chs []admin.SCEPPending, mdms []admin.MDMStatus) *form {
	f := newForm("Certificates, SCEP challenges and MDMs (one job per save)", func(v []string) tea.Cmd {
		reg, unreg, withdraw, rmMDM := strings.Fields(v[0]), strings.TrimSpace(v[1]), strings.TrimSpace(v[2]), strings.TrimSpace(v[3])
		return m.act(func(ctx context.Context) doneMsg {
			jobs := 0
			for _, s := range []bool{len(reg) > 0, unreg != "", withdraw != "", rmMDM != ""} {
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
					return doneMsg{err: fmt.Errorf("%w: register: the user, a space, then the certificate's SHA-256 fingerprint", admin.ErrInvalid)}
				}
				fp, err := j.RegisterCert(ctx, reg[0], reg[1])
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "certificate " + fp + " registered to " + reg[0] + ": EAP-TLS logs it in as them"}
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
		field("register", "USER FINGERPRINT: EAP-TLS logs this certificate in as USER", false, 200),
		field("unregister", "a registered certificate's SHA-256 fingerprint", false, 100),
		field("withdraw", "the number of a SCEP challenge below, to make it unusable", false, 12),
		field("remove MDM", "type an MDM's name below to remove it and its device records", false, 16))
	if len(chs) == 0 {
		f.note = append(f.note, "SCEP challenges: none usable (n on Devices makes one)")
	}
	for i, c := range chs {
		if i == 4 {
			f.note = append(f.note, fmt.Sprintf("… and %d more (clinicgate scep challenges)", len(chs)-4))
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
	return f
}

func dashIfBlank(s string) string {
	if s == "" {
		return "any device"
	}
	return s
}
