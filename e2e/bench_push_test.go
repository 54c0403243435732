package e2e

import (
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/clinicgate/clinicgate/appliance/mfa/mfatest"
	"github.com/clinicgate/clinicgate/appliance/policy"
)

// BenchmarkPushWaiting: 200 logins wait on Duo pushes at once, each
// approved after 1-20 s at random, from 200 NASes that retransmit every
// 5 s for 30 s (a FortiGate with remoteauthtimeout 30). The daemon has
// 32 workers per socket: if each waiting login held one, most would be
// dropped. Reported: logins answered Accept within the NAS's patience,
// duplicate pushes (pushes sent minus logins), the most logins waiting at
// once, and the daemon's RSS idle and at its peak.
func BenchmarkPushWaiting(b *testing.B) {
	// The same 200 logins approved at once, for comparison: what waiting
	// costs is the difference.
	for _, sc := range []struct {
		name string
		wait bool
	}{{"approved=at-once", false}, {"approved=1-20s", true}} {
		b.Run(sc.name, func(b *testing.B) { benchPushWaiting(b, sc.wait) })
	}
}

func benchPushWaiting(b *testing.B, wait bool) {
	const n = 200
	const gap, tries = 5 * time.Second, 6
	data, _ := benchSite(b, n, policy.MFARequired)
	duo := mfatest.NewDuo("DIWJ8X6AEYOR5OMC6TQ1", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")
	defer duo.Close()
	rnd := rand.New(rand.NewPCG(13, 13))
	after := make(map[string]time.Duration, n)
	for i := range n {
		user := "bench" + strconv.Itoa(i)
		duo.SetUser(user, mfatest.DuoUser{Push: true})
		after[user] = time.Second + time.Duration(rnd.Int64N(int64(19*time.Second)))
		if !wait {
			after[user] = 0
		}
	}
	duo.Answer = func(user string, _ int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Approve, After: after[user]}
	}
	d := startDaemon(b, data)
	caFile := mfatest.WriteCA(b, duo.Certificate())
	for _, args := range [][]string{
		{"mfa", "provider", "set", "duo", "--duo", duo.Host(), "--integration-key", duo.IKey, "--ca-file", caFile, "--secret-stdin"},
		{"mfa", "push", "bench", "--provider", "duo", "--mode", "hold", "--budget", "30"},
	} {
		cmd := exec.Command(binPath, append(args, "--data", data)...)
		cmd.Stdin = strings.NewReader(duo.SKey)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("clinicgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	time.Sleep(1500 * time.Millisecond) // the daemon reads client policies once a second
	idle := rss(d.cmd.Process.Pid)
	for range b.N {
		var accepted, late, other atomic.Int64
		var waiting, most atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := net.Dial("udp", d.auth)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				// append style: "password," and no code asks for the push.
				raw, _ := accessRequest(byte(i), "bench"+strconv.Itoa(i), benchPassword)
				w := waiting.Add(1)
				for {
					m := most.Load()
					if w <= m || most.CompareAndSwap(m, w) {
						break
					}
				}
				defer waiting.Add(-1)
				buf := make([]byte, 4096)
				for range tries {
					conn.Write(raw)
					conn.SetReadDeadline(time.Now().Add(gap))
					k, err := conn.Read(buf)
					if err != nil {
						continue
					}
					if k >= 20 && radius.Code(buf[0]) == radius.CodeAccessAccept {
						accepted.Add(1)
					} else {
						other.Add(1)
					}
					return
				}
				late.Add(1) // the NAS gave up
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(accepted.Load()), "accepted-within-budget")
		b.ReportMetric(float64(other.Load()), "refused")
		b.ReportMetric(float64(late.Load()), "nas-gave-up")
		b.ReportMetric(float64(duo.Pushes()-n), "duplicate-pushes")
		b.ReportMetric(float64(most.Load()), "most-waiting-at-once")
		if other.Load() > 0 {
			out, _ := exec.Command(binPath, "audit", "tail", "-n", "400", "--data", data).CombinedOutput()
			reasons := map[string]int{}
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) > 5 && f[3] == "decision" {
					reasons[f[4]+" "+f[5]]++
				}
			}
			b.Logf("decisions: %v", reasons)
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "mfa_push_budget_spent") {
					seq := strings.Fields(line)[0]
					story, _ := exec.Command(binPath, "audit", "show", seq, "--data", data).CombinedOutput()
					b.Logf("one refusal:\n%s", story)
					break
				}
			}
		}
	}
	b.ReportMetric(idle, "rss-idle-MB")
	b.ReportMetric(peakRSS(d.cmd.Process.Pid), "peak-rss-MB")
}
