package admin

import (
	"encoding/csv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
)

func TestExportHIPAA(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	story := func(steps ...audit.Step) string { return audit.DecisionDetail{Steps: steps}.Marshal() }
	for _, e := range []audit.Entry{
		{Kind: audit.KindDecision, Door: "radius", Client: "vpn", User: "dr.lee", Source: "10.0.0.9", Device: "AA-BB-CC-00-11-22", Outcome: "accept", Reason: "ok",
			Detail: story(audit.Step{Stage: "password", Result: "verified by local"}, audit.Step{Stage: "mfa", Result: "code accepted"})},
		{Kind: audit.KindDecision, Door: "radius", Client: "vpn", User: "dr.lee", Source: "10.0.0.9", Outcome: "reject", Reason: "bad_password",
			Detail: story(audit.Step{Stage: "password", Result: "wrong"})},
		{Kind: audit.KindDecision, Door: "radius", Client: "vpn", User: "nurse.kim", Source: "10.0.0.7", Outcome: "accept", Reason: "ok",
			Detail: story(audit.Step{Stage: "push", Result: "sent by duo to \"iPhone\" at +0.1s"}, audit.Step{Stage: "push", Result: "approved at +4.2s"})},
	} {
		if _, err := s.Audit.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	dir := t.TempDir()
	out, err := s.ExportHIPAA(ctx, from, to, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if out.Entries < 3 || out.Users != 2 || len(out.Files) != 4 {
		t.Fatalf("%+v", out)
	}
	f, _ := os.Open(out.Files[0])
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != out.Entries+1 || recs[0][0] != "seq" || recs[0][13] != "hash" || len(recs[1][13]) != 64 {
		t.Fatalf("csv: %v %v", recs, err)
	}
	jl, _ := os.ReadFile(out.Files[1])
	if n := strings.Count(string(jl), "\n"); n != out.Entries || !strings.Contains(string(jl), `"prev_hash":`) {
		t.Fatalf("jsonl %d lines:\n%s", n, jl)
	}
	proof, _ := os.ReadFile(out.Files[2])
	if !strings.Contains(string(proof), "unbroken") || strings.Contains(string(proof), "not the previous entry's hash") {
		t.Fatalf("proof:\n%s", proof)
	}
	acc, _ := os.ReadFile(out.Files[3])
	for _, want := range []string{"== dr.lee: 1 accepted, 1 refused ==", "password + TOTP code", "AA-BB-CC-00-11-22", "reject (bad_password)", "== nurse.kim: 1 accepted", "password + duo push"} {
		if !strings.Contains(string(acc), want) {
			t.Fatalf("access report lacks %q:\n%s", want, acc)
		}
	}
	// One user's export holds that user's entries only, and is audited.
	one, err := s.ExportHIPAA(ctx, from, to, "nurse.kim", dir)
	if err != nil || one.Entries != 1 || !strings.HasSuffix(one.Files[0], "-nurse.kim.csv") && !strings.HasSuffix(one.Files[0], "-nurse_kim.csv") {
		t.Fatalf("%+v %v", one, err)
	}
	rows, _ := s.AuditTail(ctx, "", 1)
	if rows[0].Reason != "audit_export" {
		t.Fatalf("export not audited: %+v", rows[0])
	}
	// Outside the range: nothing.
	none, err := s.ExportHIPAA(ctx, from.Add(-48*time.Hour), from.Add(-24*time.Hour), "", dir)
	if err != nil || none.Entries != 0 {
		t.Fatalf("%+v %v", none, err)
	}
}

// The console's whole copy: written into exports/, and the log checked
// against it agrees; an edited copy does not.
func TestWriteAuditCopyAndCheckAgainstIt(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	for range 3 {
		if _, err := s.Audit.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	p, n, err := s.WriteAuditCopy(ctx)
	if err != nil || n < 3 {
		t.Fatalf("%s %d %v", p, n, err)
	}
	c, err := s.VerifyAuditAgainstFile(ctx, p)
	if err != nil || !c.OK() {
		t.Fatalf("against its own copy: %+v %v", c, err)
	}
	b, _ := os.ReadFile(p)
	edited := strings.Replace(string(b), `"reason":"x"`, `"reason":"y"`, 1)
	if edited == string(b) {
		t.Fatalf("the copy's form changed; the test edits nothing:\n%s", b)
	}
	if err := os.WriteFile(p, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := s.VerifyAuditAgainstFile(ctx, p); err != nil || c.OK() {
		t.Fatalf("against an edited copy: %+v %v", c, err)
	}
}
