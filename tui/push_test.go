package tui

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
)

// TestPickPushProviderForAClient: p on Clients sets the VPN's push
// provider and mode; a wrong mode is refused in words first.
func TestPickPushProviderForAClient(t *testing.T) {
	f := sample()
	f.clients = []admin.Client{{Name: "vpn", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.1/32"), Policy: policy.Default(), Version: 1}}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "vpn")
	tm.Type("p")
	waitFor(t, tm, "Push MFA of vpn")
	tm.Type("duo")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	for range len("auto") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("sometimes")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "push mode must be auto, hold or challenge")
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	for range len("sometimes") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("challenge")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "vpn: push through duo (mode challenge)")
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := f.clients[0].Policy.Push; got.Provider != "duo" || got.Mode != policy.PushChallenge || got.Fallback != policy.PushFallbackReject {
		t.Fatalf("saved push %+v", got)
	}
}

// TestTestLoginShowsTheNumberToMatch: a test login through a client with
// push shows what the user would see: the number to match, and that a
// push went to the phone.
func TestTestLoginShowsTheNumberToMatch(t *testing.T) {
	f := sample()
	pol := policy.Default()
	pol.Push = policy.Push{Provider: "okta"}
	f.clients = []admin.Client{{Name: "vpn", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.1/32"), Policy: pol}}
	f.login = admin.LoginResult{Door: appliance.DoorRADIUS, Client: "vpn", Via: "vpn",
		Outcome: "Access-Challenge", Code: 11, Challenged: true, Took: 420 * time.Millisecond,
		Reply: []admin.ReplyAttribute{{Name: "Reply-Message", Value: fmt.Sprintf(appliance.MsgPushNumber, "42")}},
		Story: &admin.DecisionStory{Seq: 12, Outcome: "challenge", Reason: "mfa_challenge", Steps: []audit.Step{
			{Stage: "push", Result: `sent by okta to "Pixel 8" at 09:12:03.1 (+0.0s)`}}}}
	tm := startPanes(t, Panes{Audit: fakeAudit{f}, Clients: fakeClients{f}, Logins: fakeLogins{f}}, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "vpn")
	tm.Type("l")
	waitFor(t, tm, "Test login through vpn's policy")
	tm.Type("alice")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("correct horse")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Number to match on your phone: 42", "a push was sent", `sent by okta to "Pixel 8"`)
}

// TestFraudAlertOnTheDashboard: a push reported as fraud shows on the
// dashboard with what to do.
func TestFraudAlertOnTheDashboard(t *testing.T) {
	f := sample()
	f.add(admin.AuditRow{At: t0.Add(50 * time.Minute), Kind: "system", Door: "radius", Client: "office-vpn", User: "dr.lee",
		Outcome: "alert", Reason: string(appliance.ReasonMFAPushFraud), Detail: "dr.lee reported the push for this login as fraud"})
	tm := start(t, f, 100, 24)
	waitFor(t, tm, "! dr.lee reported a push as fraud at", "account locked")
}
