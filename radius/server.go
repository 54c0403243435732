// Package radius is clinicgate's RADIUS door (RFC 2865 authentication,
// RFC 2866 accounting). It decodes packets, finds which client is asking,
// checks the packet's integrity, hands an appliance.Request to the gate and
// encodes the gate's Decision. It holds no policy.
//
// It uses layeh.com/radius for packets and attributes but runs its own
// listener loop instead of layeh's PacketServer, which starts one goroutine
// per packet without a bound, cannot sign replies with a
// Message-Authenticator and has no reply cache. Here a fixed pool of workers
// takes packets from bounded per-source queues in turn (admission.go); when
// they are full packets are dropped (the NAS retransmits) instead of memory
// growing.
package radius

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/ratelog"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("radius: server closed")

// Decider is the gate, as this door sees it.
type Decider interface {
	Decide(ctx context.Context, req appliance.Request) (appliance.Decision, error)
}

// ClientFinder resolves a source address to a configured client.
type ClientFinder interface {
	Lookup(ctx context.Context, addr netip.Addr) (appliance.Client, bool, error)
}

// AccountingSink records accounting.
type AccountingSink interface {
	UpsertAcct(ctx context.Context, a appliance.AcctSession) error
	StopAllAcct(ctx context.Context, client string, at time.Time, cause string) error
}

// Server answers RADIUS. Set the fields, then call Serve (authentication)
// and ServeAccounting on their sockets.
type Server struct {
	Gate       Decider
	Clients    ClientFinder
	Accounting AccountingSink // nil: accounting requests are dropped
	Logger     *slog.Logger
	Metrics    *appliance.Metrics // optional
	// EAP runs EAP conversations (802.1X); nil: an Access-Request with
	// EAP is refused by the gate as auth_unsupported.
	EAP *eap.Server

	// Workers is how many requests are handled at once per socket
	// (default 32); Queue how many may wait (default 8192, and at most
	// QueueBytes of them, default 8 MiB), one source address at most
	// half of them. Password hashes are bounded apart from these (one
	// per CPU), so the queue can hold a burst of cheap proxied requests.
	Workers    int
	Queue      int
	QueueBytes int
	// MaxWait drops a request that waited longer for a worker (default
	// 5 s): the NAS has retransmitted it by then.
	MaxWait time.Duration
	// DecideTimeout bounds one decision (default 10 s).
	DecideTimeout time.Duration
	Now           func() time.Time

	initOnce sync.Once
	dedup    *dedup
	unknown  *ratelog.Logger
	bad      *ratelog.Logger
	closed   atomic.Bool
	mu       sync.Mutex
	conns    map[net.PacketConn]struct{}
	inflight sync.WaitGroup
	drops    drops
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Workers <= 0 {
			s.Workers = 32
		}
		if s.Queue <= 0 {
			s.Queue = 8192
		}
		if s.QueueBytes <= 0 {
			s.QueueBytes = 8 << 20
		}
		if s.MaxWait <= 0 {
			s.MaxWait = 5 * time.Second
		}
		if s.DecideTimeout <= 0 {
			s.DecideTimeout = 10 * time.Second
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		s.dedup = newDedup(16384, 30*time.Second)
		// Each kind of drop is logged at most once every 10 seconds.
		now := func() time.Time { return s.Now() }
		s.unknown = ratelog.New(s.Logger, 10*time.Second, now)
		s.bad = ratelog.New(s.Logger, 10*time.Second, now)
		s.conns = map[net.PacketConn]struct{}{}
	})
}

type kind int

const (
	kindAuth kind = iota
	kindAcct
)

type job struct {
	buf  []byte
	from net.Addr
	at   time.Time // when it was read: retransmit gaps are measured on the wire, not after the queue
}

// Serve answers Access-Request and Status-Server on conn until Shutdown.
func (s *Server) Serve(conn net.PacketConn) error { return s.serve(conn, kindAuth) }

// ServeAccounting answers Accounting-Request on conn until Shutdown.
func (s *Server) ServeAccounting(conn net.PacketConn) error { return s.serve(conn, kindAcct) }

func (s *Server) serve(conn net.PacketConn, k kind) error {
	s.init()
	if s.Gate == nil || s.Clients == nil {
		return errors.New("radius: server needs a Gate and a ClientFinder")
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()

	q := newAdmission(s.Queue, s.QueueBytes, max(1, s.Queue/2), max(1, s.Workers/4), s.MaxWait, s.Now)
	var workers sync.WaitGroup
	for range s.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				j, src, stale, ok := q.pop()
				for _, sj := range stale {
					s.dropped("stale", "", sj.from.String())
					s.inflight.Done()
				}
				if !ok {
					return
				}
				s.handle(conn, k, j)
				q.done(src)
				s.inflight.Done()
			}
		}()
	}
	defer func() {
		q.close()
		workers.Wait()
	}()
	if uc, ok := conn.(*net.UDPConn); ok {
		// A burst arrives faster than one goroutine reads; a deeper
		// socket buffer (capped by net.core.rmem_max) keeps the kernel
		// from dropping it first.
		_ = uc.SetReadBuffer(4 << 20)
	}

	// One byte more than the largest legal packet, to notice longer ones.
	rbuf := make([]byte, radius.MaxPacketLength+1)
	for {
		n, from, err := conn.ReadFrom(rbuf)
		if err != nil {
			if s.closed.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if n > radius.MaxPacketLength {
			s.dropped("too_long", "", from.String())
			s.bad.Warn("dropped a datagram longer than 4096 bytes", "from", from.String())
			continue
		}
		src := addrPortOf(from).Addr()
		// A source that is no client is dropped here, before it takes a
		// place in a queue or a worker's time (process says so).
		if _, known, err := s.Clients.Lookup(context.Background(), src); err == nil && !known {
			s.dropped("unknown_client", "", src.String())
			s.unknown.Warn("dropped a request from an address that is not a configured RADIUS client (add it with 'clinicgate client add')", "from", src.String())
			continue
		}
		// Add only while not shut down, under the lock Shutdown takes
		// before it waits: an Add racing Wait breaks the WaitGroup (and
		// could panic), and the request would outlive Shutdown.
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			return ErrServerClosed
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		// The packet's own copy, its size: a queue of small packets.
		if !q.push(src, job{buf: append([]byte(nil), rbuf[:n]...), from: from, at: s.Now()}) {
			s.inflight.Done()
			s.dropped("overload", "", from.String())
			s.bad.Warn("queue full; dropped a request (the NAS will retransmit)", "from", from.String())
		}
	}
}

// Shutdown stops reading, lets requests in progress finish, and returns
// when they have or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closed.Store(true)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
