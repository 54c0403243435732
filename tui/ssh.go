package tui

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	bm "github.com/charmbracelet/wish/bubbletea"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
)

// HostKeyFile is the SSH host key's name in the data directory.
const HostKeyFile = "ssh_host_ed25519_key"

// ErrSSHClosed is returned by SSH.Serve after Shutdown.
var ErrSSHClosed = errors.New("tui: ssh server closed")

// KeyChecker says which admin holds a public key (by SHA256 fingerprint);
// ok is false for a key that is not registered.
type KeyChecker interface {
	AdminForKey(ctx context.Context, fingerprint string) (name string, ok bool, err error)
}

// SSH serves the console to admins whose public keys are registered. No
// password is ever accepted; a session without a terminal is refused; an
// idle session is closed.
type SSH struct {
	srv *ssh.Server
	pre *preAuth
}

// SSHConfig configures NewSSH.
type SSHConfig struct {
	HostKeyPath string
	Keys        KeyChecker
	// AdminFor builds the admin interface a session acts through, audited
	// as actor ("ssh:NAME").
	AdminFor    func(actor string) Admin
	Version     string
	IdleTimeout time.Duration // default 15 minutes
	Logger      *slog.Logger
	// DataDir, when set, serves its backups/ (read-only) and incoming/
	// over SFTP to the same admins (sftp.go); transfers are audited when
	// Keys is also an SFTPAuditor.
	DataDir string
}

// HostKeyFingerprint reads the host key and returns its SHA256
// fingerprint, changing nothing.
func HostKeyFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("ssh host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		return "", fmt.Errorf("ssh host key %s is damaged (the daemon makes a new one at its next start): %w", path, err)
	}
	return gossh.FingerprintSHA256(signer.PublicKey()), nil
}

// EnsureHostKey creates the host key (ed25519, 0600) if it does not exist
// and returns its SHA256 fingerprint. A key file that no longer parses (a
// power cut on a file system that lost it) is made again rather than
// leaving the console unreachable; renewed then says so, for the log:
// admins' SSH clients will warn that the host key changed.
func EnsureHostKey(path string) (fingerprint string, renewed bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", false, fmt.Errorf("ssh host key: %w", err)
	default:
		if signer, perr := gossh.ParsePrivateKey(b); perr == nil {
			return gossh.FingerprintSHA256(signer.PublicKey()), false, nil
		}
		renewed = true
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", false, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "clinicgate host key")
	if err != nil {
		return "", false, err
	}
	b = pem.EncodeToMemory(block)
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return "", false, fmt.Errorf("ssh host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		return "", false, err
	}
	return gossh.FingerprintSHA256(signer.PublicKey()), renewed, nil
}

// NewSSH builds the server.
func NewSSH(c SSHConfig) (*SSH, error) {
	if c.Keys == nil || c.AdminFor == nil || c.Logger == nil {
		return nil, errors.New("tui: ssh needs a key checker, an admin factory and a logger")
	}
	if _, _, err := EnsureHostKey(c.HostKeyPath); err != nil {
		return nil, err
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 15 * time.Minute
	}
	log := c.Logger
	pre := newPreAuth()
	programFor := func(sess ssh.Session) *tea.Program {
		name, _ := sess.Context().Value(adminKey{}).(string)
		m := New(c.AdminFor("ssh:"+name), Options{Version: c.Version})
		r, w := sessionIO(sess)
		in := newInputWatch(r)
		p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithMouseCellMotion(), tea.WithInput(in), tea.WithOutput(w))
		go logoffWhenIdle(p, in, c.IdleTimeout, sess.Context().Done(), log, name)
		return p
	}
	opts := []ssh.Option{
		wish.WithHostKeyPath(c.HostKeyPath),
		wish.WithIdleTimeout(c.IdleTimeout),
		wish.WithMaxTimeout(12 * time.Hour),
		wish.WithVersion("clinicgate"),
		wish.WithPublicKeyAuth(func(ctx ssh.Context, key ssh.PublicKey) bool {
			fp := gossh.FingerprintSHA256(key)
			name, ok, err := c.Keys.AdminForKey(ctx, fp)
			if err != nil {
				log.Error("ssh: could not check a key", "err", err)
				return false
			}
			if !ok {
				log.Warn("ssh: refused an unregistered key", "fingerprint", fp, "from", ctx.RemoteAddr().String(), "user", ctx.User())
				return false
			}
			ctx.SetValue(adminKey{}, name)
			return true
		}),
		// Recovery outermost; then a terminal is required; then the UI.
		wish.WithMiddleware(
			bm.MiddlewareWithProgramHandler(programFor, termenv.Ascii),
			needTerminal,
			logged(log),
			// Only a session (after the key was proved, not merely
			// offered) ends the connection's pre-authentication limits.
			func(next ssh.Handler) ssh.Handler {
				return func(sess ssh.Session) {
					pre.authenticated(sess.RemoteAddr())
					next(sess)
				}
			},
			recoverMiddleware(log),
		),
	}
	if c.DataDir != "" {
		aud, _ := c.Keys.(SFTPAuditor)
		opts = append(opts, wish.WithSubsystem("sftp", recoverSubsystem(log, sftpHandler(c.DataDir, log, pre, aud))))
	}
	srv, err := wish.NewServer(opts...)
	if err != nil {
		return nil, err
	}
	return &SSH{srv: srv, pre: pre}, nil
}

type adminKey struct{}

// needTerminal refuses a session without a pseudo-terminal.
func needTerminal(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if _, _, ok := sess.Pty(); !ok {
			wish.Println(sess, "clinicgate: the console needs a terminal; connect with ssh -t")
			_ = sess.Exit(1)
			return
		}
		next(sess)
	}
}

func logged(log *slog.Logger) wish.Middleware {
	return func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) {
			name, _ := sess.Context().Value(adminKey{}).(string)
			start := time.Now()
			log.Info("ssh: console opened", "admin", name, "from", sess.RemoteAddr().String())
			next(sess)
			log.Info("ssh: console closed", "admin", name, "after", time.Since(start).Round(time.Second))
		}
	}
}

// recoverMiddleware keeps a panic in one session from taking the daemon
// down.
func recoverMiddleware(log *slog.Logger) wish.Middleware {
	return func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("ssh: console session crashed", "panic", fmt.Sprint(r))
					_ = sess.Exit(1)
				}
			}()
			next(sess)
		}
	}
}

// recoverSubsystem keeps a panic in one SFTP session from taking the
// daemon down (subsystems do not pass through the middleware).
func recoverSubsystem(log *slog.Logger, next ssh.SubsystemHandler) ssh.SubsystemHandler {
	return func(sess ssh.Session) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("ssh: sftp session crashed", "panic", fmt.Sprint(r))
				_ = sess.Exit(1)
			}
		}()
		next(sess)
	}
}

// Serve accepts sessions on l until Shutdown.
func (s *SSH) Serve(l net.Listener) error {
	err := s.srv.Serve(&limitedListener{Listener: l, p: s.pre})
	if errors.Is(err, ssh.ErrServerClosed) {
		return ErrSSHClosed
	}
	return err
}

// Shutdown closes the listener and waits for sessions to end or ctx.
func (s *SSH) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, ssh.ErrServerClosed) || errors.Is(err, context.DeadlineExceeded) {
		// Sessions still open at the deadline are closed.
		return s.srv.Close()
	}
	return err
}
