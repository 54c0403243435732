package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/clinicgate/clinicgate/appliance/dirsync"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// SyncUpstream pulls users and groups from an upstream's directory now,
// instead of waiting for the daemon's next scheduled sync.
func (s *Service) SyncUpstream(ctx context.Context, name string) (store.DirStats, error) {
	u, err := s.Store.UpstreamByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.DirStats{}, invalid("there is no upstream %q (see 'clinicgate upstream list')", name)
	}
	if err != nil {
		return store.DirStats{}, fmt.Errorf("upstream %s: %w", name, err)
	}
	tok, err := s.Store.UpstreamSyncSecret(ctx, u.Name)
	if err != nil {
		return store.DirStats{}, err
	}
	src, _, ok, err := dirsync.ForUpstream(u, tok)
	if !ok {
		return store.DirStats{}, invalid("upstream %s has no directory sync configured (see upstream add --sync)", u.Name)
	}
	if err != nil {
		return store.DirStats{}, err
	}
	stats, err := dirsync.Run(ctx, s.Store, s.Audit, u.Name, src, s.Now)
	if err != nil {
		return stats, fmt.Errorf("sync from %s failed: %w", u.Name, err)
	}
	return stats, nil
}

// SyncState returns an upstream's last directory sync (a zero LastRun if
// it never ran).
func (s *Service) SyncState(ctx context.Context, name string) (store.DirSync, error) {
	return s.Store.DirSyncRecord(ctx, name)
}

// UpstreamWarnings builds an upstream's connector, without network
// traffic, and returns what it warns about; an error means the stored
// settings are not usable.
func UpstreamWarnings(u store.Upstream) ([]string, error) {
	conn, err := upstream.Build(u)
	if err != nil {
		return nil, err
	}
	if c, ok := conn.(interface{ Close() }); ok {
		defer c.Close()
	}
	if w, ok := conn.(upstream.Warner); ok {
		return w.Warnings(), nil
	}
	return nil, nil
}
