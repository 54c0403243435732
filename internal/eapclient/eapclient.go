// Package eapclient runs one EAP-TTLS/PAP login (RFC 5281) over RADIUS,
// playing both the Wi-Fi access point and the supplicant behind it: the
// console's test login and the benchmarks use it to log in through a
// running RADIUS server (clinicgate's, or FreeRADIUS for comparison) the
// way a laptop on the clinic's Wi-Fi does.
//
// It is a client only: it decides nothing and holds no policy. It sends
// the password only inside a TLS tunnel whose server certificate it has
// checked, against a CA pool or a pinned SHA-256 fingerprint; with
// neither it refuses to start. It signs every request with a
// Message-Authenticator and accepts no answer without a valid one.
package eapclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/vendors/microsoft"

	"github.com/clinicgate/clinicgate/internal/msgauth"
)

// Config is one login.
type Config struct {
	// Addr is the RADIUS server (host:port) and Secret the shared secret
	// it has for this machine.
	Addr   string
	Secret []byte
	// Identity is the outer identity, sent in the clear (default
	// "anonymous"); User and Password go inside the tunnel.
	Identity string
	User     string
	Password []byte
	// TLSVersion is the one TLS version to offer (tls.VersionTLS12 or
	// tls.VersionTLS13); 0 offers both and the server chooses.
	TLSVersion uint16
	// RootCAs checks the server's certificate chain, and ServerName, when
	// set, the name in it (a Wi-Fi profile's "server name"). PinSHA256,
	// when set, is the SHA-256 of the server certificate's DER (hex, colons
	// allowed), which it must have. One of RootCAs or PinSHA256 is
	// required; with both, both are checked.
	RootCAs    *x509.CertPool
	ServerName string
	PinSHA256  string
	// CallingStationID is the station's MAC as the access point reports
	// it (default 02-00-00-00-00-01); NASIdentifier the access point's
	// name (default clinicgate-eapclient).
	CallingStationID string
	NASIdentifier    string
	// FragmentSize bounds the TLS data of one EAP-Response (default 1000
	// bytes); FramedMTU, when set, is sent for the server to size its own.
	FragmentSize int
	FramedMTU    int
	// Timeout is how long one RADIUS request waits for its answer before
	// it is sent again (default 3 s); Retries how often (default 2).
	Timeout time.Duration
	Retries int
	// Method is MethodTTLS (the default: PAP inside EAP-TTLS, User and
	// Password) or MethodTLS (EAP-TLS, RFC 5216 / RFC 9190: the client
	// certificate in Certificates is the credential; User and Password
	// are not used).
	Method       string
	Certificates []tls.Certificate
}

// The EAP methods the client runs.
const (
	MethodTTLS = "ttls"
	MethodTLS  = "tls"
)

// Result is how a login ended.
type Result struct {
	// Code is the final answer: Access-Accept or Access-Reject.
	Code     radius.Code
	Accepted bool
	// Reply is the final answer as received (its attributes for the
	// caller to show: Reply-Message, VLAN, Session-Timeout, User-Name).
	Reply *radius.Packet
	// TLSVersion is the tunnel's version (0: no tunnel was made).
	TLSVersion uint16
	// ServerCert is the certificate the server showed.
	ServerCert *x509.Certificate
	// MSK is the key this client derived from the tunnel (RFC 5281 §8,
	// RFC 9427); RecvKey and SendKey are the MS-MPPE keys the Accept
	// carried, decrypted. KeysMatch: they are MSK[0:32] and MSK[32:64],
	// as the access point needs them to be.
	MSK              []byte
	RecvKey, SendKey []byte
	KeysMatch        bool
	// Rounds is the number of Access-Requests the login took.
	Rounds int
}

// ErrServerCert is wrapped by the error of a login stopped because the
// server's certificate did not pass the check: the password was not sent.
var ErrServerCert = errors.New("the server's certificate was not accepted; the password was not sent")

// EAP codes and types (RFC 3748), TTLS flags (RFC 5281 §9.1).
const (
	codeRequest  = 1
	codeResponse = 2
	codeSuccess  = 3
	codeFailure  = 4

	typeIdentity = 1
	typeNAK      = 3
	typeTLS      = 13
	typeTTLS     = 21

	flagLength = 0x80
	flagMore   = 0x40
	flagStart  = 0x20
)

// maxMessage bounds a TLS message reassembled from the server's fragments.
const maxMessage = 64 << 10

// maxRounds bounds a conversation: a TTLS/PAP login with 100-byte
// fragments takes about 40.
const maxRounds = 200

// Login runs one EAP-TTLS/PAP conversation to its Accept or Reject. A
// Reject is a result, not an error; an error means the login could not be
// made (no answer, a broken or unsigned answer, a certificate refused).
func Login(ctx context.Context, c Config) (Result, error) {
	if c.RootCAs == nil && c.PinSHA256 == "" {
		return Result{}, errors.New("eapclient: no CA pool and no pinned fingerprint to check the server with")
	}
	if c.Identity == "" {
		c.Identity = "anonymous"
	}
	if c.CallingStationID == "" {
		c.CallingStationID = "02-00-00-00-00-01"
	}
	if c.NASIdentifier == "" {
		c.NASIdentifier = "clinicgate-eapclient"
	}
	if c.FragmentSize <= 0 {
		c.FragmentSize = 1000
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Retries <= 0 {
		c.Retries = 2
	}
	typ := byte(typeTTLS)
	var avps []byte
	switch c.Method {
	case "", MethodTTLS:
		var err error
		if avps, err = innerPAP(c.User, c.Password); err != nil {
			return Result{}, err
		}
	case MethodTLS:
		if len(c.Certificates) == 0 {
			return Result{}, errors.New("eapclient: EAP-TLS needs a client certificate")
		}
		typ = typeTLS
	default:
		return Result{}, fmt.Errorf("eapclient: method %q is not ttls or tls", c.Method)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", c.Addr)
	if err != nil {
		return Result{}, fmt.Errorf("eapclient: %w", err)
	}
	defer conn.Close()
	l := &login{cfg: c, conn: conn, avps: avps, typ: typ}
	defer l.closeTunnel()
	return l.run(ctx)
}

// login is one conversation in progress.
type login struct {
	cfg   Config
	conn  net.Conn
	id    byte // RADIUS Identifier
	state []byte
	avps  []byte
	typ   byte // the EAP method: typeTTLS or typeTLS
	res   Result

	tun     *tunnel
	in      []byte // a TLS message being reassembled
	out     []byte // TLS data still to send
	sentOut bool   // the first fragment of out has gone
	tlsErr  error
}

func (l *login) run(ctx context.Context) (Result, error) {
	// The access point relays the supplicant's EAP-Response/Identity.
	eap := eapResponse(0, typeIdentity, []byte(l.cfg.Identity))
	for {
		if l.res.Rounds >= maxRounds {
			return l.res, errors.New("eapclient: the conversation did not end within its bound of rounds")
		}
		resp, req, err := l.exchange(ctx, eap)
		if err != nil {
			return l.res, err
		}
		msg, _ := rfc2869.EAPMessage_Lookup(resp)
		switch resp.Code {
		case radius.CodeAccessAccept, radius.CodeAccessReject:
			return l.finish(resp, req, msg)
		case radius.CodeAccessChallenge:
		default:
			return l.res, fmt.Errorf("eapclient: an answer of code %v", resp.Code)
		}
		l.state = rfc2865.State_Get(resp)
		if eap, err = l.next(ctx, msg); err != nil {
			return l.res, err
		}
	}
}

// finish reads the final answer: on an Accept, the MPPE keys, decrypted
// with the secret and this request's authenticator (RFC 2548 §2.4.2),
// compared with the tunnel's own.
func (l *login) finish(resp, req *radius.Packet, msg []byte) (Result, error) {
	l.res.Code, l.res.Reply = resp.Code, resp
	if l.tlsErr != nil {
		return l.res, l.tlsErr
	}
	if resp.Code != radius.CodeAccessAccept {
		return l.res, nil
	}
	if len(msg) != 4 || msg[0] != codeSuccess {
		return l.res, fmt.Errorf("eapclient: an Access-Accept without EAP-Success (EAP % x)", msg)
	}
	if l.tun == nil || l.tun.res == nil || l.tun.res.err != nil {
		return l.res, errors.New("eapclient: an Access-Accept before the tunnel was made")
	}
	l.res.Accepted = true
	l.res.RecvKey, _ = microsoft.MSMPPERecvKey_Lookup(resp, req)
	l.res.SendKey, _ = microsoft.MSMPPESendKey_Lookup(resp, req)
	msk := l.res.MSK
	l.res.KeysMatch = len(msk) == 64 && bytes.Equal(l.res.RecvKey, msk[:32]) && bytes.Equal(l.res.SendKey, msk[32:])
	return l.res, nil
}

// next answers one EAP-Request.
func (l *login) next(ctx context.Context, msg []byte) ([]byte, error) {
	if len(msg) < 5 || int(binary.BigEndian.Uint16(msg[2:4])) != len(msg) || msg[0] != codeRequest {
		return nil, fmt.Errorf("eapclient: a challenge without a well-formed EAP-Request (% x)", msg[:min(len(msg), 8)])
	}
	id, typ, data := msg[1], msg[4], msg[5:]
	switch typ {
	case typeIdentity:
		return eapResponse(id, typeIdentity, []byte(l.cfg.Identity)), nil
	case l.typ:
	default:
		// Another method offered first (RFC 3748 §5.3.1): ask for ours.
		return eapResponse(id, typeNAK, []byte{l.typ}), nil
	}
	if len(data) < 1 {
		return nil, errors.New("eapclient: an EAP-TTLS request without flags")
	}
	flags, data := data[0], data[1:]
	if flags&flagLength != 0 {
		if len(data) < 4 {
			return nil, errors.New("eapclient: an EAP-TTLS length flag without a length")
		}
		if n := binary.BigEndian.Uint32(data); n > maxMessage {
			return nil, fmt.Errorf("eapclient: a TLS message of %d bytes announced", n)
		}
		data = data[4:]
	}
	if flags&flagStart != 0 {
		if l.tun != nil {
			return nil, errors.New("eapclient: a second EAP-TTLS Start")
		}
		l.tun = startTunnel(l.tlsConfig(), l.typ, l.avps)
		out, err := l.tun.step(ctx, nil)
		if err != nil {
			return nil, err
		}
		l.out, l.sentOut = out, false
		return l.fragment(id), nil
	}
	if l.tun == nil {
		return nil, errors.New("eapclient: EAP-TTLS data before the Start")
	}
	if len(l.out) > 0 {
		// Our fragments go out one per request; the server acknowledges
		// each with an empty request.
		if len(data) != 0 {
			return nil, errors.New("eapclient: the server sent data instead of acknowledging a fragment")
		}
		return l.fragment(id), nil
	}
	if len(l.in)+len(data) > maxMessage {
		return nil, errors.New("eapclient: the server's TLS message is above the 64 KiB cap")
	}
	l.in = append(l.in, data...)
	if flags&flagMore != 0 {
		return eapResponse(id, l.typ, []byte{0}), nil // the ACK
	}
	in := l.in
	l.in = nil
	if l.tun.res != nil {
		// The tunnel is made and the password sent; what the server adds
		// (a TLS 1.3 session ticket, or EAP-TLS's commitment message)
		// needs only an acknowledgement.
		return eapResponse(id, l.typ, []byte{0}), nil
	}
	out, err := l.tun.step(ctx, in)
	if err != nil {
		return nil, err
	}
	if r := l.tun.res; r != nil {
		if r.err != nil {
			l.tlsErr = r.err
			if errors.Is(r.err, ErrServerCert) {
				// Our alert goes out, then the conversation ends here:
				// nothing more is sent to a server that failed the check.
				l.out, l.sentOut = out, false
				if len(out) == 0 {
					return nil, r.err
				}
				return l.fragment(id), nil
			}
		} else {
			l.res.TLSVersion, l.res.MSK, l.res.ServerCert = r.version, r.msk, r.cert
		}
	}
	l.out, l.sentOut = out, false
	return l.fragment(id), nil
}

// fragment sends the next piece of l.out (RFC 5216 §2.1.5): the first
// with the total length, all but the last with M; nothing to send is an
// empty response (an ACK, or "go on").
func (l *login) fragment(id byte) []byte {
	n := min(len(l.out), l.cfg.FragmentSize)
	var flags byte
	var b []byte
	if !l.sentOut && n < len(l.out) {
		flags = flagLength
		b = binary.BigEndian.AppendUint32(b, uint32(len(l.out)))
	}
	if n < len(l.out) {
		flags |= flagMore
	}
	b = append(append([]byte{flags}, b...), l.out[:n]...)
	l.out = l.out[n:]
	l.sentOut = len(l.out) > 0
	return eapResponse(id, l.typ, b)
}

func eapResponse(id, typ byte, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	b[0], b[1], b[4] = codeResponse, id, typ
	binary.BigEndian.PutUint16(b[2:4], uint16(5+len(data)))
	return append(b, data...)
}

// exchange sends one Access-Request carrying eap and returns the checked
// answer and the request it answers. A lost answer is asked again with
// the same packet, as an access point does.
func (l *login) exchange(ctx context.Context, eap []byte) (*radius.Packet, *radius.Packet, error) {
	c := l.cfg
	req := radius.New(radius.CodeAccessRequest, c.Secret)
	req.Identifier = l.id
	l.id++
	_ = rfc2865.UserName_SetString(req, c.Identity)
	_ = rfc2865.CallingStationID_SetString(req, c.CallingStationID)
	_ = rfc2865.NASIdentifier_SetString(req, c.NASIdentifier)
	_ = rfc2865.NASPortType_Set(req, rfc2865.NASPortType_Value_Wireless80211)
	if c.FramedMTU > 0 {
		_ = rfc2865.FramedMTU_Set(req, rfc2865.FramedMTU(c.FramedMTU))
	}
	if err := rfc2869.EAPMessage_Set(req, eap); err != nil {
		return nil, nil, fmt.Errorf("eapclient: %w", err)
	}
	if l.state != nil {
		if err := rfc2865.State_Set(req, l.state); err != nil {
			return nil, nil, fmt.Errorf("eapclient: %w", err)
		}
	}
	if err := msgauth.SignRequest(req); err != nil {
		return nil, nil, fmt.Errorf("eapclient: %w", err)
	}
	raw, err := req.Encode()
	if err != nil {
		return nil, nil, fmt.Errorf("eapclient: %w", err)
	}
	l.res.Rounds++
	buf := make([]byte, radius.MaxPacketLength)
	for try := 0; try <= c.Retries; try++ {
		if _, err := l.conn.Write(raw); err != nil {
			return nil, nil, fmt.Errorf("eapclient: %w", err)
		}
		deadline := time.Now().Add(c.Timeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		_ = l.conn.SetReadDeadline(deadline)
		for {
			n, err := l.conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
					break // ask again
				}
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				return nil, nil, fmt.Errorf("eapclient: %w", err)
			}
			b := buf[:n]
			// Answers to an earlier request, or forged ones, are ignored.
			if n < 20 || b[1] != raw[1] || !radius.IsAuthenticResponse(b, raw, c.Secret) {
				continue
			}
			if err := msgauth.VerifyResponse(b, raw[4:20], c.Secret); err != nil {
				return nil, nil, fmt.Errorf("eapclient: the server's answer has no valid Message-Authenticator: %w", err)
			}
			resp, err := radius.Parse(bytes.Clone(b), c.Secret)
			if err != nil {
				return nil, nil, fmt.Errorf("eapclient: %w", err)
			}
			return resp, req, nil
		}
	}
	return nil, nil, fmt.Errorf("eapclient: no answer from %s", c.Addr)
}

// tlsConfig offers the versions asked for and checks the server's
// certificate itself: a pinned fingerprint, or a chain to the CA pool
// (with the server name, when set).
func (l *login) tlsConfig() *tls.Config {
	c := l.cfg
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13,
		// The name is checked below, against ServerName only when one is
		// given: a Wi-Fi profile may name the CA alone.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyServer(c, raw)
		},
	}
	if c.TLSVersion != 0 {
		cfg.MinVersion, cfg.MaxVersion = c.TLSVersion, c.TLSVersion
	}
	cfg.Certificates = c.Certificates
	return cfg
}

func verifyServer(c Config, raw [][]byte) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: it showed none", ErrServerCert)
	}
	if c.PinSHA256 != "" {
		want, err := hex.DecodeString(strings.ReplaceAll(c.PinSHA256, ":", ""))
		if err != nil || len(want) != sha256.Size {
			return fmt.Errorf("%w: the pinned fingerprint %q is not a SHA-256", ErrServerCert, c.PinSHA256)
		}
		got := sha256.Sum256(raw[0])
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return fmt.Errorf("%w: its SHA-256 is %s, not the pinned %s", ErrServerCert, fingerprint(got[:]), fingerprint(want))
		}
	}
	if c.RootCAs == nil {
		return nil
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		cert, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrServerCert, err)
		}
		certs[i] = cert
	}
	opts := x509.VerifyOptions{Roots: c.RootCAs, Intermediates: x509.NewCertPool(), DNSName: c.ServerName,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, cert := range certs[1:] {
		opts.Intermediates.AddCert(cert)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return fmt.Errorf("%w: %v", ErrServerCert, err)
	}
	return nil
}

// fingerprint is upper-case hex in colon-separated pairs, as the daemon
// and the console show certificates.
func fingerprint(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(':')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

// innerPAP is the tunnelled User-Name and User-Password AVPs (RFC 5281
// §10, §11.2.5: the password padded with NULs to a multiple of 16).
func innerPAP(user string, password []byte) ([]byte, error) {
	if user == "" || len(user) > 253 || len(password) > 128 {
		return nil, errors.New("eapclient: a user name of 1 to 253 bytes and a password of at most 128 are needed")
	}
	pw := make([]byte, max(16, (len(password)+15)/16*16))
	copy(pw, password)
	b := appendAVP(nil, 1, []byte(user))
	b = appendAVP(b, 2, pw)
	clear(pw)
	return b, nil
}

// appendAVP appends one AVP with the M bit, padded to 4 octets.
func appendAVP(b []byte, code uint32, data []byte) []byte {
	n := 8 + len(data)
	b = binary.BigEndian.AppendUint32(b, code)
	b = append(b, 0x40, byte(n>>16), byte(n>>8), byte(n))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// RandomStation is a locally administered station address, for callers
// that simulate many stations.
func RandomStation() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	b[0] = b[0]&0xfc | 0x02
	return strings.ToUpper(fmt.Sprintf("%02x-%02x-%02x-%02x-%02x-%02x", b[0], b[1], b[2], b[3], b[4], b[5]))
}
