package selfcert

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// Pair serves a certificate and key from files and picks up a new pair
// written over them (a renewed leaf, or the clinic's own certificate
// replaced) without a restart: a TLS handshake looks at the files' times
// at most every few seconds and loads them again when either changed. A
// pair that no longer loads is ignored and the one in memory kept, so a
// half-written renewal never breaks the door.
type Pair struct {
	certPath, keyPath string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

// pairCheckEvery bounds how often a handshake stats the files.
const pairCheckEvery = 5 * time.Second

// LoadPair loads certPath and keyPath, which must load now.
func LoadPair(certPath, keyPath string) (*Pair, error) {
	p := &Pair{certPath: certPath, keyPath: keyPath}
	c, stamp, err := p.load()
	if err != nil {
		return nil, err
	}
	p.cert, p.stamp, p.checked = c, stamp, time.Now()
	return p, nil
}

func (p *Pair) load() (*tls.Certificate, [2]time.Time, error) {
	var stamp [2]time.Time
	for i, f := range []string{p.certPath, p.keyPath} {
		st, err := os.Stat(f)
		if err != nil {
			return nil, stamp, err
		}
		stamp[i] = st.ModTime()
	}
	c, err := tls.LoadX509KeyPair(p.certPath, p.keyPath)
	if err != nil {
		return nil, stamp, fmt.Errorf("certificate %s / key %s: %w", p.certPath, p.keyPath, err)
	}
	return &c, stamp, nil
}

// Certificate is the pair now in force, loading the files again when they
// changed since the last look.
func (p *Pair) Certificate() *tls.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.checked) >= pairCheckEvery {
		p.checked = now
		p.refresh()
	}
	return p.cert
}

// Reload looks at the files now (after a renewal).
func (p *Pair) Reload() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checked = time.Now()
	p.refresh()
}

func (p *Pair) refresh() {
	var stamp [2]time.Time
	for i, f := range []string{p.certPath, p.keyPath} {
		st, err := os.Stat(f)
		if err != nil {
			return
		}
		stamp[i] = st.ModTime()
	}
	if stamp == p.stamp {
		return
	}
	if c, stamp, err := p.load(); err == nil {
		p.cert, p.stamp = c, stamp
	}
}

// ServerTLS is a server's TLS configuration (TLS 1.2 or later) serving
// get's certificate, or, when get is nil, the pair in certPath/keyPath,
// loaded now and again whenever the files change.
func ServerTLS(certPath, keyPath string, get func() *tls.Certificate) (*tls.Config, error) {
	if get == nil {
		p, err := LoadPair(certPath, keyPath)
		if err != nil {
			return nil, err
		}
		get = p.Certificate
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return get(), nil }}, nil
}
