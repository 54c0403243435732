package e2e

// make bench: a full Intune-shaped sync of 10,000 devices through the real
// daemon against the Graph stand-in: how long each sync takes, the
// daemon's resident memory before and after (flat RSS: the second and
// later syncs must not raise it much), and what each sync allocates.
// Figures are reported, never asserted.

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/posture/mdmtest"
)

// rss reads the daemon's current resident set size in MiB.
func rss(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// allocatedMB reads go_memstats_alloc_bytes_total from the daemon's
// metrics.
func allocatedMB(b *testing.B, addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_alloc_bytes_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f / (1 << 20)
		}
	}
	return 0
}

func BenchmarkMDMSyncIntune10k(b *testing.B) {
	const n = 10000
	devs := make([]mdmtest.GraphDevice, n)
	states := []string{"compliant", "compliant", "compliant", "noncompliant", "inGracePeriod", "unknown"}
	for i := range devs {
		devs[i] = mdmtest.GraphDevice{
			ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), DeviceName: fmt.Sprintf("CLINIC-PC-%05d", i), SerialNumber: fmt.Sprintf("SN%08d", i),
			UserPrincipalName: fmt.Sprintf("staff%d@clinic.example", i%800), ComplianceState: states[i%len(states)], IsEncrypted: i%7 != 0,
			LastSyncDateTime: time.Now().Add(-time.Duration(i) * time.Second), WiFiMacAddress: fmt.Sprintf("02%010X", i),
			EthernetMacAddress: fmt.Sprintf("06%010X", i), AzureADDeviceID: fmt.Sprintf("aad-%d", i),
		}
	}
	g := mdmtest.NewGraph("bench-tenant", "bench-app", "bench secret", devs)
	g.PageSize = 1000
	defer g.Close()
	data := b.TempDir()
	d := startDaemon(b, data)
	for i := range 800 {
		if i%100 == 0 { // some owners are local users, most only UPNs
			cgB(b, data, "", "user", "add", fmt.Sprintf("staff%d", i))
		}
	}
	pid := d.cmd.Process.Pid
	before := rss(pid)
	// Periodic sync off: only the syncs asked for below run.
	cgB(b, data, "bench secret", "mdm", "set", "intune", "--tenant", "bench-tenant", "--client-id", "bench-app", "--secret-stdin",
		"--login-url", g.URL, "--graph-url", g.URL, "--disabled")
	b.ResetTimer()
	for i := range 5 {
		a0 := allocatedMB(b, d.http)
		t0 := time.Now()
		cgB(b, data, "", "mdm", "sync", "intune", "--wait", "5m")
		secs := time.Since(t0).Seconds()
		b.ReportMetric(secs, fmt.Sprintf("sync%d-s", i+1))
		b.ReportMetric(allocatedMB(b, d.http)-a0, fmt.Sprintf("sync%d-alloc-MB", i+1))
		b.ReportMetric(rss(pid), fmt.Sprintf("rss-after-sync%d-MB", i+1))
	}
	b.StopTimer()
	b.ReportMetric(before, "rss-before-MB")
	b.ReportMetric(peakRSS(pid), "peak-rss-MB")
	b.ReportMetric(float64(g.Count("list")), "list-pages")
	b.ReportMetric(float64(g.Count("get")), "single-device-reads")
}
