package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in the data directory that a running daemon holds
// an exclusive lock on (flock), with its process id in it.
const LockFile = "serve.lock"

// ErrRunning means another daemon already serves the data directory.
var ErrRunning = errors.New("another clinicgate daemon is already running on this data directory")

// dirLock holds the data directory for one daemon. Two daemons on one
// store would both answer on their ports (or fail to), both write the
// audit, and the one that stops would write a stop entry while the other
// runs (issue 16). The lock is the kernel's: it goes with the process, so
// a killed daemon leaves nothing to clean up.
type dirLock struct{ f *os.File }

func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b[:n]))
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w (%s, process %s): stop it first ('systemctl stop clinicgate', or the process itself)", ErrRunning, dir, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the directory up (closing the file drops the lock).
func (l *dirLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// LockDir takes the data directory's lock as a daemon does, for work that
// must not run beside one (a restore): while it is held no daemon starts
// on dir, and it fails with ErrRunning when one runs.
func LockDir(dir string) (release func(), err error) {
	l, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
