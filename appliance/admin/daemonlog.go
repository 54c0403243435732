package admin

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DaemonLogFile is the daemon's log for the console in the data
// directory (internal/daemon/logfile.go), and its predecessor.
const DaemonLogFile = "daemon.log"

// maxLogRead bounds what DaemonLog reads of each file.
const maxLogRead = 256 << 10

// DaemonLog returns the last n lines the daemon logged (its own messages
// at INFO and above, decisions left out), oldest first: the console's
// log screen on an appliance without journalctl.
func (s *Service) DaemonLog(n int) ([]string, error) {
	p := filepath.Join(s.Store.Dir(), DaemonLogFile)
	lines, err := tailLines(p, n)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(lines) < n {
		older, err := tailLines(p+".1", n-len(lines))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		lines = append(older, lines...)
	}
	return lines, nil
}

func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-maxLogRead, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return nil, err
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:] // a line cut by the window
		}
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) == 1 && all[0] == "" {
		return nil, nil
	}
	return all[max(len(all)-n, 0):], nil
}
