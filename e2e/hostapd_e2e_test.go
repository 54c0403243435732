package e2e

// A real 802.1X dot1xChain for RFC 5176 (issue 12): hostapd is the
// authenticator (driver=wired) on one end of a veth pair, wpa_supplicant
// the station on the other end, inside a network namespace, logging in
// with EAP-TLS through the clinicgate daemon. When the station's device
// turns noncompliant, the daemon's Disconnect-Request must make hostapd
// deauthorise it, and the next login must be refused (or quarantined).
//
// It needs root (a network namespace and a veth pair); CI runs as root.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/posture/mdmtest"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
	"github.com/clinicgate/clinicgate/eap"
)

// The station's MAC address, in the inventory as an Intune device.
const staMAC = "02:00:00:00:c0:a1"

// dasPort is where hostapd listens for Disconnect and CoA requests.
const dasPort = 3799

// stationCert gets the station's EAP-TLS certificate from the daemon over
// SCEP, with certmonger (scep_e2e_test.go), for the laptop's Intune record
// (LAPTOP-ALICE, owned by alice), and returns its certificate and key
// files. The daemon trusts its own device CA for EAP-TLS.
func stationCert(t *testing.T, data string, d *daemon) (certFile, keyFile string) {
	return certmongerEnrol(t, data, d, "laptop-alice", "--device", "LAPTOP-ALICE", "--user", "alice")
}

// netPeer is a running hostapd or wpa_supplicant, its output collected and
// watched line by line.
type netPeer struct {
	name  string
	cmd   *exec.Cmd
	log   *upstreamtest.LockedBuffer
	lines chan string
	done  chan error
}

func startNetPeer(t *testing.T, name string, argv ...string) *netPeer {
	t.Helper()
	p := &netPeer{name: name, cmd: exec.Command(argv[0], argv[1:]...), log: &upstreamtest.LockedBuffer{}, lines: make(chan string, 4096), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	p.cmd.Stdout = io.MultiWriter(p.log, pw)
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is waiting for these
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() { p.done <- p.cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *netPeer) stop() {
	if p.cmd.ProcessState == nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	}
}

// dot1xChain is the test's hostapd, wpa_supplicant and daemon.
type dot1xChain struct {
	t          *testing.T
	data       string
	d          *daemon
	hostapd    *netPeer
	supplicant *netPeer
	ctrl       string // wpa_supplicant's control directory
	iface      string // the station's interface
	mdm        *mdmtest.Graph
}

// logs is what the failure messages show: both peers' own logs.
func (c *dot1xChain) logs() string {
	s := ""
	for _, p := range []*netPeer{c.hostapd, c.supplicant} {
		if p != nil {
			s += fmt.Sprintf("\n--- %s log (last 6000 bytes):\n%s", p.name, tail(p.log.String(), 6000))
		}
	}
	return s + fmt.Sprintf("\n--- clinicgate stderr:\n%s", tail(c.d.stderr.String(), 3000))
}

// wait waits for a line of p containing want, failing the test at once,
// with the logs, when p exits or the time runs out.
func (c *dot1xChain) wait(p *netPeer, want string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, want) {
				return l
			}
		case err := <-p.done:
			p.done <- err
			c.t.Fatalf("%s exited (%v) while the test waited for %q%s", p.name, err, want, c.logs())
		case <-deadline:
			c.t.Fatalf("%s did not print %q within %v%s", p.name, want, timeout, c.logs())
		}
	}
}

func cmdOK(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// startDot1x sets up the namespace and veth pair, the daemon with client
// "nas" (clientFlags added), user alice, her device compliant in the
// inventory, hostapd and wpa_supplicant, and waits for the station to be
// authorised.
func startDot1x(t *testing.T, clientFlags ...string) *dot1xChain {
	t.Helper()
	for _, tool := range []string{"hostapd", "wpa_supplicant", "wpa_cli", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run 'make test-deps' (it installs hostapd, wpasupplicant and iproute2)", tool)
		}
	}
	c := &dot1xChain{t: t, data: t.TempDir()}
	c.d = startDaemon(t, c.data, "--scep", "127.0.0.1:0")
	_, authPort, _ := net.SplitHostPort(c.d.auth)
	_, acctPort, _ := net.SplitHostPort(c.d.acct)
	mustCG(t, c.data, secret, append([]string{"client", "add", "nas", "--address", "127.0.0.1", "--secret-stdin", "--mfa", "off",
		"--posture", "compliant", "--coa-port", strconv.Itoa(dasPort)}, clientFlags...)...)
	mustCG(t, c.data, "correct horse battery", "user", "add", "alice", "--group", "staff", "--password-stdin")
	c.mdmSays("compliant")
	certFile, keyFile := stationCert(t, c.data, c.d)

	// The link: nasIf here, staIf in the station's namespace.
	tag := strconv.Itoa(os.Getpid() % 100000)
	ns, nasIf, staIf := "cgsta"+tag, "cgn"+tag, "cgs"+tag
	cmdOK(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	cmdOK(t, "ip", "link", "add", nasIf, "type", "veth", "peer", "name", staIf)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", nasIf).Run() })
	cmdOK(t, "ip", "link", "set", staIf, "netns", ns)
	cmdOK(t, "ip", "-n", ns, "link", "set", staIf, "address", staMAC)
	cmdOK(t, "ip", "-n", ns, "link", "set", staIf, "up")
	cmdOK(t, "ip", "link", "set", nasIf, "up")
	c.iface = staIf

	dir := t.TempDir()
	hconf := filepath.Join(dir, "hostapd.conf")
	writeConf(t, hconf, []string{
		"interface=" + nasIf, "driver=wired", "ieee8021x=1", "eapol_version=2", "use_pae_group_addr=1",
		"ctrl_interface=" + filepath.Join(dir, "hostapd-ctrl"),
		"logger_stdout=-1", "logger_stdout_level=1",
		"own_ip_addr=127.0.0.1", "nas_identifier=cg-test-nas",
		"auth_server_addr=127.0.0.1", "auth_server_port=" + authPort, "auth_server_shared_secret=" + secret,
		"acct_server_addr=127.0.0.1", "acct_server_port=" + acctPort, "acct_server_shared_secret=" + secret,
		"radius_das_port=" + strconv.Itoa(dasPort), "radius_das_client=127.0.0.1 " + secret,
		"radius_das_require_event_timestamp=1", "radius_das_require_message_authenticator=1",
	})
	c.hostapd = startNetPeer(t, "hostapd", "hostapd", "-dd", hconf)
	c.wait(c.hostapd, "interface state UNINITIALIZED->ENABLED", 15*time.Second)

	c.ctrl = filepath.Join(dir, "wpa-ctrl")
	wconf := filepath.Join(dir, "wpa_supplicant.conf")
	writeConf(t, wconf, []string{
		"ctrl_interface=" + c.ctrl, "ap_scan=0", "eapol_version=2",
		"network={",
		"\tkey_mgmt=IEEE8021X", "\teap=TLS", `	identity="alice"`, "\teapol_flags=0",
		fmt.Sprintf("\tca_cert=%q", filepath.Join(c.data, eap.CertFile)),
		fmt.Sprintf("\tclient_cert=%q", certFile), fmt.Sprintf("\tprivate_key=%q", keyFile),
		"}",
	})
	c.supplicant = startNetPeer(t, "wpa_supplicant", "ip", "netns", "exec", ns, "wpa_supplicant", "-dd", "-D", "wired", "-i", staIf, "-c", wconf)
	c.wait(c.supplicant, "CTRL-EVENT-CONNECTED", 30*time.Second)
	c.wait(c.hostapd, "AP-STA-CONNECTED "+staMAC, 10*time.Second)
	return c
}

func writeConf(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func dataStore(t *testing.T, data string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// mdmSays makes the Intune stand-in (Microsoft Graph's contract,
// appliance/posture/mdmtest) list alice's laptop with compliance c, and
// has the running daemon sync it now, as at its next sync interval: the
// daemon's syncer writes the inventory and, for a device that turned
// noncompliant, the posture event the CoA worker acts on.
func (c *dot1xChain) mdmSays(compliance string) {
	c.t.Helper()
	dev := mdmtest.GraphDevice{ID: "5c7e1a2b-intune-laptop-1", DeviceName: "LAPTOP-ALICE", SerialNumber: "PF3ALICE",
		UserPrincipalName: "alice@clinic.example", ComplianceState: compliance, IsEncrypted: compliance == "compliant",
		LastSyncDateTime: time.Now().Add(-time.Minute), WiFiMacAddress: strings.ReplaceAll(staMAC, ":", "")}
	if c.mdm == nil {
		c.mdm = mdmtest.NewGraph("clinic.onmicrosoft.com", "cg-e2e-app", "e2e graph secret", []mdmtest.GraphDevice{dev})
		c.t.Cleanup(c.mdm.Close)
		// Periodic sync off: the test asks for each sync.
		mustCG(c.t, c.data, "e2e graph secret", "mdm", "set", "intune", "--tenant", "clinic.onmicrosoft.com", "--client-id", "cg-e2e-app",
			"--secret-stdin", "--login-url", c.mdm.URL, "--graph-url", c.mdm.URL, "--disabled")
	}
	c.mdm.SetDevices([]mdmtest.GraphDevice{dev})
	out := mustCG(c.t, c.data, "", "mdm", "sync", "intune", "--wait", "30s")
	if !strings.Contains(out, "1 device") {
		c.t.Fatalf("mdm sync: %s%s", out, c.logs())
	}
}

// logDAS puts hostapd's lines about RFC 5176 and the station's state in
// the test's log (go test -v), to show what the NAS itself saw.
func (c *dot1xChain) logDAS() {
	for _, l := range strings.Split(c.hostapd.log.String(), "\n") {
		for _, k := range []string{"DAS", "AP-STA-", "Tunnel-Private-Group-Id", "Error-Cause", "authorizing port", "unauthorizing port"} {
			if strings.Contains(l, k) {
				c.t.Log("hostapd: " + l)
				break
			}
		}
	}
}

// waitAudit waits for an audit entry after seq for which ok holds.
func (c *dot1xChain) waitAudit(after int64, what string, ok func(store.AuditRow) bool) store.AuditRow {
	c.t.Helper()
	st := dataStore(c.t, c.data)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rows, err := st.AuditRows(c.t.Context(), store.AuditFilter{AfterSeq: after})
		if err != nil {
			c.t.Fatal(err)
		}
		for _, r := range rows {
			if ok(r) {
				return r
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	rows, _ := st.AuditRows(c.t.Context(), store.AuditFilter{AfterSeq: after})
	var seen []string
	for _, r := range rows {
		seen = append(seen, fmt.Sprintf("%s %s %s %s: %s", r.Kind, r.Outcome, r.Reason, r.Actor, r.Detail))
	}
	c.t.Fatalf("no audit entry: %s; saw:\n%s%s", what, strings.Join(seen, "\n"), c.logs())
	return store.AuditRow{}
}

func (c *dot1xChain) auditHead() int64 {
	c.t.Helper()
	seq, _, err := dataStore(c.t, c.data).AuditHead(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	return seq
}

// waitSession waits for hostapd's Accounting-Start to be recorded.
func (c *dot1xChain) waitSession() store.AcctSession {
	c.t.Helper()
	st := dataStore(c.t, c.data)
	for range 100 {
		ss, err := st.ActiveAcctSessions(c.t.Context(), []string{staMAC}, "", 5)
		if err != nil {
			c.t.Fatal(err)
		}
		if len(ss) > 0 {
			return ss[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("hostapd's Accounting-Start for %s never reached the daemon%s", staMAC, c.logs())
	return store.AcctSession{}
}

// reauthenticate asks wpa_supplicant to start 802.1X again (EAPOL-Start).
func (c *dot1xChain) reauthenticate() {
	c.t.Helper()
	out, err := exec.Command("wpa_cli", "-p", c.ctrl, "-i", c.iface, "reauthenticate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		c.t.Fatalf("wpa_cli reauthenticate: %v\n%s%s", err, out, c.logs())
	}
}

func TestHostapdDisconnectsNoncompliantDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test makes a network namespace and a veth pair for hostapd and wpa_supplicant (CI runs as root)")
	}
	t.Run("disconnect, then refused", func(t *testing.T) {
		c := startDot1x(t, "--coa", "disconnect")
		s := c.waitSession()
		if s.NASIdentifier != "cg-test-nas" || s.NASIPAttr != "127.0.0.1" {
			t.Errorf("accounting recorded NAS-Identifier %q, NAS-IP-Address %q; want cg-test-nas, 127.0.0.1", s.NASIdentifier, s.NASIPAttr)
		}
		seq := c.auditHead()
		start := time.Now()
		c.mdmSays("noncompliant")
		// hostapd checks the Disconnect-Request (authenticator,
		// Message-Authenticator, Event-Timestamp), finds the session and
		// deauthorises the station.
		c.wait(c.hostapd, "DAS: Found a matching session "+staMAC, 20*time.Second)
		c.wait(c.hostapd, "AP-STA-DISCONNECTED "+staMAC, 10*time.Second)
		t.Logf("hostapd deauthorised the station %v after the sync began that found the device noncompliant (a measure, not a check)", time.Since(start).Round(time.Millisecond))
		ack := c.waitAudit(seq, "the NAS's ACK", func(r store.AuditRow) bool { return r.Actor == "coa" })
		if ack.Reason != "coa_ack" || ack.Outcome != "disconnected" || ack.Device != staMAC || ack.User != "alice" {
			t.Fatalf("got audit %+v, want coa_ack, disconnected, for alice's %s%s", ack, staMAC, c.logs())
		}
		// The next login is refused: the device is noncompliant.
		seq = c.auditHead()
		c.reauthenticate()
		rej := c.waitAudit(seq, "the next login's decision", func(r store.AuditRow) bool { return r.Kind == "decision" })
		if rej.Outcome != "reject" || rej.Reason != "device_noncompliant" {
			t.Fatalf("the next login: got %s %s, want reject device_noncompliant (the gate's posture stage)\n%s%s", rej.Outcome, rej.Reason, rej.Detail, c.logs())
		}
		c.wait(c.supplicant, "CTRL-EVENT-EAP-FAILURE", 20*time.Second)
		evs, err := dataStore(t, c.data).RecentPostureEvents(t.Context(), 5)
		if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Result, "Disconnect-Request to 127.0.0.1:3799: ACK") {
			t.Errorf("got events %+v %v, want the one event finished with the ACK", evs, err)
		}
		c.logDAS()
	})
	t.Run("quarantine", func(t *testing.T) {
		c := startDot1x(t, "--coa", "quarantine", "--on-fail", "quarantine", "--quarantine-vlan", "666")
		c.waitSession()
		seq := c.auditHead()
		c.mdmSays("noncompliant")
		// hostapd cannot move a wired port to another VLAN by CoA: it NAKs
		// the CoA-Request, and the daemon sends a Disconnect-Request.
		c.wait(c.hostapd, "AP-STA-DISCONNECTED "+staMAC, 20*time.Second)
		nak := c.waitAudit(seq, "the NAS's NAK of the CoA", func(r store.AuditRow) bool { return r.Actor == "coa" })
		if nak.Reason != "coa_nak" || !strings.Contains(nak.Detail, `401 "Unsupported Attribute"`) {
			t.Fatalf("got audit %+v, want hostapd's NAK 401 of the CoA-Request first%s", nak, c.logs())
		}
		c.waitAudit(nak.Seq, "the NAS's ACK of the Disconnect", func(r store.AuditRow) bool {
			return r.Actor == "coa" && r.Reason == "coa_ack" && r.Outcome == "disconnected"
		})
		seq = c.auditHead()
		mark := len(c.hostapd.log.String())
		c.reauthenticate()
		acc := c.waitAudit(seq, "the next login's decision", func(r store.AuditRow) bool { return r.Kind == "decision" })
		if acc.Outcome != "accept" || !strings.Contains(acc.Detail, "quarantine") {
			t.Fatalf("the next login: got %s %s, want accept into quarantine\n%s%s", acc.Outcome, acc.Reason, acc.Detail, c.logs())
		}
		c.wait(c.hostapd, "AP-STA-CONNECTED "+staMAC, 20*time.Second)
		after := c.hostapd.log.String()[mark:]
		i := strings.Index(after, "Access-Accept")
		// hostapd dumps the value in hex: 363636 is "666".
		if i < 0 || !strings.Contains(after[i:], "(Tunnel-Private-Group-Id) length=5") || !strings.Contains(after[i:], "Value: 363636") {
			t.Errorf("hostapd's log shows no quarantine VLAN 666 in the Access-Accept%s", c.logs())
		}
		if testing.Verbose() {
			t.Log(after[i:min(len(after), i+1500)])
		}
		c.logDAS()
	})
}
