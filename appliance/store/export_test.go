package store

import (
	"context"
	"strings"
	"time"
)

// AddSealedBindAccount stores a bind account as clinicgate did before
// migration 011, its secret sealed and no hash, for the migration's tests.
func (tx *Tx) AddSealedBindAccount(ctx context.Context, b BindAccount, now time.Time) error {
	sealed, err := tx.s.sealer.Seal(b.Secret, bindSecretContext(b.Name))
	if err != nil {
		return err
	}
	nets := make([]string, len(b.Networks))
	for i, p := range b.Networks {
		nets[i] = p.Masked().String()
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO bind_accounts (name, secret, networks, created_at) VALUES (?, ?, ?, ?)`, b.Name, sealed, strings.Join(nets, ","), now.Unix())
	return mapErr(err)
}

// PollNow makes the next cached read check the change counter, instead of
// waiting out pollEvery: the tests see another process's change without a
// clock.
func (s *Store) PollNow() { s.hot.lastPoll.Store(0) }

// CacheGen is the cache's generation, which moves when it drops entries.
func (s *Store) CacheGen() uint64 { return s.hot.gen.Load() }
