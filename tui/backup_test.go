package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// fakeBackups stands in for the admin service's backups and restore.
type fakeBackups struct {
	mu       sync.Mutex
	list     []admin.BackupFile
	replica  *admin.Replica
	made     []string // passphrases CreateBackup was called with
	restored []string // files StageRestore was called with
	sets     []admin.ReplicaInput
}

func (b *fakeBackups) Backups(context.Context) ([]admin.BackupFile, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]admin.BackupFile(nil), b.list...), nil
}

func (b *fakeBackups) CreateBackup(_ context.Context, pass secrets.Secret, _ admin.BackupOptions) (admin.BackupFile, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(pass) < 12 {
		return admin.BackupFile{}, errors.Join(admin.ErrInvalid, errors.New("passphrase refused: it must be at least 12 characters"))
	}
	b.made = append(b.made, string(pass))
	bf := admin.BackupFile{Name: "clinicgate-20261204-100000.cgbackup", Size: 48 << 10, Created: t0}
	b.list = append([]admin.BackupFile{bf}, b.list...)
	return bf, nil
}

func (b *fakeBackups) ReplicaSettings(context.Context) (admin.Replica, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.replica == nil {
		return admin.Replica{}, false, nil
	}
	return *b.replica, true, nil
}

func (b *fakeBackups) SetReplica(_ context.Context, in admin.ReplicaInput) (admin.Replica, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sets = append(b.sets, in)
	r := admin.Replica{Target: in.Target, HostFingerprint: "SHA256:fakehostkey", Auth: "key"}
	b.replica = &r
	return r, nil
}

func (b *fakeBackups) ReplicaOff(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replica = nil
	return nil
}

func (b *fakeBackups) StageRestore(_ context.Context, file string, pass secrets.Secret) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if string(pass) != "the right passphrase" {
		return time.Time{}, errors.Join(admin.ErrInvalid, errors.New("the passphrase does not open this backup"))
	}
	b.restored = append(b.restored, file)
	return t0, nil
}

func (b *fakeBackups) StageRestoreFromReplica(_ context.Context, in admin.ReplicaInput, keyBackup string, pass secrets.Secret) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restored = append(b.restored, in.Target+" key:"+in.KeyFile+" from "+keyBackup)
	return t0, nil
}

// wizardWithRestore is the fake's wizard with the restore operation.
type wizardWithRestore struct {
	fakeWizard
	*fakeBackups
}

// TestReplicaStateWithALongTarget: a replica on a long path keeps its
// state on an 80-column screen (it was cut off after the path).
func TestReplicaStateWithALongTarget(t *testing.T) {
	f := sample()
	target := "clinicgate-backup@nas.dyer-family-clinic.example:22//srv/replicas/clinicgate/front-office"
	f.status.Replica = &replica.Status{Target: target, LastReplicated: t0.Add(59 * time.Minute)}
	b := &fakeBackups{replica: &admin.Replica{Target: target, Auth: "key"}}
	p := f.panes()
	p.Backup = b
	tm := startPanes(t, p, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	waitFor(t, tm, "Backups", "Replication: up to date", "to "+target[:60])
	for range 3 { // no passphrase: the replication's settings
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "Off-box replication", "Now: up to date")
	s := screen(t, tm)
	if !strings.Contains(s, "up to date") {
		t.Errorf("the replication form cut the replica's state:\n%s", s)
	}
	for _, l := range strings.Split(s, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("a line wider than 80 columns: %q", l)
		}
	}
}

// s on the Dashboard: the backups with sizes and times, the replica's
// state, how to fetch them, and a backup made only when the passphrase is
// typed the same twice.
func TestBackupScreen(t *testing.T) {
	f := sample()
	f.status.Listeners = append(f.status.Listeners, admin.Listener{Door: admin.ListenSSH, Network: "tcp", Address: "0.0.0.0:2222"})
	f.status.Replica = &replica.Status{Target: "backup@192.0.2.10:22/cg", LastReplicated: t0.Add(59 * time.Minute)}
	b := &fakeBackups{
		list:    []admin.BackupFile{{Name: "clinicgate-20261203-220000.cgbackup", Size: 3 << 20, Created: t0.Add(-time.Hour)}},
		replica: &admin.Replica{Target: "backup@192.0.2.10:22/cg", Auth: "key"},
	}
	p := f.panes()
	p.Backup = b
	tm := startPanes(t, p, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	waitFor(t, tm, "Backups", "clinicgate-20261203-220000.cgbackup", "3.0 MiB", "backup@192.0.2.10:22/cg: up to date", "sftp -P 2222")
	tm.Type("a long passphrase")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("a long passphrasf")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) // usb: empty
	waitFor(t, tm, "the two passphrases differ")
	if len(b.made) != 0 {
		t.Fatalf("a backup was made with differing passphrases: %v", b.made)
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab}) // back to the second passphrase
	tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	tm.Type("e")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "backup clinicgate-20261204-100000.cgbackup written (48.0 KiB)")
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.made) != 1 || b.made[0] != "a long passphrase" {
		t.Fatalf("backups made: %v", b.made)
	}
	b.mu.Unlock()
	out := screen(t, tm)
	if strings.Contains(out, "a long passphrase") {
		t.Fatalf("the passphrase is on screen:\n%s", out)
	}
	b.mu.Lock()
}

// The replication is set from the console too (the images have no
// shell): enter with no passphrase opens its settings; the key is a file
// uploaded into /incoming.
func TestReplicationFromTheBackupScreen(t *testing.T) {
	f := sample()
	b := &fakeBackups{}
	p := f.panes()
	p.Backup = b
	tm := startPanes(t, p, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	waitFor(t, tm, "Replication: off")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "Off-box replication", "replicate to")
	tm.Type("backup@192.0.2.10:22/cg")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("replica_ed25519")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "replicating to backup@192.0.2.10:22/cg", "SHA256:fakehostkey")
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sets) != 1 || b.sets[0].KeyFile != "replica_ed25519" || b.sets[0].Target != "backup@192.0.2.10:22/cg" {
		t.Fatalf("replication set with %+v", b.sets)
	}
}

// The wizard's first screen offers the restore; a wrong passphrase is
// said in words and keeps the form; the right one restores and the
// console closes (the daemon starts again on the restored store); esc
// instead goes back to setting up a new appliance.
func TestWizardRestoresFromABackup(t *testing.T) {
	f := &fakeAdmin{}
	b := &fakeBackups{}
	p := f.panes()
	p.Wizard = wizardWithRestore{fakeWizard{f}, b}
	tm := startPanes(t, p, 80, 24)
	waitFor(t, tm, "Welcome to clinicgate", "ctrl+r restores it from a backup")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlR})
	waitFor(t, tm, "restore a replaced appliance", "put FILE /incoming/")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	waitFor(t, tm, "step 1 of 7")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlR})
	waitFor(t, tm, "backup file")
	tm.Type("clinicgate-20261203-220000.cgbackup")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("a wrong passphrase")
	for range 4 { // the replica's fields stay empty: the file itself
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "does not open this backup")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	}
	for range len("a wrong passphrase") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("the right passphrase")
	for range 4 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "was checked", "this console closes")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("x")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.restored) != 1 || b.restored[0] != "clinicgate-20261203-220000.cgbackup" {
		t.Fatalf("restored %v", b.restored)
	}
}

// A replaced appliance is restored from the off-box replica too, the key
// from a backup: the images have no shell for restore --from-replica.
func TestWizardRestoresFromTheReplica(t *testing.T) {
	f := &fakeAdmin{}
	b := &fakeBackups{}
	p := f.panes()
	p.Wizard = wizardWithRestore{fakeWizard{f}, b}
	tm := startPanes(t, p, 80, 24)
	waitFor(t, tm, "ctrl+r restores it from a backup")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlR})
	waitFor(t, tm, "backup file")
	for _, v := range []string{"old.cgbackup", "the right passphrase", "backup@192.0.2.10:22/cg", "replica_ed25519", ""} {
		tm.Type(v)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "The replica at backup@192.0.2.10:22/cg", "this console closes")
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.restored) != 1 || b.restored[0] != "backup@192.0.2.10:22/cg key:replica_ed25519 from old.cgbackup" {
		t.Fatalf("restored %v", b.restored)
	}
}

// usb yes with no passphrase asks the system helper to copy the newest
// backup to the USB stick plugged in.
func TestBackupToUSBStick(t *testing.T) {
	f := sample()
	f.managed = true
	b := &fakeBackups{list: []admin.BackupFile{
		{Name: "clinicgate-20261204-080000.cgbackup", Size: 1 << 20, Created: t0},
		{Name: "clinicgate-20261203-220000.cgbackup", Size: 1 << 20, Created: t0.Add(-10 * time.Hour)},
	}}
	p := f.panes()
	p.Backup = b
	tm := startPanes(t, p, 80, 24)
	waitFor(t, tm, "frontdesk2")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	waitFor(t, tm, "Backups")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("yes")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "done: copy clinicgate-20261204-080000.cgbackup to the USB stick")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.system) != 1 || f.system[0].Kind != "usb-copy" || f.system[0].Package != "clinicgate-20261204-080000.cgbackup" {
		t.Fatalf("asked %+v", f.system)
	}
}
