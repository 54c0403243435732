package tui

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/hostcfg"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// Backups (s on the Dashboard): make an encrypted backup now — the
// passphrase typed twice, masked — see the backups kept on the appliance
// with their sizes and times, how to fetch them over SFTP, and the state
// of the off-box replication. And, in the first-boot wizard, restoring a
// replaced appliance from a backup (ctrl+r on its first screen).

// BackupAdmin is what the Backups screen reads and does.
type BackupAdmin interface {
	Backups(ctx context.Context) ([]admin.BackupFile, error)
	CreateBackup(ctx context.Context, pass secrets.Secret, opts admin.BackupOptions) (admin.BackupFile, error)
	ReplicaSettings(ctx context.Context) (admin.Replica, bool, error)
	SetReplica(ctx context.Context, in admin.ReplicaInput) (admin.Replica, error)
	ReplicaOff(ctx context.Context) error
}

// RestoreAdmin restores a backup from the wizard (admin.StageRestore).
type RestoreAdmin interface {
	StageRestore(ctx context.Context, file string, pass secrets.Secret) (time.Time, error)
	StageRestoreFromReplica(ctx context.Context, in admin.ReplicaInput, keyBackup string, pass secrets.Secret) (time.Time, error)
}

// maxBackupsShown bounds the list so the screen fits 80×24.
const maxBackupsShown = 4

func (m Model) backupsCmd() tea.Cmd {
	b := m.p.Backup
	return m.act(func(ctx context.Context) doneMsg {
		list, err := b.Backups(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		r, on, err := b.ReplicaSettings(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		var rp *admin.Replica
		if on {
			rp = &r
		}
		return doneMsg{next: m.backupsForm(list, rp)}
	})
}

func (m Model) backupsForm(list []admin.BackupFile, rp *admin.Replica) *form {
	b := m.p.Backup
	f := newForm("Backups: an encrypted copy of the store and its key", func(v []string) tea.Cmd {
		a, again, usb := []byte(v[0]), []byte(v[1]), strings.EqualFold(strings.TrimSpace(v[2]), "yes")
		return m.act(func(ctx context.Context) doneMsg {
			switch {
			case len(a) == 0 && len(again) == 0 && usb:
				if len(list) == 0 {
					return doneMsg{err: fmt.Errorf("%w: no backup to copy yet: type a passphrase to make one", admin.ErrInvalid)}
				}
				return m.usbCopy(ctx, list[0].Name, "")
			case len(a) == 0 && len(again) == 0:
				return doneMsg{next: m.replicaForm(rp)}
			case !bytes.Equal(a, again):
				return doneMsg{err: fmt.Errorf("%w: the two passphrases differ; nothing was written", admin.ErrInvalid)}
			}
			bf, err := b.CreateBackup(ctx, secrets.Secret(a), admin.BackupOptions{})
			if err != nil {
				return doneMsg{err: err}
			}
			made := fmt.Sprintf("backup %s written (%s)", bf.Name, size(bf.Size))
			if usb {
				return m.usbCopy(ctx, bf.Name, made+"; ")
			}
			return doneMsg{text: made + "; fetch it over SFTP from /backups"}
		})
	},
		field("passphrase", "at least 12 characters; it alone opens the backup: keep it apart from it", true, 1024),
		field("again", "the same passphrase once more", true, 1024),
		field("usb", "yes: copy it (or, with no passphrase, the newest) to the USB stick plugged in", false, 3))
	f.note = append(f.note, m.replicaNote("Replication: ", rp)...)
	f.note = append(f.note, "(enter with no passphrase: the off-box replication's settings)")
	if len(list) == 0 {
		f.note = append(f.note, "No backup on the appliance yet: type a passphrase below to make one.")
	} else {
		f.note = append(f.note, fmt.Sprintf("On the appliance (the %d newest are kept):", admin.KeepBackups))
	}
	for i, bf := range list {
		if i == maxBackupsShown {
			f.note = append(f.note, fmt.Sprintf("  … and %d more (sftp lists them all: ls /backups)", len(list)-maxBackupsShown))
			break
		}
		f.note = append(f.note, fmt.Sprintf("  %-36s %9s  %s", clip(bf.Name, 36), size(bf.Size), m.clock().minute(bf.Created)))
	}
	f.note = append(f.note, "Fetch with an admin's SSH key: "+m.sftpHint())
	return f
}

// usbCopy asks the system helper to copy a backup to the USB stick
// plugged in (the console may not mount anything itself).
func (m Model) usbCopy(ctx context.Context, name, before string) doneMsg {
	if m.p.Wizard == nil {
		return doneMsg{err: fmt.Errorf("%w: this console cannot ask the system helper", admin.ErrInvalid)}
	}
	d := m.systemChanges(ctx, []hostcfg.Request{{Kind: hostcfg.KindUSBCopy, Package: name}})
	if d.err != nil {
		if before != "" {
			d.err = fmt.Errorf("%s, but %w", before+"not copied", d.err)
		}
		return d
	}
	d.text = before + d.text
	return d
}

// fetchOneBackupFromUSB has the system helper copy the stick's backups
// into incoming/ and returns the newest one's name.
func (m Model) fetchOneBackupFromUSB(ctx context.Context) (string, error) {
	if m.p.Wizard == nil {
		return "", fmt.Errorf("%w: this console cannot ask the system helper", admin.ErrInvalid)
	}
	d := m.systemChanges(ctx, []hostcfg.Request{{Kind: hostcfg.KindUSBFetch}})
	if d.err != nil {
		return "", d.err
	}
	if d.show != "" {
		return "", fmt.Errorf("%w: not an appliance image: mount the stick and give the backup's full path", admin.ErrInvalid)
	}
	var newest string
	for _, f := range strings.FieldsFunc(d.text, func(r rune) bool { return r == ' ' || r == ',' || r == ';' }) {
		if strings.HasPrefix(f, "clinicgate-") && strings.HasSuffix(f, ".cgbackup") && f > newest {
			newest = f
		}
	}
	if newest == "" {
		return "", fmt.Errorf("%w: the USB stick holds no backup (clinicgate-….cgbackup at its top)", admin.ErrInvalid)
	}
	return newest, nil
}

// replicaForm sets the off-box replication: where, and the login — an SSH
// key uploaded into /incoming over SFTP (no multi-line paste here), or a
// password. "off" turns it off. The appliance logs in and writes there
// before anything is saved, and pins the server's host key.
func (m Model) replicaForm(rp *admin.Replica) *form {
	b := m.p.Backup
	f := newForm("Off-box replication: every change copied to an SFTP server", func(v []string) tea.Cmd {
		target, keyFile, pw, hk := strings.TrimSpace(v[0]), strings.TrimSpace(v[1]), []byte(v[2]), strings.TrimSpace(v[3])
		return m.act(func(ctx context.Context) doneMsg {
			switch {
			case target == "" && rp == nil:
				return doneMsg{text: "off-box replication: nothing changed"}
			case target == "":
				return doneMsg{text: "off-box replication: nothing changed (type off to turn it off)"}
			case strings.EqualFold(target, "off"):
				if err := b.ReplicaOff(ctx); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "off-box replication turned off (what was copied stays on the server)"}
			}
			r, err := b.SetReplica(ctx, admin.ReplicaInput{Target: target, KeyFile: keyFile, Password: secrets.Secret(pw), HostKey: hk})
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "replicating to " + r.Target, show: "Off-box replication set: " + r.Target + "\n\n" +
				"The appliance logged in and wrote there. The server's host key is pinned:\n  " + r.HostFingerprint + "\n" +
				"Compare it with the server's own (ssh-keygen -lf its host key's .pub file);\n" +
				"a server whose key changes is refused. The daemon starts replicating\n" +
				"within seconds (it restarts itself: about a second without answers)."}
		})
	},
		field("replicate to", "user@host:port/path on an SFTP server (host:22//abs/path for an absolute one); off: stop", false, 512),
		field("key file", "an SSH private key uploaded into /incoming over SFTP (removed once sealed); empty: password", false, 255),
		field("password", "the SFTP password, when no key file is given", true, 512),
		field("host key", "the server's SHA256:… fingerprint to check (empty: the key seen now is pinned)", false, 128))
	f.note = append(m.replicaNote("Now: ", rp),
		"The replica holds no key: keep one encrypted backup off the box to restore it.")
	return f
}

// replicaNote is replicaLine under a heading, on two lines when it would
// not fit 80 columns: the state first, so that a long target never pushes
// "up to date" or "FAILING: …" off the screen.
func (m Model) replicaNote(head string, rp *admin.Replica) []string {
	line := head + m.replicaLine(rp)
	if rp == nil || len([]rune(line)) <= 78 {
		return []string{line}
	}
	state := strings.TrimPrefix(m.replicaLine(rp), rp.Target+": ")
	return []string{head + state, "  to " + rp.Target}
}

// replicaLine says in a line where the replica goes and how far it is.
func (m Model) replicaLine(rp *admin.Replica) string {
	if rp == nil {
		return "off"
	}
	s := rp.Target
	var st *admin.DaemonStatus
	if m.daemon != nil {
		st = m.daemon
	}
	switch {
	case st == nil || st.Replica == nil:
		return s + ": not running (the daemon starts it)"
	case st.Replica.LastError != "" && !st.Replica.ErrorAt.Before(st.Replica.LastReplicated):
		return s + ": FAILING: " + st.Replica.LastError
	case st.Replica.LastReplicated.IsZero():
		return s + ": not replicated yet"
	case st.Replica.Lag > time.Minute:
		return fmt.Sprintf("%s: %s behind (last %s)", s, st.Replica.Lag.Round(time.Second), m.clock().minute(st.Replica.LastReplicated))
	}
	return s + ": up to date (" + m.clock().stamp(st.Replica.LastReplicated) + ")"
}

// sshPort is the console's real SSH port (SFTP is served there too).
func (m Model) sshPort() string {
	if m.daemon != nil {
		if l, ok := m.daemon.Listener(admin.ListenSSH); ok {
			if _, p, err := net.SplitHostPort(l.Address); err == nil {
				return p
			}
		}
	}
	return "PORT"
}

// sftpHint is the command that fetches the backups.
func (m Model) sftpHint() string {
	return "sftp -P " + m.sshPort() + " you@APPLIANCE:/backups/"
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// restorer is the wizard's restore, when the console has one.
func (m Model) restorer() RestoreAdmin {
	r, _ := m.p.Wizard.(RestoreAdmin)
	return r
}

// wizardRestoreForm restores a replaced appliance from a backup: a file
// uploaded over SFTP into incoming/, or a path on a USB stick. The backup
// is checked whole before anything changes; the daemon then starts again
// on it, which ends this console.
func (m Model) wizardRestoreForm() *form {
	r := m.restorer()
	f := newForm("Welcome — restore a replaced appliance from a backup (esc: set up a new one)", func(v []string) tea.Cmd {
		file, pass := strings.TrimSpace(v[0]), []byte(v[1])
		target, keyFile, hostKey := strings.TrimSpace(v[2]), strings.TrimSpace(v[3]), strings.TrimSpace(v[4])
		return m.act(func(ctx context.Context) doneMsg {
			if strings.EqualFold(file, "usb") {
				// The console may not mount the stick: the system helper
				// copies its backups into incoming/ first.
				name, err := m.fetchOneBackupFromUSB(ctx)
				if err != nil {
					return doneMsg{err: err}
				}
				file = name
			}
			what := "The backup"
			var made time.Time
			var err error
			if target == "" {
				made, err = r.StageRestore(ctx, file, secrets.Secret(pass))
				what = "The backup made " + m.clock().full(made)
			} else {
				if keyFile == "" {
					return doneMsg{err: fmt.Errorf("%w: give the replica's SSH key file (uploaded into /incoming)", admin.ErrInvalid)}
				}
				_, err = r.StageRestoreFromReplica(ctx, admin.ReplicaInput{Target: target, KeyFile: keyFile, HostKey: hostKey}, file, secrets.Secret(pass))
				what = "The replica at " + target + ",\nwith the key from " + file + ","
			}
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "backup checked", show: what + " was checked:\n" +
				"passphrase, every byte, the key against the database, the audit chain.\n" +
				"The appliance now starts again on it; this console closes. Open it again\n" +
				"with an admin key of the restored appliance."}
		})
	},
		field("backup file", "its name in incoming/ (uploaded over SFTP), or usb: the one on the USB stick plugged in", false, 4096),
		field("passphrase", "the backup's passphrase", true, 1024),
		field("from replica", "empty: the backup itself; user@host:port/path: the newest replicated state (key from the backup)", false, 512),
		field("replica key", "the replica's SSH private key, uploaded into incoming/", false, 255),
		field("host key", "the replica server's SHA256:… fingerprint (empty: trusted as seen now)", false, 128))
	f.note = []string{
		"Upload it first: sftp -P " + m.sshPort() + " you@APPLIANCE, then: put FILE /incoming/",
		"(SFTP needs an admin SSH key: esc, add yours in step 2, then ctrl+r again)",
	}
	return f
}
