package admin

import (
	"context"
	"errors"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// AuditTail returns the last n audit entries (all of them when n is 0),
// oldest first; with user set, only that user's.
func (s *Service) AuditTail(ctx context.Context, user string, n int) ([]store.AuditRow, error) {
	return s.Store.AuditRows(ctx, store.AuditFilter{User: user, Limit: n, Newest: true})
}

// AuditSince returns every audit entry after seq, oldest first; with user
// set, only that user's. A follower calls it with the last seq it printed.
func (s *Service) AuditSince(ctx context.Context, seq int64, user string) ([]store.AuditRow, error) {
	return s.Store.AuditRows(ctx, store.AuditFilter{AfterSeq: seq, User: user})
}

// LastAuditSeq is the number of the newest audit entry (0 on an empty
// log).
func (s *Service) LastAuditSeq(ctx context.Context) (int64, error) {
	rows, err := s.Store.AuditRows(ctx, store.AuditFilter{Limit: 1, Newest: true})
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	return rows[0].Seq, nil
}

// ErrNoAuditEntry reports an entry number the log does not hold.
var ErrNoAuditEntry = errors.New("there is no such audit entry")

// AuditEntry returns entry number seq.
func (s *Service) AuditEntry(ctx context.Context, seq int64) (store.AuditRow, error) {
	if seq < 1 {
		return store.AuditRow{}, invalid("the entry number is a whole number, as audit tail prints it")
	}
	rows, err := s.Store.AuditRows(ctx, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
	if err != nil {
		return store.AuditRow{}, err
	}
	if len(rows) == 0 || rows[0].Seq != seq {
		return store.AuditRow{}, ErrNoAuditEntry
	}
	return rows[0], nil
}

// AuditBefore returns up to limit audit entries before seq (the newest
// ones when seq is 0), oldest first: the console opens on the newest
// window of a long log and pages back on demand, instead of reading all
// of it first.
func (s *Service) AuditBefore(ctx context.Context, seq int64, limit int) ([]store.AuditRow, error) {
	if limit <= 0 {
		return nil, invalid("the page size is a positive number")
	}
	return s.Store.AuditRows(ctx, store.AuditFilter{BeforeSeq: seq, Limit: limit, Newest: true})
}
