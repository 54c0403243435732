package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/eap/eaptest"
	"github.com/clinicgate/clinicgate/internal/eapclient"
)

// BenchmarkEAPTTLS: EAP-TTLS/PAP logins (full handshakes: neither server
// resumes sessions) per second and the server's CPU per login, clinicgate
// against FreeRADIUS 3.2 in the same run, with the same certificate (ECDSA
// P-256, RSA-2048), the same driver (internal/eapclient, one Calling-
// Station-Id per login) and the same concurrency. The driver runs on the
// same machine and takes its share of the CPU from both alike.
//
// clinicgate is measured twice: with its production argon2id parameters
// (what a clinic's appliance does for every inner password) and with a
// cheap hash, which leaves the EAP and TLS work to compare with
// FreeRADIUS's, whose users file holds cleartext passwords.
func BenchmarkEAPTTLS(b *testing.B) {
	const users, total, conc = 50, 200, 16
	for _, key := range []string{"ecdsa-p256", "rsa-2048"} {
		for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := "tls1.2"
			if ver == tls.VersionTLS13 {
				name = "tls1.3"
			}
			b.Run(key+"/"+name, func(b *testing.B) {
				certPath, keyPath, roots := benchCert(b, key)
				cg := startDaemon(b, eapBenchSite(b, users, passwd.DefaultParams, certPath, keyPath))
				cheap := startDaemon(b, eapBenchSite(b, users, passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}, certPath, keyPath))
				var us []upstreamtest.RADIUSUser
				for i := range users {
					us = append(us, upstreamtest.RADIUSUser{Name: "bench" + strconv.Itoa(i), Password: benchPassword})
				}
				fr := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Users: us, Secret: secret, RequireMessageAuthenticator: true,
					EAP: &upstreamtest.FreeRADIUSEAP{CertFile: certPath, KeyFile: keyPath}})
				servers := []eapServer{{"clinicgate", cg.auth, cg.cmd.Process.Pid}, {"clinicgate-cheaphash", cheap.auth, cheap.cmd.Process.Pid}, {"freeradius", fr.Addr, fr.Pid()}}
				measureEAP(b, servers, cg.cmd.Process.Pid, conc, total, fr, func(s eapServer, n int) eapLoadResult {
					return eapLoad(b, s.addr, s.pid, roots, ver, conc, n, users)
				})
			})
		}
	}
}

// BenchmarkEAPTLS: EAP-TLS logins (full handshakes, a client certificate
// each) per second and the server's CPU per login, clinicgate against
// FreeRADIUS 3.2 with the same server certificate, the same client CA and
// certificates (ECDSA P-256 client keys), the same driver and concurrency.
// No password is hashed: this is the EAP and TLS work alone.
func BenchmarkEAPTLS(b *testing.B) {
	const users, total, conc = 50, 200, 16
	ca := eaptest.NewCA(b, "Bench Devices CA")
	certs := make([]tls.Certificate, users)
	for i := range users {
		leaf := ca.Issue(b, "bench"+strconv.Itoa(i), "", "", time.Time{}, time.Time{})
		pair, err := tls.LoadX509KeyPair(leaf.CertFile, leaf.KeyFile)
		if err != nil {
			b.Fatal(err)
		}
		certs[i] = pair
	}
	caPEM, err := os.ReadFile(ca.File)
	if err != nil {
		b.Fatal(err)
	}
	for _, key := range []string{"ecdsa-p256", "rsa-2048"} {
		for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := "tls1.2"
			if ver == tls.VersionTLS13 {
				name = "tls1.3"
			}
			b.Run(key+"/"+name, func(b *testing.B) {
				certPath, keyPath, roots := benchCert(b, key)
				data := eapBenchSite(b, users, passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}, certPath, keyPath)
				if err := os.WriteFile(filepath.Join(data, eap.ClientCAFile), caPEM, 0o600); err != nil {
					b.Fatal(err)
				}
				cg := startDaemon(b, data)
				fr := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Secret: secret, RequireMessageAuthenticator: true,
					EAP: &upstreamtest.FreeRADIUSEAP{CertFile: certPath, KeyFile: keyPath, ClientCAFile: ca.File}})
				servers := []eapServer{{"clinicgate", cg.auth, cg.cmd.Process.Pid}, {"freeradius", fr.Addr, fr.Pid()}}
				measureEAP(b, servers, cg.cmd.Process.Pid, conc, total, fr, func(s eapServer, n int) eapLoadResult {
					return eapLoad(b, s.addr, s.pid, roots, ver, conc, n, users, certs...)
				})
			})
		}
	}
}

// BenchmarkEAPInFlight: 1,000 EAP-TTLS handshakes in flight at once (one
// worker each), against clinicgate (cheap hash: the handshakes, not the
// password hashing, are what is measured) and FreeRADIUS; reports how
// many finished and each server's peak RSS.
func BenchmarkEAPInFlight(b *testing.B) {
	const users, total = 50, 1000
	certPath, keyPath, roots := benchCert(b, "ecdsa-p256")
	cg := startDaemon(b, eapBenchSite(b, users, passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}, certPath, keyPath))
	var us []upstreamtest.RADIUSUser
	for i := range users {
		us = append(us, upstreamtest.RADIUSUser{Name: "bench" + strconv.Itoa(i), Password: benchPassword})
	}
	fr := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Users: us, Secret: secret, RequireMessageAuthenticator: true,
		EAP: &upstreamtest.FreeRADIUSEAP{CertFile: certPath, KeyFile: keyPath}})
	for range b.N {
		for _, s := range []eapServer{{"clinicgate", cg.auth, cg.cmd.Process.Pid}, {"freeradius", fr.Addr, fr.Pid()}} {
			r := eapLoad(b, s.addr, s.pid, roots, tls.VersionTLS13, total, total, users)
			b.ReportMetric(float64(r.accepted), s.label+"-accepted")
			b.ReportMetric(r.elapsed.Seconds(), s.label+"-seconds")
			b.ReportMetric(peakRSS(s.pid), s.label+"-peak-rss-MB")
		}
	}
}

// BenchmarkEAPPEAP: PEAPv0/EAP-MSCHAPv2 logins per second and the
// server's CPU per login, clinicgate (against kept NT hashes) and
// FreeRADIUS 3.2 (its mschap module against cleartext passwords) with the
// same server certificate. The driver is wpa_supplicant's eapol_test, one
// process per login, 16 at a time; it costs both servers' runs alike and
// checks each Accept's MPPE keys against its own derivation.
func BenchmarkEAPPEAP(b *testing.B) {
	const users, total, conc = 50, 200, 16
	if _, err := exec.LookPath("eapol_test"); err != nil {
		b.Fatal("eapol_test is not installed: run 'make test-deps'")
	}
	for _, key := range []string{"ecdsa-p256", "rsa-2048"} {
		for _, ver := range []string{"tls1.2", "tls1.3"} {
			b.Run(key+"/"+ver, func(b *testing.B) {
				certPath, keyPath, _ := benchCert(b, key)
				cg := startDaemon(b, eapBenchSite(b, users, passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}, certPath, keyPath,
					func(p *policy.Policy) { p.AllowMSCHAP = true }))
				var us []upstreamtest.RADIUSUser
				for i := range users {
					us = append(us, upstreamtest.RADIUSUser{Name: "bench" + strconv.Itoa(i), Password: benchPassword})
				}
				fr := upstreamtest.StartFreeRADIUS(b, upstreamtest.FreeRADIUSOptions{Users: us, Secret: secret, RequireMessageAuthenticator: true,
					EAP: &upstreamtest.FreeRADIUSEAP{CertFile: certPath, KeyFile: keyPath, PEAP: true}})
				confs := peapConfs(b, users, certPath, ver)
				servers := []eapServer{{"clinicgate", cg.auth, cg.cmd.Process.Pid}, {"freeradius", fr.Addr, fr.Pid()}}
				measureEAP(b, servers, cg.cmd.Process.Pid, conc, total, fr, func(s eapServer, n int) eapLoadResult {
					return peapLoad(b, s.addr, s.pid, confs, conc, n)
				})
			})
		}
	}
}

// peapConfs writes one eapol_test network block per user.
func peapConfs(b *testing.B, users int, caPath, ver string) []string {
	b.Helper()
	phase1 := `phase1="peapver=0 tls_disable_tlsv1_3=1"`
	if ver == "tls1.3" {
		phase1 = `phase1="peapver=0 tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0"`
	}
	dir := b.TempDir()
	out := make([]string, users)
	for i := range users {
		out[i] = filepath.Join(dir, fmt.Sprintf("bench%d.conf", i))
		conf := fmt.Sprintf("network={\n\tssid=\"clinic\"\n\tkey_mgmt=WPA-EAP\n\teap=PEAP\n\tidentity=\"bench%d\"\n\tpassword=%q\n\tca_cert=%q\n\t%s\n\tphase2=\"auth=MSCHAPV2\"\n}\n",
			i, benchPassword, caPath, phase1)
		if err := os.WriteFile(out[i], []byte(conf), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// peapLoad runs total eapol_test logins, conc at a time, each with its own
// station MAC, and measures the server process pid's CPU meanwhile.
func peapLoad(b *testing.B, addr string, pid int, confs []string, conc, total int) eapLoadResult {
	b.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	return runLogins(pid, conc, total, func(i int) (bool, bool, error) {
		mac := strings.ToLower(strings.ReplaceAll(eapclient.RandomStation(), "-", ":"))
		out, err := exec.Command("eapol_test", "-c", confs[i%len(confs)], "-a", host, "-p", port, "-s", secret, "-r", "0", "-t", "15", "-M", mac).CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "SUCCESS") {
			return false, false, fmt.Errorf("%v: %s", err, tail(string(out), 1500))
		}
		return true, strings.Contains(string(out), "MPPE keys OK: 1  mismatch: 0"), nil
	})
}

// runLogins runs total logins, conc at a time, login(i) doing the i-th
// (accepted, its keys matched, or why it failed), and measures the server
// process pid's CPU meanwhile.
func runLogins(pid, conc, total int, login func(i int) (accepted, keysOK bool, err error)) eapLoadResult {
	var mu sync.Mutex
	var res eapLoadResult
	next := 0
	cpu0 := procCPU(pid)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= total {
					return
				}
				t0 := time.Now()
				ok, keys, err := login(i)
				d := time.Since(t0)
				mu.Lock()
				switch {
				case ok:
					res.accepted++
					res.latencies = append(res.latencies, d)
					if keys {
						res.keysOK++
					}
				case err != nil && res.firstErr == nil:
					res.firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = procCPU(pid) - cpu0
	return res
}

// eapServer is one server an EAP benchmark measures.
type eapServer struct {
	label string
	addr  string
	pid   int
}

// measureEAP warms every server up (2*conc logins, all of which must be
// accepted), then runs total logins against each, one after the other,
// and reports its rate, CPU per login, p50, refusals and matching keys,
// and clinicgate's peak RSS (cgPid). load runs n logins, conc at a time.
func measureEAP(b *testing.B, servers []eapServer, cgPid, conc, total int, fr *upstreamtest.FreeRADIUS, load func(s eapServer, n int) eapLoadResult) {
	b.Helper()
	for _, s := range servers {
		if r := load(s, 2*conc); r.accepted != 2*conc {
			b.Fatalf("%s accepted %d of %d warm-up logins; first error: %v\n%s", s.label, r.accepted, 2*conc, r.firstErr, frLog(s.label, fr))
		}
	}
	b.ResetTimer()
	for range b.N {
		for _, s := range servers {
			r := load(s, total)
			b.ReportMetric(float64(r.accepted)/r.elapsed.Seconds(), s.label+"-logins/s")
			b.ReportMetric(r.cpu.Seconds()*1000/float64(total), s.label+"-cpu-ms/login")
			b.ReportMetric(float64(pct(r.latencies, 0.5).Microseconds())/1000, s.label+"-p50-ms")
			b.ReportMetric(float64(total-r.accepted), s.label+"-not-accepted")
			// FreeRADIUS's keys too, checked by the driver's own
			// derivation (RFC 5281, RFC 5216, RFC 9427).
			b.ReportMetric(float64(r.keysOK), s.label+"-keys-ok")
		}
	}
	b.StopTimer()
	b.ReportMetric(peakRSS(cgPid), "clinicgate-peak-rss-MB")
}

func frLog(label string, fr *upstreamtest.FreeRADIUS) string {
	if label != "freeradius" {
		return ""
	}
	return tail(fr.Log(), 3000)
}

type eapLoadResult struct {
	accepted, keysOK int
	latencies        []time.Duration
	elapsed, cpu     time.Duration
	firstErr         error
}

// eapLoad runs total EAP-TTLS/PAP logins against addr from conc workers
// and measures the server process pid's CPU time meanwhile; with certs,
// EAP-TLS logins instead, user i presenting certs[i].
func eapLoad(b *testing.B, addr string, pid int, roots *x509.CertPool, ver uint16, conc, total, users int, certs ...tls.Certificate) eapLoadResult {
	b.Helper()
	return runLogins(pid, conc, total, func(i int) (bool, bool, error) {
		c := eapclient.Config{
			Addr: addr, Secret: []byte(secret), User: "bench" + strconv.Itoa(i%users), Password: []byte(benchPassword),
			TLSVersion: ver, RootCAs: roots, CallingStationID: eapclient.RandomStation(), Timeout: 5 * time.Second,
		}
		if len(certs) > 0 {
			c.Method, c.Identity, c.Certificates = eapclient.MethodTLS, c.User, []tls.Certificate{certs[i%users]}
		}
		r, err := eapclient.Login(context.Background(), c)
		return err == nil && r.Accepted, r.KeysMatch, err
	})
}

// procCPU is a process's user and system time so far, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s, Linux's
// USER_HZ).
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count after it.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// eapBenchSite is a data directory with users bench0.. (password hashed
// once with p), a client for 127.0.0.1 without MFA, and the given EAP
// certificate in place of a generated one.
func eapBenchSite(b *testing.B, users int, p passwd.Params, certPath, keyPath string, opts ...func(*policy.Policy)) string {
	b.Helper()
	ctx := context.Background()
	data := b.TempDir()
	st, err := store.Open(ctx, data, store.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := passwd.NewHasher(p, 1)
	if err != nil {
		b.Fatal(err)
	}
	hash, err := h.Hash(ctx, []byte(benchPassword))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		pol := policy.Default()
		pol.MFA = policy.MFAOff
		for _, o := range opts {
			o(&pol)
		}
		if _, err := tx.CreateClient(ctx, store.Client{Name: "bench", Door: "radius", Prefix: netip.MustParsePrefix("127.0.0.1/32"), Secret: []byte(secret), Policy: pol}, now); err != nil {
			return err
		}
		for i := range users {
			if _, err := tx.CreateUser(ctx, store.User{Name: "bench" + strconv.Itoa(i), PasswordHash: hash}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// A client that allows MS-CHAPv2 checks PEAP against a kept NT hash,
	// as if each user had logged in once with a password.
	for i := range users {
		u, err := st.UserByName(ctx, "bench"+strconv.Itoa(i))
		if err != nil {
			b.Fatal(err)
		}
		nt := passwd.NTHash([]byte(benchPassword))
		if _, err := st.KeepNTHash(ctx, u.ID, nt[:], now); err != nil {
			b.Fatal(err)
		}
	}
	for src, dst := range map[string]string{certPath: eap.CertFile, keyPath: eap.KeyFile} {
		raw, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, dst), raw, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return data
}

// benchCert makes a self-signed server certificate with a key of kind
// (ecdsa-p256 or rsa-2048), the CA both servers' clients trust.
func benchCert(b *testing.B, kind string) (certPath, keyPath string, roots *x509.CertPool) {
	b.Helper()
	var key crypto.Signer
	var err error
	usage := x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	if kind == "rsa-2048" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		usage |= x509.KeyUsageKeyEncipherment
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "radius.bench.test"},
		DNSNames: []string{"radius.bench.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: usage, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		b.Fatal(err)
	}
	// FreeRADIUS reads the key as its own user; the directory is private.
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o644); err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		b.Fatal(fmt.Errorf("the bench certificate does not load: %w", err))
	}
	return certPath, keyPath, roots
}
