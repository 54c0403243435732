// Package replica copies the store off the box continuously, with
// Litestream (as a library) over SFTP, and restores it from there onto a
// new data directory.
//
// It must not weaken the store: Litestream's own connection and file
// descriptor on the database live exactly as long as the daemon's store
// (closing that descriptor while the store is open would drop the store's
// POSIX locks), so a change of settings takes effect at the daemon's next
// start. It never writes a credential to disk: an SSH key reaches the
// SFTP client through an in-memory file. The sealing key is not
// replicated; a restore takes it from an encrypted backup.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	lsftp "github.com/benbjohnson/litestream/sftp"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// Target is where the replica lives: user@host:port/path.
type Target struct {
	User string `json:"user"`
	Host string `json:"host"`
	Port int    `json:"port"`
	Path string `json:"path"`
}

func (t Target) String() string {
	// An absolute path keeps its slash ("host:22//srv/r"), so the string
	// parses back to the same place.
	return fmt.Sprintf("%s@%s/%s", t.User, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), t.Path)
}

func (t Target) addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// ParseTarget reads user@host[:port]/path (port 22 when absent). The path
// is taken as given: relative to the user's home unless it starts with /
// (write user@host:22//srv/replica for an absolute one).
func ParseTarget(s string) (Target, error) {
	user, rest, ok := strings.Cut(s, "@")
	if !ok || user == "" {
		return Target{}, errors.New("give the replica as user@host:port/path (e.g. backup@192.0.2.10:22/clinicgate)")
	}
	hostport, p, ok := strings.Cut(rest, "/")
	if !ok || strings.Trim(p, "/") == "" {
		return Target{}, errors.New("the replica needs a directory after the host: user@host:port/path")
	}
	t := Target{User: user, Port: 22, Path: p}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	} else if t.Port, err = strconv.Atoi(port); err != nil || t.Port < 1 || t.Port > 65535 {
		return Target{}, fmt.Errorf("%q is not a port", port)
	}
	if host == "" || strings.ContainsAny(host, " /@") {
		return Target{}, fmt.Errorf("%q is not a host name or address", host)
	}
	t.Host = strings.Trim(host, "[]")
	return t, nil
}

// Credentials log in to the SFTP server: a private key (PEM) or a password.
type Credentials struct {
	Key      secrets.Secret
	Password secrets.Secret
}

func (c Credentials) auth() ([]ssh.AuthMethod, error) {
	switch {
	case len(c.Key) > 0:
		signer, err := ssh.ParsePrivateKey(c.Key)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, errors.New("the SSH key has a passphrase; give a key without one (the daemon logs in unattended)")
			}
			return nil, errors.New("the SSH key is not a private key OpenSSH can read")
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, nil
	case len(c.Password) > 0:
		return []ssh.AuthMethod{ssh.Password(string(c.Password))}, nil
	}
	return nil, errors.New("give an SSH key or a password for the replica server")
}

// Probe logs in to the target, checks its host key — against want (an
// authorized_keys line or a SHA256: fingerprint) when given, otherwise it
// is trusted on this first use — makes the replica directory and writes
// and removes a file there. It returns the host key as an authorized_keys
// line (to pin) and its fingerprint.
func Probe(ctx context.Context, t Target, cred Credentials, want string) (hostKey, fingerprint string, err error) {
	auth, err := cred.auth()
	if err != nil {
		return "", "", err
	}
	var seen ssh.PublicKey
	cfg := &ssh.ClientConfig{User: t.User, Auth: auth, Timeout: 15 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			seen = key
			return checkHostKey(key, want)
		}}
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", t.addr())
	if err != nil {
		return "", "", fmt.Errorf("cannot reach the replica server %s: %w", t.addr(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, t.addr(), cfg)
	if err != nil {
		conn.Close()
		return "", "", fmt.Errorf("SSH login to %s as %s failed: %w", t.addr(), t.User, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		return "", "", fmt.Errorf("the server %s offers no SFTP: %w", t.addr(), err)
	}
	defer sc.Close()
	if err := sc.MkdirAll(t.Path); err != nil {
		return "", "", fmt.Errorf("cannot make the replica directory %s on %s: %w", t.Path, t.addr(), err)
	}
	probe := path.Join(t.Path, ".clinicgate-probe")
	f, err := sc.Create(probe)
	if err == nil {
		_, err = f.Write([]byte("clinicgate can write here\n"))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot write into %s on %s: %w", t.Path, t.addr(), err)
	}
	_ = sc.Remove(probe)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(seen))), ssh.FingerprintSHA256(seen), nil
}

// checkHostKey compares the server's key with want ("" accepts any).
func checkHostKey(key ssh.PublicKey, want string) error {
	want = strings.TrimSpace(want)
	if want == "" {
		return nil
	}
	if strings.HasPrefix(want, "SHA256:") {
		if ssh.FingerprintSHA256(key) == want {
			return nil
		}
	} else if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(want)); err == nil && string(pk.Marshal()) == string(key.Marshal()) {
		return nil
	}
	return fmt.Errorf("the replica server's host key %s is not the one expected: refused (a different server, or its key changed)", ssh.FingerprintSHA256(key))
}

// Config is everything a running replication needs.
type Config struct {
	Target  Target
	HostKey string // pinned, authorized_keys line
	Cred    Credentials
	// SyncInterval is how often the replica is brought up to date
	// (default 1 s).
	SyncInterval time.Duration
}

// client builds Litestream's SFTP client for cfg; done releases the
// in-memory key file.
func client(cfg Config, log *slog.Logger) (*lsftp.ReplicaClient, func(), error) {
	if cfg.HostKey == "" {
		// Litestream would accept any host key; a replica full of
		// password hashes must not go to whoever answers.
		return nil, nil, errors.New("replica: no pinned host key")
	}
	c := lsftp.NewReplicaClient()
	c.SetLogger(log)
	c.Host, c.User, c.Path, c.HostKey = cfg.Target.addr(), cfg.Target.User, cfg.Target.Path, cfg.HostKey
	c.DialTimeout = 15 * time.Second
	done := func() {}
	switch {
	case len(cfg.Cred.Key) > 0:
		p, closeFn, err := memFile("clinicgate-replica-key", cfg.Cred.Key)
		if err != nil {
			return nil, nil, err
		}
		c.KeyPath, done = p, closeFn
	case len(cfg.Cred.Password) > 0:
		c.Password = string(cfg.Cred.Password)
	default:
		return nil, nil, errors.New("replica: no credentials")
	}
	return c, done, nil
}

// memFile holds b in an anonymous in-memory file and returns a path this
// process can open it by: Litestream's SFTP client reads its key from a
// path, and the key must not touch the disk.
func memFile(name string, b []byte) (string, func(), error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return "", nil, fmt.Errorf("replica: in-memory key file: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("replica: in-memory key file: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), func() { f.Close() }, nil
}

// Status is the replication's state, for the console.
type Status struct {
	Target string `json:"target"`
	// LastReplicated is the last time every committed change was on the
	// replica (zero: not yet).
	LastReplicated time.Time `json:"last_replicated"`
	// Lag is how long changes have been waiting for the replica (0 when
	// it is up to date).
	Lag       time.Duration `json:"lag"`
	LastError string        `json:"last_error,omitempty"`
	ErrorAt   time.Time     `json:"error_at"`
}

// Replicator runs Litestream on the store's database.
type Replicator struct {
	db      *litestream.DB
	store   *litestream.Store
	done    func()
	target  Target
	errs    *lastError
	mu      sync.Mutex
	inSync  time.Time
	pending time.Time // since when the replica has been behind
}

// Start replicates the database at dbPath to cfg's target until Close.
// The caller must keep the database open (the store) until after Close.
func Start(ctx context.Context, dbPath string, cfg Config, log *slog.Logger) (*Replicator, error) {
	errs := &lastError{}
	log = slog.New(teeHandler{Handler: log.Handler(), errs: errs}).With("job", "replica")
	c, done, err := client(cfg, log)
	if err != nil {
		return nil, err
	}
	db := litestream.NewDB(dbPath)
	db.Logger = log
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	db.MonitorInterval = cfg.SyncInterval
	r := litestream.NewReplicaWithClient(db, c)
	r.SyncInterval = cfg.SyncInterval
	db.Replica = r
	levels := litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: 10 * time.Minute}, {Level: 2, Interval: 24 * time.Hour}}
	st := litestream.NewStore([]*litestream.DB{db}, levels)
	// The store and the database log where the daemon logs (NewStore
	// gave them the process-wide default).
	st.Logger = log
	db.SetLogger(log)
	if err := st.Open(ctx); err != nil {
		done()
		return nil, fmt.Errorf("replica: %w", err)
	}
	return &Replicator{db: db, store: st, done: done, target: cfg.Target, errs: errs}, nil
}

// Status reports how far the replica is.
func (r *Replicator) Status(now time.Time) Status {
	st := Status{Target: r.target.String()}
	local, lerr := r.db.Pos()
	remote := r.db.Replica.Pos()
	r.mu.Lock()
	defer r.mu.Unlock()
	if lerr == nil && local.TXID > 0 && remote.TXID == local.TXID {
		r.inSync, r.pending = now, time.Time{}
	} else if r.pending.IsZero() {
		r.pending = now
	}
	st.LastReplicated = r.inSync
	if !r.pending.IsZero() {
		st.Lag = now.Sub(r.pending)
	}
	if msg, at := r.errs.get(); !at.IsZero() && !at.Before(r.inSync) {
		st.LastError, st.ErrorAt = msg, at
	}
	return st
}

// Sync brings the replica up to date now (tests, and a clean shutdown).
func (r *Replicator) Sync(ctx context.Context) error {
	return r.db.SyncAndWait(ctx)
}

// Close stops replicating, after a last sync. Call it only after the
// store itself is closed.
func (r *Replicator) Close(ctx context.Context) error {
	err := r.store.Close(ctx)
	r.done()
	return err
}

// Restore writes the newest state of the replica at cfg's target into
// outputPath (which must not exist).
func Restore(ctx context.Context, cfg Config, outputPath string, log *slog.Logger) error {
	c, done, err := client(cfg, log)
	if err != nil {
		return err
	}
	defer done()
	r := litestream.NewReplicaWithClient(nil, c)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = outputPath
	opt.IntegrityCheck = litestream.IntegrityCheckFull
	if err := r.Restore(ctx, opt); err != nil {
		if errors.Is(err, litestream.ErrNoSnapshots) || errors.Is(err, litestream.ErrTxNotAvailable) {
			return fmt.Errorf("replica: nothing has been replicated to %s yet", cfg.Target)
		}
		return fmt.Errorf("replica: restore from %s: %w", cfg.Target, err)
	}
	return nil
}

// lastError keeps the latest error Litestream logged.
type lastError struct {
	mu  sync.Mutex
	msg string
	at  time.Time
}

func (e *lastError) set(msg string, at time.Time) {
	e.mu.Lock()
	e.msg, e.at = msg, at
	e.mu.Unlock()
}

func (e *lastError) get() (string, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.msg, e.at
}

// teeHandler passes records on and remembers the last error.
type teeHandler struct {
	slog.Handler
	errs *lastError
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" || a.Key == "err" {
				msg += ": " + a.Value.String()
			}
			return true
		})
		h.errs.set(msg, r.Time)
	}
	return h.Handler.Handle(ctx, r)
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{Handler: h.Handler.WithAttrs(as), errs: h.errs}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{Handler: h.Handler.WithGroup(name), errs: h.errs}
}
