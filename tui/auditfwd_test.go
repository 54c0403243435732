package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

func TestVerifyReportTellsTheOffBoxCopy(t *testing.T) {
	if got := forwardReport(nil); got != "" {
		t.Errorf("no daemon report: got %q", got)
	}
	if got := forwardReport(&admin.DaemonStatus{}); got != "" {
		t.Errorf("forwarding not set up: got %q", got)
	}
	d := &admin.DaemonStatus{AuditForward: &admin.AuditForwardStatus{Configured: true, Enabled: true, Address: "syslog.clinic.lan:6514",
		Connected: false, LastError: "dial tcp: connection refused\nagain", SentSeq: 40, HeadSeq: 43, Lag: 3, CheckpointSeq: 38, CheckpointAt: time.Now()}}
	got := forwardReport(d)
	for _, want := range []string{"syslog.clinic.lan:6514 (NOT connected: dial tcp: connection refused", "Delivered up to entry 40; 3 entries waiting", "Last checkpoint: entry 38", "verify --against"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	d.AuditForward.Enabled = false
	if got := forwardReport(d); !strings.Contains(got, "is OFF") {
		t.Errorf("off: got %q", got)
	}
}
