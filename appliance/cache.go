package appliance

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// cacheJob asks the background worker to store a verifier.
type cacheJob struct {
	userID   int64
	upstream string
	password secrets.Secret
	groups   []string
	at       time.Time
}

// cacheQueue hashes passwords an upstream verified, for failmode "cached",
// in one background worker, so a login does not wait for the slow hash.
// The queue is bounded; a job that cannot be queued deletes the user's
// older verifier instead, since a verifier must never hold an older
// password than the one last verified.
type cacheQueue struct {
	store  *store.Store
	hasher *passwd.Hasher
	log    *slog.Logger

	mu     sync.Mutex // orders put against close
	closed bool
	jobs   chan cacheJob
	stop   chan struct{}
	worker sync.WaitGroup
}

func startCacheQueue(g *Gate, size int) *cacheQueue {
	q := &cacheQueue{store: g.store, hasher: g.hasher, log: g.log, jobs: make(chan cacheJob, size), stop: make(chan struct{})}
	q.worker.Add(1)
	go func() {
		defer q.worker.Done()
		q.work()
	}()
	return q
}

// put queues a job, or deletes the older verifier when the queue is full
// or closed. It never blocks on the worker.
func (q *cacheQueue) put(ctx context.Context, j cacheJob) {
	queued := false
	q.mu.Lock()
	if !q.closed {
		select {
		case q.jobs <- j:
			queued = true
		default:
		}
	}
	q.mu.Unlock()
	if !queued {
		clear(j.password)
		q.dropStale(ctx, j)
	}
}

// close stops the worker and waits for it: the job in hand is finished,
// the queued ones dropped. It may be called more than once.
func (q *cacheQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
	q.mu.Unlock()
	q.worker.Wait()
}

func (q *cacheQueue) work() {
	for {
		select {
		case <-q.stop:
			q.drain()
			return
		case j := <-q.jobs:
			q.do(j)
		}
	}
}

func (q *cacheQueue) do(j cacheJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := q.hasher.Hash(ctx, j.password)
	clear(j.password)
	if err == nil {
		err = q.store.PutCachedVerifier(ctx, store.CachedVerifier{UserID: j.userID, Upstream: j.upstream, Hash: h, Groups: j.groups, VerifiedAt: j.at})
	}
	if err != nil {
		q.log.Warn("could not cache a verified password", "err", err)
	}
}

// drain drops the jobs still queued at close. Nothing is queued after
// close, so once the channel is empty it stays empty.
func (q *cacheQueue) drain() {
	for {
		select {
		case j := <-q.jobs:
			clear(j.password)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			q.dropStale(ctx, j)
			cancel()
		default:
			return
		}
	}
}

func (q *cacheQueue) dropStale(ctx context.Context, j cacheJob) {
	if err := q.store.DeleteCachedVerifiers(ctx, j.userID, j.upstream); err != nil {
		q.log.Warn("could not drop a stale cached verifier", "err", err)
	}
}

// queueCache hands a verified password to the cache worker.
func (g *Gate) queueCache(ctx context.Context, userID int64, up string, pw secrets.Secret, groups []string) {
	g.cache.put(ctx, cacheJob{userID: userID, upstream: up, password: append(secrets.Secret(nil), pw...), groups: groups, at: g.now()})
}

// forgetCached deletes a user's cached verifier, and the NT hash captured
// at an earlier login, after the upstream refused the password or the
// account: either may hold a password the upstream no longer accepts. The
// local store's own password is the truth, so a typo there forgets nothing.
func (g *Gate) forgetCached(ctx context.Context, name, up string) {
	if up == "local" {
		return
	}
	u, err := g.store.UserByName(ctx, name)
	if err != nil {
		return
	}
	if err := g.store.DeleteCachedVerifiers(ctx, u.ID, up); err != nil {
		g.log.Warn("could not delete a cached verifier", "user", u.Name, "err", err)
	}
	if err := g.store.DeleteNTHash(ctx, u.ID); err != nil {
		g.log.Warn("could not delete a kept NT hash", "user", u.Name, "err", err)
	}
}
