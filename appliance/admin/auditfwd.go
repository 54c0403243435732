package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/auditfwd"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// AuditForwardSettings are what an operator gives to send the audit log
// to the clinic's syslog collector or SIEM (docs/audit.md).
type AuditForwardSettings struct {
	// Address is the collector, host:port (6514 is RFC 5425's port).
	Address string
	// CAPEM is the CA the collector's certificate must come from.
	CAPEM string
	// CertPEM and Key are the appliance's client certificate and key,
	// for a collector that asks for one (both or neither).
	CertPEM string
	Key     secrets.Secret
	// Checkpoint is how often the chain's head is sent (0: 10 minutes).
	Checkpoint time.Duration
}

// DefaultCheckpoint is how often a checkpoint goes to the collector.
const DefaultCheckpoint = 10 * time.Minute

// SetAuditForward checks and stores the forwarding settings; the daemon
// connects within a few seconds. The client key is sealed.
func (s *Service) SetAuditForward(ctx context.Context, in AuditForwardSettings) error {
	host, port, err := net.SplitHostPort(in.Address)
	if err != nil || host == "" {
		return invalid("the collector address %q is not host:port (for example syslog.clinic.lan:6514)", in.Address)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return invalid("the collector's port %q is not a port number", port)
	}
	ca := firstCert(in.CAPEM)
	if ca == nil {
		return invalid("the CA file holds no PEM certificate: give the CA that issued the collector's certificate")
	}
	if (in.CertPEM == "") != (len(in.Key) == 0) {
		return invalid("a client certificate needs its key, and a key its certificate: give both or neither")
	}
	if in.Checkpoint == 0 {
		in.Checkpoint = DefaultCheckpoint
	}
	if in.Checkpoint < time.Minute || in.Checkpoint > 24*time.Hour {
		return invalid("the checkpoint interval is between 1m and 24h")
	}
	f := store.AuditForward{Address: in.Address, CAPEM: in.CAPEM, CertPEM: in.CertPEM, Key: []byte(in.Key), Checkpoint: in.Checkpoint, Enabled: true, Updated: s.Now()}
	if _, err := auditfwd.TLSConfig(f); err != nil {
		return invalid("%v", err)
	}
	detail := fmt.Sprintf("audit forwarding to %s over TLS, collector's CA %q, checkpoint every %s", in.Address, ca.Subject.String(), in.Checkpoint)
	if c := firstCert(in.CertPEM); c != nil {
		detail += fmt.Sprintf(", client certificate %q", c.Subject.String())
	}
	return s.change(ctx, audit.Entry{Reason: "audit_forward", Detail: detail}, func(tx *store.Tx) error {
		return tx.SetAuditForward(ctx, f)
	})
}

func firstCert(p string) *x509.Certificate {
	rest := []byte(p)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err == nil {
				return c
			}
		}
	}
}

// DisableAuditForward stops forwarding; the settings and the cursor stay,
// so turning it on again (set) sends what was written meanwhile.
func (s *Service) DisableAuditForward(ctx context.Context) error {
	err := s.change(ctx, audit.Entry{Reason: "audit_forward", Detail: "audit forwarding turned off"}, func(tx *store.Tx) error {
		return tx.SetAuditForwardEnabled(ctx, false, s.Now())
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("audit forwarding is not set up")
	}
	return err
}

// AuditForwardStatus is forwarding's settings and state, for `audit
// forward show` and the console.
type AuditForwardStatus struct {
	Configured, Enabled bool
	Address             string
	CASubject           string
	ClientCert          string // the client certificate's subject ("" when none)
	Checkpoint          time.Duration
	// Connected is what the daemon last reported; Reported is when.
	Connected bool
	Reported  time.Time
	LastError string
	// SentSeq: every entry up to it reached the collector. HeadSeq is the
	// newest entry; Lag the entries still to send.
	SentSeq, HeadSeq, Lag int64
	SentAt                time.Time
	// The last checkpoint sent.
	CheckpointSeq int64
	CheckpointAt  time.Time
}

// Stale reports whether the daemon's last report is too old to trust
// (the daemon is not running, or its forwarder is stuck).
func (st AuditForwardStatus) Stale(now time.Time) bool {
	return st.Reported.IsZero() || now.Sub(st.Reported) > 3*auditfwd.Heartbeat
}

// AuditForwardStatus reads forwarding's settings and state.
func (s *Service) AuditForwardStatus(ctx context.Context) (AuditForwardStatus, error) {
	var out AuditForwardStatus
	f, err := s.Store.AuditForward(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return out, err
	default:
		out.Configured, out.Enabled, out.Address, out.Checkpoint = true, f.Enabled, f.Address, f.Checkpoint
		if c := firstCert(f.CAPEM); c != nil {
			out.CASubject = c.Subject.String()
		}
		if c := firstCert(f.CertPEM); c != nil {
			out.ClientCert = c.Subject.String()
		}
	}
	st, err := s.Store.AuditForwardState(ctx)
	if err != nil {
		return out, err
	}
	head, _, err := s.Store.AuditHead(ctx)
	if err != nil {
		return out, err
	}
	out.Connected, out.Reported, out.LastError = st.Connected, st.StateAt, st.LastError
	out.SentSeq, out.SentAt, out.HeadSeq, out.Lag = st.SentSeq, st.SentAt, head, max(0, head-st.SentSeq)
	out.CheckpointSeq, out.CheckpointAt = st.CheckpointSeq, st.CheckpointAt
	return out, nil
}

// AuditRetention is how long audit entries are kept.
func (s *Service) AuditRetention(ctx context.Context) (audit.Retention, error) {
	return audit.LoadRetention(ctx, s.Store)
}

// SetAuditRetention changes how long audit entries are kept ("6y",
// "400d"); the daemon removes older entries in the background.
func (s *Service) SetAuditRetention(ctx context.Context, text string) error {
	r, err := audit.ParseRetention(text)
	if err != nil {
		return invalid("%v", err)
	}
	return s.change(ctx, audit.Entry{Reason: "setting", Detail: fmt.Sprintf("%s = %q", audit.RetentionSetting, r.String())}, func(tx *store.Tx) error {
		return tx.SetSetting(ctx, audit.RetentionSetting, r.String())
	})
}

// ExportAudit writes every entry, and a checkpoint of the head, in the
// form a forwarded copy has; `audit verify --against` reads it.
func (s *Service) ExportAudit(ctx context.Context, w io.Writer) (int64, error) {
	return s.Audit.Export(ctx, w)
}

// AuditCheck is the result of checking the log, alone and against a copy.
type AuditCheck struct {
	Entries  int64
	Problems []string
	// Against is set when a copy was given.
	Against *audit.AgainstReport
}

// OK reports whether every check passed.
func (c AuditCheck) OK() bool { return len(c.Problems) == 0 && (c.Against == nil || c.Against.OK()) }

// VerifyAuditAgainst walks the chain and compares it with a copy kept off
// the box (the collector's file or an export).
func (s *Service) VerifyAuditAgainst(ctx context.Context, copyR io.Reader) (AuditCheck, error) {
	rep, err := s.Audit.Verify(ctx)
	if err != nil {
		return AuditCheck{}, err
	}
	ag, err := s.Audit.VerifyAgainst(ctx, copyR)
	if err != nil {
		return AuditCheck{}, err
	}
	return AuditCheck{Entries: rep.Entries, Problems: rep.Problems, Against: &ag}, nil
}
