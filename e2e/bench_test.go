package e2e

// make bench: Access-Requests per second and latency through the real
// daemon, with real argon2id parameters, and the daemon's peak memory.
// Figures are reported, never asserted (the machines are noisy).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
	"github.com/clinicgate/clinicgate/internal/msgauth"
)

const benchPassword = "bench password 1"

// benchSite prepares a data directory with n users (bench0..), each with a
// TOTP seed, and one client for 127.0.0.1 with the given MFA mode. The
// password hash is computed once with the production parameters and copied
// to every user; salts repeat, which changes nothing for verification cost.
func benchSite(b *testing.B, n int, mfaMode policy.MFA) (string, [][]byte) {
	b.Helper()
	ctx := context.Background()
	data := b.TempDir()
	st, err := store.Open(ctx, data, store.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := passwd.NewHasher(passwd.DefaultParams, 1)
	if err != nil {
		b.Fatal(err)
	}
	hash, err := h.Hash(ctx, []byte(benchPassword))
	if err != nil {
		b.Fatal(err)
	}
	seeds := make([][]byte, n)
	now := time.Now()
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		pol := policy.Default()
		pol.MFA = mfaMode
		pol.Style = policy.StyleAppend
		if _, err := tx.CreateClient(ctx, store.Client{Name: "bench", Door: "radius", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(secret), Policy: pol}, now); err != nil {
			return err
		}
		for i := range n {
			id, err := tx.CreateUser(ctx, store.User{Name: "bench" + strconv.Itoa(i), PasswordHash: hash}, now)
			if err != nil {
				return err
			}
			seeds[i], _ = mfa.NewSeed(nil)
			if err := tx.SetTOTP(ctx, store.TOTP{UserID: id, Seed: seeds[i], Digits: 6, Period: 30, Algorithm: "SHA1"}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return data, seeds
}

// accessRequest encodes a PAP Access-Request with a Message-Authenticator.
func accessRequest(id byte, user, pw string) ([]byte, *radius.Packet) {
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	p.Identifier = id
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, pw)
	p.Add(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	raw, _ := p.Encode()
	if err := msgauth.Sign(raw, []byte(secret)); err != nil {
		panic(err) // the attribute was just added
	}
	return raw, p
}

type loadResult struct {
	sent, accepted, other, lost int
	latencies                   []time.Duration
	elapsed                     time.Duration
}

// load sends total requests from conc simulated NASes, one UDP socket each
// with incrementing identifiers, one request in flight per socket.
func load(b *testing.B, addr string, conc, total int, mk func(i int) (string, string)) loadResult {
	b.Helper()
	var mu sync.Mutex
	var res loadResult
	next := 0
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			buf := make([]byte, 4096)
			var id byte
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= total {
					return
				}
				user, pw := mk(i)
				raw, _ := accessRequest(id, user, pw)
				id++
				t0 := time.Now()
				conn.SetDeadline(t0.Add(10 * time.Second))
				if _, err := conn.Write(raw); err != nil {
					b.Error(err)
					return
				}
				n, err := conn.Read(buf)
				d := time.Since(t0)
				mu.Lock()
				res.sent++
				switch {
				case err != nil:
					res.lost++
				case n >= 20 && radius.Code(buf[0]) == radius.CodeAccessAccept:
					res.accepted++
					res.latencies = append(res.latencies, d)
				default:
					res.other++
					res.latencies = append(res.latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

// peakRSS reads the daemon's high-water resident set size.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func BenchmarkAccessRequest(b *testing.B) {
	const total = 400
	for _, sc := range []struct {
		name string
		mfa  policy.MFA
	}{{"mfa=off", policy.MFAOff}, {"mfa=totp-append", policy.MFARequired}} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/c=%d", sc.name, conc), func(b *testing.B) {
				n := total
				if conc == 1 {
					n = total / 4
				}
				data, seeds := benchSite(b, n, sc.mfa)
				d := startDaemon(b, data)
				now := time.Now()
				codes := make([]string, n)
				for i := range n {
					codes[i], _ = mfa.HOTP(seeds[i], uint64(mfa.Step(now, 30)), 6, "SHA1")
				}
				b.ResetTimer()
				for range b.N {
					res := load(b, d.auth, conc, n, func(i int) (string, string) {
						pw := benchPassword
						if sc.mfa != policy.MFAOff {
							pw += "," + codes[i]
						}
						return "bench" + strconv.Itoa(i), pw
					})
					b.ReportMetric(float64(res.sent)/res.elapsed.Seconds(), "req/s")
					b.ReportMetric(float64(pct(res.latencies, 0.5).Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(pct(res.latencies, 0.99).Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(res.accepted), "accepted")
					b.ReportMetric(float64(res.lost+res.other), "not-accepted")
				}
				b.StopTimer()
				b.ReportMetric(peakRSS(d.cmd.Process.Pid), "peak-rss-MB")
			})
		}
	}
}

// BenchmarkFlood sends 1000 requests at once (wrong passwords, so every one
// that is decided costs a full hash) and reports how the daemon coped and
// its peak memory: hashing is bounded, so memory must stay flat.
func BenchmarkFlood(b *testing.B) {
	data, _ := benchSite(b, 1, policy.MFAOff)
	d := startDaemon(b, data)
	for range b.N {
		res := load(b, d.auth, 1000, 1000, func(i int) (string, string) { return "bench0", "wrong password " + strconv.Itoa(i) })
		// Unanswered requests were dropped at the full queue; a real NAS
		// retransmits them after 3-5 s.
		b.ReportMetric(float64(res.sent-res.lost), "answered")
		b.ReportMetric(float64(res.lost), "unanswered")
		b.ReportMetric(float64(pct(res.latencies, 0.5).Microseconds())/1000, "answered-p50-ms")
		b.ReportMetric(float64(pct(res.latencies, 0.99).Microseconds())/1000, "answered-p99-ms")
	}
	b.ReportMetric(peakRSS(d.cmd.Process.Pid), "peak-rss-MB")
}

// BenchmarkRADIUSProxy compares clinicgate forwarding PAP to an upstream
// FreeRADIUS with FreeRADIUS itself proxying to the same upstream, at
// concurrency 32, in one run.
func BenchmarkRADIUSProxy(b *testing.B) {
	const users, total, conc = 200, 2000, 32
	var us []upstreamtest.RADIUSUser
	for i := range users {
		us = append(us, upstreamtest.RADIUSUser{Name: "bench" + strconv.Itoa(i), Password: benchPassword})
	}
	up := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Users: us, RequireMessageAuthenticator: true})
	mk := func(i int) (string, string) { return "bench" + strconv.Itoa(i%users), benchPassword }

	// FreeRADIUS as the proxy (its client secret is ours, so the same load
	// generator drives both).
	proxy := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Secret: secret, ProxyTo: up})

	data := b.TempDir()
	d := startDaemon(b, data)
	st, err := store.Open(context.Background(), data, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"servers":[%q],"require_message_authenticator":false,"timeout_ms":2000,"budget_ms":4000}`, up.Addr)
	pol := policy.Default()
	pol.Upstream, pol.MFA = "fr", policy.MFAOff
	err = st.WithTx(context.Background(), func(tx *store.Tx) error {
		if err := tx.CreateUpstream(context.Background(), store.Upstream{Name: "fr", Kind: "radius", Config: cfg, Secret: []byte(up.Secret)}, time.Now()); err != nil {
			return err
		}
		_, err := tx.CreateClient(context.Background(), store.Client{Name: "bench", Door: "radius", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(secret), Policy: pol}, time.Now())
		return err
	})
	st.Close()
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the daemon reloads clients within a second
	// Warm up both (provisioning of the local records happens once).
	load(b, d.auth, conc, users, mk)
	load(b, proxy.Addr, conc, users, mk)
	for range b.N {
		cg := load(b, d.auth, conc, total, mk)
		fr := load(b, proxy.Addr, conc, total, mk)
		cgRate := float64(cg.sent) / cg.elapsed.Seconds()
		frRate := float64(fr.sent) / fr.elapsed.Seconds()
		b.ReportMetric(cgRate, "clinicgate-req/s")
		b.ReportMetric(frRate, "freeradius-req/s")
		b.ReportMetric(cgRate/frRate, "ratio")
		b.ReportMetric(float64(pct(cg.latencies, 0.99).Microseconds())/1000, "clinicgate-p99-ms")
		b.ReportMetric(float64(pct(fr.latencies, 0.99).Microseconds())/1000, "freeradius-p99-ms")
		b.ReportMetric(float64(pct(cg.latencies, 0.5).Microseconds())/1000, "clinicgate-p50-ms")
		b.ReportMetric(float64(pct(fr.latencies, 0.5).Microseconds())/1000, "freeradius-p50-ms")
		b.ReportMetric(float64(cg.accepted), "clinicgate-accepted")
		b.ReportMetric(float64(fr.accepted), "freeradius-accepted")
	}
}

// BenchmarkLDAPUpstream compares clinicgate's LDAP connector (search as the
// service account, then bind as the user, pooled, over StartTLS) with the
// least a client can do against the same slapd: a bind as the user's known
// DN on an already open StartTLS connection. Concurrency 8, one run.
func BenchmarkLDAPUpstream(b *testing.B) {
	const users, total, conc = 50, 4000, 8
	var us []upstreamtest.LDAPUser
	for i := range users {
		us = append(us, upstreamtest.LDAPUser{UID: "bench" + strconv.Itoa(i), Password: benchPassword, Groups: []string{"staff"}})
	}
	s := upstreamtest.StartSlapd(b, upstreamtest.SlapdOptions{Users: us})
	cfg := fmt.Sprintf(`{"urls":[%q],"starttls":true,"ca_file":%q,"bind_dn":"cn=ehr-service,%s","base_dn":"ou=people,%s","group_base_dn":"ou=groups,%s","pool":%d}`,
		s.URL, s.CAFile, s.Base, s.Base, s.Base, conc)
	conn, err := upstream.NewLDAP("bench", cfg, []byte("service-secret"))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// runLoad (bench_ldap_test.go) drives the checks; a failed one is an
	// error of the benchmark, as before.
	run := func(check func(worker, i int) error) (float64, time.Duration, time.Duration) {
		r := runLoad(conc, total, check)
		if r.errs > 0 {
			b.Errorf("%d checks failed, the first: %v", r.errs, r.firstErr)
		}
		return r.rate, r.p50, r.p99
	}
	ctx := context.Background()
	direct := make([]*ldap.Conn, conc)
	for w := range direct {
		c, err := ldap.DialURL(s.URL)
		if err != nil {
			b.Fatal(err)
		}
		pool := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(s.CAFile)
		pool.AppendCertsFromPEM(pemBytes)
		if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		direct[w] = c
	}
	for range b.N {
		cgRate, cgP50, cgP99 := run(func(_, i int) error {
			_, err := conn.Verify(ctx, "bench"+strconv.Itoa(i%users), []byte(benchPassword))
			return err
		})
		dRate, dP50, dP99 := run(func(w, i int) error {
			return direct[w].Bind(fmt.Sprintf("uid=bench%d,ou=people,%s", i%users, s.Base), benchPassword)
		})
		b.ReportMetric(cgRate, "clinicgate-checks/s")
		b.ReportMetric(dRate, "direct-binds/s")
		b.ReportMetric(cgRate/dRate, "ratio")
		b.ReportMetric(float64(cgP50.Microseconds())/1000, "clinicgate-p50-ms")
		b.ReportMetric(float64(cgP99.Microseconds())/1000, "clinicgate-p99-ms")
		b.ReportMetric(float64(dP50.Microseconds())/1000, "direct-p50-ms")
		b.ReportMetric(float64(dP99.Microseconds())/1000, "direct-p99-ms")
	}
}
