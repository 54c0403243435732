package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// anchorFiles keeps the data directory (for its lock) and the head file
// open from one commit to the next: opening both for every commit was as
// costly as the write itself (issue 15). The file is checked by identity
// before each use, so one made again by another process (a rename over
// it) is opened again, never written through a stale descriptor.
type anchorFiles struct {
	mu     sync.Mutex // held for a whole read-check-write
	dir    *os.File
	f      *os.File
	fi     os.FileInfo // f's identity
	buf    []byte      // what read returns, reused (valid until the next read)
	closed bool        // after Log.Close: nothing is kept open
}

// begin takes mu and the exclusive flock on the directory (Linux allows
// one on a directory, so no further file is needed); end releases both.
func (a *anchorFiles) begin(dir string) error {
	a.mu.Lock()
	if a.dir == nil {
		d, err := os.Open(dir)
		if err != nil {
			a.mu.Unlock()
			return fmt.Errorf("audit head file: %w", err)
		}
		a.dir = d
	}
	if err := syscall.Flock(int(a.dir.Fd()), syscall.LOCK_EX); err != nil {
		a.drop()
		a.mu.Unlock()
		return fmt.Errorf("audit head file: lock %s: %w", dir, err)
	}
	return nil
}

func (a *anchorFiles) end() {
	if a.dir != nil {
		_ = syscall.Flock(int(a.dir.Fd()), syscall.LOCK_UN)
	}
	if a.closed {
		a.drop()
	}
	a.mu.Unlock()
}

// drop closes what is open (the flock goes with the directory's
// descriptor).
func (a *anchorFiles) drop() {
	if a.f != nil {
		a.f.Close()
		a.f, a.fi = nil, nil
	}
	if a.dir != nil {
		a.dir.Close()
		a.dir = nil
	}
}

func (a *anchorFiles) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.drop()
}

// open makes f the file now at path, and returns what stat says of it
// (nil error and no file when there is none).
func (a *anchorFiles) open(path string) (os.FileInfo, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if a.f != nil {
			a.f.Close()
			a.f, a.fi = nil, nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if a.f != nil && os.SameFile(fi, a.fi) {
		return fi, nil
	}
	if a.f != nil {
		a.f.Close()
		a.f, a.fi = nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	ffi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	a.f, a.fi = f, ffi
	return ffi, nil
}

// read returns the file's bytes (nil when there is none), in a buffer
// that the next read reuses. Called between begin and end.
func (a *anchorFiles) read(path string) ([]byte, error) {
	fi, err := a.open(path)
	if err != nil || a.f == nil {
		return nil, err
	}
	if fi.Size() > 1<<20 {
		return nil, errAnchorAltered // not a head file
	}
	if int64(cap(a.buf)) < fi.Size() {
		a.buf = make([]byte, fi.Size())
	}
	b := a.buf[:fi.Size()]
	if _, err := a.f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// writeAt overwrites part of the file and waits for it to reach the disk
// (fdatasync: the file's size and blocks stay as they are, so there is
// no metadata to wait for). Called between begin and end, after read
// found the file (whose identity it checked).
func (a *anchorFiles) writeAt(b []byte, off int64) error {
	if a.f == nil {
		return fs.ErrNotExist
	}
	if _, err := a.f.WriteAt(b, off); err != nil {
		return err
	}
	return syscall.Fdatasync(int(a.f.Fd()))
}
