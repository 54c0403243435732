package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// RetentionSetting is the store setting holding how long entries are
// kept (issue 15: the log grew without bound).
const RetentionSetting = "audit.retention"

// Retention is how long entries are kept: years and days, counted on the
// calendar (six years from 2020-02-29 is 2026-03-01).
type Retention struct{ Years, Days int }

// DefaultRetention is HIPAA's documentation period (45 CFR 164.316(b)(2)).
var DefaultRetention = Retention{Years: 6}

// minRetention keeps a typo ("1d" for "1y") from wiping a year of
// history in one night.
const minRetentionDays = 30

// ParseRetention reads "6y", "400d" or "1y180d".
func ParseRetention(s string) (Retention, error) {
	var r Retention
	rest := strings.ToLower(strings.TrimSpace(s))
	if rest == "" {
		return r, errors.New("the retention is empty: write it as years and days, such as 6y or 400d")
	}
	for rest != "" {
		i := strings.IndexAny(rest, "yd")
		if i <= 0 {
			return Retention{}, fmt.Errorf("retention %q: write it as years and days, such as 6y, 400d or 1y180d", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 || n > 100000 {
			return Retention{}, fmt.Errorf("retention %q: write it as years and days, such as 6y, 400d or 1y180d", s)
		}
		if rest[i] == 'y' {
			r.Years += n
		} else {
			r.Days += n
		}
		rest = rest[i+1:]
	}
	if r.Years*366+r.Days < minRetentionDays {
		return Retention{}, fmt.Errorf("retention %q is shorter than %d days: audit entries are evidence, keep them longer", s, minRetentionDays)
	}
	return r, nil
}

func (r Retention) String() string {
	var b strings.Builder
	if r.Years > 0 {
		fmt.Fprintf(&b, "%dy", r.Years)
	}
	if r.Days > 0 || r.Years == 0 {
		fmt.Fprintf(&b, "%dd", r.Days)
	}
	return b.String()
}

// Cutoff is the time before which entries are removed, at now.
func (r Retention) Cutoff(now time.Time) time.Time { return now.AddDate(-r.Years, 0, -r.Days) }

// LoadRetention reads the setting, or the default when it is unset. A
// value that does not parse (a hand edit of the database) keeps the
// default: removing too little is the safe mistake.
func LoadRetention(ctx context.Context, st *store.Store) (Retention, error) {
	v, err := st.Setting(ctx, RetentionSetting)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultRetention, nil
	}
	if err != nil {
		return Retention{}, err
	}
	r, err := ParseRetention(v)
	if err != nil {
		return DefaultRetention, nil
	}
	return r, nil
}

// Pruned is what one Prune removed.
type Pruned struct {
	Entries int
	// Base is the last entry removed: the kept log starts after it.
	Base store.AuditPoint
}

// Prune removes up to batch entries older than the retention at now, in
// one transaction that also records, authenticated, the last entry
// removed (Verify starts the kept chain from it) and appends a system
// entry saying so, which the forwarder sends off the box like any other.
//
// It never removes the newest entry (the head), nor an entry the
// forwarder has not yet delivered when forwarding is on: the off-box copy
// must hold everything before the local copy lets it go.
func (l *Log) Prune(ctx context.Context, now time.Time, batch int) (Pruned, error) {
	var out Pruned
	ret, err := LoadRetention(ctx, l.store)
	if err != nil {
		return out, fmt.Errorf("audit: %w", err)
	}
	head, _, err := l.store.AuditHead(ctx)
	if err != nil {
		return out, fmt.Errorf("audit: %w", err)
	}
	upTo := head - 1
	if f, err := l.store.AuditForward(ctx); err == nil && f.Enabled {
		st, err := l.store.AuditForwardState(ctx)
		if err != nil {
			return out, fmt.Errorf("audit: %w", err)
		}
		upTo = min(upTo, st.SentSeq)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return out, fmt.Errorf("audit: %w", err)
	}
	if upTo < 1 {
		return out, nil
	}
	cutoff := ret.Cutoff(now)
	err = l.store.WithTx(ctx, func(tx *store.Tx) error {
		base, n, err := tx.PruneAudit(ctx, cutoff, upTo, batch, l.baseMAC)
		if err != nil || n == 0 {
			return err
		}
		out = Pruned{Entries: n, Base: base}
		_, err = l.AppendTx(ctx, tx, Entry{Kind: KindSystem, Reason: "audit_pruned", Actor: "retention", Outcome: "removed",
			Detail: fmt.Sprintf("%d entries up to entry %d removed: older than the retention of %s (written before %s); the kept log starts after entry %d, whose hash was %s",
				n, base.Seq, ret, cutoff.UTC().Format(time.RFC3339), base.Seq, hex.EncodeToString(base.Hash))})
		return err
	})
	if err != nil {
		return Pruned{}, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}
