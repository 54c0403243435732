package e2e

// make bench, issue 15's table from one run: RADIUS PAP proxied against
// FreeRADIUS's proxy (rate, p99, CPU per request), LDAP proxy binds
// against slapd's back-ldap and slapd directly, a 2000-request burst with
// and without NAS-like retransmits, local users' first and repeat logins,
// idle and peak RSS. The machine is shared: each comparison alternates
// clinicgate and its peer in rounds within the run, and the table's last
// column is the ratio, the figure to read. Nothing here asserts a time.

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"layeh.com/radius"

	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

// issue15Rows are the table's rows, in the order measured.
var issue15Rows struct {
	mu   sync.Mutex
	rows [][4]string
}

func issue15Row(work, cg, peer, ratio string) {
	issue15Rows.mu.Lock()
	defer issue15Rows.mu.Unlock()
	issue15Rows.rows = append(issue15Rows.rows, [4]string{work, cg, peer, ratio})
}

// BenchmarkIssue15 runs each part as a sub-benchmark (select one with
// -bench 'Issue15/proxy') and prints the table of those that ran.
func BenchmarkIssue15(b *testing.B) {
	issue15Rows.mu.Lock()
	issue15Rows.rows = nil
	issue15Rows.mu.Unlock()
	b.Run("proxy", benchIssue15Proxy)
	b.Run("burst", benchIssue15Burst)
	b.Run("ldap", benchIssue15LDAP)
	b.Run("local", benchIssue15Local)
	b.Run("fairness", benchIssue15Fairness)
	b.Run("idle", benchIssue15Idle)
	issue15Rows.mu.Lock()
	defer issue15Rows.mu.Unlock()
	if len(issue15Rows.rows) == 0 {
		return
	}
	var sb strings.Builder
	sb.WriteString("\nissue 15, one run (shared machine: read the ratios)\n\n| work | clinicgate | peer | ratio |\n|---|---|---|---|\n")
	for _, r := range issue15Rows.rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", r[0], r[1], r[2], r[3])
	}
	fmt.Print(sb.String())
}

// rssMB reads a process's current (VmRSS) or peak (VmHWM) resident set.
func rssMB(pid int, field string) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// beforeBin is a clinicgate binary built from an older commit
// (BENCH_BEFORE_BIN), measured beside the current one in the same run so
// that a change's figure before and after comes from one run on this
// noisy machine. Empty: only the current build runs.
func beforeBin() string { return os.Getenv("BENCH_BEFORE_BIN") }

// cgBin runs a clinicgate command of the given binary on data.
func cgBin(b *testing.B, bin, data, stdin string, args ...string) {
	b.Helper()
	cmd := exec.Command(bin, append(args, "--data", data)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

// target is one server under load.
type target struct {
	name string
	addr string
	pid  int
	data string // clinicgate's data directory ("" for a peer)
}

// proxySite starts an upstream FreeRADIUS with users bench0..users-1,
// FreeRADIUS proxying to it, and clinicgate proxying to it (MFA off), and
// the before build likewise when there is one. Each clinicgate is set up
// through its own command line, so an older build sets up its own schema.
func proxySite(b *testing.B, users int) (cgs []target, proxy, up *upstreamtest.FreeRADIUS, cg *daemon) {
	var us []upstreamtest.RADIUSUser
	for i := range users {
		us = append(us, upstreamtest.RADIUSUser{Name: "bench" + strconv.Itoa(i), Password: benchPassword})
	}
	up = upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Users: us, RequireMessageAuthenticator: true})
	proxy = upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Secret: secret, ProxyTo: up})
	bins := []struct{ name, bin string }{{"clinicgate", binPath}}
	if bb := beforeBin(); bb != "" {
		bins = append(bins, struct{ name, bin string }{"before", bb})
	}
	for _, bn := range bins {
		data := b.TempDir()
		var args []string
		if bn.bin == binPath {
			args = append(args, "--pprof") // the before build may not know it
		}
		d := startDaemonBin(b, bn.bin, data, args...)
		cgBin(b, bn.bin, data, up.Secret, "upstream", "add", "fr", "--kind", "radius", "--server", up.Addr,
			"--require-message-authenticator=false", "--timeout-ms", "2000", "--budget-ms", "4000", "--secret-stdin")
		cgBin(b, bn.bin, data, secret, "client", "add", "bench", "--address", "127.0.0.1", "--upstream", "fr", "--mfa", "off", "--secret-stdin")
		cgs = append(cgs, target{bn.name, d.auth, d.cmd.Process.Pid, data})
		if cg == nil {
			cg = d
		}
	}
	time.Sleep(1100 * time.Millisecond) // the daemons reload clients within a second
	mk := func(i int) (string, string) { return "bench" + strconv.Itoa(i%users), benchPassword }
	// Warm up (the local records are provisioned at first login).
	for _, t := range cgs {
		load(b, t.addr, 32, users, mk)
	}
	load(b, proxy.Addr, 32, users, mk)
	return cgs, proxy, up, cg
}

// measured is one side's sum over the rounds.
type measured struct {
	sent, ok int
	elapsed  time.Duration
	cpu      time.Duration
	// other is the CPU the rest of the box spent meanwhile: the upstream
	// FreeRADIUS and this process (the load generator).
	other time.Duration
	lat   []time.Duration
}

func (m measured) rate() float64 { return float64(m.sent) / m.elapsed.Seconds() }
func (m measured) cpuPer() time.Duration {
	if m.sent == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.sent)
}

func benchIssue15Proxy(b *testing.B) {
	const users, total, conc, rounds = 200, 2000, 32, 3
	cgs, proxy, up, cg := proxySite(b, users)
	mk := func(i int) (string, string) { return "bench" + strconv.Itoa(i%users), benchPassword }
	if out := os.Getenv("BENCH_CPUPROFILE"); out != "" {
		// Profile clinicgate alone under the same load, before the rounds.
		profile(b, cg, out, func() { load(b, cg.auth, conc, 5*total, mk) })
		if resp, err := http.Get("http://" + cg.http + "/debug/pprof/allocs"); err == nil {
			if f, err := os.Create(out + ".allocs"); err == nil {
				io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
		}
	}
	targets := append(append([]target(nil), cgs...), target{"freeradius", proxy.Addr, proxy.Pid(), ""})
	for range b.N {
		sizes := make([][2]int64, len(cgs))
		for i, tg := range cgs {
			sizes[i][0], sizes[i][1] = auditSize(b, tg.data)
		}
		sides := make([]measured, len(targets))
		for range rounds {
			for s, tg := range targets {
				c0, u0, g0 := procCPU(tg.pid), procCPU(up.Pid()), procCPU(os.Getpid())
				r := load(b, tg.addr, conc, total, mk)
				sides[s].cpu += procCPU(tg.pid) - c0
				sides[s].other += procCPU(up.Pid()) - u0 + procCPU(os.Getpid()) - g0
				sides[s].sent += r.sent
				sides[s].ok += r.accepted
				sides[s].elapsed += r.elapsed
				sides[s].lat = append(sides[s].lat, r.latencies...)
			}
		}
		f := sides[len(sides)-1]
		b.ReportMetric(f.rate(), "freeradius-req/s")
		b.ReportMetric(ms(pct(f.lat, 0.99)), "freeradius-p99-ms")
		b.ReportMetric(float64(f.cpuPer().Microseconds()), "freeradius-cpu-us/req")
		for i, tg := range cgs {
			c := sides[i]
			b.ReportMetric(c.rate(), tg.name+"-req/s")
			b.ReportMetric(c.rate()/f.rate(), tg.name+"-ratio")
			b.ReportMetric(ms(pct(c.lat, 0.99)), tg.name+"-p99-ms")
			b.ReportMetric(float64(c.cpuPer().Microseconds()), tg.name+"-cpu-us/req")
			b.ReportMetric(float64(c.ok), tg.name+"-accepted")
			work := fmt.Sprintf("RADIUS PAP proxied to a FreeRADIUS upstream, c=%d, %d×%d requests", conc, rounds, total)
			if tg.name != "clinicgate" {
				work += " (" + tg.name + ")"
			}
			issue15Row(work,
				fmt.Sprintf("%.0f req/s, p99 %.1f ms, %d µs CPU/req, %d accepted", c.rate(), ms(pct(c.lat, 0.99)), c.cpuPer().Microseconds(), c.ok),
				fmt.Sprintf("FreeRADIUS proxy %.0f req/s, p99 %.1f ms, %d µs CPU/req, %d accepted", f.rate(), ms(pct(f.lat, 0.99)), f.cpuPer().Microseconds(), f.ok),
				fmt.Sprintf("%.2f× rate, %.2f× CPU/req, %.2f× p99", c.rate()/f.rate(), float64(c.cpuPer())/float64(f.cpuPer()), float64(pct(c.lat, 0.99))/float64(pct(f.lat, 0.99))))
		}
		for i, tg := range cgs {
			bytes, rows := auditSize(b, tg.data)
			per := float64(bytes-sizes[i][0]) / float64(rows-sizes[i][1])
			b.ReportMetric(per, tg.name+"-audit-bytes/decision")
			work := "audit growth per proxied decision (database pages, index included)"
			if tg.name != "clinicgate" {
				work += " (" + tg.name + ")"
			}
			issue15Row(work, fmt.Sprintf("%.0f bytes (%d entries)", per, rows-sizes[i][1]), "", "")
		}
		// When the box's cores are busy, the rate follows the CPU that all
		// three processes spend per request. 1.5× FreeRADIUS's rate then
		// takes a proxy whose CPU, added to the rest, is 1/1.5 of
		// FreeRADIUS's side's total.
		c := sides[0]
		otherPer := func(m measured) time.Duration { return m.other / time.Duration(m.sent) }
		budget := (f.cpuPer()+otherPer(f))*2/3 - otherPer(c)
		issue15Row("what 1.5× FreeRADIUS's rate would take on this box (all of it busy)",
			fmt.Sprintf("upstream and load generator %d µs CPU/req beside clinicgate", otherPer(c).Microseconds()),
			fmt.Sprintf("FreeRADIUS proxy %d + upstream and load generator %d µs CPU/req", f.cpuPer().Microseconds(), otherPer(f).Microseconds()),
			fmt.Sprintf("a proxy at ≤ %d µs CPU/req (%.2f× FreeRADIUS's)", budget.Microseconds(), float64(budget)/float64(f.cpuPer())))
	}
	b.ReportMetric(peakRSS(cg.cmd.Process.Pid), "clinicgate-peak-rss-MB")
}

// burstResult is what a burst got back.
type burstResult struct {
	answered int
	lat      []time.Duration // from the first send to the answer
}

// burst sends n requests at once, one UDP socket each. With retransmits,
// a socket that hears nothing in 3 s sends the same packet again, twice at
// most, as a NAS does; without, it waits wait.
func burst(b *testing.B, addr string, n int, retransmits bool, mk func(i int) (string, string)) burstResult {
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var mu sync.Mutex
	var res burstResult
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, pw := mk(i)
			raw, _ := accessRequest(byte(i), user, pw)
			buf := make([]byte, 4096)
			<-start
			t0 := time.Now()
			tries, wait := 1, 5*time.Second
			if retransmits {
				tries, wait = 3, 3*time.Second
			}
			for range tries {
				if _, err := c.Write(raw); err != nil {
					return
				}
				c.SetReadDeadline(time.Now().Add(wait))
				if n, err := c.Read(buf); err == nil && n >= 20 && radius.Code(buf[0]) != 0 {
					mu.Lock()
					res.answered++
					res.lat = append(res.lat, time.Since(t0))
					mu.Unlock()
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return res
}

func benchIssue15Burst(b *testing.B) {
	const users, n = 200, 2000
	cgs, proxy, _, cg := proxySite(b, users)
	mk := func(i int) (string, string) { return "bench" + strconv.Itoa(i%users), benchPassword }
	for range b.N {
		for _, retransmits := range []bool{false, true} {
			name := "burst"
			if retransmits {
				name = "burst-retransmit"
			}
			var got []burstResult
			for _, tg := range cgs {
				time.Sleep(time.Second)
				got = append(got, burst(b, tg.addr, n, retransmits, mk))
			}
			time.Sleep(time.Second)
			f := burst(b, proxy.Addr, n, retransmits, mk)
			b.ReportMetric(float64(f.answered), name+"-freeradius-answered")
			b.ReportMetric(ms(pct(f.lat, 0.5)), name+"-freeradius-p50-ms")
			for i, tg := range cgs {
				c := got[i]
				b.ReportMetric(float64(c.answered), name+"-"+tg.name+"-answered")
				b.ReportMetric(ms(pct(c.lat, 0.5)), name+"-"+tg.name+"-p50-ms")
				work := fmt.Sprintf("%d RADIUS requests at once, proxied", n)
				if retransmits {
					work = "the same burst, NAS-like retransmits (3 s, 2 retries)"
				}
				if tg.name != "clinicgate" {
					work += " (" + tg.name + ")"
				}
				issue15Row(work,
					fmt.Sprintf("%d/%d answered, p50 %.2f s", c.answered, n, pct(c.lat, 0.5).Seconds()),
					fmt.Sprintf("FreeRADIUS proxy %d/%d, p50 %.2f s", f.answered, n, pct(f.lat, 0.5).Seconds()),
					fmt.Sprintf("%.2f× answered", float64(c.answered)/float64(max(f.answered, 1))))
			}
		}
	}
	peak := peakRSS(cg.cmd.Process.Pid)
	b.ReportMetric(peak, "clinicgate-peak-rss-MB")
	issue15Row("peak RSS after the bursts", fmt.Sprintf("%.0f MB", peak), fmt.Sprintf("FreeRADIUS proxy %.0f MB", rssMB(proxy.Pid(), "VmHWM")), "")
}

func benchIssue15LDAP(b *testing.B) {
	const users, total, conc, rounds = 50, 2000, 8, 2
	var us []upstreamtest.LDAPUser
	for i := range users {
		us = append(us, upstreamtest.LDAPUser{UID: "bench" + strconv.Itoa(i), Password: benchPassword, Groups: []string{"staff"}})
	}
	s := upstreamtest.StartSlapd(b, upstreamtest.SlapdOptions{Users: us})
	back := upstreamtest.StartBackLDAP(b, s)
	// pid: the process whose CPU is the bind's cost on that side (for
	// clinicgate and back-ldap, the proxy's own; the upstream slapd's
	// share is the same for both).
	targets := []struct {
		name, url string
		pid       int
	}{{"direct", s.URL, s.Pid()}, {"backldap", back.URL, back.Pid()}}
	bins := []struct{ name, bin string }{{"clinicgate", binPath}}
	if bb := beforeBin(); bb != "" {
		bins = append(bins, struct{ name, bin string }{"before", bb})
	}
	var d *daemon
	for _, bn := range bins {
		data := b.TempDir()
		var args []string
		if bn.bin == binPath {
			args = append(args, "--pprof")
		}
		dd := startDaemonBin(b, bn.bin, data, args...)
		if d == nil {
			d = dd
		}
		cgBin(b, bn.bin, data, "service-secret", "upstream", "add", "dir", "--kind", "ldap", "--url", s.URL, "--starttls=false",
			"--bind-dn", "cn=ehr-service,"+s.Base, "--base-dn", "ou=people,"+s.Base, "--group-base-dn", "ou=groups,"+s.Base, "--secret-stdin")
		cgBin(b, bn.bin, data, "", "settings", "set", "ldap_mode", "proxy")
		cgBin(b, bn.bin, data, "", "settings", "set", "ldap_proxy_upstream", "dir")
		cgBin(b, bn.bin, data, "", "settings", "set", "ldap_base_dn", s.Base)
		cgBin(b, bn.bin, data, "", "client", "add", "ehr", "--door", "ldap", "--address", "127.0.0.1", "--upstream", "dir", "--mfa", "off", "--allow-plain-ldap")
		targets = append(targets, struct {
			name, url string
			pid       int
		}{bn.name, "ldap://" + dd.ldap, dd.cmd.Process.Pid})
	}
	// clinicgate first, then the peers, then the before build.
	targets[0], targets[1], targets[2] = targets[2], targets[0], targets[1]
	dn := func(i int) string { return fmt.Sprintf("uid=bench%d,ou=people,%s", i%users, s.Base) }
	time.Sleep(1100 * time.Millisecond) // the daemons reload clients within a second
	for _, tg := range targets {
		warm, err := ldap.DialURL(tg.url)
		if err != nil {
			b.Fatal(err)
		}
		for i := range users {
			if err := warm.Bind(dn(i), benchPassword); err != nil {
				b.Fatalf("%s: warm-up bind %d: %v", tg.name, i, err)
			}
		}
		warm.Close()
	}
	if out := os.Getenv("BENCH_LDAP_CPUPROFILE"); out != "" {
		conns := make([]*ldap.Conn, conc)
		for w := range conns {
			conns[w], _ = ldap.DialURL(targets[0].url)
		}
		profile(b, d, out, func() {
			runLoad(conc, 3*total, func(w, i int) error { return conns[w].Bind(dn(i), benchPassword) })
		})
		for _, c := range conns {
			c.Close()
		}
	}
	for range b.N {
		sum := make([]struct {
			binds int
			secs  float64
			errs  int
			cpu   time.Duration
			other time.Duration // the upstream slapd's and the load generator's
		}, len(targets))
		for range rounds {
			for t, tg := range targets {
				conns := make([]*ldap.Conn, conc)
				for w := range conns {
					c, err := ldap.DialURL(tg.url)
					if err != nil {
						b.Fatal(err)
					}
					conns[w] = c
				}
				c0, g0 := procCPU(tg.pid), procCPU(os.Getpid())
				u0 := time.Duration(0)
				if tg.pid != s.Pid() {
					u0 = procCPU(s.Pid())
				}
				r := runLoad(conc, total, func(w, i int) error { return conns[w].Bind(dn(i), benchPassword) })
				sum[t].cpu += procCPU(tg.pid) - c0
				sum[t].other += procCPU(os.Getpid()) - g0
				if tg.pid != s.Pid() {
					sum[t].other += procCPU(s.Pid()) - u0
				}
				for _, c := range conns {
					c.Close()
				}
				sum[t].binds += total
				sum[t].secs += float64(total) / r.rate
				sum[t].errs += r.errs
				if r.firstErr != nil {
					b.Logf("%s: %d errors, the first: %v", tg.name, r.errs, r.firstErr)
				}
			}
		}
		rate := func(t int) float64 { return float64(sum[t].binds) / sum[t].secs }
		cpuPer := func(t int) int64 { return (sum[t].cpu / time.Duration(sum[t].binds)).Microseconds() }
		b.ReportMetric(rate(1), "direct-binds/s")
		b.ReportMetric(rate(2), "backldap-binds/s")
		for t, tg := range targets {
			b.ReportMetric(float64(sum[t].errs), tg.name+"-errors")
			if t == 1 || t == 2 {
				continue
			}
			b.ReportMetric(rate(t), tg.name+"-binds/s")
			b.ReportMetric(rate(t)/rate(1), tg.name+"-ratio-vs-direct")
			b.ReportMetric(rate(t)/rate(2), tg.name+"-ratio-vs-backldap")
			work := fmt.Sprintf("LDAP binds in proxy mode, persistent connections, c=%d, %d×%d binds", conc, rounds, total)
			if tg.name != "clinicgate" {
				work += " (" + tg.name + ")"
			}
			b.ReportMetric(float64(cpuPer(t)), tg.name+"-cpu-us/bind")
			issue15Row(work,
				fmt.Sprintf("%.0f binds/s, %d µs CPU/bind", rate(t), cpuPer(t)),
				fmt.Sprintf("slapd back-ldap %.0f/s, %d µs CPU/bind; direct slapd %.0f/s, %d µs CPU/bind", rate(2), cpuPer(2), rate(1), cpuPer(1)),
				fmt.Sprintf("%.2f× back-ldap, %.2f× direct; CPU %.2f× back-ldap's", rate(t)/rate(2), rate(t)/rate(1), float64(cpuPer(t))/float64(cpuPer(2))))
		}
		// As for the proxy: on a busy box the rate follows the CPU all the
		// processes spend per bind, so each goal sets a budget for the
		// proxy's own CPU beside the rest it makes the others spend.
		per := func(t int, d time.Duration) time.Duration { return d / time.Duration(sum[t].binds) }
		cgOther := per(0, sum[0].other)
		twiceBack := (per(2, sum[2].cpu)+per(2, sum[2].other))/2 - cgOther
		halfDirect := (per(1, sum[1].cpu)+per(1, sum[1].other))*2 - cgOther
		issue15Row("what the LDAP goals would take on this box (all of it busy)",
			fmt.Sprintf("upstream slapd and load generator %d µs CPU/bind beside clinicgate", cgOther.Microseconds()),
			fmt.Sprintf("back-ldap %d + upstream and load generator %d; direct slapd %d + load generator %d µs CPU/bind",
				cpuPer(2), per(2, sum[2].other).Microseconds(), cpuPer(1), per(1, sum[1].other).Microseconds()),
			fmt.Sprintf("2× back-ldap: a proxy at ≤ %d µs CPU/bind; 0.5× direct: ≤ %d µs", twiceBack.Microseconds(), halfDirect.Microseconds()))
	}
	b.ReportMetric(peakRSS(d.cmd.Process.Pid), "clinicgate-peak-rss-MB")
}

// benchIssue15Local: local users (production argon2id) logging in for the
// first time, then again within the repeat-login window; and the same
// with repeat_login_seconds off (the default), where every login hashes.
func benchIssue15Local(b *testing.B) {
	const users, conc, repeats = 64, 32, 5
	data, _ := benchSite(b, users, policy.MFAOff)
	off, _ := benchSite(b, users, policy.MFAOff)
	// Before the setting existed this fails and every login hashes.
	if out, err := exec.Command(binPath, "settings", "set", "repeat_login_seconds", "300", "--data", data).CombinedOutput(); err != nil {
		b.Logf("repeat_login_seconds: %v: %s", err, out)
	}
	d := startDaemon(b, data)
	dOff := startDaemon(b, off)
	mk := func(i int) (string, string) { return "bench" + strconv.Itoa(i%users), benchPassword }
	rate := func(r loadResult) float64 { return float64(r.sent) / r.elapsed.Seconds() }
	for range b.N {
		first := load(b, d.auth, conc, users, mk)
		offFirst := load(b, dOff.auth, conc, users, mk)
		repeat := load(b, d.auth, conc, users*repeats, mk)
		offRepeat := load(b, dOff.auth, conc, users, mk)
		fr, rr := rate(first), rate(repeat)
		b.ReportMetric(fr, "first-logins/s")
		b.ReportMetric(rr, "repeat-logins/s")
		b.ReportMetric(rr/fr, "ratio")
		b.ReportMetric(rate(offRepeat)/rate(offFirst), "ratio-setting-off")
		b.ReportMetric(float64(first.accepted+repeat.accepted+offFirst.accepted+offRepeat.accepted), "accepted")
		issue15Row(fmt.Sprintf("local users, c=%d (argon2id m=12 MiB t=3), repeat_login_seconds 300: first login, then repeats", conc),
			fmt.Sprintf("first %.0f logins/s (p50 %.0f ms), repeat %.0f logins/s (p50 %.1f ms); %d/%d accepted", fr, ms(pct(first.latencies, 0.5)), rr, ms(pct(repeat.latencies, 0.5)), first.accepted+repeat.accepted, first.sent+repeat.sent),
			fmt.Sprintf("setting off (default): first %.0f/s, repeat %.0f/s", rate(offFirst), rate(offRepeat)),
			fmt.Sprintf("repeat %.1f× first (off: %.2f×)", rr/fr, rate(offRepeat)/rate(offFirst)))
	}
}

// benchIssue15Fairness is issue 16 finding 8: one NAS (127.0.0.1) sends
// unknown names at 300 a second for 3 s, each costing a full hash (so
// that unknown and known names look alike), while another NAS
// (127.0.0.2) logs a real user in once every 200 ms; how many of its
// logins are answered, and how fast.
func benchIssue15Fairness(b *testing.B) {
	const rate, secs = 300, 3
	bins := []struct{ name, bin string }{{"clinicgate", binPath}}
	if bb := beforeBin(); bb != "" {
		bins = append(bins, struct{ name, bin string }{"before", bb})
	}
	for range b.N {
		for _, bn := range bins {
			data := b.TempDir()
			d := startDaemonBin(b, bn.bin, data)
			cgBin(b, bn.bin, data, secret, "client", "add", "ward", "--address", "127.0.0.0/8", "--mfa", "off", "--secret-stdin")
			cgBin(b, bn.bin, data, benchPassword, "user", "add", "nurse", "--password-stdin")
			time.Sleep(1100 * time.Millisecond) // the daemon reloads clients within a second
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the flood: fire and forget, as a misconfigured NAS does
				defer wg.Done()
				c, err := net.Dial("udp", d.auth)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				t := time.NewTicker(time.Second / rate)
				defer t.Stop()
				for i := 0; i < rate*secs; i++ {
					raw, _ := accessRequest(byte(i), "nobody"+strconv.Itoa(i), "guess")
					c.Write(raw)
					<-t.C
				}
				close(stop)
			}()
			raddr, _ := net.ResolveUDPAddr("udp", d.auth)
			nas, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, raddr)
			if err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			sent, answered := 0, 0
			buf := make([]byte, 4096)
			time.Sleep(500 * time.Millisecond) // the flood has filled what it can
		logins:
			for id := byte(0); ; id++ {
				select {
				case <-stop:
					break logins
				default:
				}
				raw, _ := accessRequest(id, "nurse", benchPassword)
				t0 := time.Now()
				nas.Write(raw)
				sent++
				nas.SetReadDeadline(t0.Add(3 * time.Second)) // a NAS's first retransmit
				if n, err := nas.Read(buf); err == nil && n >= 20 && radius.Code(buf[0]) == radius.CodeAccessAccept {
					answered++
					lat = append(lat, time.Since(t0))
				}
				time.Sleep(200 * time.Millisecond)
			}
			nas.Close()
			wg.Wait()
			b.ReportMetric(float64(answered), bn.name+"-answered")
			b.ReportMetric(ms(pct(lat, 0.5)), bn.name+"-p50-ms")
			b.ReportMetric(ms(pct(lat, 1)), bn.name+"-max-ms")
			work := fmt.Sprintf("one NAS floods unknown names at %d/s for %d s; another NAS's real logins (argon2id)", rate, secs)
			if bn.name != "clinicgate" {
				work += " (" + bn.name + ")"
			}
			issue15Row(work, fmt.Sprintf("%d/%d accepted within 3 s, p50 %.0f ms, max %.0f ms", answered, sent, ms(pct(lat, 0.5)), ms(pct(lat, 1))), "", "")
			d.stop(b)
		}
	}
}

// benchIssue15Idle: resident memory of each server started and left idle
// (clinicgate on a new data directory, as a first start).
func benchIssue15Idle(b *testing.B) {
	s := upstreamtest.StartSlapd(b, upstreamtest.SlapdOptions{Users: []upstreamtest.LDAPUser{{UID: "u", Password: "p"}}})
	fr := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Users: []upstreamtest.RADIUSUser{{Name: "u", Password: "p"}}})
	d := startDaemon(b, b.TempDir())
	var before *daemon
	if bb := beforeBin(); bb != "" {
		before = startDaemonBin(b, bb, b.TempDir())
	}
	for range b.N {
		time.Sleep(3 * time.Second)
		cg := rssMB(d.cmd.Process.Pid, "VmRSS")
		b.ReportMetric(cg, "clinicgate-idle-rss-MB")
		b.ReportMetric(rssMB(fr.Pid(), "VmRSS"), "freeradius-idle-rss-MB")
		b.ReportMetric(rssMB(s.Pid(), "VmRSS"), "slapd-idle-rss-MB")
		peers := fmt.Sprintf("FreeRADIUS %.0f MiB, slapd %.0f MiB", rssMB(fr.Pid(), "VmRSS"), rssMB(s.Pid(), "VmRSS"))
		issue15Row("idle RSS", fmt.Sprintf("%.0f MiB", cg), peers, "")
		if before != nil {
			br := rssMB(before.cmd.Process.Pid, "VmRSS")
			b.ReportMetric(br, "before-idle-rss-MB")
			issue15Row("idle RSS (before)", fmt.Sprintf("%.0f MiB", br), peers, "")
		}
	}
}

// profile saves the daemon's CPU profile, taken while work runs.
func profile(b *testing.B, d *daemon, out string, work func()) {
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + d.http + "/debug/pprof/profile?seconds=3")
		if err != nil {
			got <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(out)
		if err != nil {
			got <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		got <- errors.Join(err, f.Close())
	}()
	time.Sleep(100 * time.Millisecond)
	work()
	if err := <-got; err != nil {
		b.Errorf("profile: %v", err)
	}
}

// auditSize is what clinicgate's database at dir takes (its pages in use,
// the write-ahead log's included) and how many audit entries it holds.
func auditSize(b *testing.B, dir string) (bytes, rows int64) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.DBFile)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var pages, size, free int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA page_size": &size, "PRAGMA freelist_count": &free, "SELECT count(*) FROM audit": &rows} {
		if err := db.QueryRow(q).Scan(v); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	return (pages - free) * size, rows
}
