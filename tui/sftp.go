package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/pkg/sftp"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The console's SFTP: on an appliance without a shell, it is how a backup
// leaves the box and how a backup to restore (or an update) comes in. The
// same registered admin keys as the console open it, and it shows exactly
// three directories of the data directory:
//
//	/backups   read-only: the backups made on the appliance
//	/exports   read-only: the audit exports (HIPAA review, whole copies)
//	/incoming  files the admin uploads (a backup to restore, a .deb, a CA)
//
// Nothing else of the data directory (the store, its key, the host key) is
// reachable: paths are resolved inside each directory with os.Root, which
// refuses "..", absolute paths and symbolic links leading out of it.

// maxIncoming bounds one uploaded file, and maxIncomingTotal all of
// incoming/ together, so uploads cannot fill the disk the store lives on;
// nor may an upload leave less than minFree free on it (the store must
// still be able to write: a full disk refuses logins).
const (
	maxIncoming      = 2 << 30
	maxIncomingTotal = 4 << 30
	minFree          = 512 << 20
)

var (
	errReadOnly = errors.New("permission denied: only /incoming is writable")
	errNoSuch   = os.ErrNotExist
	errDenied   = errors.New("permission denied: only /backups, /exports and /incoming are served")
)

// SFTPAuditor records what an admin fetched or left over SFTP (the key
// checker given to NewSSH may be one): a backup leaving the box holds
// every password hash, so its download belongs in the audit.
type SFTPAuditor interface {
	AuditSFTP(ctx context.Context, admin, action, file string) error
}

// sftpJail answers one SFTP session's requests.
type sftpJail struct {
	backups, exports, incoming *os.Root
	log                        *slog.Logger
	admin                      string
	audit                      SFTPAuditor // nil: the log only
}

// record logs and audits one transfer; a transfer whose audit entry cannot
// be written is refused.
func (j *sftpJail) record(action, file string) error {
	j.log.Info("sftp: "+action, "admin", j.admin, "file", file)
	if j.audit == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.audit.AuditSFTP(ctx, j.admin, action, file); err != nil {
		j.log.Error("sftp: cannot audit, refused", "admin", j.admin, "file", file, "err", err)
		return errors.New("the appliance cannot record this transfer in its audit log right now; try again")
	}
	return nil
}

// sftpHandler serves SFTP sessions over the data directory dataDir.
func sftpHandler(dataDir string, log *slog.Logger, pre *preAuth, aud SFTPAuditor) ssh.SubsystemHandler {
	return func(sess ssh.Session) {
		pre.authenticated(sess.RemoteAddr())
		name, _ := sess.Context().Value(adminKey{}).(string)
		if name == "" {
			// Key auth is the only way in; a session without an admin
			// name is a bug, never served.
			_ = sess.Exit(1)
			return
		}
		j, err := openJail(dataDir, log, name)
		if j != nil {
			j.audit = aud
		}
		if err != nil {
			log.Error("sftp: cannot open the served directories", "err", err)
			_ = sess.Exit(1)
			return
		}
		defer j.close()
		log.Info("sftp: session opened", "admin", name, "from", sess.RemoteAddr().String())
		srv := sftp.NewRequestServer(sess, sftp.Handlers{FileGet: j, FilePut: j, FileCmd: j, FileList: j})
		if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
			log.Warn("sftp: session ended", "admin", name, "err", err)
		}
		_ = srv.Close()
		log.Info("sftp: session closed", "admin", name)
	}
}

func openJail(dataDir string, log *slog.Logger, name string) (*sftpJail, error) {
	j := &sftpJail{log: log, admin: name}
	for _, d := range []struct {
		sub  string
		root **os.Root
	}{{admin.BackupDir, &j.backups}, {admin.ExportsDir, &j.exports}, {admin.IncomingDir, &j.incoming}} {
		p := filepath.Join(dataDir, d.sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			j.close()
			return nil, err
		}
		r, err := os.OpenRoot(p)
		if err != nil {
			j.close()
			return nil, err
		}
		*d.root = r
	}
	return j, nil
}

func (j *sftpJail) close() {
	for _, r := range []*os.Root{j.backups, j.exports, j.incoming} {
		if r != nil {
			r.Close()
		}
	}
}

// resolve splits an SFTP path into the directory served ("" for the top)
// and one file name inside it ("" for the directory itself). Deeper paths
// and names starting with a dot are refused.
func (j *sftpJail) resolve(p string) (root *os.Root, dir, file string, err error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil, "", "", nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch parts[0] {
	case admin.BackupDir:
		root = j.backups
	case admin.ExportsDir:
		root = j.exports
	case admin.IncomingDir:
		root = j.incoming
	default:
		return nil, "", "", errNoSuch
	}
	switch {
	case len(parts) == 1:
		return root, parts[0], "", nil
	case len(parts) == 2 && parts[1] != "" && !strings.HasPrefix(parts[1], "."):
		return root, parts[0], parts[1], nil
	}
	return nil, "", "", errDenied
}

// Fileread serves a download.
func (j *sftpJail) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	root, dir, file, err := j.resolve(r.Filepath)
	if err != nil {
		return nil, err
	}
	if file == "" {
		return nil, errDenied
	}
	f, err := root.Open(file)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errDenied
	}
	if err := j.record("download", dir+"/"+file); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Filewrite serves an upload, into /incoming only.
func (j *sftpJail) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	root, dir, file, err := j.resolve(r.Filepath)
	if err != nil {
		return nil, err
	}
	if root != j.incoming {
		return nil, errReadOnly
	}
	if file == "" {
		return nil, errDenied
	}
	flags := os.O_WRONLY | os.O_CREATE
	pf := r.Pflags()
	if pf.Trunc {
		flags |= os.O_TRUNC
	}
	if pf.Excl {
		flags |= os.O_EXCL
	}
	room, err := incomingRoom(root, file)
	if err != nil {
		return nil, err
	}
	if err := j.record("upload", dir+"/"+file); err != nil {
		return nil, err
	}
	f, err := root.OpenFile(file, flags, 0o600)
	if err != nil {
		return nil, err
	}
	return &boundedWriter{f: f, limit: room}, nil
}

// incomingRoom is how large file may grow in incoming/: under
// maxIncoming, under what maxIncomingTotal leaves beside the other files,
// and leaving minFree free on the disk.
func incomingRoom(root *os.Root, file string) (int64, error) {
	used := int64(0)
	d, err := root.Open(".")
	if err != nil {
		return 0, err
	}
	es, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	for _, e := range es {
		if e.Name() == file {
			continue // being replaced
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			used += fi.Size()
		}
	}
	room := min(int64(maxIncoming), int64(maxIncomingTotal)-used)
	var st syscall.Statfs_t
	if err := syscall.Statfs(root.Name(), &st); err == nil {
		room = min(room, int64(st.Bavail)*int64(st.Bsize)-minFree)
	}
	if room <= 0 {
		return 0, errors.New("no room in /incoming: remove what is no longer needed (the appliance keeps the disk for its store)")
	}
	return room, nil
}

// boundedWriter refuses writes past its limit.
type boundedWriter struct {
	f     *os.File
	limit int64
}

func (w *boundedWriter) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > w.limit {
		return 0, fmt.Errorf("the file is larger than the appliance has room for (%d MiB): nothing more is written", w.limit>>20)
	}
	return w.f.WriteAt(b, off)
}

func (w *boundedWriter) Close() error {
	err := w.f.Sync()
	return errors.Join(err, w.f.Close())
}

// Filecmd allows removing and renaming files in /incoming; nothing else.
func (j *sftpJail) Filecmd(r *sftp.Request) error {
	root, _, file, err := j.resolve(r.Filepath)
	if err != nil {
		return err
	}
	if root != j.incoming || file == "" {
		return errReadOnly
	}
	switch r.Method {
	case "Remove":
		if err := j.record("remove", "incoming/"+file); err != nil {
			return err
		}
		return root.Remove(file)
	case "Rename":
		troot, _, tfile, err := j.resolve(r.Target)
		if err != nil {
			return err
		}
		if troot != j.incoming || tfile == "" {
			return errReadOnly
		}
		return root.Rename(file, tfile)
	case "Setstat":
		// Clients set times and modes after an upload; the mode stays
		// 0600 and the rest does not matter.
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

// Filelist lists and stats.
func (j *sftpJail) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	root, dir, file, err := j.resolve(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		if root == nil {
			return listing{dirInfo(admin.BackupDir), dirInfo(admin.ExportsDir), dirInfo(admin.IncomingDir)}, nil
		}
		if file != "" {
			return nil, errDenied
		}
		d, err := root.Open(".")
		if err != nil {
			return nil, err
		}
		defer d.Close()
		ents, err := d.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		var out listing
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			if fi, err := e.Info(); err == nil {
				out = append(out, fi)
			}
		}
		return out, nil
	case "Stat", "Lstat":
		if root == nil {
			return listing{dirInfo("/")}, nil
		}
		if file == "" {
			return listing{dirInfo(dir)}, nil
		}
		fi, err := root.Lstat(file)
		if err != nil {
			return nil, err
		}
		return listing{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

type listing []fs.FileInfo

func (l listing) ListAt(out []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

// dirInfo describes a served directory.
type dirInfo string

func (d dirInfo) Name() string       { return string(d) }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o700 }
func (d dirInfo) ModTime() time.Time { return time.Time{} }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }
