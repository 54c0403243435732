package ldapproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/directory"
	"github.com/clinicgate/clinicgate/internal/ratelog"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ldapproxy: server closed")

// Defaults for Config's limits.
const (
	DefaultMaxConns          = 512
	DefaultMaxConnsPerSource = 64
	DefaultIdleTimeout       = 2 * time.Minute
	// DefaultAuthTimeout is how long a new connection has to finish its
	// TLS handshake and its first successful bind. An EHR binds at once;
	// a connection that does not is closed long before the idle timeout,
	// so it cannot hold a slot others need.
	DefaultAuthTimeout    = 10 * time.Second
	DefaultMaxMessageSize = 64 << 10
	// DefaultMaxInFlight bounds the requests of one connection handled
	// at once; reading pauses until one finishes.
	DefaultMaxInFlight = 8
	// writeTimeout bounds each response: a client that stops reading
	// must not hold a handler forever.
	writeTimeout = 30 * time.Second
)

// Gate is the appliance core, as this door sees it: it decides binds
// (resolving the name as sent) and serves the directory searches read.
type Gate interface {
	Decide(ctx context.Context, req appliance.Request) (appliance.Decision, error)
	Directory(ctx context.Context) (directory.Directory, error)
	// DirectoryFor is what a connection bound as a person may search.
	DirectoryFor(ctx context.Context, user string) (directory.Directory, error)
}

// ClientFinder resolves a source address to a configured LDAP client.
type ClientFinder interface {
	Lookup(ctx context.Context, addr netip.Addr) (appliance.Client, bool, error)
}

// Config holds the door's dependencies and limits.
type Config struct {
	Gate    Gate
	Clients ClientFinder // the "ldap" door's clients
	// TLS serves LDAPS and StartTLS; nil: plain LDAP only (StartTLS is
	// refused).
	TLS     *tls.Config
	Logger  *slog.Logger
	Metrics *Metrics // optional
	Now     func() time.Time

	MaxConns          int // open connections in all
	MaxConnsPerSource int // open connections from one address
	// MaxConnsPerClient bounds one LDAP client's connections, whatever
	// the number of its addresses (a /24 client), so one client cannot
	// take every slot (default half of MaxConns).
	MaxConnsPerClient int
	IdleTimeout       time.Duration // a connection that sends nothing this long is closed
	AuthTimeout       time.Duration // until the first successful bind (default DefaultAuthTimeout)
	MaxMessageSize    int           // bytes in one LDAP message
	MaxInFlight       int           // requests of one connection handled at once
}

// Server is the LDAP door. One Server may serve several listeners (LDAP
// with StartTLS, and LDAPS).
type Server struct {
	cfg   Config
	log   *slog.Logger
	drops *ratelog.Logger // refused connections and accept failures

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	open      int
	perSrc    map[netip.Addr]int
	perClient map[string]int
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup // one per served connection
}

// New builds the door, refusing missing dependencies.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Gate == nil:
		return nil, errors.New("ldapproxy: no gate")
	case cfg.Clients == nil:
		return nil, errors.New("ldapproxy: no client table")
	case cfg.Logger == nil:
		return nil, errors.New("ldapproxy: no logger")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerSource <= 0 {
		cfg.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxConnsPerClient <= 0 {
		cfg.MaxConnsPerClient = max(1, cfg.MaxConns/2)
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	log := cfg.Logger.With("door", "ldap")
	return &Server{
		cfg: cfg, log: log, perSrc: map[netip.Addr]int{}, perClient: map[string]int{}, conns: map[*conn]struct{}{},
		listeners: map[net.Listener]struct{}{},
		drops:     ratelog.New(log, time.Second, cfg.Now),
	}, nil
}

// Serve answers LDAP on l (StartTLS available when Config.TLS is set).
func (s *Server) Serve(l net.Listener) error { return s.serve(l, false) }

// ServeTLS answers LDAPS on l: every connection starts with a TLS
// handshake under Config.TLS.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("ldapproxy: LDAPS needs a TLS configuration")
	}
	return s.serve(tls.NewListener(&limitListener{Listener: l, s: s}, s.cfg.TLS), true)
}

func (s *Server) serve(l net.Listener, wrapped bool) error {
	if !wrapped {
		l = &limitListener{Listener: l, s: s}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	h := &handler{s: s}
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("ldapproxy: listener stopped: %w", err)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors under a flood, say: slow
				// down, never stop answering.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.drops.Warn("accepting LDAP connections failed; pausing", "err", err.Error(), "pause", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("ldapproxy: accept: %w", err)
		}
		backoff = 0
		c := newConn(s, h, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.connWG.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			c.serve()
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops accepting, tells connected clients (a Notice of
// Disconnection once their requests in progress are answered) and waits
// for every connection to end, until ctx ends; then it closes what is
// left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	// Idle connections sit in a read until their idle timeout; end the
	// reads now so that each connection sends its notice and closes.
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return errors.Join(errs...)
	case <-ctx.Done():
		// Closing releases the connection's count, which takes s.mu.
		s.mu.Lock()
		left := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			left = append(left, c)
		}
		s.mu.Unlock()
		for _, c := range left {
			_ = c.raw.Close()
		}
		return ctx.Err()
	}
}

// limitListener refuses, at accept, connections from addresses that are
// no LDAP client of this appliance and connections over the limits, so a
// flood of idle connections costs a closed socket each, not a goroutine.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, ok := l.s.admit(c); ok {
			return lc, nil
		}
		_ = c.Close()
	}
}

func sourceOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ap, ok := netip.AddrFromSlice(ta.IP); ok {
			return ap.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (s *Server) admit(c net.Conn) (net.Conn, bool) {
	src := sourceOf(c.RemoteAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	client, known, err := s.cfg.Clients.Lookup(ctx, src)
	if err != nil || !known {
		s.cfg.Metrics.conn("unknown_client")
		s.drops.Warn("connection from an address that is no LDAP client; add it with 'clinicgate client add NAME --door ldap --address ADDR'", "source", src.String())
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open >= s.cfg.MaxConns:
		s.cfg.Metrics.conn("limit_total")
		s.drops.Warn("connection refused: too many open LDAP connections", "source", src.String(), "limit", s.cfg.MaxConns)
		return nil, false
	case s.perSrc[src] >= s.cfg.MaxConnsPerSource:
		s.cfg.Metrics.conn("limit_source")
		s.drops.Warn("connection refused: too many open LDAP connections from one address", "source", src.String(), "limit", s.cfg.MaxConnsPerSource)
		return nil, false
	case s.perClient[client.Name] >= s.cfg.MaxConnsPerClient:
		s.cfg.Metrics.conn("limit_client")
		s.drops.Warn("connection refused: too many open LDAP connections from one client", "client", client.Name, "source", src.String(), "limit", s.cfg.MaxConnsPerClient)
		return nil, false
	}
	s.open++
	s.perSrc[src]++
	s.perClient[client.Name]++
	s.cfg.Metrics.conn("accepted")
	s.cfg.Metrics.open(1)
	cc := &countedConn{Conn: c}
	cc.release = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.open--
		if s.perSrc[src]--; s.perSrc[src] <= 0 {
			delete(s.perSrc, src)
		}
		if s.perClient[client.Name]--; s.perClient[client.Name] <= 0 {
			delete(s.perClient, client.Name)
		}
		s.cfg.Metrics.open(-1)
	}
	return cc, true
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
