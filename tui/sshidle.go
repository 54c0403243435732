package tui

import (
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
)

// Automatic logoff (HIPAA §164.312(a)(2)(iii)) counts the admin's input
// only. The SSH server's own idle timeout is renewed by every write, so a
// dashboard redrawn by each new login kept a console nobody touched open
// all day (issue 16, finding 3). Here the program's input is watched, and
// the console quits after idle without a key, a paste or a mouse event.

// inputWatch passes the terminal's input through and notes when it last
// saw some.
type inputWatch struct {
	r    io.Reader
	last atomic.Int64 // unix nanoseconds
}

func newInputWatch(r io.Reader) *inputWatch {
	w := &inputWatch{r: r}
	w.last.Store(time.Now().UnixNano())
	return w
}

func (w *inputWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (w *inputWatch) idleFor() time.Duration {
	return time.Since(time.Unix(0, w.last.Load()))
}

// sessionIO is the terminal the program reads and writes: the allocated
// PTY where there is one, else the session itself (as wish does).
func sessionIO(sess ssh.Session) (io.Reader, io.Writer) {
	if pty, _, ok := sess.Pty(); ok && !sess.EmulatedPty() && pty.Slave != nil {
		return pty.Slave, pty.Slave
	}
	return sess, sess
}

// logoffWhenIdle quits p once in has seen no input for idle, checking a
// few times per period, until done is closed.
func logoffWhenIdle(p *tea.Program, in *inputWatch, idle time.Duration, done <-chan struct{}, log *slog.Logger, who string) {
	tick := time.NewTicker(max(idle/8, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if in.idleFor() >= idle {
				log.Info("ssh: console logged off: no input", "admin", who, "after", idle)
				p.Quit()
				return
			}
		}
	}
}
