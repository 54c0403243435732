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
	"syscall"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// AnchorFile is the file in the data directory that keeps the chain's head
// outside the database (issue 16): putting back an older copy of the
// database does not rewind it, so Verify can tell that entries existed
// which the database no longer holds.
//
// It is rewritten after every transaction that appended entries commits.
// A power cut between the commit and the write leaves the file behind the
// database, which Verify accepts; a database behind the file, or holding
// another entry at the file's head, was put back or rewritten.
const AnchorFile = "audit-head"

const (
	anchorMagic = "clinicgate audit head v1"
	// maxRewinds bounds the evidence kept in the file; the first ones
	// are kept, since they show when the trouble began.
	maxRewinds = 16
)

// anchor is the file's content.
type anchor struct {
	Head store.AuditPoint
	// Rewinds are the times an append found the file's head no longer in
	// the database: the head the file named then, and the new head.
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

// updateAnchor is the store's anchor hook (store.SetAuditAnchor), run
// after each commit that appended entries, under a lock on the data
// directory so the daemon and a command-line change take turns. Before
// moving the head on it checks that the head the file names is still in
// the database; if not, the database was put back or rewritten, and the
// file keeps the evidence for good, however many entries follow.
func (l *Log) updateAnchor(head store.AuditPoint) {
	if err := l.moveAnchor(head); err != nil {
		l.anchorMu.Lock()
		report := l.onAnchorErr
		l.anchorMu.Unlock()
		if report != nil {
			report(err)
		}
	}
}

// OnAnchorError sets what is told when the head file cannot be written
// (the entries are committed by then; the file stays behind them).
func (l *Log) OnAnchorError(fn func(error)) {
	l.anchorMu.Lock()
	defer l.anchorMu.Unlock()
	l.onAnchorErr = fn
}

func (l *Log) moveAnchor(head store.AuditPoint) error {
	unlock, err := lockDir(l.store.Dir())
	if err != nil {
		return err
	}
	defer unlock()
	old, ok, err := l.readAnchor()
	next := anchor{Head: head}
	switch {
	case errors.Is(err, errAnchorAltered):
		next.Damaged = l.now().UTC()
	case err != nil:
		return err
	case ok:
		next.Rewinds, next.Damaged = old.Rewinds, old.Damaged
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		inDB, err := l.holds(ctx, old.Head)
		if err != nil {
			return err
		}
		if inDB && old.Head.Seq >= head.Seq {
			return nil // another process already wrote this head or a newer one
		}
		if !inDB && len(next.Rewinds) < maxRewinds {
			next.Rewinds = append(next.Rewinds, rewind{Was: old.Head, DBSeq: head.Seq, At: l.now().UTC()})
		}
	}
	return l.writeAnchor(next)
}

// holds reports whether the database still holds p (an entry retention
// removed counts as held: it can no longer be checked here).
func (l *Log) holds(ctx context.Context, p store.AuditPoint) (bool, error) {
	if p.Seq == 0 {
		return true, nil
	}
	base, _, err := l.store.AuditBase(ctx)
	if err != nil {
		return false, err
	}
	if p.Seq < base.Seq {
		return true, nil
	}
	if p.Seq == base.Seq {
		return bytes.Equal(p.Hash, base.Hash), nil
	}
	h, found, err := l.store.AuditHashAt(ctx, p.Seq)
	if err != nil {
		return false, err
	}
	return found && bytes.Equal(h, p.Hash), nil
}

// lockDir takes an exclusive flock on the directory itself (Linux allows
// it), so no further file is needed.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("audit head file: %w", err)
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX); err != nil {
		d.Close()
		return nil, fmt.Errorf("audit head file: lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
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
	return true, l.writeAnchor(anchor{Head: store.AuditPoint{Seq: seq, Hash: hash}})
}

// anchorProblems compares the database, whose last entry is last, with
// the head file. hashAt returns the stored hash of entry seq (false when
// the database does not hold it).
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
		add("the database was put back to an older copy or rewritten: entries up to %d had been written, but on %s a new entry %d was written in their place", r.Was.Seq, r.At.Format(time.RFC3339), r.DBSeq)
	}
	if !a.Damaged.IsZero() {
		add("the %s file was found altered outside clinicgate on %s", AnchorFile, a.Damaged.Format(time.RFC3339))
	}
	switch {
	case a.Head.Seq == 0:
	case last.Seq == 0 && base.Seq == 0:
		add("the log is empty, but %d entries were written (%s): every entry was deleted", a.Head.Seq, AnchorFile)
	case last.Seq < a.Head.Seq:
		add("the log ends at entry %d, but entries up to %d were written (%s): the database was put back to an older copy, or its newest entries were deleted", last.Seq, a.Head.Seq, AnchorFile)
	case a.Head.Seq < base.Seq:
		// Removed by retention since: nothing left to compare.
	case a.Head.Seq == base.Seq:
		if !bytes.Equal(base.Hash, a.Head.Hash) {
			add("entry %d is not the one clinicgate wrote (%s): the log was rewritten from there", a.Head.Seq, AnchorFile)
		}
	default:
		if h, found := hashAt(a.Head.Seq); !found || !bytes.Equal(h, a.Head.Hash) {
			add("entry %d is not the one clinicgate wrote (%s): the log was rewritten from there", a.Head.Seq, AnchorFile)
		}
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
