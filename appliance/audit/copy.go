package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// CopyMarker starts every record written off the box (a forwarded syslog
// message's MSG, a line of an export). A copy is read by looking for it on
// each line, so whatever a collector puts before it (its own timestamp,
// host name, tag) does not matter, and one parser reads rsyslog's files in
// any of its formats as well as an export.
const CopyMarker = "@cgaudit1 "

// record is one entry or checkpoint as written off the box: every field
// of the entry, so the copy is a complete record on its own, plus its
// place in the chain.
type record struct {
	Type    string `json:"t"` // "entry" or "checkpoint"
	Seq     int64  `json:"seq"`
	At      string `json:"at"` // RFC 3339, nanoseconds, UTC
	Kind    string `json:"kind,omitempty"`
	Door    string `json:"door,omitempty"`
	Client  string `json:"client,omitempty"`
	User    string `json:"user,omitempty"`
	Device  string `json:"device,omitempty"`
	Source  string `json:"source,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Prev    string `json:"prev,omitempty"`
	Hash    string `json:"hash"`
	MAC     string `json:"mac,omitempty"` // checkpoints
}

// EntryRecord is the off-box form of one entry: CopyMarker and a line of
// JSON, in ASCII only (a collector that escapes 8-bit bytes or control
// characters cannot change it).
func EntryRecord(r store.AuditRow) string {
	return encodeRecord(record{
		Type: "entry", Seq: r.Seq, At: r.At.UTC().Format(time.RFC3339Nano),
		Kind: r.Kind, Door: r.Door, Client: r.Client, User: r.User, Device: r.Device, Source: r.Source,
		Outcome: r.Outcome, Reason: r.Reason, Actor: r.Actor, Detail: r.Detail,
		Prev: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	})
}

// CheckpointRecord is the off-box form of a checkpoint: the chain's head
// p at time at, with a MAC under the audit key.
func (l *Log) CheckpointRecord(p store.AuditPoint, at time.Time) string {
	return encodeRecord(record{
		Type: "checkpoint", Seq: p.Seq, At: at.UTC().Format(time.RFC3339Nano),
		Hash: hex.EncodeToString(p.Hash), MAC: hex.EncodeToString(l.CheckpointMAC(p.Seq, p.Hash, at)),
	})
}

func encodeRecord(r record) string {
	b, _ := json.Marshal(r) // strings and an int: cannot fail
	var out strings.Builder
	out.Grow(len(CopyMarker) + len(b))
	out.WriteString(CopyMarker)
	for len(b) > 0 {
		c, n := utf8.DecodeRune(b)
		if c < utf8.RuneSelf {
			out.WriteByte(b[0])
		} else if c <= 0xFFFF {
			fmt.Fprintf(&out, `\u%04x`, c)
		} else {
			c -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xD800+(c>>10), 0xDC00+(c&0x3FF))
		}
		b = b[n:]
	}
	return out.String()
}

// Export writes every entry the log holds, oldest first, one record per
// line, and a checkpoint of the head at the end: a copy VerifyAgainst
// reads like a forwarded one.
func (l *Log) Export(ctx context.Context, w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var last store.AuditPoint
	err := l.store.EachAuditRow(ctx, func(r store.AuditRow) error {
		n++
		last = store.AuditPoint{Seq: r.Seq, Hash: r.Hash}
		_, err := bw.WriteString(EntryRecord(r) + "\n")
		return err
	})
	if err != nil {
		return n, fmt.Errorf("audit: %w", err)
	}
	if last.Seq > 0 {
		if _, err := bw.WriteString(l.CheckpointRecord(last, l.now()) + "\n"); err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// AgainstReport is the result of VerifyAgainst.
type AgainstReport struct {
	// CopyEntries and CopyCheckpoints are what the copy held; Compared is
	// how many entries were found in both.
	CopyEntries, CopyCheckpoints, Compared int64
	// FirstDiff is the first entry where the local log and the copy
	// disagree (0: none).
	FirstDiff int64
	// FirstMissing is the first entry the copy shows existed that the
	// local log lacks (0: none).
	FirstMissing int64
	// Problems fail the check; Notes do not.
	Problems, Notes []string
}

// First is the first entry where the local log departs from the copy,
// differing or missing (0: none).
func (r AgainstReport) First() int64 {
	switch {
	case r.FirstDiff == 0:
		return r.FirstMissing
	case r.FirstMissing == 0:
		return r.FirstDiff
	}
	return min(r.FirstDiff, r.FirstMissing)
}

// OK reports whether the local log agrees with the copy.
func (r AgainstReport) OK() bool { return len(r.Problems) == 0 }

type copyPoint struct {
	hash [32]byte
	mac  bool // a checkpoint whose MAC verified
}

// VerifyAgainst compares the local log with a copy made off the box (the
// collector's file, or an export) read from copyR. Each entry both hold
// must be the same; an entry or checkpoint the copy has beyond the local
// log's end means the local log was rolled back, cut or wiped. The copy
// is checked too: each of its entries must match its own hash, so a
// damaged copy is not taken for a damaged log.
func (l *Log) VerifyAgainst(ctx context.Context, copyR io.Reader) (AgainstReport, error) {
	var rep AgainstReport
	add := func(format string, a ...any) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...))
		}
	}
	diff := func(seq int64) {
		if rep.FirstDiff == 0 || seq < rep.FirstDiff {
			rep.FirstDiff = seq
		}
	}
	entries := map[int64][32]byte{}
	var checkpoints []struct {
		seq int64
		p   copyPoint
		at  string
	}
	var copyMax int64
	sc := bufio.NewScanner(copyR)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		i := bytes.Index(sc.Bytes(), []byte(CopyMarker))
		if i < 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(sc.Bytes()[i+len(CopyMarker):], &rec); err != nil {
			add("line %d of the copy is damaged: %v", line, err)
			continue
		}
		hash, err := hex.DecodeString(rec.Hash)
		if err != nil || len(hash) != 32 || rec.Seq < 1 {
			add("line %d of the copy is damaged: bad sequence number or hash", line)
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, rec.At)
		if err != nil {
			add("line %d of the copy is damaged: bad time %q", line, rec.At)
			continue
		}
		copyMax = max(copyMax, rec.Seq)
		var h [32]byte
		copy(h[:], hash)
		switch rec.Type {
		case "entry":
			rep.CopyEntries++
			prev, _ := hex.DecodeString(rec.Prev)
			row := store.AuditRow{Seq: rec.Seq, At: at, Kind: rec.Kind, Door: rec.Door, Client: rec.Client, User: rec.User, Device: rec.Device,
				Source: rec.Source, Outcome: rec.Outcome, Reason: rec.Reason, Actor: rec.Actor, Detail: rec.Detail, PrevHash: prev}
			if !hmac.Equal(l.sum(row), hash) {
				add("entry %d in the copy (line %d) does not match its own hash: the copy is damaged or was not written by this appliance", rec.Seq, line)
				continue
			}
			if old, dup := entries[rec.Seq]; dup && old != h {
				add("the copy holds two different entries %d: the log was rewritten after the first was forwarded", rec.Seq)
				diff(rec.Seq)
			}
			entries[rec.Seq] = h
		case "checkpoint":
			rep.CopyCheckpoints++
			mac, _ := hex.DecodeString(rec.MAC)
			ok := hmac.Equal(mac, l.CheckpointMAC(rec.Seq, hash, at))
			if !ok {
				add("the checkpoint of entry %d in the copy (line %d) was not written by this appliance", rec.Seq, line)
			}
			checkpoints = append(checkpoints, struct {
				seq int64
				p   copyPoint
				at  string
			}{rec.Seq, copyPoint{hash: h, mac: ok}, rec.At})
		default:
			add("line %d of the copy has an unknown record type %q", line, rec.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("reading the copy: %w", err)
	}
	if rep.CopyEntries == 0 && rep.CopyCheckpoints == 0 {
		add("the file holds no clinicgate audit records (lines with %q): is it the collector's file for this appliance?", strings.TrimSpace(CopyMarker))
		return rep, nil
	}

	local := map[int64][32]byte{} // only the seqs the copy has checkpoints for
	want := map[int64]bool{}
	for _, c := range checkpoints {
		want[c.seq] = true
	}
	var lastSeq int64
	var firstLocal int64
	// The base and the rows of one moment: retention removing entries
	// in between would make them look deleted.
	var base store.AuditPoint
	err := l.store.Snapshot(ctx, func(st *store.Store) error {
		var err error
		if base, _, err = st.AuditBase(ctx); err != nil {
			return err
		}
		return st.EachAuditRow(ctx, func(r store.AuditRow) error {
			if firstLocal == 0 {
				firstLocal = r.Seq
			}
			lastSeq = r.Seq
			var h [32]byte
			copy(h[:], r.Hash)
			if want[r.Seq] {
				local[r.Seq] = h
			}
			if c, ok := entries[r.Seq]; ok {
				rep.Compared++
				if c != h {
					diff(r.Seq)
				}
			}
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	if lastSeq == 0 {
		lastSeq = base.Seq
	}
	// Entries of the copy the local log lacks: those retention removed
	// are expected; the rest were deleted or rolled back.
	var missingFrom, missingTo, missing int64
	for seq, h := range entries {
		switch {
		case seq == base.Seq:
			if !bytes.Equal(h[:], base.Hash) {
				diff(seq)
			}
		case seq < base.Seq:
		case seq < firstLocal || seq > lastSeq || firstLocal == 0:
			missing++
			if missingFrom == 0 || seq < missingFrom {
				missingFrom = seq
			}
			missingTo = max(missingTo, seq)
		}
	}
	for _, c := range checkpoints {
		switch {
		case c.seq > lastSeq:
			if missingFrom == 0 || c.seq < missingFrom {
				missingFrom = c.seq
			}
			missingTo = max(missingTo, c.seq)
		case c.seq == base.Seq:
			if !bytes.Equal(c.p.hash[:], base.Hash) {
				diff(c.seq)
			}
		case c.seq > base.Seq:
			if h, ok := local[c.seq]; !ok || h != c.p.hash {
				diff(c.seq)
			}
		}
	}
	if rep.FirstDiff > 0 {
		add("entry %d differs from the copy: the local log was changed after the entry was sent off the box (an edited or forged entry, or a rollback followed by new entries)", rep.FirstDiff)
	}
	if missingFrom > 0 {
		rep.FirstMissing = missingFrom
		if missingFrom > lastSeq {
			rep.FirstMissing = lastSeq + 1
		}
		switch {
		case lastSeq == 0:
			add("the local log is empty, but the copy shows entries up to %d existed: the log was wiped", copyMax)
		case missingFrom > lastSeq:
			add("the local log ends at entry %d, but the copy shows entries up to %d: the database was rolled back or its newest entries were deleted (first missing: entry %d)", lastSeq, missingTo, lastSeq+1)
		default:
			add("the local log lacks entries the copy holds (%d of them, entries %d-%d): they were deleted (first missing: entry %d)", missing, missingFrom, missingTo, missingFrom)
		}
	}
	if lastSeq > copyMax {
		rep.Notes = append(rep.Notes, fmt.Sprintf("entries %d-%d are newer than the copy and were not compared", copyMax+1, lastSeq))
	}
	if gaps := countGaps(entries, max(base.Seq+1, firstLocal), min(copyMax, lastSeq)); gaps > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the copy lacks %d entries the local log holds (lost in transit, or the copy was started later)", gaps))
	}
	return rep, nil
}

// countGaps counts the seqs in [from, to] the copy does not hold.
func countGaps(entries map[int64][32]byte, from, to int64) int64 {
	if from < 1 || to < from {
		return 0
	}
	var n int64
	for seq := from; seq <= to; seq++ {
		if _, ok := entries[seq]; !ok {
			n++
		}
	}
	return n
}
