package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The SSH admin keys after the wizard (k on the Dashboard): who may open
// the console over SSH. The form lists the keys, adds one pasted from a
// .pub file, or removes one whose name is typed in full (the typed name is
// the confirmation). The last key is not removed from here: on an image
// without a screen that would shut every admin out.

// maxKeysShown bounds the list in the form's note, so it fits 80×24.
const maxKeysShown = 8

func (m Model) adminKeysCmd() tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		ks, err := m.p.Wizard.AdminKeys(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		return doneMsg{next: m.adminKeysForm(ks)}
	})
}

func (m Model) adminKeysForm(ks []admin.AdminKey) *form {
	f := newForm("SSH admin keys: who may open this console over SSH", func(v []string) tea.Cmd {
		name, line, drop := strings.TrimSpace(v[0]), strings.TrimSpace(v[1]), strings.TrimSpace(v[2])
		return m.act(func(ctx context.Context) doneMsg {
			switch {
			case drop != "" && (name != "" || line != ""):
				return doneMsg{err: fmt.Errorf("%w: add a key or remove one, not both at once", admin.ErrInvalid)}
			case drop != "":
				found := false
				for _, k := range ks {
					found = found || k.Name == drop
				}
				if !found {
					return doneMsg{err: fmt.Errorf("%w: there is no admin %q (type the name exactly as listed)", admin.ErrInvalid, drop)}
				}
				if len(ks) == 1 {
					return doneMsg{err: fmt.Errorf("%w: %s holds the last key: add another admin's key first, or nobody can open the console over SSH", admin.ErrInvalid, drop)}
				}
				if err := m.p.Wizard.RemoveAdminKey(ctx, drop); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "SSH key of admin " + drop + " removed: a session of theirs already open stays until it ends"}
			case name == "" && line == "":
				return doneMsg{text: "SSH admin keys: nothing changed"}
			case name == "" || line == "":
				return doneMsg{err: fmt.Errorf("%w: give both the admin's name and their public key", admin.ErrInvalid)}
			}
			fp, err := m.p.Wizard.AddAdminKey(ctx, name, line)
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "SSH key " + fp + " added for admin " + name}
		})
	},
		field("add name", "the admin's name, e.g. j.smith (empty: add nobody)", false, 32),
		field("add key", "paste one line of their .pub file (ssh-ed25519 AAAA… or ecdsa, rsa ≥2048)", false, 4096),
		field("remove", "type the name of an admin to remove, exactly as listed", false, 32))
	if len(ks) == 0 {
		f.note = []string{"No admin key yet: nobody can open the console over SSH."}
	}
	for i, k := range ks {
		if i == maxKeysShown {
			f.note = append(f.note, fmt.Sprintf("… and %d more (clinicgate admin list-keys)", len(ks)-maxKeysShown))
			break
		}
		f.note = append(f.note, fmt.Sprintf("%-16s %s  %s", clip(k.Name, 16), clip(k.Fingerprint, 50), m.clock().day(k.CreatedAt)))
	}
	return f
}
