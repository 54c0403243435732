package eapclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/clinicgate/clinicgate/internal/tlspipe"
)

// tunnel runs the TLS client over records carried in EAP. crypto/tls
// wants a net.Conn it can block on, so one goroutine runs the handshake
// and then writes the inner AVPs; step feeds it the server's records and
// returns what it wrote once it waits for more (or has finished).
type tunnel struct {
	pc   *tlspipe.Conn
	done chan tunnelResult // buffered: the goroutine never blocks on it
	res  *tunnelResult     // once done
}

type tunnelResult struct {
	err     error
	version uint16
	msk     []byte
	cert    *x509.Certificate
}

// Keying labels: RFC 5281 §8 (EAP-TTLS, TLS 1.2), RFC 5216 §2.3 (EAP-TLS,
// TLS 1.2) and RFC 9427 / RFC 9190 (TLS 1.3, with the method's type as
// the context: 0x15 for TTLS, 0x0D for EAP-TLS).
const (
	labelTTLS12 = "ttls keying material"
	labelTLS12  = "client EAP encryption"
	labelTLS13  = "EXPORTER_EAP_TLS_Key_Material"
)

func startTunnel(cfg *tls.Config, typ byte, avps []byte) *tunnel {
	t := &tunnel{pc: tlspipe.New(maxMessage, true), done: make(chan tunnelResult, 1)}
	go func() { t.done <- t.run(cfg, typ, avps) }()
	return t
}

func (t *tunnel) run(cfg *tls.Config, typ byte, avps []byte) tunnelResult {
	c := tls.Client(t.pc, cfg)
	if err := c.Handshake(); err != nil {
		return tunnelResult{err: err}
	}
	st := c.ConnectionState()
	res := tunnelResult{version: st.Version}
	if len(st.PeerCertificates) > 0 {
		res.cert = st.PeerCertificates[0]
	}
	var msk []byte
	var err error
	switch {
	case st.Version == tls.VersionTLS13:
		msk, err = st.ExportKeyingMaterial(labelTLS13, []byte{typ}, 128)
	case typ == typeTLS:
		msk, err = st.ExportKeyingMaterial(labelTLS12, nil, 128)
	default:
		// RFC 5705 without a context is RFC 5281's PRF(master secret,
		// label, client random + server random).
		msk, err = st.ExportKeyingMaterial(labelTTLS12, nil, 128)
	}
	if err != nil {
		res.err = err
		return res
	}
	res.msk = msk[:64]
	// TTLS: the inner PAP AVPs, one record of application data. EAP-TLS
	// sends nothing more: the certificate was the credential.
	if len(avps) > 0 {
		if _, err := c.Write(avps); err != nil {
			res.err = err
		}
	}
	return res
}

var errTunnelTimeout = errors.New("eapclient: the TLS client did not answer in time")

// step hands the server's records to TLS (nil: none yet, for the
// ClientHello) and returns what TLS wrote. With t.res set, the goroutine
// has ended.
func (t *tunnel) step(ctx context.Context, in []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if in != nil {
		select {
		case t.pc.In() <- in:
		case r := <-t.done:
			t.res = &r
			return t.pc.TakeOut(), nil
		case <-ctx.Done():
			return nil, errTunnelTimeout
		}
	}
	select {
	case <-t.pc.Idle():
		return t.pc.TakeOut(), nil
	case r := <-t.done:
		t.res = &r
		return t.pc.TakeOut(), nil
	case <-ctx.Done():
		return nil, errTunnelTimeout
	}
}

func (l *login) closeTunnel() {
	if l.tun != nil {
		l.tun.pc.Close()
	}
}
