package posture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// DefaultInterval is the time between two syncs of a source unless the
// contractor sets another.
const DefaultInterval = 15 * time.Minute

// Syncer runs each configured MDM source's sync periodically: at most one
// sync at a time per source, each within Timeout. It reads the sources
// from the store about once a second, so a change made with the CLI or
// the console (settings, secret, interval, "sync now") takes effect
// within a second or two without a restart.
type Syncer struct {
	Store *store.Store
	Audit *audit.Log
	// Logger gets one line per sync; nil discards.
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// HTTP is the client connectors use (nil: each builds its own).
	HTTP *http.Client
	// Build makes a source's connector (nil: Build).
	Build func(src store.MDMSource, client *http.Client, log *slog.Logger) (Connector, error)
	// Poll is how often the store is read (default 1 s); Timeout bounds
	// one sync (default 10 min).
	Poll, Timeout time.Duration

	mu      sync.Mutex
	sources map[string]*source
	wg      sync.WaitGroup
}

// source is the syncer's view of one configured source.
type source struct {
	version int64
	cfg     store.MDMSource
	conn    Connector
	err     error // the connector could not be built
	busy    bool
	next    time.Time
	served  int64
}

// Result is what one successful sync did.
type Result struct {
	Devices    int
	Duplicates int // ids listed more than once (one kept)
	store.SyncResult
}

// NewSyncer checks the dependencies.
func NewSyncer(st *store.Store, log *audit.Log, logger *slog.Logger) (*Syncer, error) {
	if st == nil || log == nil {
		return nil, errors.New("posture: the syncer needs a store and an audit log")
	}
	return &Syncer{Store: st, Audit: log, Logger: logger}, nil
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Syncer) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Run polls the store and starts the syncs that are due until ctx ends,
// then waits for the syncs in progress (their contexts end with ctx).
func (s *Syncer) Run(ctx context.Context) error {
	poll := s.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	defer s.wg.Wait()
	for {
		s.Poll1(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll1 reads the sources once and starts, in the background, each sync
// that is due or was asked for.
func (s *Syncer) Poll1(ctx context.Context) {
	states, err := s.Store.MDMStates(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log().Warn("MDM sources unreadable", "err", err)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources == nil {
		s.sources = map[string]*source{}
	}
	seen := map[string]bool{}
	for _, st := range states {
		seen[st.Name] = true
		src := s.sources[st.Name]
		if src != nil && src.busy {
			continue // picked up again once the sync in progress ends
		}
		if src == nil || src.version != st.Version {
			full, err := s.Store.MDMSourceByName(ctx, st.Name)
			if err != nil {
				continue
			}
			ns := &source{version: st.Version, cfg: full, served: full.SyncServed}
			if !full.LastAttemptAt.IsZero() && src == nil {
				// After a restart, keep the schedule the last run set.
				ns.next = full.LastAttemptAt.Add(interval(full))
			}
			ns.conn, ns.err = s.build(full)
			if ns.err != nil {
				_ = s.Store.FailMDMSync(ctx, full.Name, "settings unusable: "+ns.err.Error(), s.now())
				s.log().Warn("MDM source misconfigured", "source", full.Name, "err", ns.err)
			}
			s.sources[st.Name] = ns
			src = ns
		}
		asked := st.SyncRequest > src.served
		if src.conn == nil && asked {
			// Nothing can run: the request is answered by the
			// settings error recorded when the connector was built.
			_ = s.Store.FailMDMSync(ctx, st.Name, "settings unusable: "+src.err.Error(), s.now())
			_ = s.Store.FinishMDMSync(ctx, st.Name, st.SyncRequest)
			src.served = st.SyncRequest
		}
		if src.conn == nil || !src.cfg.Enabled && !asked {
			continue
		}
		if !asked && s.now().Before(src.next) {
			continue
		}
		src.busy = true
		req := st.SyncRequest
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runOne(ctx, src, req)
		}()
	}
	for name, src := range s.sources {
		if !seen[name] && !src.busy {
			delete(s.sources, name)
		}
	}
}

func (s *Syncer) runOne(ctx context.Context, src *source, req int64) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = s.Store.StartMDMSync(sctx, src.cfg.Name, req, s.now())
	res, err := s.Sync(sctx, src.cfg.Name, src.conn)
	_ = s.Store.FinishMDMSync(context.WithoutCancel(ctx), src.cfg.Name, req)
	s.mu.Lock()
	src.busy = false
	src.served = max(src.served, req)
	src.next = s.now().Add(interval(src.cfg))
	s.mu.Unlock()
	if err != nil {
		s.log().Warn("MDM sync failed; the last good data is kept", "source", src.cfg.Name, "err", err)
		return
	}
	s.log().Info("MDM sync", "source", src.cfg.Name, "devices", res.Devices, "added", res.Added, "updated", res.Updated,
		"removed", res.Removed, "noncompliant_now", len(res.TurnedNoncompliant), "duplicates", res.Duplicates)
}

func interval(m store.MDMSource) time.Duration {
	if m.Interval > 0 {
		return m.Interval
	}
	return DefaultInterval
}

func (s *Syncer) build(m store.MDMSource) (Connector, error) {
	if s.Build != nil {
		return s.Build(m, s.HTTP, s.log())
	}
	return Build(m, s.HTTP, s.log())
}

// Sync runs one sync of the named source with conn now: a full list
// applied in one transaction with its posture events and audit entry, or,
// when anything fails, nothing changed but the error and its time.
func (s *Syncer) Sync(ctx context.Context, name string, conn Connector) (Result, error) {
	res, err := s.sync(ctx, name, conn)
	if err != nil {
		now := s.now()
		msg := err.Error()
		if ferr := s.Store.FailMDMSync(context.WithoutCancel(ctx), name, msg, now); ferr != nil {
			err = errors.Join(err, ferr)
		}
		_, _ = s.Audit.Append(context.WithoutCancel(ctx), audit.Entry{Kind: audit.KindSystem, Reason: "mdm_sync", Actor: "mdm:" + name, Outcome: "failed",
			Detail: name + " sync failed, the last good data is kept: " + msg})
	}
	return res, err
}

func (s *Syncer) sync(ctx context.Context, name string, conn Connector) (Result, error) {
	var res Result
	devs, err := conn.Devices(ctx)
	if err != nil {
		return res, err
	}
	devs, res.Duplicates = s.dedupe(name, devs)
	res.Devices = len(devs)
	err = s.Store.WithTx(ctx, func(tx *store.Tx) error {
		now := s.now()
		users, err := tx.UserRefs(ctx)
		if err != nil {
			return err
		}
		local := make(map[string]string, len(devs)) // owner UPN → local name, for the events
		for i := range devs {
			d := &devs[i]
			d.SyncedAt = now
			if u, ok := ownerOf(users, d.UserName); ok {
				d.UserID = u.ID
				local[d.UserName] = u.Name
			}
		}
		sr, err := tx.ReplaceSourceDevices(ctx, conn.Source(), devs, now)
		if err != nil {
			return err
		}
		res.SyncResult = sr
		for _, d := range sr.TurnedNoncompliant {
			owner := d.UserName
			if n, ok := local[owner]; ok {
				owner = n
			}
			e := store.PostureEvent{Kind: store.EventDeviceNoncompliant, DeviceID: d.ID, UserName: owner, MACs: d.MACs,
				Detail: fmt.Sprintf("%s says %s is noncompliant (%s)", name, label(d), d.ComplianceReason)}
			if err := tx.AddPostureEvent(ctx, e, now); err != nil {
				return err
			}
		}
		for _, d := range sr.RemovedDevices {
			e := store.PostureEvent{Kind: store.EventDeviceRemoved, DeviceID: d.ID, UserName: d.UserName, MACs: d.MACs,
				Detail: fmt.Sprintf("%s no longer lists %s", name, label(d))}
			if err := tx.AddPostureEvent(ctx, e, now); err != nil {
				return err
			}
		}
		if err := tx.SucceedMDMSync(ctx, name, len(devs), now); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s sync: %d devices; %d added, %d updated, %d removed; %d turned noncompliant",
			name, len(devs), sr.Added, sr.Updated, sr.Removed, len(sr.TurnedNoncompliant))
		if res.Duplicates > 0 {
			detail += fmt.Sprintf("; %d listed more than once (first kept)", res.Duplicates)
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindSystem, Reason: "mdm_sync", Actor: "mdm:" + name, Outcome: "changed", Detail: detail})
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("applying the %s sync: %w", name, err)
	}
	return res, nil
}

// dedupe keeps the first record of each id. Two different ids that share
// a MAC address are both kept: the inventory holds both and the gate sees
// both (migrations/007_device_inventory.sql).
func (s *Syncer) dedupe(name string, devs []store.Device) ([]store.Device, int) {
	seen := make(map[string]bool, len(devs))
	out := devs[:0]
	dups := 0
	for _, d := range devs {
		if d.SourceID == "" {
			s.log().Warn("MDM lists a device without an id; ignored", "source", name, "device", d.Description)
			dups++
			continue
		}
		if seen[d.SourceID] {
			s.log().Warn("MDM lists a device twice; the first record is kept", "source", name, "id", d.SourceID, "device", d.Description)
			dups++
			continue
		}
		seen[d.SourceID] = true
		out = append(out, d)
	}
	return out, dups
}

// ownerOf finds the local user an MDM's owner name (a UPN such as
// alice@clinic.example) stands for: the user named exactly so (case
// aside), else the user named as its local part (alice).
func ownerOf(users map[string]store.UserRef, upn string) (store.UserRef, bool) {
	if upn == "" {
		return store.UserRef{}, false
	}
	if u, ok := users[strings.ToLower(upn)]; ok {
		return u, true
	}
	if local, _, ok := strings.Cut(upn, "@"); ok && local != "" {
		u, ok := users[strings.ToLower(local)]
		return u, ok
	}
	return store.UserRef{}, false
}

func label(d store.Device) string {
	if d.Description != "" {
		return fmt.Sprintf("%s (%s)", d.Description, d.SourceID)
	}
	return d.SourceID
}
