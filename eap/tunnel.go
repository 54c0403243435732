package eap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"

	"github.com/clinicgate/clinicgate/internal/tlspipe"
)

// tunnel runs one TLS server over records carried in EAP. crypto/tls wants
// a net.Conn it can block on, so each session has one goroutine, blocked on
// tlspipe.Conn.Read while it waits for the peer's next EAP message. The
// goroutine only reads: it runs the handshake, then hands each record of
// application data to the handler's goroutine, which runs the inner method
// and writes its answers with write (tls.Conn allows one reader and one
// writer at once). step feeds the records received and returns, once the
// goroutine waits again, the records TLS wrote and the application data it
// read. close ends the goroutine: a session that expires or is evicted
// frees it.
type tunnel struct {
	pc   *tlspipe.Conn
	conn *tls.Conn
	app  chan []byte // one record of application data, read by the goroutine
	done chan error  // buffered: the goroutine never blocks on it
	// state is set by the goroutine when the handshake has completed,
	// before it next reads (and so before step sees idle or app).
	state  *tls.ConnectionState
	ended  error // once done
	failed bool
}

// stepResult is what one step of the tunnel gave.
type stepResult struct {
	out []byte   // TLS records to send to the peer
	app [][]byte // application data records the peer sent
	// err, when set, says the TLS conversation has ended: a failed
	// handshake (out may then hold the alert) or a broken record.
	err error
}

// Keying labels: RFC 5281 §8 (TTLS, TLS 1.2), RFC 5216 §2.3 (EAP-TLS and
// PEAP, TLS 1.2), and RFC 9427 / RFC 9190 (TLS 1.3, with the method's type
// as the context).
const (
	labelTTLS12 = "ttls keying material"
	labelEAP12  = "client EAP encryption"
	labelTLS13  = "EXPORTER_EAP_TLS_Key_Material"
)

// maxRecord is the largest plaintext of one TLS record (RFC 8446 §5.1):
// one Read returns at most one record's, so record boundaries, which PEAP's
// header-less inner packets rely on, are kept.
const maxRecord = 16 << 10

func startTunnel(cfg *tls.Config) *tunnel {
	return newTunnel(func(c net.Conn) *tls.Conn { return tls.Server(c, cfg) }, false)
}

// newTunnel runs the TLS conversation conn makes; the tests' peers run
// theirs (a client, which speaks first: fed) the same way.
func newTunnel(conn func(net.Conn) *tls.Conn, fed bool) *tunnel {
	t := &tunnel{pc: tlspipe.New(maxMessage, fed), app: make(chan []byte), done: make(chan error, 1)}
	t.conn = conn(t.pc)
	go func() { t.done <- t.run() }()
	return t
}

func (t *tunnel) run() error {
	defer t.pc.Close()
	if err := t.conn.Handshake(); err != nil {
		return err
	}
	st := t.conn.ConnectionState()
	t.state = &st
	buf := make([]byte, maxRecord)
	defer clear(buf)
	for {
		n, err := t.conn.Read(buf)
		if n > 0 {
			select {
			case t.app <- bytes.Clone(buf[:n]):
			case <-t.pc.Closed():
				return net.ErrClosed
			}
		}
		if err != nil {
			return err
		}
	}
}

var errTunnelTimeout = errors.New("eap: the TLS tunnel did not answer in time")

// step hands the peer's records to TLS and returns what TLS made of them.
// A nil error with res.err set means the TLS conversation has ended.
func (t *tunnel) step(ctx context.Context, in []byte) (stepResult, error) {
	if t.failed {
		return stepResult{err: t.ended}, nil
	}
	var res stepResult
	select {
	case t.pc.In() <- in:
	case err := <-t.done:
		return t.end(err, res), nil
	case <-ctx.Done():
		return res, errTunnelTimeout
	}
	return t.wait(ctx, res)
}

// wait collects what TLS does until it waits for the peer again.
func (t *tunnel) wait(ctx context.Context, res stepResult) (stepResult, error) {
	for {
		select {
		case <-t.pc.Idle():
			res.out = t.pc.TakeOut()
			return res, nil
		case b := <-t.app:
			res.app = append(res.app, b)
		case err := <-t.done:
			return t.end(err, res), nil
		case <-ctx.Done():
			return res, errTunnelTimeout
		}
	}
}

func (t *tunnel) end(err error, res stepResult) stepResult {
	if err == nil {
		err = errors.New("eap: the TLS tunnel ended")
	}
	t.failed, t.ended = true, err
	res.out, res.err = t.pc.TakeOut(), err
	return res
}

// write encrypts application data and returns the records to send. Only
// once the handshake is done, and only between steps: the goroutine then
// waits in Read.
func (t *tunnel) write(b []byte) ([]byte, error) {
	if t.failed {
		return nil, t.ended
	}
	if _, err := t.conn.Write(b); err != nil {
		return nil, err
	}
	return t.pc.TakeOut(), nil
}

func (t *tunnel) close() { t.pc.Close() }
