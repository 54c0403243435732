package e2e

// make bench, the LDAP door: binds through clinicgate's proxy mode against
// the same binds made directly to slapd and through slapd's own back-ldap
// proxy, on persistent connections and with a new connection per bind;
// and directory-mode searches in a 5,000-user store.

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

func cgB(b *testing.B, data, stdin string, args ...string) {
	b.Helper()
	cmd := exec.Command(binPath, append(args, "--data", data)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("clinicgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type runResult struct {
	rate     float64
	p50, p99 time.Duration
	errs     int
	firstErr error
}

// runLoad runs op total times from conc workers; worker w calls op(w, i).
func runLoad(conc, total int, op func(w, i int) error) runResult {
	var mu sync.Mutex
	var lat []time.Duration
	next, errs := 0, 0
	var first error
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= total {
					return
				}
				t0 := time.Now()
				err := op(w, i)
				mu.Lock()
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs++
					if first == nil {
						first = fmt.Errorf("%s: %w", time.Since(t0), err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return runResult{rate: float64(total) / time.Since(start).Seconds(), p50: pct(lat, 0.5), p99: pct(lat, 0.99), errs: errs, firstErr: first}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func BenchmarkLDAPDoor(b *testing.B) {
	const users, total, conc = 50, 3000, 8
	var us []upstreamtest.LDAPUser
	for i := range users {
		us = append(us, upstreamtest.LDAPUser{UID: "bench" + strconv.Itoa(i), Password: benchPassword, Groups: []string{"staff"}})
	}
	s := upstreamtest.StartSlapd(b, upstreamtest.SlapdOptions{Users: us})
	back := upstreamtest.StartBackLDAP(b, s)
	data := b.TempDir()
	d := startDaemon(b, data)
	// Plain LDAP everywhere, so that all three do the same work on the wire
	// (StartTLS is on by default for ldap:// URLs).
	cgB(b, data, "service-secret", "upstream", "add", "dir", "--kind", "ldap", "--url", s.URL, "--starttls=false",
		"--bind-dn", "cn=ehr-service,"+s.Base, "--base-dn", "ou=people,"+s.Base, "--group-base-dn", "ou=groups,"+s.Base, "--secret-stdin")
	cgB(b, data, "", "settings", "set", "ldap_mode", "proxy")
	cgB(b, data, "", "settings", "set", "ldap_proxy_upstream", "dir")
	cgB(b, data, "", "settings", "set", "ldap_base_dn", s.Base)
	cgB(b, data, "", "client", "add", "ehr", "--door", "ldap", "--address", "127.0.0.1", "--upstream", "dir", "--mfa", "off", "--allow-plain-ldap")
	targets := []struct{ name, url string }{
		{"clinicgate", "ldap://" + d.ldap},
		{"direct", s.URL},
		{"backldap", back.URL},
	}
	dn := func(i int) string { return fmt.Sprintf("uid=bench%d,ou=people,%s", i%users, s.Base) }
	time.Sleep(1100 * time.Millisecond) // the daemon reads the settings again within a second
	// First logins provision the users; not measured.
	warm, err := ldap.DialURL(targets[0].url)
	if err != nil {
		b.Fatal(err)
	}
	for i := range users {
		if err := warm.Bind(dn(i), benchPassword); err != nil {
			b.Fatalf("warm-up bind %d: %v", i, err)
		}
	}
	warm.Close()
	for range b.N {
		res := map[string]runResult{}
		for _, tg := range targets {
			conns := make([]*ldap.Conn, conc)
			for w := range conns {
				c, err := ldap.DialURL(tg.url)
				if err != nil {
					b.Fatal(err)
				}
				conns[w] = c
			}
			res[tg.name+"/persistent"] = runLoad(conc, total, func(w, i int) error { return conns[w].Bind(dn(i), benchPassword) })
			for _, c := range conns {
				c.Close()
			}
			res[tg.name+"/new-conn"] = runLoad(conc, total, func(_, i int) error {
				c, err := ldap.DialURL(tg.url, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
				if err != nil {
					return err
				}
				defer c.Close()
				return c.Bind(dn(i), benchPassword)
			})
		}
		for _, mode := range []string{"persistent", "new-conn"} {
			cg, dr, bl := res["clinicgate/"+mode], res["direct/"+mode], res["backldap/"+mode]
			b.ReportMetric(cg.rate, mode+"-clinicgate-binds/s")
			b.ReportMetric(dr.rate, mode+"-direct-binds/s")
			b.ReportMetric(bl.rate, mode+"-backldap-binds/s")
			b.ReportMetric(cg.rate/dr.rate, mode+"-ratio-vs-direct")
			b.ReportMetric(cg.rate/bl.rate, mode+"-ratio-vs-backldap")
			b.ReportMetric(ms(cg.p50), mode+"-clinicgate-p50-ms")
			b.ReportMetric(ms(cg.p99), mode+"-clinicgate-p99-ms")
			b.ReportMetric(ms(dr.p50), mode+"-direct-p50-ms")
			b.ReportMetric(ms(dr.p99), mode+"-direct-p99-ms")
			b.ReportMetric(ms(bl.p50), mode+"-backldap-p50-ms")
			b.ReportMetric(ms(bl.p99), mode+"-backldap-p99-ms")
			b.ReportMetric(float64(cg.errs+dr.errs+bl.errs), mode+"-errors")
			for _, r := range []runResult{cg, dr, bl} {
				if r.firstErr != nil {
					b.Logf("%s: %d errors, the first: %v", mode, r.errs, r.firstErr)
				}
			}
		}
	}
	b.ReportMetric(peakRSS(d.cmd.Process.Pid), "peak-rss-MB")
}

// BenchmarkLDAPDirectorySearch: a bind account's searches by
// sAMAccountName in a 5,000-user store, on persistent connections.
func BenchmarkLDAPDirectorySearch(b *testing.B) {
	const users, total, conc = 5000, 5000, 8
	data := b.TempDir()
	func() {
		st, err := store.Open(b.Context(), data, store.Options{Create: true})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		alog, err := audit.New(st, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer alog.Close()
		h, err := passwd.NewHasher(passwd.DefaultParams, 1)
		if err != nil {
			b.Fatal(err)
		}
		svc, err := admin.New(st, alog, h, "bench")
		if err != nil {
			b.Fatal(err)
		}
		for i := range users {
			if err := svc.AddUser(b.Context(), admin.NewUser{Name: "user" + strconv.Itoa(i), Groups: []string{"staff", "g" + strconv.Itoa(i%20)}}); err != nil {
				b.Fatal(err)
			}
		}
	}()
	d := startDaemon(b, data)
	cgB(b, data, "", "client", "add", "ehr", "--door", "ldap", "--address", "127.0.0.1", "--allow-plain-ldap")
	cgB(b, data, "ehr-search-secret-0123456789", "bindaccount", "add", "ehr-search", "--network", "127.0.0.1", "--secret-stdin")
	conns := make([]*ldap.Conn, conc)
	for w := range conns {
		c, err := ldap.DialURL("ldap://" + d.ldap)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Bind("ehr-search", "ehr-search-secret-0123456789"); err != nil {
			b.Fatal(err)
		}
		conns[w] = c
	}
	search := func(w, i int) error {
		res, err := conns[w].Search(ldap.NewSearchRequest("dc=clinic,dc=local", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			fmt.Sprintf("(&(objectClass=user)(sAMAccountName=user%d))", (i*7919)%users), []string{"sAMAccountName", "memberOf", "userPrincipalName"}, nil))
		if err == nil && len(res.Entries) != 1 {
			err = fmt.Errorf("found %d entries", len(res.Entries))
		}
		return err
	}
	_ = search(0, 0) // builds the directory snapshot
	for range b.N {
		r := runLoad(conc, total, search)
		b.ReportMetric(r.rate, "searches/s")
		b.ReportMetric(ms(r.p50), "p50-ms")
		b.ReportMetric(ms(r.p99), "p99-ms")
		b.ReportMetric(float64(r.errs), "errors")
	}
	b.ReportMetric(peakRSS(d.cmd.Process.Pid), "peak-rss-MB")
}
