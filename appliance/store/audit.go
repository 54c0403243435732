package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AuditRow is one stored audit entry. The chain (PrevHash, Hash) is computed
// by package audit; the store only keeps it.
type AuditRow struct {
	Seq      int64
	At       time.Time
	Kind     string
	Door     string
	Client   string
	User     string
	Device   string
	Source   string
	Outcome  string
	Reason   string
	Actor    string
	Detail   string
	PrevHash []byte
	Hash     []byte
}

const (
	auditHeadKey    = "audit_head"
	auditHeadMACKey = "audit_head_mac"
	// The base is the last entry retention removed: the kept part of
	// the chain starts right after it.
	auditBaseKey    = "audit_base"
	auditBaseMACKey = "audit_base_mac"
)

// AuditPoint names one place in the chain: an entry's sequence number and
// hash (0 and nil before the first entry).
type AuditPoint struct {
	Seq  int64
	Hash []byte
}

// SetAuditAnchor installs a function called after every transaction that
// appended audit entries has committed, with the last entry the table
// held when the transaction began appending (read inside it, so the
// database held it then) and the chain's new head.
// Package audit uses it to keep a copy of the head outside the database.
// It runs after the commit, so a copy that could not be written never
// makes a committed entry look failed; package audit reports that itself.
func (s *Store) SetAuditAnchor(fn func(prev, head AuditPoint)) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	s.anchor = fn
}

// Snapshot runs fn with a view of the store whose reads all see one state
// of the database (one read transaction, which takes no write lock), for
// as long as fn runs. A check that reads the log's rows and then its
// recorded end (audit verify) while the daemon appends must not see the
// rows of one moment and the end of a later one. The view is for the
// audit's reads only: it has no caches, and nothing may be written
// through it.
func (s *Store) Snapshot(ctx context.Context, fn func(view *Store) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Close()
	// BEGIN, not BeginTx: the pool's transactions take the write lock
	// (_txlock=immediate), and this one must not hold off the writers.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return mapErr(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	return fn(&Store{db: s.db, sealer: s.sealer, dir: s.dir, stmts: s.stmts, q: connq{conn}})
}

// AuditHashAt returns the hash of entry seq, and false when the table
// does not hold it.
func (s *Store) AuditHashAt(ctx context.Context, seq int64) ([]byte, bool, error) {
	var h []byte
	err := s.q.QueryRowContext(ctx, `SELECT hash FROM audit WHERE seq = ?`, seq).Scan(&h)
	if err == sql.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, mapErr(err)
	}
	return h, true, nil
}

// SetAuditHeadMAC installs the function that authenticates the recorded
// head of the chain (package audit holds the key). Without it the head is
// recorded unauthenticated.
func (s *Store) SetAuditHeadMAC(fn func(seq int64, hash []byte) []byte) {
	s.headMu.Lock()
	defer s.headMu.Unlock()
	s.headMAC = fn
}

// AuditHeadMAC returns the recorded head's MAC (nil if none).
func (s *Store) AuditHeadMAC(ctx context.Context) ([]byte, error) {
	v, err := s.Setting(ctx, auditHeadMACKey)
	if err == ErrNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(v)
}

// AppendAudit adds one entry at the end of the chain inside tx. build gets
// the last entry's sequence number and hash (0 and nil for the first) and
// returns the complete new row; reading the tail and inserting happen under
// the same write lock, so two writers can never fork the chain.
func (tx *Tx) AppendAudit(ctx context.Context, build func(prevSeq int64, prevHash []byte) (AuditRow, error)) (AuditRow, error) {
	rows, err := tx.AppendAudits(ctx, []func(int64, []byte) (AuditRow, error){build})
	if err != nil {
		return AuditRow{}, err
	}
	return rows[0], nil
}

// AppendAudits adds several entries in order, reading the tail once and
// recording the new head once.
//
// The tail this process committed last is kept in memory (Store.tail).
// It is used only if the recorded head still names it: the head is
// moved with an UPDATE that matches the old value, in the same write
// transaction, so another process's append (which moves the head too)
// sends this one back to reading the tail from the table. That saves a
// query per group commit.
func (tx *Tx) AppendAudits(ctx context.Context, builds []func(prevSeq int64, prevHash []byte) (AuditRow, error)) ([]AuditRow, error) {
	if len(builds) == 0 {
		return nil, nil
	}
	start, checked := tx.auditHead, true
	if start == nil && tx.s.tail != nil {
		start, checked = tx.s.tail, false
	}
	if start == nil {
		p, err := tx.readTail(ctx)
		if err != nil {
			return nil, err
		}
		start = &p
	}
	out, err := chainRows(*start, builds)
	if err != nil {
		return nil, err
	}
	// The head is kept apart from the rows, so cutting rows off the end of
	// the table is noticed too.
	head := out[len(out)-1]
	if !checked {
		res, err := tx.q.ExecContext(ctx, `UPDATE settings SET value = ? WHERE key = ? AND value = ?`,
			headValue(head.Seq, head.Hash), auditHeadKey, headValue(start.Seq, start.Hash))
		if err != nil {
			return nil, mapErr(err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			// Moved by someone else, or never recorded: read the tail.
			p, err := tx.readTail(ctx)
			if err != nil {
				return nil, err
			}
			start, checked = &p, true
			if out, err = chainRows(*start, builds); err != nil {
				return nil, err
			}
			head = out[len(out)-1]
		}
	}
	if checked {
		if err := tx.SetSetting(ctx, auditHeadKey, headValue(head.Seq, head.Hash)); err != nil {
			return nil, err
		}
	}
	if tx.auditPrev == nil {
		tx.auditPrev = start
	}
	if err := insertAudits(ctx, tx.q, out); err != nil {
		return nil, err
	}
	tx.s.headMu.Lock()
	mac := tx.s.headMAC
	tx.s.headMu.Unlock()
	if mac != nil {
		if err := tx.SetSetting(ctx, auditHeadMACKey, hex.EncodeToString(mac(head.Seq, head.Hash))); err != nil {
			return nil, err
		}
	}
	tx.auditHead = &AuditPoint{Seq: head.Seq, Hash: head.Hash}
	return out, nil
}

// readTail reads the table's last entry (0, nil when it is empty).
func (tx *Tx) readTail(ctx context.Context) (AuditPoint, error) {
	var p AuditPoint
	err := tx.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&p.Seq, &p.Hash)
	if err != nil && err != sql.ErrNoRows {
		return AuditPoint{}, mapErr(err)
	}
	return p, nil
}

// chainRows builds the rows in order after start.
func chainRows(start AuditPoint, builds []func(prevSeq int64, prevHash []byte) (AuditRow, error)) ([]AuditRow, error) {
	prevSeq, prevHash := start.Seq, start.Hash
	out := make([]AuditRow, 0, len(builds))
	for _, build := range builds {
		r, err := build(prevSeq, prevHash)
		if err != nil {
			return nil, err
		}
		if r.Seq != prevSeq+1 {
			return nil, fmt.Errorf("audit: entry %d does not follow %d", r.Seq, prevSeq)
		}
		out = append(out, r)
		prevSeq, prevHash = r.Seq, r.Hash
	}
	return out, nil
}

func headValue(seq int64, hash []byte) string {
	return strconv.FormatInt(seq, 10) + ":" + hex.EncodeToString(hash)
}

// auditChunks are the row counts of the multi-row INSERTs: a group is
// written as few statements as these sizes allow, and each size is one
// prepared statement, so the statement cache stays at four texts.
var auditChunks = []int{64, 16, 4, 1}

const auditInsertCols = 14

// insertAudits writes rows with one multi-row INSERT per chunk.
func insertAudits(ctx context.Context, q txq, rows []AuditRow) error {
	args := make([]any, 0, auditInsertCols*min(len(rows), auditChunks[0]))
	for len(rows) > 0 {
		n := auditChunks[len(auditChunks)-1]
		for _, c := range auditChunks {
			if c <= len(rows) {
				n = c
				break
			}
		}
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r.Seq, r.At.UnixNano(), r.Kind, r.Door, r.Client, r.User, r.Device, r.Source, r.Outcome, r.Reason, r.Actor, r.Detail, r.PrevHash, r.Hash)
		}
		if _, err := q.ExecContext(ctx, auditInsert(n), args...); err != nil {
			return mapErr(err)
		}
		rows = rows[n:]
	}
	return nil
}

var auditInserts sync.Map // rows → statement text

func auditInsert(n int) string {
	if v, ok := auditInserts.Load(n); ok {
		return v.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO audit (seq, at, kind, door, client, user_name, device, source, outcome, reason, actor, detail, prev_hash, hash) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	v, _ := auditInserts.LoadOrStore(n, b.String())
	return v.(string)
}

// AppendAuditGroup adds entries in order in one transaction of their own
// (the audit log's group commit). It writes nothing the login path caches,
// so it leaves those caches alone.
func (s *Store) AppendAuditGroup(ctx context.Context, builds []func(prevSeq int64, prevHash []byte) (AuditRow, error)) ([]AuditRow, error) {
	var out []AuditRow
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.AppendAudits(ctx, builds)
		return err
	}, false)
	return out, err
}

// AppendAudit adds one entry in its own transaction.
func (s *Store) AppendAudit(ctx context.Context, build func(prevSeq int64, prevHash []byte) (AuditRow, error)) (AuditRow, error) {
	var out AuditRow
	err := s.WithTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.AppendAudit(ctx, build)
		return err
	})
	return out, err
}

// AuditHead returns the sequence number and hash recorded as the chain's
// end (0, nil when nothing was ever written).
func (s *Store) AuditHead(ctx context.Context) (int64, []byte, error) {
	return s.auditPoint(ctx, auditHeadKey)
}

// AuditHeadRecorded reports whether the head record exists at all (it is
// missing on a log never written, and on one whose settings were wiped).
func (s *Store) AuditHeadRecorded(ctx context.Context) (bool, error) {
	_, err := s.Setting(ctx, auditHeadKey)
	if err == ErrNotFound {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) auditPoint(ctx context.Context, key string) (int64, []byte, error) {
	v, err := s.Setting(ctx, key)
	if err == ErrNotFound {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	seqS, hashS, ok := strings.Cut(v, ":")
	seq, err1 := strconv.ParseInt(seqS, 10, 64)
	hash, err2 := hex.DecodeString(hashS)
	if !ok || err1 != nil || err2 != nil {
		return 0, nil, fmt.Errorf("%s %q is damaged", strings.ReplaceAll(key, "_", " "), v)
	}
	return seq, hash, nil
}

// AuditBase returns the last entry retention removed and its MAC (0, nil,
// nil when retention never removed any): the kept chain starts after it.
func (s *Store) AuditBase(ctx context.Context) (AuditPoint, []byte, error) {
	seq, hash, err := s.auditPoint(ctx, auditBaseKey)
	if err != nil || seq == 0 {
		return AuditPoint{}, nil, err
	}
	v, err := s.Setting(ctx, auditBaseMACKey)
	if err != nil && err != ErrNotFound {
		return AuditPoint{}, nil, err
	}
	mac, _ := hex.DecodeString(v)
	return AuditPoint{Seq: seq, Hash: hash}, mac, nil
}

// PruneAudit removes, oldest first, up to limit entries written before
// cutoff, never past entry upTo, and records the last one removed as the
// chain's new base with mac(seq, hash) to authenticate it. It returns the
// new base and how many entries went (0: nothing to remove).
func (tx *Tx) PruneAudit(ctx context.Context, cutoff time.Time, upTo int64, limit int, mac func(seq int64, hash []byte) []byte) (AuditPoint, int, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT seq, at, hash FROM audit WHERE seq <= ? ORDER BY seq LIMIT ?`, upTo, limit)
	if err != nil {
		return AuditPoint{}, 0, mapErr(err)
	}
	var last AuditPoint
	n := 0
	for rows.Next() {
		var seq, at int64
		var hash []byte
		if err := rows.Scan(&seq, &at, &hash); err != nil {
			rows.Close()
			return AuditPoint{}, 0, mapErr(err)
		}
		// Entries are in time order; the first one young enough ends
		// the run, so a clock that once jumped back removes less, never
		// a newer entry.
		if !time.Unix(0, at).Before(cutoff) {
			break
		}
		last, n = AuditPoint{Seq: seq, Hash: hash}, n+1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return AuditPoint{}, 0, mapErr(err)
	}
	if n == 0 {
		return AuditPoint{}, 0, nil
	}
	if _, err := tx.q.ExecContext(ctx, `DELETE FROM audit WHERE seq <= ?`, last.Seq); err != nil {
		return AuditPoint{}, 0, mapErr(err)
	}
	if err := tx.SetSetting(ctx, auditBaseKey, strconv.FormatInt(last.Seq, 10)+":"+hex.EncodeToString(last.Hash)); err != nil {
		return AuditPoint{}, 0, err
	}
	if err := tx.SetSetting(ctx, auditBaseMACKey, hex.EncodeToString(mac(last.Seq, last.Hash))); err != nil {
		return AuditPoint{}, 0, err
	}
	return last, n, nil
}

// AuditCount returns how many entries the table holds.
func (s *Store) AuditCount(ctx context.Context) (n int64, err error) {
	err = s.q.QueryRowContext(ctx, `SELECT count(*) FROM audit`).Scan(&n)
	return n, mapErr(err)
}

// AuditFilter selects audit rows.
type AuditFilter struct {
	AfterSeq int64 // only rows after this one
	// BeforeSeq, when non-zero, keeps only rows before this one (with
	// Newest, a page of older rows for a reader going back in time).
	BeforeSeq int64
	User      string // exact user name, case-insensitive
	Client    string
	Outcome   string
	Limit     int  // 0: no limit
	Newest    bool // the last Limit rows instead of the first
}

const auditCols = `seq, at, kind, door, client, user_name, device, source, outcome, reason, actor, detail, prev_hash, hash`

// AuditRows returns matching rows in ascending sequence order.
func (s *Store) AuditRows(ctx context.Context, f AuditFilter) ([]AuditRow, error) {
	var where []string
	var args []any
	where = append(where, "seq > ?")
	args = append(args, f.AfterSeq)
	if f.BeforeSeq > 0 {
		where, args = append(where, "seq < ?"), append(args, f.BeforeSeq)
	}
	if f.User != "" {
		where, args = append(where, "user_name = ? COLLATE NOCASE"), append(args, f.User)
	}
	if f.Client != "" {
		where, args = append(where, "client = ? COLLATE NOCASE"), append(args, f.Client)
	}
	if f.Outcome != "" {
		where, args = append(where, "outcome = ?"), append(args, f.Outcome)
	}
	q := `SELECT ` + auditCols + ` FROM audit WHERE ` + strings.Join(where, " AND ")
	if f.Newest {
		q += ` ORDER BY seq DESC`
	} else {
		q += ` ORDER BY seq`
	}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var out []AuditRow
	err := s.eachAudit(ctx, q, args, func(r AuditRow) error { out = append(out, r); return nil })
	if f.Newest {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, err
}

// EachAuditRow calls fn for every row in ascending sequence order without
// holding them all in memory.
func (s *Store) EachAuditRow(ctx context.Context, fn func(AuditRow) error) error {
	return s.eachAudit(ctx, `SELECT `+auditCols+` FROM audit ORDER BY seq`, nil, fn)
}

// eachAudit runs an audit query (selecting auditCols) and calls fn per row.
func (s *Store) eachAudit(ctx context.Context, q string, args []any, fn func(AuditRow) error) error {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditRow
		var at int64
		if err := rows.Scan(&r.Seq, &at, &r.Kind, &r.Door, &r.Client, &r.User, &r.Device, &r.Source, &r.Outcome, &r.Reason, &r.Actor, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			return mapErr(err)
		}
		r.At = time.Unix(0, at).UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

// EachAuditBetween calls fn, in sequence order, for the rows written in
// [from, to), of one user when user is not empty (case-insensitive),
// without holding them in memory (a month's HIPAA export).
func (s *Store) EachAuditBetween(ctx context.Context, from, to time.Time, user string, fn func(AuditRow) error) error {
	q := `SELECT ` + auditCols + ` FROM audit WHERE at >= ? AND at < ?`
	args := []any{from.UnixNano(), to.UnixNano()}
	if user != "" {
		q += ` AND user_name = ? COLLATE NOCASE`
		args = append(args, user)
	}
	return s.eachAudit(ctx, q+` ORDER BY seq`, args, fn)
}
