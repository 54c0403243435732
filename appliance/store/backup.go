package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// SnapshotTo writes a consistent copy of the whole database to path, which
// must not exist yet, while the daemon and other processes keep writing:
// VACUUM INTO reads inside one read transaction, so the copy holds exactly
// the transactions committed before it began, and it is a compact
// database of its own (no -wal file to carry along). The file is created
// 0600 first, because it holds what the database holds.
func (s *Store) SnapshotTo(ctx context.Context, path string) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: snapshot %s: the file exists already", path)
	}
	// VACUUM INTO refuses an existing non-empty file but accepts an empty
	// one, so creating it first fixes its mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	f.Close()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("store: snapshot: %w", mapErr(err))
	}
	return nil
}

// IntegrityCheck runs SQLite's own check of every page and index; a
// database that fails it must not be trusted (a restore refuses it).
func (s *Store) IntegrityCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return mapErr(err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: the database is damaged: %v", problems)
	}
	return nil
}

// SchemaVersion is the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr(err)
}
