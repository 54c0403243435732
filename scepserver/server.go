// Package scepserver is the SCEP door (RFC 8894): it answers GetCACaps,
// GetCACert and PKIOperation (PKCSReq, over POST and GET) on
// /cgi-bin/pkiclient.exe and /scep, and publishes the device CA's CRL and
// certificate, over HTTPS.
//
// It decodes and encodes the wire with github.com/smallstep/scep and
// hands the CSR and its challenge to the core (appliance/pki), which
// decides and records. It holds no policy, never issues by itself, and
// never puts an internal error on the wire: a refusal is a signed CertRep
// with a failInfo, or, for a message it cannot read, a fixed HTTP error.
package scepserver

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"

	"github.com/clinicgate/clinicgate/appliance/pki"
)

// Paths the door answers on. Clients differ in the path they append
// (Apple and certmonger take any URL, Windows and some MDMs expect the
// CGI path), so both are served.
const (
	PathSCEP    = "/scep"
	PathCGI     = "/cgi-bin/pkiclient.exe"
	PathCRL     = "/pki/device-ca.crl"
	PathCACert  = "/pki/device-ca.pem"
	DefaultPort = "9443"
)

// Limits of the door.
const (
	// DefaultMaxBody bounds a PKIOperation: a CSR with a 8192-bit key,
	// signed and enveloped, is far below it.
	DefaultMaxBody = 64 << 10
	// DefaultMaxConcurrent bounds PKIOperations at once: each costs an
	// RSA decryption and signatures; past it the door answers 503.
	DefaultMaxConcurrent = 4
)

// Enroller is the core's half: pki.Enroller.
type Enroller interface {
	Enroll(ctx context.Context, r pki.EnrollRequest) (*x509.Certificate, pki.Refusal, error)
	Refuse(ctx context.Context, remote string, why pki.Refusal, detail string) error
}

// CRLSource gives the current CRL (pki.CRLCache).
type CRLSource interface {
	DER(ctx context.Context) ([]byte, error)
}

// Config is what a Server needs.
type Config struct {
	CA            *pki.CA
	Enroller      Enroller
	CRL           CRLSource
	Logger        *slog.Logger
	MaxBody       int64    // 0: DefaultMaxBody
	MaxConcurrent int      // 0: DefaultMaxConcurrent
	Metrics       *Metrics // nil: none
}

// Server answers SCEP requests; build it with New.
type Server struct {
	cfg Config
	sem chan struct{}
	// caChain is GetCACert's answer: a degenerate PKCS#7 of the RA, then
	// the CA (RFC 8894 section 4.2.1.2), made once.
	caChain []byte
}

var cryptoOnce sync.Once

// New checks cfg and builds the Server.
func New(cfg Config) (*Server, error) {
	if cfg.CA == nil || cfg.Enroller == nil || cfg.CRL == nil || cfg.Logger == nil {
		return nil, errors.New("scepserver: needs a CA, an enroller, a CRL source and a logger")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	// The PKCS#7 library chooses the cipher of the envelopes it makes and
	// the digest of its signatures by package variables, single DES and
	// SHA-1 by default. RFC 8894 makes AES-128 and SHA-256 mandatory for
	// clients, and GetCACaps says AES and SHA-256: use them.
	cryptoOnce.Do(func() {
		pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC
		_ = pkcs7.SetDefaultDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	})
	chain, err := scep.DegenerateCertificates([]*x509.Certificate{cfg.CA.RACert, cfg.CA.Cert})
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent), caChain: chain}, nil
}

// Handler routes the door's paths.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathSCEP, s.serveSCEP)
	mux.HandleFunc(PathCGI, s.serveSCEP)
	mux.HandleFunc("GET "+PathCRL, s.serveCRL)
	mux.HandleFunc("GET "+PathCACert, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: s.cfg.CA.Cert.Raw})
	})
	return mux
}

// caps are GetCACaps' answer (RFC 8894 section 3.5.2).
const caps = "POSTPKIOperation\nSHA-256\nSHA-512\nAES\nSCEPStandard\n"

func (s *Server) serveSCEP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch op := r.URL.Query().Get("operation"); op {
	case "GetCACaps":
		s.cfg.Metrics.count(op, "ok")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, caps)
	case "GetCACert":
		s.cfg.Metrics.count(op, "ok")
		w.Header().Set("Content-Type", "application/x-x509-ca-ra-cert")
		_, _ = w.Write(s.caChain)
	case "PKIOperation":
		s.cfg.Metrics.count(op, s.pkiOperation(w, r))
	default:
		s.cfg.Metrics.count("other", "unknown_operation")
		http.Error(w, "unknown SCEP operation (want GetCACaps, GetCACert or PKIOperation)", http.StatusBadRequest)
	}
}

func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// pkiOperation reads the message (the body of a POST, or GET's base64
// message parameter), and answers a CertRep. It returns the result for
// the metrics.
func (s *Server) pkiOperation(w http.ResponseWriter, r *http.Request) string {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "busy, try again shortly", http.StatusServiceUnavailable)
		return "busy"
	}
	ctx, from := r.Context(), remote(r)
	var body []byte
	var err error
	if r.Method == http.MethodPost {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.badMessage(ctx, w, from, "the request body is larger than the limit", http.StatusRequestEntityTooLarge)
			return string(pki.RefuseBadMessage)
		}
	} else {
		msg := r.URL.Query().Get("message")
		if int64(len(msg)) > s.cfg.MaxBody*4/3+4 {
			s.badMessage(ctx, w, from, "the message parameter is larger than the limit", http.StatusRequestEntityTooLarge)
			return string(pki.RefuseBadMessage)
		}
		body, err = base64.StdEncoding.DecodeString(strings.TrimSpace(msg))
		if err != nil {
			// Some clients send the message URL-safe or without padding.
			body, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(msg), "="))
		}
	}
	if err != nil || len(body) == 0 {
		s.badMessage(ctx, w, from, "the PKIOperation carries no readable message", http.StatusBadRequest)
		return string(pki.RefuseBadMessage)
	}
	msg, err := parse(body)
	if err != nil {
		s.badMessage(ctx, w, from, "the PKIOperation is not a SCEP message signed by its sender: "+err.Error(), http.StatusBadRequest)
		return string(pki.RefuseBadMessage)
	}
	if msg.MessageType != scep.PKCSReq && msg.MessageType != scep.RenewalReq {
		s.fail(ctx, w, msg, from, scep.BadRequest, pki.RefuseUnsupportedMethod, "SCEP message type "+string(msg.MessageType)+" is not supported (only PKCSReq)")
		return string(pki.RefuseUnsupportedMethod)
	}
	if err := msg.DecryptPKIEnvelope(s.cfg.CA.RACert, s.cfg.CA.RAKey); err != nil {
		s.fail(ctx, w, msg, from, scep.BadMessageCheck, pki.RefuseBadMessage, "the request's envelope cannot be opened with the RA's key: "+err.Error())
		return string(pki.RefuseBadMessage)
	}
	cert, why, err := s.cfg.Enroller.Enroll(ctx, pki.EnrollRequest{
		CSR: msg.CSRReqMessage.CSR, Challenge: msg.CSRReqMessage.ChallengePassword,
		TransactionID: string(msg.TransactionID), Remote: from,
	})
	if err != nil {
		s.cfg.Logger.Error("SCEP enrolment failed", "door", "scep", "source", from, "err", err)
		http.Error(w, "the appliance cannot issue certificates right now", http.StatusInternalServerError)
		return "error"
	}
	if why != pki.RefuseNone {
		info := scep.BadRequest
		switch why {
		case pki.RefuseBadKey:
			info = scep.BadAlg
		case pki.RefuseBadCSR:
			info = scep.BadMessageCheck
		}
		s.reply(w, msg, from, func() (*scep.PKIMessage, error) { return msg.Fail(s.cfg.CA.RACert, s.cfg.CA.RAKey, info) })
		return string(why)
	}
	s.cfg.Logger.Info("SCEP certificate issued", "door", "scep", "source", from, "device", cert.Subject.CommonName, "serial", cert.SerialNumber.Text(16))
	s.reply(w, msg, from, func() (*scep.PKIMessage, error) { return msg.Success(s.cfg.CA.RACert, s.cfg.CA.RAKey, cert) })
	return "issued"
}

// parse reads a PKIMessage, turning the library's panics on some
// malformed inputs (its String methods panic on unknown values) into
// errors.
func parse(body []byte) (msg *scep.PKIMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, errors.New("malformed SCEP message")
		}
	}()
	return scep.ParsePKIMessage(body)
}

// fail audits a refusal of a readable message and answers a CertRep
// FAILURE with failInfo.
func (s *Server) fail(ctx context.Context, w http.ResponseWriter, msg *scep.PKIMessage, from string, info scep.FailInfo, why pki.Refusal, detail string) {
	if err := s.cfg.Enroller.Refuse(ctx, from, why, detail); err != nil {
		s.cfg.Logger.Error("SCEP refusal not audited", "door", "scep", "err", err)
		http.Error(w, "the appliance cannot issue certificates right now", http.StatusInternalServerError)
		return
	}
	s.reply(w, msg, from, func() (*scep.PKIMessage, error) { return msg.Fail(s.cfg.CA.RACert, s.cfg.CA.RAKey, info) })
}

// badMessage audits a message that cannot be answered with a CertRep (it
// has no transaction to answer) and answers a plain HTTP error.
func (s *Server) badMessage(ctx context.Context, w http.ResponseWriter, from, detail string, status int) {
	if err := s.cfg.Enroller.Refuse(ctx, from, pki.RefuseBadMessage, detail); err != nil {
		s.cfg.Logger.Error("SCEP refusal not audited", "door", "scep", "err", err)
		status = http.StatusInternalServerError
	}
	http.Error(w, "not a valid SCEP PKIOperation", status)
}

func (s *Server) reply(w http.ResponseWriter, msg *scep.PKIMessage, from string, build func() (*scep.PKIMessage, error)) {
	rep, err := build()
	if err != nil {
		s.cfg.Logger.Error("SCEP reply cannot be built", "door", "scep", "source", from, "transaction", string(msg.TransactionID), "err", err)
		http.Error(w, "the appliance cannot answer this request", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-pki-message")
	_, _ = io.Copy(w, bytes.NewReader(rep.Raw))
}

// serveCRL publishes the device CA's CRL in DER.
func (s *Server) serveCRL(w http.ResponseWriter, r *http.Request) {
	der, err := s.cfg.CRL.DER(r.Context())
	if err != nil {
		s.cfg.Logger.Error("device CA CRL cannot be made", "door", "scep", "err", err)
		http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(der)
}
