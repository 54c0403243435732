package upstreamtest

import (
	"bufio"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SambaAD is a running Samba Active Directory domain controller, in a
// network namespace of its own (its ports are fixed at 389/636), reached
// over a veth pair at Addr. Realm CLINIC.TEST, domain CLINIC, base DN
// dc=clinic,dc=test. Simple binds need TLS, as on a real AD.
type SambaAD struct {
	Addr    string // the DC's address, 10.213.x.2
	Base    string
	Realm   string
	Domain  string
	AdminPW string
	CAFile  string
	Dir     string
	netns   string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *LockedBuffer
	conf    string
	t       testing.TB
}

// StartSambaAD provisions a domain (about 8 s) and starts Samba. It needs
// root (network namespaces), like the DC itself.
func StartSambaAD(t testing.TB) *SambaAD {
	t.Helper()
	Need(t, "samba", "samba-tool", "ip")
	if os.Geteuid() != 0 {
		t.Fatal("the Samba AD tests need root (a network namespace for the DC's fixed ports); run make test as root")
	}
	dir := t.TempDir()
	s := &SambaAD{Base: "dc=clinic,dc=test", Realm: "CLINIC.TEST", Domain: "CLINIC", AdminPW: "Adm1n-Passw0rd!", Dir: dir,
		done: make(chan struct{}), log: &LockedBuffer{}, t: t}
	octet := 1 + mrand.IntN(60)
	s.netns = fmt.Sprintf("cgad%d-%d", os.Getpid(), mrand.IntN(100000))
	host := fmt.Sprintf("cga%d", mrand.IntN(1000000))
	peer := host + "p"
	s.Addr = fmt.Sprintf("10.213.%d.%d", mrand.IntN(256), octet*4+2)
	hostAddr := s.Addr[:strings.LastIndexByte(s.Addr, '.')] + fmt.Sprintf(".%d", octet*4+1)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", s.netns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.netns).Run() })
	run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	run("ip", "link", "set", peer, "netns", s.netns)
	run("ip", "addr", "add", hostAddr+"/30", "dev", host)
	run("ip", "link", "set", host, "up")
	run("ip", "netns", "exec", s.netns, "ip", "addr", "add", s.Addr+"/30", "dev", peer)
	run("ip", "netns", "exec", s.netns, "ip", "link", "set", peer, "up")
	run("ip", "netns", "exec", s.netns, "ip", "link", "set", "lo", "up")

	os.MkdirAll(filepath.Join(dir, "run", "ncalrpc"), 0o755)
	prov := exec.Command("ip", "netns", "exec", s.netns, "samba-tool", "domain", "provision",
		"--targetdir="+dir, "--realm="+s.Realm, "--domain="+s.Domain, "--server-role=dc", "--dns-backend=NONE",
		"--use-rfc2307", "--host-ip="+s.Addr, "--adminpass="+s.AdminPW,
		"--option=interfaces=lo "+s.Addr, "--option=bind interfaces only=yes",
		"--option=server services = ldap, kdc", "--option=pid directory = "+filepath.Join(dir, "run"),
		"--option=ncalrpc dir = "+filepath.Join(dir, "run", "ncalrpc"), "--option=log file = "+filepath.Join(dir, "log.%m"))
	if out, err := prov.CombinedOutput(); err != nil {
		t.Fatalf("samba-tool domain provision: %v\n%s", err, out)
	}
	// Our own certificate for the DC's address, so clients verify it.
	tlsDir := filepath.Join(dir, "tlscerts")
	s.CAFile, _ = writeCerts(t, tlsDir, "ca", []string{s.Addr, "dc.clinic.test"})
	os.Chmod(filepath.Join(tlsDir, "server.key"), 0o600)
	s.conf = filepath.Join(dir, "etc", "smb.conf")
	b, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("\ttls enabled = yes\n\ttls keyfile = %s\n\ttls certfile = %s\n\ttls cafile = %s\n",
		filepath.Join(tlsDir, "server.key"), filepath.Join(tlsDir, "server.pem"), s.CAFile)
	conf := strings.Replace(string(b), "[global]\n", "[global]\n"+extra, 1)
	write(t, s.conf, conf)

	s.cmd = exec.Command("ip", "netns", "exec", s.netns, "samba", "-s", s.conf, "-F", "--debug-stdout", "-d", "1")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start samba: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	if !waitTCP(s.Addr+":389", s.done) || !waitTCP(s.Addr+":636", s.done) {
		t.Fatalf("Samba did not start; its log:\n%s", lastLines(s.log.String(), 40))
	}
	return s
}

// Tool runs samba-tool against the DC's database.
func (s *SambaAD) Tool(args ...string) {
	s.t.Helper()
	out, err := exec.Command("samba-tool", append(args, "-s", s.conf)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("samba-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Stop ends Samba (safe to call twice).
func (s *SambaAD) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	// ip netns exec runs samba as a child: kill the whole group.
	exec.Command("ip", "netns", "pids", s.netns).Run()
	if out, err := exec.Command("ip", "netns", "pids", s.netns).Output(); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			exec.Command("kill", "-9", strings.TrimSpace(sc.Text())).Run()
		}
	}
	s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// Log returns what Samba printed.
func (s *SambaAD) Log() string { return s.log.String() }
