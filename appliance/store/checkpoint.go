package store

import (
	"context"
	"time"
)

// The write-ahead log is copied back into the database file by a
// background goroutine, not by whichever commit happens to push it past
// SQLite's threshold (wal_autocheckpoint, 1000 pages by default): that
// commit was usually the audit's group commit, and every login waiting
// for it waited for the copy and the database file's fsync too (issue 15:
// the tail of the proxied path's latency). A PASSIVE checkpoint takes no
// write lock, so commits go on meanwhile; each commit still fsyncs the
// log before it returns, so nothing is less durable. SQLite's own
// threshold stays as a backstop, higher, should this goroutine fall
// behind.
const (
	checkpointEvery = 200 * time.Millisecond
	// walBackstopPages is the DSN's wal_autocheckpoint: 16 MiB of log.
	walBackstopPages = 4096
)

func (s *Store) startCheckpointer() {
	s.ckptStop, s.ckptDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.ckptDone)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-s.ckptStop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			// Errors (a busy database, a full disk) are left to the next
			// round and to the backstop; the commits report their own.
			_, _ = s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			cancel()
		}
	}()
}

func (s *Store) stopCheckpointer() {
	if s.ckptStop != nil {
		close(s.ckptStop)
		<-s.ckptDone
		s.ckptStop = nil
	}
}
