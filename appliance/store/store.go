// Package store is clinicgate's single source of truth: one SQLite database
// (modernc.org/sqlite, no cgo) in the data directory holding users, groups,
// clients, MFA enrolments, devices, accounting sessions, settings and the
// audit chain.
//
// It owns every SQL statement. It seals and opens stored secrets itself, so
// callers only ever see plaintext in memory and ciphertext never leaves it.
// It holds no policy: deciding who may log in is the gate's job.
package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// DBFile is the database's file name inside the data directory.
const DBFile = "clinicgate.db"

var (
	// ErrNotFound means the row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a row with that name already exists, or the row
	// changed since it was read.
	ErrConflict = errors.New("already exists or changed meanwhile")
	// ErrReadOnly means the database cannot be written.
	ErrReadOnly = errors.New("database is read-only")
	// ErrFull means the disk is full.
	ErrFull = errors.New("disk is full")
	// ErrBusy means another writer held the database for too long.
	ErrBusy = errors.New("database is busy (another process is writing)")
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is the appliance's database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	stmts   *stmtCache
	q       querier
	sealer  *secrets.Sealer
	dir     string
	headMu  sync.Mutex
	headMAC func(seq int64, hash []byte) []byte
	anchor  func(prev, head AuditPoint) // see SetAuditAnchor
	// writeMu serialises this process's writers so they queue in Go instead
	// of spinning in SQLite's busy handler; other processes (the CLI) are
	// covered by busy_timeout.
	writeMu sync.Mutex
	// hot is the login path's cache of users and bind-account names.
	hot hotCache
	// tail is the audit chain's last entry as this process's last
	// committed append left it (nil: unknown). Guarded by writeMu;
	// AppendAudits trusts it only while the recorded head still names it.
	tail *AuditPoint
}

// Options tune Open.
type Options struct {
	// Create allows initialising an empty data directory (new database and
	// new key). Without it a missing database is an error.
	Create bool
}

// Open opens (and, with opts.Create, initialises) the store in dir and
// applies pending migrations.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("store: no data directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dbPath := filepath.Join(abs, DBFile)
	_, statErr := os.Stat(dbPath)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	if fresh && !opts.Create {
		return nil, fmt.Errorf("store: no database in %s (start the appliance once with 'clinicgate serve --data %s' to create it)", abs, dir)
	}
	if fresh {
		if err := os.MkdirAll(abs, 0o750); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
	}
	// A fresh database may get a fresh key; an existing one never does.
	sealer, err := secrets.Load(abs, fresh)
	if err != nil {
		return nil, err
	}
	if fresh {
		// Create the file 0600 before SQLite does: SQLite gives the -wal
		// and -shm files (recent rows, password hashes among them) the
		// database file's mode.
		f, err := os.OpenFile(dbPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: create %s: %w", dbPath, err)
		}
		f.Close()
	}
	dsn := "file:" + dbPath + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dbPath, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &Store{db: db, sealer: sealer, dir: abs, stmts: &stmtCache{db: db}}
	s.q = dbq{s.stmts}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, explainOpen(abs, err)
	}
	if err := s.checkKey(ctx); err != nil {
		db.Close()
		return nil, explainOpen(abs, err)
	}
	if fresh {
		// The database file exists now; make sure nobody else reads it.
		_ = os.Chmod(dbPath, 0o600)
	}
	return s, nil
}

func explainOpen(dir string, err error) error {
	switch {
	case errors.Is(err, ErrReadOnly):
		return fmt.Errorf("store: the database in %s cannot be written (read-only file or file system; check ownership and 'mount'): %w", dir, err)
	case errors.Is(err, ErrFull):
		return fmt.Errorf("store: the disk holding %s is full; free some space and start again: %w", dir, err)
	}
	return fmt.Errorf("store: %w", err)
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.close()
	return s.db.Close()
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Sealer returns the store's sealer (for subkeys such as the audit MAC key).
func (s *Store) Sealer() *secrets.Sealer { return s.sealer }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return mapErr(s.db.PingContext(ctx)) }

// Tx is a write transaction.
type Tx struct {
	tx *sql.Tx
	q  txq
	s  *Store
	// auditHead is the chain's head after this transaction's last
	// audit entry (nil: it has appended none); auditPrev the last entry
	// the table held when this transaction first appended.
	auditHead, auditPrev *AuditPoint
}

// WithTx runs fn in one immediate (write-locked) transaction and commits if
// fn returns nil.
func (s *Store) WithTx(ctx context.Context, fn func(*Tx) error) error {
	return s.withTx(ctx, fn, true)
}

// withTx is WithTx; cached says whether fn may change what hotCache
// holds. If so, the change counter is read before the commit and the
// caches dropped after it when it moved, before WithTx returns.
func (s *Store) withTx(ctx context.Context, fn func(*Tx) error, cached bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	t := &Tx{tx: tx, q: txq{c: s.stmts, tx: tx}, s: s}
	if err := fn(t); err != nil {
		_ = tx.Rollback()
		return err
	}
	var n int64
	var nerr error = errNoCounter
	if cached {
		nerr = t.q.QueryRowContext(ctx, counterQuery).Scan(&n)
	}
	if err := tx.Commit(); err != nil {
		// It may have committed anyway (an I/O error after the write):
		// trust nothing cached.
		s.hot.drop()
		s.tail = nil
		return mapErr(err)
	}
	if t.auditHead != nil {
		s.tail = t.auditHead
	}
	switch {
	case !cached:
	case nerr != nil:
		s.hot.drop() // before migration 013, or unreadable
	default:
		s.hot.observe(n)
	}
	if t.auditHead != nil {
		// Still under writeMu: this process's heads reach the anchor
		// in commit order.
		s.headMu.Lock()
		anchor := s.anchor
		s.headMu.Unlock()
		if anchor != nil {
			anchor(*t.auditPrev, *t.auditHead)
		}
	}
	return nil
}

var errNoCounter = errors.New("change counter not read")

func (s *Store) migrate(ctx context.Context) error {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return err
	}
	type mig struct {
		n    int
		name string
	}
	var migs []mig
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		migs = append(migs, mig{n, e.Name()})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].n < migs[j].n })
	return s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
			return mapErr(err)
		}
		// Every migration not yet applied runs, in order, even one numbered
		// below the newest applied: branches merged out of order must not
		// leave a database without a table.
		applied := map[int]bool{}
		cur := 0
		rows, err := tx.tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return mapErr(err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return mapErr(err)
			}
			applied[v], cur = true, max(cur, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapErr(err)
		}
		if len(migs) > 0 && cur > migs[len(migs)-1].n {
			return fmt.Errorf("database schema version %d is newer than this clinicgate understands (%d); upgrade clinicgate", cur, migs[len(migs)-1].n)
		}
		for _, m := range migs {
			if applied[m.n] {
				continue
			}
			body, err := migrationFS.ReadFile("migrations/" + m.name)
			if err != nil {
				return err
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, mapErr(err))
			}
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, m.n, time.Now().Unix()); err != nil {
				return mapErr(err)
			}
		}
		// A write even when nothing was pending, so a read-only database
		// fails here, at start, and not on the first login.
		_, err = tx.tx.ExecContext(ctx, `UPDATE schema_migrations SET applied_at = applied_at WHERE version = (SELECT MAX(version) FROM schema_migrations)`)
		return mapErr(err)
	})
}

// checkKey makes sure the key file belongs to this database: a key from
// another appliance would open nothing and must be refused at start.
func (s *Store) checkKey(ctx context.Context) error {
	m := hmac.New(sha256.New, s.sealer.Derive("key-check"))
	m.Write([]byte("clinicgate key check v1"))
	want := hex.EncodeToString(m.Sum(nil))
	got, err := s.Setting(ctx, "key_check")
	if errors.Is(err, ErrNotFound) {
		return s.WithTx(ctx, func(tx *Tx) error { return tx.SetSetting(ctx, "key_check", want) })
	}
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("the key file %s does not belong to this database (restore the matching key from your backup)", filepath.Join(s.dir, secrets.KeyFile))
	}
	return nil
}

// mapErr turns driver errors into the store's sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %v", ErrReadOnly, err)
		case sqlite3.SQLITE_FULL:
			return fmt.Errorf("%w: %v", ErrFull, err)
		case sqlite3.SQLITE_BUSY:
			return fmt.Errorf("%w: %v", ErrBusy, err)
		}
	}
	return err
}

func unixOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func fromUnix(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(n.Int64, 0).UTC()
}
