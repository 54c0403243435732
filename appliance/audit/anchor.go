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
// It is written after every transaction that appended entries commits,
// before the entries' callers are answered. A power cut between the
// commit and the write leaves the file behind the database, which Verify
// accepts; a database behind the file, or holding another entry at the
// file's head, was put back or rewritten.
//
// The file holds two records of anchorSlot bytes, each with its own MAC
// and a generation number, and a write overwrites the older one in place
// (issue 15: creating and renaming a new file after every commit was a
// quarter of a proxied login's CPU). A power cut in the middle of a write
// can leave that record torn, never both: the other one is the head
// before it, and the database, committed before the write began, is then
// beyond it. So a record that does not check is taken for a torn write
// only while the database holds the other record's head and entries
// after it; otherwise the file was altered.
const AnchorFile = "audit-head"

const (
	anchorMagicV1 = "clinicgate audit head v1" // one record, replaced by rename
	anchorMagic   = "clinicgate audit head v2"
	anchorSlot    = 4096
	// maxRewinds bounds the evidence kept in the file; the first ones
	// are kept, since they show when the trouble began. 16 of them and
	// the rest fit a slot.
	maxRewinds = 16
)

// anchor is one record of the file.
type anchor struct {
	Gen  uint64
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

// headFile is what readAnchor found.
type headFile struct {
	a      anchor // the newest record that checks
	exists bool
	slot   int  // the slot holding a
	torn   bool // the other slot does not check (v2 only)
	v1     bool // the first layout: one record, no slots
	raw    []byte
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
	fmt.Fprintf(&b, "gen %d\n", a.Gen)
	fmt.Fprintf(&b, "head %d %s\n", a.Head.Seq, hexOrDash(a.Head.Hash))
	for _, r := range a.Rewinds {
		fmt.Fprintf(&b, "rewound %d %s %d %d\n", r.Was.Seq, hexOrDash(r.Was.Hash), r.DBSeq, r.At.Unix())
	}
	if !a.Damaged.IsZero() {
		fmt.Fprintf(&b, "damaged %d\n", a.Damaged.Unix())
	}
	return b.Bytes()
}

// record is a's slot: its text, its MAC, and zeros to the slot's end.
func (l *Log) record(a anchor) []byte {
	body := a.body()
	rec := make([]byte, anchorSlot)
	n := copy(rec, fmt.Appendf(body, "mac %x\n", l.anchorMAC(body)))
	if n == anchorSlot {
		panic("audit: head record larger than its slot") // bounded by maxRewinds
	}
	return rec
}

// hexOrDash writes a hash so that the line keeps its fields when there is
// none (before the first entry).
func hexOrDash(h []byte) string {
	if len(h) == 0 {
		return "-"
	}
	return hex.EncodeToString(h)
}

// parseRecord checks one record's MAC and reads it. magic is the first
// line it must have; v2 records carry a generation.
func (l *Log) parseRecord(raw []byte, magic string) (anchor, error) {
	var a anchor
	raw = bytes.TrimRight(raw, "\x00")
	i := bytes.LastIndex(raw, []byte("mac "))
	if i < 0 {
		return a, errAnchorAltered
	}
	body := raw[:i]
	mac, err := hex.DecodeString(strings.TrimSpace(string(raw[i+4:])))
	if err != nil || !hmac.Equal(mac, l.anchorMAC(body)) {
		return a, errAnchorAltered
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	if !sc.Scan() || sc.Text() != magic {
		return a, errAnchorAltered
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
		case len(f) == 2 && f[0] == "gen" && magic == anchorMagic:
			a.Gen, err = strconv.ParseUint(f[1], 10, 64)
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
			return anchor{}, errAnchorAltered
		}
	}
	return a, nil
}

// readAnchor reads the file. exists is false when there is none;
// errAnchorAltered when no record checks (or the file has the wrong
// shape). One torn record is not an error: the caller judges it against
// the database (tornBenign).
//
// It takes a shared lock on the data directory, so it never reads a
// record while an append writes it in place. Callers read the file
// before the database: a head written after that read can only put the
// database ahead of the file, never behind it.
func (l *Log) readAnchor() (headFile, error) {
	d, err := os.Open(l.store.Dir())
	if err != nil {
		return headFile{}, err
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_SH); err != nil {
		return headFile{}, fmt.Errorf("audit head file: lock: %w", err)
	}
	return l.readAnchorLocked()
}

// readAnchorLocked is readAnchor for a caller that holds the lock.
func (l *Log) readAnchorLocked() (headFile, error) {
	raw, err := l.readAnchorRaw()
	if raw == nil || err != nil {
		return headFile{}, err
	}
	return l.parseAnchor(raw)
}

// readAnchorRaw reads the file's bytes (nil when there is none).
func (l *Log) readAnchorRaw() ([]byte, error) {
	raw, err := os.ReadFile(l.anchorPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if raw == nil && err == nil {
		raw = []byte{}
	}
	return raw, err
}

func (l *Log) parseAnchor(raw []byte) (headFile, error) {
	var err error
	h := headFile{exists: true, raw: raw}
	if bytes.HasPrefix(raw, []byte(anchorMagicV1+"\n")) {
		h.v1 = true
		h.a, err = l.parseRecord(raw, anchorMagicV1)
		return h, err
	}
	if len(raw) != 2*anchorSlot {
		return h, errAnchorAltered
	}
	a0, err0 := l.parseRecord(raw[:anchorSlot], anchorMagic)
	a1, err1 := l.parseRecord(raw[anchorSlot:], anchorMagic)
	switch {
	case err0 != nil && err1 != nil:
		return h, errAnchorAltered
	case err1 != nil:
		h.a, h.slot, h.torn = a0, 0, true
	case err0 != nil:
		h.a, h.slot, h.torn = a1, 1, true
	case a1.Gen > a0.Gen:
		h.a, h.slot = a1, 1
	default:
		h.a, h.slot = a0, 0
	}
	return h, nil
}

// tornBenign says whether a torn record is what a power cut in the middle
// of a write leaves: the write began after a commit beyond the record
// that checks, so the database (whose end is dbEnd) holds that record's
// head and more. Anything else (the database at or behind it) is an
// altered file hiding a rollback.
func (l *Log) tornBenign(ctx context.Context, st *store.Store, h headFile, dbEnd int64) (bool, error) {
	if dbEnd <= h.a.Head.Seq {
		return false, nil
	}
	return l.holds(ctx, st, h.a.Head)
}

// writeAnchorNew creates the file whole (data: both slots holding the
// same record): a
// temporary file, synced, renamed over it. It is used when there is no
// file, or one of the first layout, or one whose shape is wrong. The
// directory is not synced: a rename lost in a power cut leaves the
// previous head, which the database is at or beyond, and Verify accepts
// that.
func (l *Log) writeAnchorNew(data []byte) error {
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
// after each commit that appended, under the store's write lock and a
// lock on the data directory so the daemon and a command-line change
// take turns. Before moving the head on it checks that the head the file
// names is still in the database; if not, the database was put back or
// rewritten, and the file keeps the evidence for good, however many
// entries follow.
func (l *Log) updateAnchor(prev, head store.AuditPoint) {
	if err := l.moveAnchor(prev, head); err != nil {
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

// moveAnchor writes head after a commit whose transaction found prev at
// the end of the table.
func (l *Log) moveAnchor(prev, head store.AuditPoint) error {
	if err := l.files.begin(l.store.Dir()); err != nil {
		return err
	}
	defer l.files.end()
	raw, err := l.files.read(l.anchorPath())
	if errors.Is(err, errAnchorAltered) {
		raw, err = []byte{}, nil // parsed below as altered
	}
	if err != nil {
		return fmt.Errorf("audit head file: %w", err)
	}
	// The common case, checked without the database: the file is as this
	// process last wrote it and this commit followed its head, which the
	// database therefore still held.
	l.anchorMu.Lock()
	last, lastRaw, lastSlot := l.lastAnchor, l.lastAnchorRaw, l.lastAnchorSlot
	l.anchorMu.Unlock()
	if lastRaw != nil && bytes.Equal(raw, lastRaw) && prev.Seq == last.Head.Seq && bytes.Equal(prev.Hash, last.Head.Hash) {
		next := last
		next.Gen, next.Head = last.Gen+1, head
		return l.commitAnchor(headFile{a: last, exists: true, slot: lastSlot, raw: raw}, next)
	}
	var h headFile
	if raw != nil {
		h, err = l.parseAnchor(raw)
	}
	next := anchor{Head: head}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch {
	case errors.Is(err, errAnchorAltered):
		next.Damaged = l.now().UTC()
	case !h.exists:
	default:
		next.Gen, next.Rewinds, next.Damaged = h.a.Gen+1, h.a.Rewinds, h.a.Damaged
		inDB, err := l.holds(ctx, l.store, h.a.Head)
		if err != nil {
			return err
		}
		if h.torn {
			benign, err := l.tornBenign(ctx, l.store, h, prev.Seq)
			if err != nil {
				return err
			}
			if !benign && next.Damaged.IsZero() {
				next.Damaged = l.now().UTC()
			}
		}
		if inDB && h.a.Head.Seq >= head.Seq && !h.torn {
			return nil // another process already wrote this head or a newer one
		}
		if !inDB && len(next.Rewinds) < maxRewinds {
			next.Rewinds = append(next.Rewinds, rewind{Was: h.a.Head, DBSeq: head.Seq, At: l.now().UTC()})
		}
		if h.a.Head.Seq > head.Seq && inDB {
			next.Head = h.a.Head // keep the newer head another process wrote
		}
	}
	if errors.Is(err, errAnchorAltered) {
		h = headFile{} // made again whole
	}
	return l.commitAnchor(h, next)
}

// commitAnchor writes next and remembers it for the next commit's check.
func (l *Log) commitAnchor(h headFile, next anchor) error {
	l.anchorMu.Lock()
	own := l.lastAnchorRaw // reused below: h.raw is read's buffer, not ours
	l.lastAnchorRaw = nil
	l.anchorMu.Unlock()
	rec := l.record(next)
	var raw []byte
	slot := 0
	if !h.exists || h.v1 || len(h.raw) != 2*anchorSlot {
		raw = append(append(make([]byte, 0, 2*anchorSlot), rec...), rec...)
		if err := l.writeAnchorNew(raw); err != nil {
			return err
		}
	} else {
		slot = 1 - h.slot
		if err := l.files.writeAt(rec, int64(slot*anchorSlot)); err != nil {
			return fmt.Errorf("audit head file: %w", err)
		}
		raw = append(own[:0], h.raw...)
		copy(raw[slot*anchorSlot:], rec)
	}
	l.anchorMu.Lock()
	l.lastAnchor, l.lastAnchorRaw, l.lastAnchorSlot = next, raw, slot
	l.anchorMu.Unlock()
	return nil
}

// holds reports whether the database still holds p (an entry retention
// removed counts as held: it can no longer be checked here).
func (l *Log) holds(ctx context.Context, st *store.Store, p store.AuditPoint) (bool, error) {
	if p.Seq == 0 {
		return true, nil
	}
	base, _, err := st.AuditBase(ctx)
	if err != nil {
		return false, err
	}
	if p.Seq < base.Seq {
		return true, nil
	}
	if p.Seq == base.Seq {
		return bytes.Equal(p.Hash, base.Hash), nil
	}
	h, found, err := st.AuditHashAt(ctx, p.Seq)
	if err != nil {
		return false, err
	}
	return found && bytes.Equal(h, p.Hash), nil
}

// EnsureAnchor writes the head file from the database's head when the
// file does not exist yet (an appliance upgraded from a version without
// it). The daemon calls it at start; nothing else creates the file except
// an append, so a missing file on a log with entries is reported by
// Verify.
func (l *Log) EnsureAnchor(ctx context.Context) (created bool, err error) {
	if err := l.files.begin(l.store.Dir()); err != nil {
		return false, err
	}
	defer l.files.end()
	if h, err := l.readAnchorLocked(); h.exists || (err != nil && !errors.Is(err, errAnchorAltered)) {
		return false, err
	}
	seq, hash, err := l.store.AuditHead(ctx)
	if err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	return true, l.commitAnchor(headFile{}, anchor{Head: store.AuditPoint{Seq: seq, Hash: hash}})
}

// TornHead reports a head file whose newer record does not check while
// the database holds the other record's head and entries after it: what
// a power cut in the middle of a write leaves (or an edit that hides
// nothing). The next append rewrites the record; the daemon makes one at
// start and names it in the log and the audit. An empty string: nothing
// of the kind.
func (l *Log) TornHead(ctx context.Context) (string, error) {
	h, err := l.readAnchor()
	if err != nil || !h.torn {
		return "", nil // problems of any other kind are CheckHead's
	}
	var seq int64
	var benign bool
	err = l.store.Snapshot(ctx, func(st *store.Store) error {
		var err error
		if seq, _, err = st.AuditHead(ctx); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		benign, err = l.tornBenign(ctx, st, h, seq)
		return err
	})
	if err != nil || !benign {
		return "", err
	}
	return fmt.Sprintf("one of the two records in the %s file does not check (torn by a power cut while it was written, or altered); the other names entry %d, which the log holds, with %d entries after it", AnchorFile, h.a.Head.Seq, seq-h.a.Head.Seq), nil
}

// anchorProblems compares the database, whose last entry is last, with
// the head file as h and err (readAnchor, read before the database).
// hashAt returns the stored hash of entry seq (false when
// the database does not hold it). reportTorn: whether a torn record that
// hides nothing (TornHead) counts as a problem.
func (l *Log) anchorProblems(ctx context.Context, st *store.Store, h headFile, err error, reportTorn bool, last store.AuditPoint, base store.AuditPoint, hashAt func(int64) ([]byte, bool), add func(string, ...any)) {
	a := h.a
	switch {
	case errors.Is(err, errAnchorAltered):
		add("the %s file in the data directory was altered outside clinicgate: the log cannot be checked for a rollback", AnchorFile)
		return
	case err != nil:
		add("the %s file cannot be read (%v): the log cannot be checked for a rollback", AnchorFile, err)
		return
	case !h.exists:
		if last.Seq > 0 || base.Seq > 0 {
			add("the %s file is missing from the data directory although the log has entries: it was deleted (start the daemon once to write it again; compare the log with its off-box copy with 'audit verify --against')", AnchorFile)
		}
		return
	}
	if h.torn {
		// Benign only when the database is beyond the record that
		// checks (see AnchorFile); said either way, since an edit
		// looks the same, and the next append mends it.
		if benign, err := l.tornBenign(ctx, st, h, last.Seq); err == nil && benign {
			if reportTorn {
				add("one of the two records in the %s file was altered outside clinicgate or torn by a power cut while it was written; the other record agrees with the log, and the next entry written rewrites it", AnchorFile)
			}
		} else {
			add("the newer record in the %s file was altered outside clinicgate, and the log ends at the older record's entry %d: the newest entries may have been rolled back", AnchorFile, a.Head.Seq)
		}
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
	h, herr := l.readAnchor()
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	err := l.store.Snapshot(ctx, func(st *store.Store) error {
		rows, err := st.AuditRows(ctx, store.AuditFilter{Limit: 1, Newest: true})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		base, _, err := st.AuditBase(ctx)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		last := base
		if len(rows) > 0 {
			last = store.AuditPoint{Seq: rows[0].Seq, Hash: rows[0].Hash}
		}
		l.anchorProblems(ctx, st, h, herr, false, last, base, func(seq int64) ([]byte, bool) {
			r, err := st.AuditRows(ctx, store.AuditFilter{AfterSeq: seq - 1, Limit: 1})
			if err != nil || len(r) == 0 || r[0].Seq != seq {
				return nil, false
			}
			return r[0].Hash, true
		}, add)
		return nil
	})
	return problems, err
}
