package main

import (
	"fmt"
	"os"
	"syscall"
)

// becomeOwner switches a root process to the owner of dir when dir belongs
// to someone else. Go applies setuid to every thread (Linux).
func becomeOwner(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // the store reports a missing directory in its own words
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("cannot drop root to act as the owner of %s: %w", dir, err)
	}
	if err := syscall.Setgid(int(st.Gid)); err != nil {
		return fmt.Errorf("cannot drop root to act as the owner of %s: %w", dir, err)
	}
	if err := syscall.Setuid(int(st.Uid)); err != nil {
		return fmt.Errorf("cannot drop root to act as the owner of %s: %w", dir, err)
	}
	return nil
}
