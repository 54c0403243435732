package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// AnchorFile is the file in the data directory that keeps the chain's head
// outside the database (issue 16): putting back an older copy of the
// database does not rewind it, so Verify can tell that entries existed
// which the database no longer holds.
//
// It is rewritten inside every transaction that appends entries, before
// the commit, and names both the head the transaction started from (base)
// and the one it ends at (head): a transaction that fails after the file
// was written leaves the database at base, which the file allows.
const AnchorFile = "audit-head"

const (
	anchorMagic = "clinicgate audit head v1"
	// maxRewinds bounds the evidence kept in the file; the first ones
	// are kept, since they show when the trouble began.
	maxRewinds = 16
)

// anchor is the file's content.
type anchor struct {
	Head, Base store.AuditPoint
	// Rewinds are the times an append found the database behind the
	// file: the head the file named then, and where the database was.
	// They stay in the file for good.
	Rewinds []rewind
	// Damaged is when an append found the file altered by something
	// other than clinicgate (zero: never).
	Damaged time.Time
}

type rewind struct {
	Was   store.AuditPoint
	DBSeq int64
	At    time.Time
}

var errAnchorAltered = errors.New("the audit-head file was altered outside clinicgate")

func (l *Log) anchorPath() string { return filepath.Join(l.store.Dir(), AnchorFile) }

func (l *Log) anchorMAC(body []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("anchor"))
	m.Write(body)
	return m.Sum(nil)
}

func (a anchor) body() []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, anchorMagic)
	fmt.Fprintf(&b, "head %d %s\n", a.Head.Seq, hexOrDash(a.Head.Hash))
	fmt.Fprintf(&b, "base %d %s\n", a.Base.Seq, hexOrDash(a.Base.Hash))
	for _, r := range a.Rewinds {
		fmt.Fprintf(&b, "rewound %d %s %d %d\n", r.Was.Seq, hexOrDash(r.Was.Hash), r.DBSeq, r.At.Unix())
	}
	if !a.Damaged.IsZero() {
		fmt.Fprintf(&b, "damaged %d\n", a.Damaged.Unix())
	}
	return b.Bytes()
}

// hexOrDash writes a hash so that the line keeps its fields when there is
// none (before the first entry).
func hexOrDash(h []byte) string {
	if len(h) == 0 {
		return "-"
	}
	return hex.EncodeToString(h)
}

// readAnchor reads the file: ok is false when it does not exist;
// errAnchorAltered when its MAC or its shape is wrong.
func (l *Log) readAnchor() (a anchor, ok bool, err error) {
	raw, err := os.ReadFile(l.anchorPath())
	if errors.Is(err, fs.ErrNotExist) {
		return a, false, nil
	}
	if err != nil {
		return a, false, err
	}
	i := bytes.LastIndex(raw, []byte("mac "))
	if i < 0 {
		return a, true, errAnchorAltered
	}
	body := raw[:i]
	mac, err := hex.DecodeString(strings.TrimSpace(string(raw[i+4:])))
	if err != nil || !hmac.Equal(mac, l.anchorMAC(body)) {
		return a, true, errAnchorAltered
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	if !sc.Scan() || sc.Text() != anchorMagic {
		return a, true, errAnchorAltered
	}
	point := func(seq, hash string) (store.AuditPoint, error) {
		n, err1 := strconv.ParseInt(seq, 10, 64)
		if hash == "-" {
			hash = ""
		}
		h, err2 := hex.DecodeString(hash)
		if err1 != nil || err2 != nil {
			return store.AuditPoint{}, errAnchorAltered
		}
		return store.AuditPoint{Seq: n, Hash: h}, nil
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var err error
		switch {
		case len(f) == 3 && f[0] == "head":
			a.Head, err = point(f[1], f[2])
		case len(f) == 3 && f[0] == "base":
			a.Base, err = point(f[1], f[2])
		case len(f) == 5 && f[0] == "rewound":
			var r rewind
			r.Was, err = point(f[1], f[2])
			db, err1 := strconv.ParseInt(f[3], 10, 64)
			at, err2 := strconv.ParseInt(f[4], 10, 64)
			if err1 != nil || err2 != nil {
				err = errAnchorAltered
			}
			r.DBSeq, r.At = db, time.Unix(at, 0).UTC()
			a.Rewinds = append(a.Rewinds, r)
		case len(f) == 2 && f[0] == "damaged":
			at, err1 := strconv.ParseInt(f[1], 10, 64)
			err = err1
			a.Damaged = time.Unix(at, 0).UTC()
		default:
			err = errAnchorAltered
		}
		if err != nil {
			return anchor{}, true, errAnchorAltered
		}
	}
	return a, true, nil
}

// writeAnchor replaces the file whole: a temporary file, synced, renamed
// over it. The directory is not synced: a rename lost in a power cut
// leaves the previous head, which the database is at or beyond, and
// Verify accepts that.
func (l *Log) writeAnchor(a anchor) error {
	body := a.body()
	data := fmt.Appendf(body, "mac %x\n", l.anchorMAC(body))
	tmp := l.anchorPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit head file: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.anchorPath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audit head file: %w", err)
	}
	return nil
}

// follows reports whether a database whose head is at p is where the
// anchor allows it to be: at the anchor's head, beyond it, or at the base
// of the transaction that last wrote it (which then failed).
func (a anchor) follows(p store.AuditPoint) bool {
	switch {
	case p.Seq > a.Head.Seq:
		return true
	case p.Seq == a.Head.Seq && bytes.Equal(p.Hash, a.Head.Hash):
		return true
	case p.Seq == a.Base.Seq && bytes.Equal(p.Hash, a.Base.Hash):
		return true
	}
	return false
}

// updateAnchor is the store's anchor hook (store.SetAuditAnchor). An
// append on a database that was put back behind the file keeps the
// evidence of it in the file before moving the head on, so Verify keeps
// reporting it however many entries follow.
func (l *Log) updateAnchor(base, head store.AuditPoint) error {
	old, ok, err := l.readAnchor()
	next := anchor{Head: head, Base: base}
	switch {
	case errors.Is(err, errAnchorAltered):
		next.Damaged = l.now().UTC()
	case err != nil:
		return err
	case ok:
		next.Rewinds, next.Damaged = old.Rewinds, old.Damaged
		if !old.follows(base) && len(next.Rewinds) < maxRewinds {
			next.Rewinds = append(next.Rewinds, rewind{Was: old.Head, DBSeq: base.Seq, At: l.now().UTC()})
		}
	}
	return l.writeAnchor(next)
}

// EnsureAnchor writes the head file from the database's head when the
// file does not exist yet (an appliance upgraded from a version without
// it). The daemon calls it at start; nothing else creates the file except
// an append, so a missing file on a log with entries is reported by
// Verify.
func (l *Log) EnsureAnchor(ctx context.Context) (created bool, err error) {
	if _, ok, err := l.readAnchor(); ok || (err != nil && !errors.Is(err, errAnchorAltered)) {
		return false, err
	}
	seq, hash, err := l.store.AuditHead(ctx)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	p := store.AuditPoint{Seq: seq, Hash: hash}
	return true, l.writeAnchor(anchor{Head: p, Base: p})
}

// anchorProblems compares the database, whose last entry is last, with
// the head file. hashAt returns the stored hash of entry seq (false when
// the database does not hold it). headRecorded says whether the
// database's own head record exists.
func (l *Log) anchorProblems(last store.AuditPoint, base store.AuditPoint, hashAt func(int64) ([]byte, bool), add func(string, ...any)) {
	a, ok, err := l.readAnchor()
	switch {
	case errors.Is(err, errAnchorAltered):
		add("the %s file in the data directory was altered outside clinicgate: the log cannot be checked for a rollback", AnchorFile)
		return
	case err != nil:
		add("the %s file cannot be read (%v): the log cannot be checked for a rollback", AnchorFile, err)
		return
	case !ok:
		if last.Seq > 0 || base.Seq > 0 {
			add("the %s file is missing from the data directory although the log has entries: it was deleted (start the daemon once to write it again; compare the log with its off-box copy with 'audit verify --against')", AnchorFile)
		}
		return
	}
	for _, r := range a.Rewinds {
		add("the database was put back to an older copy: entries up to %d had been written, but on %s the log ended at entry %d", r.Was.Seq, r.At.Format(time.RFC3339), r.DBSeq)
	}
	if !a.Damaged.IsZero() {
		add("the %s file was found altered outside clinicgate on %s", AnchorFile, a.Damaged.Format(time.RFC3339))
	}
	switch {
	case a.follows(last):
		if last.Seq > a.Head.Seq && a.Head.Seq > base.Seq {
			// The database has moved on (entries written by a version
			// without the file): entry Head must still be the same.
			if h, ok := hashAt(a.Head.Seq); ok && !bytes.Equal(h, a.Head.Hash) {
				add("entry %d is not the one clinicgate wrote (%s): the log was rewritten from there", a.Head.Seq, AnchorFile)
			}
		}
	case last.Seq == 0 && base.Seq == 0:
		add("the log is empty, but %d entries were written (%s): every entry was deleted", a.Head.Seq, AnchorFile)
	case last.Seq < a.Head.Seq:
		add("the log ends at entry %d, but entries up to %d were written (%s): the database was put back to an older copy, or its newest entries were deleted", last.Seq, a.Head.Seq, AnchorFile)
	default:
		add("entry %d is not the one clinicgate wrote (%s): the log was rewritten from there", last.Seq, AnchorFile)
	}
}

// CheckHead compares the database's end with the head file without
// walking the chain: the daemon runs it at start, so a database put back
// from an older copy is reported at once, in the log and the audit, not
// only at the next `audit verify`.
func (l *Log) CheckHead(ctx context.Context) ([]string, error) {
	rows, err := l.store.AuditRows(ctx, store.AuditFilter{Limit: 1, Newest: true})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	base, _, err := l.store.AuditBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	last := base
	if len(rows) > 0 {
		last = store.AuditPoint{Seq: rows[0].Seq, Hash: rows[0].Hash}
	}
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	l.anchorProblems(last, base, func(seq int64) ([]byte, bool) {
		r, err := l.store.AuditRows(ctx, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
		if err != nil || len(r) == 0 || r[0].Seq != seq {
			return nil, false
		}
		return r[0].Hash, true
	}, add)
	return problems, nil
}
