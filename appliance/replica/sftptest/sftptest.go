// Package sftptest runs a real OpenSSH SFTP server (sshd with
// internal-sftp) on 127.0.0.1 for tests: the off-box replica's peer.
//
// sshd runs in inetd mode (-i), one process per connection accepted on a
// listener the kernel picked, so no port is guessed. It needs root (as
// sshd does) and refuses nothing but unknown keys; it must never be used
// outside tests.
package sftptest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHD is the path of OpenSSH's server (Debian: openssh-server).
const SSHD = "/usr/sbin/sshd"

// Server is a running SFTP server.
type Server struct {
	// Addr is host:port; User the account to log in as; Dir a directory
	// for the replica (absolute).
	Addr, User, Dir string
	// KeyFile is a client private key (OpenSSH format) it accepts, and
	// KeyPEM its contents.
	KeyFile string
	KeyPEM  []byte
	// HostKey is the server's public host key (authorized_keys line) and
	// HostFingerprint its SHA256 fingerprint.
	HostKey, HostFingerprint string
	// Log is where sshd's own log goes.
	Log string

	ln  net.Listener
	mu  sync.Mutex
	cmd []*exec.Cmd
}

// Port is the listening port.
func (s *Server) Port() string { _, p, _ := net.SplitHostPort(s.Addr); return p }

// Start runs the server until the test ends. A missing sshd, or one that
// refuses its config, fails the test at once with its own words.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Fatalf("OpenSSH's sshd is missing (%v): install openssh-server (.ci/install-test-deps)", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the SFTP peer (sshd) needs root")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{User: u.Username, Dir: filepath.Join(dir, "replica"), Log: filepath.Join(dir, "sshd.log")}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	hk, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey, s.HostFingerprint = string(ssh.MarshalAuthorizedKey(pk)[:len(ssh.MarshalAuthorizedKey(pk))-1]), ssh.FingerprintSHA256(pk)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "replica")
	if err != nil {
		t.Fatal(err)
	}
	s.KeyPEM = pem.EncodeToMemory(block)
	s.KeyFile = filepath.Join(dir, "client_key")
	spub, _ := ssh.NewPublicKey(pub)
	auth := filepath.Join(dir, "authorized_keys")
	for _, f := range []struct {
		p string
		b []byte
	}{{s.KeyFile, s.KeyPEM}, {auth, ssh.MarshalAuthorizedKey(spub)}} {
		if err := os.WriteFile(f.p, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`HostKey %s
AuthorizedKeysFile %s
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers %s
Subsystem sftp internal-sftp
LogLevel VERBOSE
`, hostKey, auth, s.User)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(SSHD, "-t", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("sshd refuses its test config: %v\n%s", err, out)
	}
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = s.ln.Addr().String()
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	go s.serve(conf, logf)
	t.Cleanup(func() {
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.cmd {
			if c.Process != nil {
				_ = c.Process.Kill()
			}
		}
		s.mu.Unlock()
		logf.Close()
	})
	return s
}

// serve runs one sshd -i per connection.
func (s *Server) serve(conf string, logf *os.File) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		f, err := c.(*net.TCPConn).File()
		c.Close()
		if err != nil {
			continue
		}
		cmd := exec.Command(SSHD, "-i", "-e", "-f", conf)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, logf
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(logf, "sftptest: starting sshd -i: %v\n", err)
			f.Close()
			continue
		}
		f.Close()
		s.mu.Lock()
		s.cmd = append(s.cmd, cmd)
		s.mu.Unlock()
		go func() { _ = cmd.Wait() }()
	}
}

// Target is the replica's location in clinicgate's form,
// user@host:port//abs/path.
func (s *Server) Target(sub string) string {
	return s.User + "@" + s.Addr + "/" + filepath.Join(s.Dir, sub)
}

// Stop closes the listener: the server is gone for new connections (a
// replica server that went away). Sessions already open are ended.
func (s *Server) Stop() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cmd {
		if c.Process != nil {
			_ = c.Process.Kill()
		}
	}
}

// WaitFor polls until cond holds or timeout, for files to appear on the
// server.
func WaitFor(timeout time.Duration, cond func() bool) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("timed out after " + strconv.Itoa(int(timeout.Seconds())) + " s")
}
