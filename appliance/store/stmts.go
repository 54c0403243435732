package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps one prepared statement per query text. Parsing SQL was a
// quarter of the daemon's CPU per login before; the set of query texts is
// fixed by the code, so the cache is bounded by it.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // query → *sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if v, ok := c.m.Load(q); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if v, loaded := c.m.LoadOrStore(q, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *stmtCache) close() {
	c.m.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
}

// dbq runs queries on the pool through cached statements.
type dbq struct{ c *stmtCache }

func (d dbq) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := d.c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (d dbq) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := d.c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (d dbq) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := d.c.get(ctx, q)
	if err != nil {
		// database/sql offers no way to build a Row holding an error; the
		// unprepared query reports the same error when scanned.
		return d.c.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// txq runs queries inside a transaction through the cached statements.
type txq struct {
	c  *stmtCache
	tx *sql.Tx
}

func (t txq) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := t.c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (t txq) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := t.c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

func (t txq) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := t.c.get(ctx, q)
	if err != nil {
		return t.tx.QueryRowContext(ctx, q, args...)
	}
	return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

// connq runs queries on one connection, unprepared: the reads of a
// Snapshot, which are few and must all go to the connection that holds
// the snapshot.
type connq struct{ c *sql.Conn }

func (q connq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.c.ExecContext(ctx, query, args...)
}

func (q connq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.c.QueryContext(ctx, query, args...)
}

func (q connq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.c.QueryRowContext(ctx, query, args...)
}
