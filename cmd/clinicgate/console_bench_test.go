package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/tui"
)

// BenchmarkConsoleOpensLongAudit measures how long the console takes,
// over the real admin service, to show the newest entry of a 60,000-entry
// audit log on its Audit pane: what a contractor waits for on a site that
// has run for a few months. (Reading the log forward, 500 entries each
// half second, took about a minute; the console now opens on the newest
// window and pages back on demand.)
func BenchmarkConsoleOpensLongAudit(b *testing.B) {
	const n = 60000
	ctx := b.Context()
	data := b.TempDir()
	if err := admin.Create(ctx, data); err != nil {
		b.Fatal(err)
	}
	svc, closeAll, err := admin.Open(ctx, data, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeAll)
	// A user, so that the console does not start its first-boot wizard.
	if err := svc.AddUser(ctx, admin.NewUser{Name: "dr.lee"}); err != nil {
		b.Fatal(err)
	}
	err = svc.Store.WithTx(ctx, func(tx *store.Tx) error {
		for i := range n {
			e := audit.Entry{Kind: audit.KindDecision, Door: "radius", Client: "office-wifi", User: fmt.Sprintf("user%05d", i),
				Outcome: "accept", Reason: "ok", Detail: `{"steps":[{"stage":"password","result":"verified by local"}]}`}
			if _, err := svc.Audit.AppendTx(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	newest := []byte(fmt.Sprintf("user%05d", n-1))
	b.ResetTimer()
	for range b.N {
		tm := teatest.NewTestModel(b, tui.New(svc, tui.Options{}), teatest.WithInitialTermSize(80, 24))
		tm.Send(tea.KeyMsg{Type: tea.KeyTab}) // the Audit pane
		teatest.WaitFor(b, tm.Output(), func(out []byte) bool { return bytes.Contains(out, newest) },
			teatest.WithDuration(5*time.Minute), teatest.WithCheckInterval(5*time.Millisecond))
		b.StopTimer()
		if err := tm.Quit(); err != nil {
			b.Fatal(err)
		}
		tm.WaitFinished(b, teatest.WithFinalTimeout(time.Minute))
		b.StartTimer()
	}
}
