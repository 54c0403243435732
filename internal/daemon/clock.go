package daemon

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/sntp"
)

// The clock check: TOTP codes are good for a step or two of 30 s, so a
// clock off by more refuses every code, and a contractor would look
// everywhere but the clock. Every few minutes the daemon asks an NTP
// server how far off this machine is (it never sets the clock: timesyncd
// does), and the console shows a red banner past ClockTolerance.

// clockEvery is how often the clock is checked.
const clockEvery = 10 * time.Minute

// timesyncdConf are the files whose NTP= lines name timesyncd's servers,
// the default when the ntp_servers setting is empty; timesyncdSynced is
// the file timesyncd touches at each synchronisation.
var (
	timesyncdConf   = []string{"/etc/systemd/timesyncd.conf", "/etc/systemd/timesyncd.conf.d/*.conf", "/run/systemd/timesyncd.conf.d/*.conf"}
	timesyncdSynced = "/run/systemd/timesync/synchronized"
)

// ntpServers are the servers to ask: the setting's, else timesyncd's.
func ntpServers(setting string) []string {
	var out []string
	add := func(list string) {
		for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			out = append(out, f)
		}
	}
	if strings.TrimSpace(setting) != "" {
		add(setting)
		return out
	}
	for _, pat := range timesyncdConf {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(fh)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "NTP="); ok {
					add(v)
				}
			}
			fh.Close()
		}
	}
	return out
}

// checkClock measures the clock against the first server that answers.
func checkClock(ctx context.Context, servers []string, now func() time.Time) admin.ClockStatus {
	st := admin.ClockStatus{CheckedAt: time.Now()}
	if fi, err := os.Stat(timesyncdSynced); err == nil {
		st.SyncedAt = fi.ModTime()
	}
	if len(servers) == 0 {
		st.Err = "no NTP server is set (ntp_servers, or NTP= in timesyncd.conf)"
		return st
	}
	var errs []string
	for _, s := range servers {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		r, err := sntp.Query(qctx, s, now)
		cancel()
		if err != nil {
			errs = append(errs, s+": "+shortErr(err))
			continue
		}
		st.Server, st.Offset, st.Measured = r.Server, r.Offset, true
		return st
	}
	st.Err = "no NTP server answered (" + strings.Join(errs, "; ") + ")"
	return st
}

// shortErr is an error's last part (a dial error's text repeats the
// address).
func shortErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "i/o timeout") {
		return "no answer"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// clockJob checks the clock and keeps the result for the status report,
// warning in the log past the tolerance.
func (d *Daemon) clockJob(ctx context.Context) {
	setting, err := d.store.Setting(ctx, "site.ntp_servers")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return
	}
	st := checkClock(ctx, ntpServers(setting), d.clockNow)
	if st.Measured && st.Offset.Abs() > admin.ClockTolerance {
		d.log.Warn("this machine's clock is off: TOTP codes will be refused until it is right", "offset", st.Offset.Round(time.Second).String(), "server", st.Server)
	}
	d.mu.Lock()
	d.clock = &st
	d.mu.Unlock()
}
