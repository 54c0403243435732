// Package audit keeps the appliance's tamper-evident trail: every decision
// and every admin change, each entry chained to the one before it by an
// HMAC-SHA256 under a key derived from the appliance key.
//
// Because the chain is keyed, someone who can edit the database but does
// not hold the key file cannot rewrite history and recompute the hashes.
// Verify detects an edited, deleted, inserted or reordered row, and rows cut
// off the end (the head is recorded apart from the rows). The head is also
// kept outside the database (AnchorFile), so putting back an older copy of
// the database, or wiping it, is reported too. Retention (Prune) removes
// the oldest entries and records, authenticated, where the kept part
// starts.
//
// Someone who holds the key file (root on the box) can still rewrite the
// chain, its head and the head file consistently. Only a copy kept off the
// box catches that: the forwarded copy (package auditfwd) or an export,
// checked with VerifyAgainst. This package must not make the key leave the
// process, nor trust anything read back from a copy without comparing it.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// Kinds of entries.
const (
	KindDecision = "decision"
	KindAdmin    = "admin"
	KindSystem   = "system"
)

// Entry is what a caller records. Detail is free text or JSON for the
// operator (never a secret).
type Entry struct {
	Kind    string
	Door    string
	Client  string
	User    string
	Device  string
	Source  string
	Outcome string
	Reason  string
	Actor   string
	Detail  string
}

// Log appends to and verifies the chain.
//
// Append commits in groups: one writer takes every entry waiting and
// writes them in a single transaction, so a burst of logins costs one
// fsync instead of one each, while every caller still returns only after
// its own entry is on disk.
type Log struct {
	store *store.Store
	key   []byte
	now   func() time.Time

	start sync.Once
	// anchorMu guards onAnchorErr (anchor.go).
	anchorMu    sync.Mutex
	onAnchorErr func(error)
	// lastAnchor is the record this process last wrote to the head
	// file, and lastAnchorRaw the whole file as it left it (nil: check
	// the file against the database before the next write).
	files          anchorFiles // the head file and its lock, kept open
	lastAnchor     anchor
	lastAnchorRaw  []byte
	lastAnchorSlot int
	// committed is signalled (never blocking) after each commit group,
	// so a forwarder wakes up without polling.
	committed chan struct{}
	reqs      chan *appendReq
	quit      chan struct{}
	stopped   chan struct{} // closed when the writer has exited
	closeOnce sync.Once
}

type appendReq struct {
	e    Entry
	done chan appendRes
}

type appendRes struct {
	seq int64
	err error
}

// maxBatch bounds one group commit.
const maxBatch = 256

// New builds a Log over st. now may be nil (time.Now).
func New(st *store.Store, now func() time.Time) (*Log, error) {
	if st == nil {
		return nil, errors.New("audit: no store")
	}
	if now == nil {
		now = time.Now
	}
	l := &Log{store: st, key: st.Sealer().Derive("audit-chain-v1"), now: now, reqs: make(chan *appendReq, 1024), quit: make(chan struct{}), stopped: make(chan struct{}),
		committed: make(chan struct{}, 1)}
	st.SetAuditHeadMAC(l.headMAC)
	st.SetAuditAnchor(l.updateAnchor)
	return l, nil
}

// Committed is signalled after entries were committed by this process's
// group-commit writer (entries from AppendTx and other processes are not
// signalled: a reader polls for those too).
func (l *Log) Committed() <-chan struct{} { return l.committed }

// Store is the store the log writes to.
func (l *Log) Store() *store.Store { return l.store }

// headMAC authenticates the recorded end of the chain, so that cutting
// entries off the end and moving the head back is noticed without the key.
func (l *Log) headMAC(seq int64, hash []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("head"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write(hash)
	return m.Sum(nil)
}

// baseMAC authenticates the point retention removed entries up to.
func (l *Log) baseMAC(seq int64, hash []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("base"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write(hash)
	return m.Sum(nil)
}

// CheckpointMAC authenticates a checkpoint sent off the box: the head
// (seq, hash) at time at. Whoever holds the key can check a checkpoint in
// a copy came from this appliance.
func (l *Log) CheckpointMAC(seq int64, hash []byte, at time.Time) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("checkpoint"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(at.UnixNano()))
	m.Write(n[:])
	m.Write(hash)
	return m.Sum(nil)
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// Close stops the group-commit writer after the entries already handed
// over are written. Append fails afterwards.
func (l *Log) Close() {
	l.closeOnce.Do(func() {
		close(l.quit)
		l.files.close()
	})
}

func (l *Log) build(e Entry) func(int64, []byte) (store.AuditRow, error) {
	return func(prevSeq int64, prevHash []byte) (store.AuditRow, error) {
		if prevHash == nil {
			prevHash = make([]byte, sha256.Size)
		}
		r := store.AuditRow{
			Seq: prevSeq + 1, At: l.now().UTC(),
			Kind: e.Kind, Door: e.Door, Client: e.Client, User: e.User, Device: e.Device,
			Source: e.Source, Outcome: e.Outcome, Reason: e.Reason, Actor: e.Actor, Detail: e.Detail,
			PrevHash: prevHash,
		}
		r.Hash = l.sum(r)
		return r, nil
	}
}

// Append records e and returns its sequence number once it is committed.
// The wait does not follow ctx: an entry handed over is written or fails
// as a whole, so a caller never reports a decision whose entry may or may
// not exist.
func (l *Log) Append(ctx context.Context, e Entry) (int64, error) {
	l.start.Do(func() { go l.writer() })
	r := &appendReq{e: e, done: make(chan appendRes, 1)}
	select {
	case <-l.quit:
		return 0, ErrClosed
	default:
	}
	select {
	case l.reqs <- r:
	case <-l.quit:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, fmt.Errorf("audit: %w", ctx.Err())
	}
	select {
	case res := <-r.done:
		return res.seq, res.err
	case <-l.stopped:
		// The writer exited (Close) without taking this entry.
		select {
		case res := <-r.done:
			return res.seq, res.err
		default:
			return 0, ErrClosed
		}
	}
}

func (l *Log) writer() {
	defer close(l.stopped)
	batch := make([]*appendReq, 0, maxBatch)
	for {
		var first *appendReq
		select {
		case first = <-l.reqs:
		case <-l.quit:
			// Entries handed over before Close are still written.
			select {
			case first = <-l.reqs:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		seqs := make([]int64, 0, len(batch))
		// No deadline: the driver watches a context that can end with
		// one goroutine per statement, and an entry handed over is
		// written or fails as a whole anyway (Append). A locked
		// database is bounded by the store's busy timeout.
		ctx := context.Background()
		builds := make([]func(int64, []byte) (store.AuditRow, error), len(batch))
		for i, r := range batch {
			builds[i] = l.build(r.e)
		}
		// One transaction, one multi-row INSERT per chunk, one fsync.
		rows, err := l.store.AppendAuditGroup(ctx, builds)
		for _, row := range rows {
			seqs = append(seqs, row.Seq)
		}
		if err == nil {
			select {
			case l.committed <- struct{}{}:
			default:
			}
		}
		for i, r := range batch {
			if err != nil {
				r.done <- appendRes{err: fmt.Errorf("audit: %w", err)}
			} else {
				r.done <- appendRes{seq: seqs[i]}
			}
		}
	}
}

// AppendTx records e inside a transaction that also makes the change it
// describes, so a change is never stored without its entry.
func (l *Log) AppendTx(ctx context.Context, tx *store.Tx, e Entry) (int64, error) {
	r, err := tx.AppendAudit(ctx, l.build(e))
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return r.Seq, nil
}

// sum is the entry's MAC: every field, length-prefixed so no two different
// entries encode alike, plus the previous hash.
func (l *Log) sum(r store.AuditRow) []byte {
	m := hmac.New(sha256.New, l.key)
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	field(r.PrevHash)
	binary.BigEndian.PutUint64(n[:], uint64(r.Seq))
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(r.At.UnixNano()))
	m.Write(n[:])
	for _, s := range []string{r.Kind, r.Door, r.Client, r.User, r.Device, r.Source, r.Outcome, r.Reason, r.Actor, r.Detail} {
		field([]byte(s))
	}
	return m.Sum(nil)
}

// Report is the result of Verify.
type Report struct {
	Entries int64
	// Problems lists each break found, in order; empty means the chain is
	// whole.
	Problems []string
}

// OK reports whether the chain verified.
func (r Report) OK() bool { return len(r.Problems) == 0 }

const maxProblems = 20

// Verify walks the whole chain and compares its end with the head record
// and the head file.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	// The head file first: a head written while the walk runs can only
	// put the database ahead of what was read here. Then the database in
	// one snapshot, so that the rows and the recorded end are of the same
	// moment however many entries the daemon appends meanwhile.
	wantFile, wantErr := l.readAnchor()
	var rep Report
	err := l.store.Snapshot(ctx, func(st *store.Store) error {
		var err error
		rep, err = l.verifyIn(ctx, st, wantFile, wantErr)
		return err
	})
	return rep, err
}

// verifyIn is Verify's walk over the snapshot st.
func (l *Log) verifyIn(ctx context.Context, st *store.Store, wantFile headFile, wantErr error) (Report, error) {
	var rep Report
	add := func(format string, a ...any) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...))
		}
	}
	var prevSeq int64
	prevHash := make([]byte, sha256.Size)
	base, baseMAC, err := st.AuditBase(ctx)
	if err != nil {
		add("the record of entries removed by retention is unreadable: %v", err)
	} else if base.Seq > 0 {
		if !hmac.Equal(baseMAC, l.baseMAC(base.Seq, base.Hash)) {
			add("the record of entries removed by retention (up to entry %d) was not written by clinicgate: old entries may have been deleted", base.Seq)
		}
		prevSeq, prevHash = base.Seq, base.Hash
	}
	// The head file's entry is looked up on the way, so the walk stays
	// the only pass over the table.
	want := wantFile.a
	var wantHash []byte
	err = st.EachAuditRow(ctx, func(r store.AuditRow) error {
		rep.Entries++
		if r.Seq != prevSeq+1 {
			add("entry %d follows entry %d: entries %d-%d are missing", r.Seq, prevSeq, prevSeq+1, r.Seq-1)
		}
		if !hmac.Equal(r.PrevHash, prevHash) {
			add("entry %d does not link to the entry before it (deleted, inserted or reordered entries)", r.Seq)
		}
		if !hmac.Equal(r.Hash, l.sum(r)) {
			add("entry %d was altered after it was written", r.Seq)
		}
		if r.Seq == want.Head.Seq {
			wantHash = r.Hash
		}
		prevSeq, prevHash = r.Seq, r.Hash
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	last := store.AuditPoint{Seq: prevSeq, Hash: prevHash}
	if rep.Entries == 0 && base.Seq == 0 {
		last = store.AuditPoint{}
	}
	l.anchorProblems(ctx, st, wantFile, wantErr, true, last, base, func(seq int64) ([]byte, bool) { return wantHash, wantHash != nil && seq == want.Head.Seq }, add)
	recorded, err := st.AuditHeadRecorded(ctx)
	if err != nil {
		add("the recorded end of the log is unreadable: %v", err)
		return rep, nil
	}
	if !recorded {
		if rep.Entries > 0 || base.Seq > 0 {
			add("the recorded end of the log is missing although the log has entries: it was deleted outside clinicgate")
		}
		return rep, nil
	}
	headSeq, headHash, err := st.AuditHead(ctx)
	if err != nil {
		add("the recorded end of the log is unreadable: %v", err)
		return rep, nil
	}
	if headSeq > 0 {
		mac, err := st.AuditHeadMAC(ctx)
		if err != nil || !hmac.Equal(mac, l.headMAC(headSeq, headHash)) {
			add("the recorded end of the log (entry %d) was not written by clinicgate: entries at the end may have been removed", headSeq)
		}
	}
	switch {
	case headSeq > prevSeq:
		add("the log ends at entry %d but entries up to %d were written: the newest entries were deleted", prevSeq, headSeq)
	case headSeq < prevSeq:
		add("entries after %d were added outside clinicgate", headSeq)
	case headSeq > 0 && !hmac.Equal(headHash, prevHash):
		add("the last entry %d is not the one clinicgate wrote", headSeq)
	}
	return rep, nil
}
