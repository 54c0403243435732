package daemon

import (
	"os"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/internal/sntp/sntptest"
)

// The clock check against a real NTP server (chronyd): a right clock is
// within the tolerance, a clock 47 s slow (a Pi without its battery
// after a power cut) is reported off, and no server answering says so.
func TestClockCheckAgainstChrony(t *testing.T) {
	ntp := sntptest.Chrony(t, true)
	d := open(t, loopback(t))
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetSetting(t.Context(), "ntp_servers", ntp); err != nil {
		t.Fatal(err)
	}
	d.clockJob(t.Context())
	if c := d.clock; c == nil || !c.Measured || c.Off() || c.Server != ntp {
		t.Fatalf("right clock: %+v", c)
	}
	d.clockNow = func() time.Time { return time.Now().Add(-47 * time.Second) }
	d.clockJob(t.Context())
	if c := d.clock; !c.Off() || (c.Offset-47*time.Second).Abs() > time.Second {
		t.Fatalf("clock 47 s slow: %+v", c)
	}
	if err := svc.SetSetting(t.Context(), "ntp_servers", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	d.clockJob(t.Context())
	if c := d.clock; c.Measured || c.Err == "" {
		t.Fatalf("no server answering: %+v", c)
	}
}

func TestNTPServersFromTimesyncd(t *testing.T) {
	dir := t.TempDir()
	old := timesyncdConf
	t.Cleanup(func() { timesyncdConf = old })
	timesyncdConf = []string{dir + "/*.conf"}
	if err := os.WriteFile(dir+"/a.conf", []byte("[Time]\nNTP=ntp1.clinic.lan 192.168.1.1\n#NTP=commented\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ntpServers(""); len(got) != 2 || got[0] != "ntp1.clinic.lan" || got[1] != "192.168.1.1" {
		t.Fatalf("from timesyncd: %q", got)
	}
	if got := ntpServers("10.0.0.1, 10.0.0.2:1123"); len(got) != 2 || got[1] != "10.0.0.2:1123" {
		t.Fatalf("from the setting: %q", got)
	}
}
