package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/pki"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	"github.com/clinicgate/clinicgate/ldapproxy"
)

// The appliance's own TLS server certificates (the LDAP door's, and the
// EAP server's when the operator gave none) are leaves of the server CA
// (appliance/pki/server.go), checked at start and every day: a leaf near
// its end, naming an address this host no longer has, or left by the
// first wave as a self-signed CA is issued again, and the doors pick the
// new files up at their next handshake (selfcert.Pair).

// ownCert is one certificate the daemon keeps.
type ownCert struct {
	door              string // "ldap" or "eap"
	certFile, keyFile string
	addrs             bool // name this host's addresses too
	opts              pki.LeafOptions
	pair              *selfcert.Pair
	// forceNext makes the next check issue a new leaf (tests).
	forceNext bool
}

// hostName is this host's name, lower case ("clinicgate" when it has
// none).
func hostName() string {
	h, _ := os.Hostname()
	if h = strings.ToLower(strings.TrimSuffix(h, ".")); h == "" {
		h = "clinicgate"
	}
	return h
}

// localAddrs are this machine's addresses that a client may connect to:
// not loopback, not link-local.
func localAddrs() []net.IP {
	var out []net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && !ip.IP.IsLinkLocalUnicast() {
			out = append(out, ip.IP)
		}
	}
	return out
}

// leafNames are what a certificate of this host names now.
func leafNames(withAddrs bool) pki.LeafNames {
	host := hostName()
	n := pki.LeafNames{CommonName: host, DNS: []string{host}}
	if withAddrs {
		n.DNS = append(n.DNS, "localhost")
		n.IPs = append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, localAddrs()...)
	}
	return n
}

// openServerCA reads (or makes) the server CA and writes its certificate
// to appliance-ca.pem in the data directory, for the operator to hand out.
func (d *Daemon) openServerCA(ctx context.Context) error {
	if d.serverCA != nil {
		return nil
	}
	ca, err := pki.EnsureServerCA(ctx, d.store, hostName(), localAddrs(), time.Now())
	if err != nil {
		return fmt.Errorf("the appliance's server CA: %w", err)
	}
	if _, err := ca.WriteFile(d.store.Dir()); err != nil {
		return fmt.Errorf("writing %s: %w", pki.ServerCAFile, err)
	}
	d.serverCA = ca
	return nil
}

// ensureOwnCert issues c's leaf when it must (pki.EnsureLeaf), says so in
// the log and the audit, records a change the operator must act on for
// the console, and loads the pair.
func (d *Daemon) ensureOwnCert(ctx context.Context, c *ownCert) (pki.LeafResult, error) {
	// One check at a time: the daily job and a start-up check must not
	// write the same files at once.
	d.certMu.Lock()
	defer d.certMu.Unlock()
	if err := d.openServerCA(ctx); err != nil {
		return pki.LeafResult{}, err
	}
	opts := c.opts
	opts.Force, c.forceNext = opts.Force || c.forceNext, false
	r, err := d.serverCA.EnsureLeaf(d.store.Dir(), c.certFile, c.keyFile, leafNames(c.addrs), opts, time.Now())
	if err != nil {
		return r, fmt.Errorf("%s certificate: %w", strings.ToUpper(c.door), err)
	}
	if r.Reason != "" {
		d.ownCertIssued(ctx, c, r)
	}
	if c.pair == nil {
		c.pair, err = selfcert.LoadPair(r.CertPath, r.KeyPath)
	} else {
		c.pair.Reload()
	}
	return r, err
}

func (d *Daemon) ownCertIssued(ctx context.Context, c *ownCert, r pki.LeafResult) {
	fp, caFP := selfcert.FingerprintDER(r.Leaf.Raw), selfcert.FingerprintDER(d.serverCA.Cert.Raw)
	door := strings.ToUpper(c.door)
	who := map[string]string{"ldap": "EHRs", "eap": "Wi-Fi devices"}[c.door]
	switch r.Reason {
	case pki.LeafNew:
		d.log.Info(door+" certificate issued by the appliance CA", "file", r.CertPath, "sha256", fp, "ca", pki.ServerCAFile, "ca_sha256", caFP)
		return
	case pki.LeafMigrated:
		d.log.Warn("the "+door+" certificate was a self-signed CA and is now a certificate of the appliance CA: "+who+" must trust "+pki.ServerCAFile+" (once; later renewals need nothing)", "file", r.CertPath, "sha256", fp, "ca_sha256", caFP)
	default:
		d.log.Info(door+" certificate renewed", "why", r.Reason, "file", r.CertPath, "sha256", fp, "not_after", r.Leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	reason := c.door + "_certificate_renewed"
	if r.Reason == pki.LeafMigrated {
		reason = c.door + "_certificate_migrated"
	}
	_, _ = d.audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: reason, Actor: "daemon",
		Detail: fmt.Sprintf("%s (%s): new certificate SHA-256 %s, issued by the appliance CA SHA-256 %s", r.CertPath, r.Reason, fp, caFP)})
	ch := admin.CertChange{At: time.Now().UTC(), Why: r.Reason, SHA256: fp, CASHA256: caFP}
	if b, err := json.Marshal(ch); err == nil {
		_ = d.store.WithTx(ctx, func(tx *store.Tx) error { return tx.SetSetting(ctx, admin.CertChangeKey(c.door), string(b)) })
	}
}

// certStatus describes c for the console.
func (d *Daemon) certStatus(ctx context.Context, c *ownCert) *admin.CertStatus {
	if c == nil || c.pair == nil {
		return nil
	}
	cert := c.pair.Certificate()
	if cert == nil || cert.Leaf == nil {
		return nil
	}
	leaf := cert.Leaf
	st := &admin.CertStatus{File: d.store.Dir() + string(os.PathSeparator) + c.certFile, SHA256: selfcert.FingerprintDER(leaf.Raw),
		Names: append(append([]string(nil), leaf.DNSNames...), ipStrings(leaf.IPAddresses)...), NotAfter: leaf.NotAfter, SelfSigned: leaf.IsCA}
	if d.serverCA != nil && !leaf.IsCA {
		st.CAFile = d.store.Dir() + string(os.PathSeparator) + pki.ServerCAFile
		st.CASubject, st.CASHA256 = d.serverCA.Cert.Subject.CommonName, selfcert.FingerprintDER(d.serverCA.Cert.Raw)
	}
	if v, err := d.store.Setting(ctx, admin.CertChangeKey(c.door)); err == nil {
		var ch admin.CertChange
		if json.Unmarshal([]byte(v), &ch) == nil {
			st.Changed = &ch
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		d.log.Debug("reading the certificate change", "err", err)
	}
	return st
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

// renewOwnCerts is the daily check of the appliance's own certificates.
func (d *Daemon) renewOwnCerts(ctx context.Context) {
	for _, c := range []*ownCert{d.ldapOwn, d.eapOwn} {
		if c == nil {
			continue
		}
		r, err := d.ensureOwnCert(ctx, c)
		if err != nil {
			d.log.Error("renewing the appliance's own certificate failed; the one in use stays", "door", c.door, "err", err)
			continue
		}
		if c.door == "eap" && r.Reason != "" {
			st := eapStatus(r.CertPath)
			d.mu.Lock()
			if d.eapStatus != nil {
				st.Anchors = d.eapStatus.Anchors
			}
			d.eapStatus = st
			d.mu.Unlock()
		}
	}
}

// ownLDAPCert keeps the LDAP door's own certificate, which the SCEP door
// also serves when it has none of its own. A first-wave self-signed one
// is replaced (migrated) at once: EHRs are told to trust the CA instead.
func (d *Daemon) ownLDAPCert(ctx context.Context) (pki.LeafResult, error) {
	if d.ldapOwn == nil {
		d.ldapOwn = &ownCert{door: "ldap", certFile: ldapproxy.CertFile, keyFile: ldapproxy.KeyFile, addrs: true}
	} else if d.ldapOwn.pair != nil {
		c := d.ldapOwn.pair.Certificate()
		return pki.LeafResult{CertPath: filepath.Join(d.store.Dir(), ldapproxy.CertFile), KeyPath: filepath.Join(d.store.Dir(), ldapproxy.KeyFile), Leaf: c.Leaf}, nil
	}
	return d.ensureOwnCert(ctx, d.ldapOwn)
}
