package admin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/auditfwd/auditfwdtest"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func TestAuditForwardSettingsCheckedSealedAndAudited(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	ca := auditfwdtest.NewCA(t, "Clinic Syslog CA")
	cert, key := ca.Issue(t, "gw.clinic.lan")
	for _, bad := range []AuditForwardSettings{
		{Address: "syslog.clinic.lan", CAPEM: string(ca.CertPEM)},
		{Address: "syslog.clinic.lan:99999", CAPEM: string(ca.CertPEM)},
		{Address: "syslog.clinic.lan:6514", CAPEM: "not a certificate"},
		{Address: "syslog.clinic.lan:6514", CAPEM: string(ca.CertPEM), CertPEM: string(cert)},
		{Address: "syslog.clinic.lan:6514", CAPEM: string(ca.CertPEM), CertPEM: string(ca.CertPEM), Key: secrets.Secret(key)},
		{Address: "syslog.clinic.lan:6514", CAPEM: string(ca.CertPEM), Checkpoint: time.Second},
	} {
		if err := s.SetAuditForward(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetAuditForward(%+v): got %v, want ErrInvalid", bad.Address, err)
		}
	}
	if err := s.DisableAuditForward(ctx); !errors.Is(err, ErrInvalid) {
		t.Errorf("DisableAuditForward before set: got %v, want ErrInvalid", err)
	}
	if err := s.SetAuditForward(ctx, AuditForwardSettings{Address: "syslog.clinic.lan:6514", CAPEM: string(ca.CertPEM), CertPEM: string(cert), Key: secrets.Secret(key)}); err != nil {
		t.Fatal(err)
	}
	st, err := s.AuditForwardStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Configured || !st.Enabled || st.Address != "syslog.clinic.lan:6514" || st.Checkpoint != DefaultCheckpoint ||
		st.CASubject != "CN=Clinic Syslog CA" || st.ClientCert != "CN=gw.clinic.lan" || st.Lag != st.HeadSeq || st.HeadSeq == 0 {
		t.Errorf("status: got %+v", st)
	}
	if !st.Stale(time.Now()) {
		t.Error("status with no daemon report: want stale")
	}
	// The key is sealed: its PEM is nowhere in the database's settings
	// or the audit.
	rows, _ := s.Store.AuditRows(ctx, store.AuditFilter{})
	last := rows[len(rows)-1]
	if last.Reason != "audit_forward" || strings.Contains(last.Detail, "PRIVATE") || !strings.Contains(last.Detail, "syslog.clinic.lan:6514") {
		t.Errorf("audit entry: got %+v", last)
	}
	f, err := s.Store.AuditForward(ctx)
	if err != nil || string(f.Key) != string(key) {
		t.Fatalf("key: %v", err)
	}
	if err := s.DisableAuditForward(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.AuditForwardStatus(ctx); st.Enabled || !st.Configured {
		t.Errorf("after off: got %+v, want configured and off", st)
	}
}

func TestAuditRetentionSetting(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	if r, err := s.AuditRetention(ctx); err != nil || r.String() != "6y" {
		t.Fatalf("default retention: got %v, %v; want 6y", r, err)
	}
	if err := s.SetAuditRetention(ctx, "2d"); !errors.Is(err, ErrInvalid) {
		t.Errorf("2d: got %v, want ErrInvalid (too short)", err)
	}
	if err := s.SetAuditRetention(ctx, "7y"); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.AuditRetention(ctx); r.String() != "7y" {
		t.Errorf("retention: got %v, want 7y", r)
	}
}
