package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// forwardReport is what the audit verification (v) adds about the copy
// kept off the box: where it goes, how far the collector has it, and the
// last checkpoint ("" when forwarding is not set up, or the daemon has
// not reported).
func forwardReport(d *admin.DaemonStatus) string {
	if d == nil || d.AuditForward == nil {
		return ""
	}
	f := d.AuditForward
	var b strings.Builder
	b.WriteString("\n\n")
	if !f.Enabled {
		fmt.Fprintf(&b, "Off-box copy: forwarding to %s is OFF; entries since %d are only on this box.", sanitize(f.Address), f.SentSeq)
		return b.String()
	}
	state := "connected"
	if !f.Connected {
		state = "NOT connected: " + oneLine(sanitize(f.LastError))
	}
	fmt.Fprintf(&b, "Off-box copy: %s (%s).\nDelivered up to entry %d; %d %s waiting.", sanitize(f.Address), state, f.SentSeq, f.Lag, plural(int(f.Lag), "entry", "entries"))
	if f.CheckpointSeq > 0 {
		fmt.Fprintf(&b, " Last checkpoint: entry %d at %s.", f.CheckpointSeq, f.CheckpointAt.Local().Format(time.DateTime))
	}
	b.WriteString("\nCompare with it: clinicgate audit verify --against <the collector's file>")
	return b.String()
}
