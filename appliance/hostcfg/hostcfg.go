// Package hostcfg is how the console changes the appliance's own system —
// network address, host name, NTP servers, reboot, power-off, factory
// reset — on images that have no shell and no root login.
//
// The console runs unprivileged. It writes a Request (a small JSON file)
// into the data directory's system/requests/; a systemd path unit starts
// a root oneshot, `clinicgate system apply`, which reads each request,
// checks every field again (it trusts nothing the unprivileged side
// wrote), writes only the systemd-networkd, systemd-timesyncd and
// hostname files named here, runs only the fixed commands named here,
// and leaves a Result beside it. On a plain Debian install, where that
// unit is not enabled, nothing is written: the console shows what would
// change (Preview).
//
// It must never run a command or write a path built from a request's
// text, and never accept a request it cannot fully check.
package hostcfg

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/atomicfile"
)

// Kinds of request.
const (
	KindNetwork      = "network"       // address, gateway, DNS of one interface (or every Ethernet port)
	KindHostname     = "hostname"      // the host name
	KindNTP          = "ntp"           // timesyncd's servers
	KindReboot       = "reboot"        // restart the appliance
	KindPowerOff     = "poweroff"      // shut it down
	KindFactoryReset = "factory-reset" // erase the data directory and the settings here, then restart
	KindUpdate       = "update"        // install a newer clinicgate .deb from incoming/, rolled back if it fails its health check
	KindUSBCopy      = "usb-copy"      // copy a backup from backups/ to the one USB stick plugged in
	KindUSBFetch     = "usb-fetch"     // copy the backups and clinicgate packages on the stick into incoming/
)

// Files written, relative to the root.
const (
	NetworkFile  = "etc/systemd/network/10-clinicgate.network"
	NTPFile      = "etc/systemd/timesyncd.conf.d/10-clinicgate.conf"
	HostnameFile = "etc/hostname"
	HostsFile    = "etc/hosts"
)

// Hostname is this appliance's host name as configured: root's
// /etc/hostname, which the helper writes, else the kernel's. The daemon
// runs with ProtectHostname (a host name of its own, fixed when it
// starts), so the kernel's as it sees it goes stale after a change; the
// file is what the helper and the console both read, so a factory reset's
// typed host name is checked against the same name on both sides.
func Hostname(root string) string {
	if b, err := os.ReadFile(filepath.Join(root, HostnameFile)); err == nil {
		if h := strings.TrimSpace(string(b)); h != "" {
			return h
		}
	}
	h, _ := os.Hostname()
	return h
}

// ManagedMarker is the symlink that enables the root helper's path unit
// on the images; without it the console only previews.
const ManagedMarker = "/etc/systemd/system/paths.target.wants/clinicgate-system.path"

// Network is one interface's settings.
type Network struct {
	// Interface is a port's name (eth0, enp1s0); empty: every Ethernet
	// port, as the image's default does.
	Interface string       `json:"interface,omitempty"`
	DHCP      bool         `json:"dhcp"`
	Address   netip.Prefix `json:"address,omitzero"` // static: 192.168.1.5/24
	Gateway   netip.Addr   `json:"gateway,omitzero"`
	DNS       []netip.Addr `json:"dns,omitempty"`
}

// Request is one change asked for in the console.
type Request struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Kind     string    `json:"kind"`
	Network  *Network  `json:"network,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	NTP      []string  `json:"ntp,omitempty"`
	// Confirm is what the admin typed to confirm a reboot, power-off
	// (the word) or factory reset (this host's name).
	Confirm string `json:"confirm,omitempty"`
	// Package is an update's .deb, by its name in the data directory's
	// incoming/ (uploaded over SFTP); SHA256 is its checksum as the
	// release names it, typed by the admin.
	Package string `json:"package,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// Result is what the helper did with a request.
type Result struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Message string    `json:"message"`
}

var (
	debRE    = regexp.MustCompile(`^clinicgate_[0-9A-Za-z.+~-]{1,64}_(amd64|arm64)\.deb$`)
	backupRE = regexp.MustCompile(`^clinicgate-[0-9]{8}-[0-9]{6}\.cgbackup$`)
	shaRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	ifaceRE  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`)
	labelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// ErrInvalid is a request refused by Check.
var ErrInvalid = errors.New("invalid system change")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// CheckHostname accepts an RFC 1123 host name of one to four labels.
func CheckHostname(h string) error {
	if len(h) == 0 || len(h) > 63*4 {
		return invalid("host name %q: 1 to 253 letters, digits, hyphens and dots", h)
	}
	labels := strings.Split(h, ".")
	if len(labels) > 4 {
		return invalid("host name %q: at most 4 parts", h)
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return invalid("host name %q: each part is lower-case letters, digits and hyphens, not starting or ending with a hyphen", h)
		}
	}
	return nil
}

// CheckNTP accepts up to four host or host:port names.
func CheckNTP(servers []string) error {
	if len(servers) == 0 || len(servers) > 4 {
		return invalid("give 1 to 4 NTP servers")
	}
	for _, s := range servers {
		host := s
		if h, p, err := net.SplitHostPort(s); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return invalid("NTP server %q: bad port", s)
			}
			host = h
		}
		if _, err := netip.ParseAddr(host); err == nil {
			continue
		}
		if CheckHostname(strings.ToLower(host)) != nil {
			return invalid("NTP server %q is not a host name or address", s)
		}
	}
	return nil
}

// CheckNetwork checks one interface's settings.
func CheckNetwork(n *Network) error {
	if n == nil {
		return invalid("no network settings")
	}
	if n.Interface != "" && !ifaceRE.MatchString(n.Interface) {
		return invalid("interface %q is not a network port's name", n.Interface)
	}
	if len(n.DNS) > 3 {
		return invalid("at most 3 DNS servers")
	}
	for _, d := range n.DNS {
		if !d.IsValid() || d.IsUnspecified() || d.IsMulticast() {
			return invalid("DNS server %v is not an address", d)
		}
	}
	if n.DHCP {
		if n.Address.IsValid() || n.Gateway.IsValid() {
			return invalid("DHCP gives the address and the gateway: leave them empty")
		}
		return nil
	}
	a := n.Address
	switch {
	case !a.IsValid():
		return invalid("a fixed address needs its prefix, e.g. 192.168.1.5/24")
	case a.Addr().IsUnspecified() || a.Addr().IsLoopback() || a.Addr().IsMulticast() || a.Addr().IsLinkLocalUnicast():
		return invalid("%v cannot be this appliance's address", a)
	case a.Addr().Is4() && (a.Bits() < 8 || a.Bits() > 30):
		return invalid("%v: an IPv4 prefix is /8 to /30", a)
	case a.Addr() == a.Masked().Addr():
		return invalid("%v is the network's own address, not a host's", a)
	case n.Gateway.IsValid() && !a.Contains(n.Gateway):
		return invalid("the gateway %v is not in %v", n.Gateway, a.Masked())
	case n.Gateway.IsValid() && n.Gateway == a.Addr():
		return invalid("the gateway cannot be the appliance itself")
	}
	return nil
}

// Check checks a whole request, as both sides do: the console before it
// writes one, the root helper before it acts on one. hostname is this
// host's name now (for a factory reset's confirmation).
func (r Request) Check(hostname string) error {
	if len(r.ID) != 16 || strings.Trim(r.ID, "0123456789abcdef") != "" {
		return invalid("bad request id")
	}
	switch r.Kind {
	case KindNetwork:
		return CheckNetwork(r.Network)
	case KindHostname:
		return CheckHostname(r.Hostname)
	case KindNTP:
		return CheckNTP(r.NTP)
	case KindReboot, KindPowerOff:
		if r.Confirm != r.Kind {
			return invalid("type %q to confirm", r.Kind)
		}
	case KindFactoryReset:
		if r.Confirm == "" || r.Confirm != hostname {
			return invalid("type this appliance's host name (%s) to confirm the factory reset", hostname)
		}
	case KindUSBFetch:
	case KindUSBCopy:
		if !backupRE.MatchString(r.Package) {
			return invalid("backup %q: the name of a backup in backups/ (clinicgate-YYYYMMDD-HHMMSS.cgbackup)", r.Package)
		}
	case KindUpdate:
		if !debRE.MatchString(r.Package) {
			return invalid("package %q: the name of a clinicgate .deb in incoming/ (clinicgate_VERSION_amd64.deb or _arm64.deb)", r.Package)
		}
		if !shaRE.MatchString(r.SHA256) {
			return invalid("give the package's SHA-256 as the release names it: 64 hex digits")
		}
	default:
		return invalid("unknown change %q", r.Kind)
	}
	return nil
}

// NewID is a request's random id.
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// File is one file a change writes.
type File struct {
	Path    string // relative to the root
	Content string
}

// Plan is what a request changes: the files written and the commands run
// (argv, fixed here, never from the request).
type Plan struct {
	Files    []File
	Commands [][]string
	// Erase is the factory reset's: between its two commands (stop,
	// reboot) the data directory is emptied and the files this package
	// writes are removed.
	Erase bool
	// Update is an update's: the helper checks and installs the package
	// itself (update.go); Commands only describe it.
	Update bool
	// USB is a copy to a USB stick's (usb.go); Commands only describe it.
	USB bool
	// Summary says it in the contractor's words.
	Summary string
}

// PlanFor is what r would change on this system. hostsNow is /etc/hosts's
// content (its 127.0.1.1 line follows a new host name).
func PlanFor(r Request, hostsNow string) Plan {
	switch r.Kind {
	case KindNetwork:
		n := r.Network
		var b strings.Builder
		b.WriteString("# Written by clinicgate (console: n on the Dashboard). It comes before\n# 20-wired.network, so these settings win for the ports it names.\n[Match]\n")
		match := n.Interface
		if match == "" {
			match = "en* eth*"
		}
		fmt.Fprintf(&b, "Name=%s\n\n[Network]\n", match)
		sum := "network " + match + ": "
		if n.DHCP {
			b.WriteString("DHCP=yes\n")
			sum += "DHCP"
		} else {
			fmt.Fprintf(&b, "Address=%s\n", n.Address)
			sum += "fixed " + n.Address.String()
			if n.Gateway.IsValid() {
				fmt.Fprintf(&b, "Gateway=%s\n", n.Gateway)
				sum += ", gateway " + n.Gateway.String()
			}
		}
		for _, d := range n.DNS {
			fmt.Fprintf(&b, "DNS=%s\n", d)
		}
		if len(n.DNS) > 0 {
			sum += ", DNS " + joinAddrs(n.DNS)
		}
		// reload applies changed .network files to their links;
		// reconfigure makes a named port take them at once.
		cmds := [][]string{{"networkctl", "reload"}}
		if n.Interface != "" {
			cmds = append(cmds, []string{"networkctl", "reconfigure", n.Interface})
		}
		return Plan{Files: []File{{NetworkFile, b.String()}}, Commands: cmds, Summary: sum}
	case KindHostname:
		return Plan{Files: []File{{HostnameFile, r.Hostname + "\n"}, {HostsFile, hostsWith(hostsNow, r.Hostname)}},
			Commands: [][]string{{"hostname", r.Hostname}}, Summary: "host name " + r.Hostname}
	case KindNTP:
		return Plan{Files: []File{{NTPFile, "# Written by clinicgate (console: n on the Dashboard).\n[Time]\nNTP=" + strings.Join(r.NTP, " ") + "\n"}},
			Commands: [][]string{{"systemctl", "restart", "systemd-timesyncd.service"}}, Summary: "NTP servers " + strings.Join(r.NTP, ", ")}
	case KindReboot:
		return Plan{Commands: [][]string{{"systemctl", "reboot"}}, Summary: "reboot"}
	case KindPowerOff:
		return Plan{Commands: [][]string{{"systemctl", "poweroff"}}, Summary: "power off"}
	case KindUSBFetch:
		return Plan{USB: true, Commands: [][]string{{"mount", "-o", "ro,nosuid,nodev,noexec", "(the USB stick's partition)", "/" + USBMount}, {"umount", "/" + USBMount}},
			Summary: "copy the backups and clinicgate packages on the USB stick into incoming/"}
	case KindUSBCopy:
		return Plan{USB: true, Commands: [][]string{{"mount", "-o", "nosuid,nodev,noexec", "(the USB stick's partition)", "/" + USBMount}, {"umount", "/" + USBMount}},
			Summary: "copy " + r.Package + " to the USB stick"}
	case KindUpdate:
		return Plan{Update: true, Commands: [][]string{{"dpkg", "-i", "(the checked copy of " + r.Package + ")"}},
			Summary: "update clinicgate from " + r.Package + " (SHA-256 checked; rolled back if the new daemon is not healthy within a minute)"}
	case KindFactoryReset:
		return Plan{Commands: [][]string{{"systemctl", "stop", "clinicgate.service"}, {"systemctl", "reboot"}}, Erase: true,
			Summary: "factory reset: clinicgate stopped; every user, client, key, certificate and the audit log erased; the network and NTP settings made here removed; then a reboot"}
	}
	return Plan{}
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// hostsWith is hosts with its 127.0.1.1 line naming host (Debian's way).
func hostsWith(hosts, host string) string {
	var out []string
	found := false
	for _, l := range strings.Split(strings.TrimRight(hosts, "\n"), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" {
			if !found {
				out = append(out, "127.0.1.1\t"+host)
			}
			found = true
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if !found {
		out = append(out, "127.0.1.1\t"+host)
	}
	return strings.Join(out, "\n") + "\n"
}

// Preview says what a request would change, for a console where the
// helper is not installed.
func (p Plan) Preview() string {
	var b strings.Builder
	fmt.Fprintf(&b, "This would change: %s.\n", p.Summary)
	for _, f := range p.Files {
		fmt.Fprintf(&b, "\n/%s:\n%s", f.Path, f.Content)
	}
	if p.Erase {
		fmt.Fprintf(&b, "\nerase the data directory, and remove /%s and /%s\n", NetworkFile, NTPFile)
	}
	if len(p.Commands) > 0 {
		b.WriteString("\nthen run:\n")
		for _, c := range p.Commands {
			b.WriteString("  " + strings.Join(c, " ") + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Dirs of the queue in the data directory.
func requestsDir(data string) string { return filepath.Join(data, "system", "requests") }
func resultsDir(data string) string  { return filepath.Join(data, "system", "results") }

// Submit writes r for the helper (0600, atomically: the path unit never
// sees half a request).
func Submit(data string, r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	for _, d := range []string{requestsDir(data), resultsDir(data)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(requestsDir(data), r.ID+".json"), b, 0o600)
}

// ResultOf reads the helper's result for id (ok false: not yet).
func ResultOf(data, id string) (Result, bool, error) {
	b, err := os.ReadFile(filepath.Join(resultsDir(data), id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, false, err
	}
	return r, true, nil
}

// Pending lists the requests waiting, oldest first (the helper's input).
func Pending(data string) ([]string, error) {
	es, err := os.ReadDir(requestsDir(data))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if n := e.Name(); strings.HasSuffix(n, ".json") && e.Type().IsRegular() {
			out = append(out, filepath.Join(requestsDir(data), n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// maxRequest bounds what the helper reads of one request.
const maxRequest = 16 << 10

// ReadRequest reads one queued request file.
func ReadRequest(path string) (Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return Request{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Request{}, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxRequest {
		return Request{}, invalid("%s is not a request", filepath.Base(path))
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return Request{}, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return Request{}, invalid("%s: %v", filepath.Base(path), err)
	}
	if filepath.Base(path) != r.ID+".json" {
		return Request{}, invalid("%s does not hold request %s", filepath.Base(path), r.ID)
	}
	return r, nil
}

// WriteResult records what the helper did.
func WriteResult(data string, r Result) error {
	return writeResultAs(data, r.ID+".json", r)
}

// writeResultAs writes r into the results directory under name.
func writeResultAs(data, name string, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(resultsDir(data), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(resultsDir(data), name), b, 0o600)
}
