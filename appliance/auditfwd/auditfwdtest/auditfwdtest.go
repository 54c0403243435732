// Package auditfwdtest is a test kit for audit forwarding: a throwaway CA
// that issues server and client certificates (for a real rsyslog or the
// stand-in here), and Collector, an RFC 5425 receiver on 127.0.0.1 that
// keeps what it is sent. It is for tests only and must never hold a real
// key.
package auditfwdtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
	serial  int64
}

// NewCA makes a CA valid for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
}

// Issue makes a leaf for names (DNS names or IP addresses) usable as a
// server and a client certificate; it returns the certificate and its key
// in PEM.
func (ca *CA) Issue(t testing.TB, cn string, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// Collector receives RFC 5425 (octet-counted syslog over TLS) on
// 127.0.0.1 and keeps every message.
type Collector struct {
	Addr string
	ln   net.Listener

	mu    sync.Mutex
	msgs  []string
	conns []net.Conn
	// ClientCerts are the subjects of the client certificates seen.
	ClientCerts []string
	errs        []error
}

// NewCollector listens with a certificate from ca for 127.0.0.1; with
// clientCA set it requires a client certificate from it.
func NewCollector(t testing.TB, ca *CA, clientCA *CA) *Collector {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, "collector", "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.Cert)
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{Addr: ln.Addr().String(), ln: ln}
	t.Cleanup(c.Close)
	go c.accept()
	return c
}

func (c *Collector) accept() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
		go c.read(conn.(*tls.Conn))
	}
}

func (c *Collector) read(conn *tls.Conn) {
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		c.fail(err)
		return
	}
	if certs := conn.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.mu.Lock()
		c.ClientCerts = append(c.ClientCerts, certs[0].Subject.CommonName)
		c.mu.Unlock()
	}
	r := bufio.NewReader(conn)
	for {
		// RFC 5425 4.3: MSG-LEN SP SYSLOG-MSG.
		n, err := r.ReadString(' ')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.fail(err)
			}
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size <= 0 || size > 1<<20 {
			c.fail(errors.New("bad frame length " + strconv.Quote(n)))
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(r, msg); err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, string(msg))
		c.mu.Unlock()
	}
}

func (c *Collector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

// Messages returns every message received so far.
func (c *Collector) Messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// Errors returns the framing and handshake errors seen.
func (c *Collector) Errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

// Drop closes the connections open now, as a collector restart would.
func (c *Collector) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// Close stops listening and drops every connection.
func (c *Collector) Close() {
	c.ln.Close()
	c.Drop()
}
