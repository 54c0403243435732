package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
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
)

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
func (tx *Tx) AppendAudits(ctx context.Context, builds []func(prevSeq int64, prevHash []byte) (AuditRow, error)) ([]AuditRow, error) {
	var prevSeq int64
	var prevHash []byte
	err := tx.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&prevSeq, &prevHash)
	if err != nil && err != sql.ErrNoRows {
		return nil, mapErr(err)
	}
	out := make([]AuditRow, 0, len(builds))
	for _, build := range builds {
		r, err := build(prevSeq, prevHash)
		if err != nil {
			return nil, err
		}
		if r.Seq != prevSeq+1 {
			return nil, fmt.Errorf("audit: entry %d does not follow %d", r.Seq, prevSeq)
		}
		_, err = tx.q.ExecContext(ctx, `INSERT INTO audit (seq, at, kind, door, client, user_name, device, source, outcome, reason, actor, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Seq, r.At.UnixNano(), r.Kind, r.Door, r.Client, r.User, r.Device, r.Source, r.Outcome, r.Reason, r.Actor, r.Detail, r.PrevHash, r.Hash)
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, r)
		prevSeq, prevHash = r.Seq, r.Hash
	}
	// The head is kept apart from the rows, so cutting rows off the end of
	// the table is noticed too.
	if err := tx.SetSetting(ctx, auditHeadKey, strconv.FormatInt(prevSeq, 10)+":"+hex.EncodeToString(prevHash)); err != nil {
		return nil, err
	}
	tx.s.headMu.Lock()
	mac := tx.s.headMAC
	tx.s.headMu.Unlock()
	if mac != nil {
		if err := tx.SetSetting(ctx, auditHeadMACKey, hex.EncodeToString(mac(prevSeq, prevHash))); err != nil {
			return nil, err
		}
	}
	return out, nil
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
	v, err := s.Setting(ctx, auditHeadKey)
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
		return 0, nil, fmt.Errorf("audit head %q is damaged", v)
	}
	return seq, hash, nil
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
