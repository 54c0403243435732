package appliance_test

import (
	"context"
	"encoding/base32"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/mfa/mfatest"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// pushEnv is a core on real time (holds wait on real timers) with a Duo
// stand-in configured as provider "duo", and alice with a password and
// TOTP enrolled.
type pushEnv struct {
	t    *testing.T
	core *appliancetest.Core
	duo  *mfatest.Duo
	seed []byte
}

func newPushEnv(t *testing.T, skey string) *pushEnv {
	t.Helper()
	ctx := t.Context()
	core := appliancetest.New(t, appliancetest.Options{})
	duo := mfatest.NewDuo("DIWJ8X6AEYOR5OMC6TQ1", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")
	t.Cleanup(duo.Close)
	duo.LongPoll = time.Second
	duo.SetUser("alice", mfatest.DuoUser{Push: true})
	if skey == "" {
		skey = duo.SKey
	}
	if err := core.Admin.SetMFAProvider(ctx, admin.MFAProviderConfig{Name: "duo",
		Duo: &mfa.DuoSettings{APIHost: duo.Host(), IntegrationKey: duo.IKey, CAFile: mfatest.WriteCA(t, duo.Certificate())}, Secret: secrets.Secret(skey)}); err != nil {
		t.Fatal(err)
	}
	if err := core.Admin.AddUser(ctx, admin.NewUser{Name: "alice", Password: secrets.Secret("pw-for-alice"), Groups: []string{"staff"}}); err != nil {
		t.Fatal(err)
	}
	en, err := core.Admin.EnrollTOTP(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	return &pushEnv{t: t, core: core, duo: duo, seed: seed}
}

func pushClient(push policy.Push) store.Client {
	p := policy.Default()
	p.Push = push
	return store.Client{Name: "vpn", Door: "radius", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Policy: p}
}

func (e *pushEnv) decide(c store.Client, pw string, state []byte) appliance.Decision {
	e.t.Helper()
	d, err := e.core.Gate.Decide(context.Background(), appliance.Request{
		Door: appliance.DoorRADIUS, Client: c, User: "alice", Password: secrets.Secret(pw),
		Method: appliance.MethodPAP, State: state, Source: netip.MustParseAddr("10.0.0.5"),
	})
	if err != nil {
		e.t.Fatalf("Decide: %v", err)
	}
	return d
}

func (e *pushEnv) failWith(write func(w http.ResponseWriter)) {
	e.duo.Intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool { write(w); return true }
}

func has(steps []appliance.Step, stage, text string) bool {
	return slices.ContainsFunc(steps, func(s appliance.Step) bool { return s.Stage == stage && strings.Contains(s.Result, text) })
}

func TestPushApprovedAcceptsWithStory(t *testing.T) {
	e := newPushEnv(t, "")
	e.duo.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Approve, After: 300 * time.Millisecond}
	}
	d := e.decide(pushClient(policy.Push{Provider: "duo", Mode: policy.PushHold}), "pw-for-alice", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !has(d.Steps, "push", "sent by duo to") || !has(d.Steps, "push", "approved at") {
		t.Errorf("story %v: want the push sent (with its device) and approved, with times", d.Steps)
	}
	if e.duo.Pushes() != 1 {
		t.Errorf("got %d pushes, want 1", e.duo.Pushes())
	}
}

func TestPushDeniedIsRefusedAndExplained(t *testing.T) {
	e := newPushEnv(t, "")
	e.duo.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Deny, After: 100 * time.Millisecond}
	}
	d := e.decide(pushClient(policy.Push{Provider: "duo", Mode: policy.PushHold}), "pw-for-alice", nil)
	expect(t, d, appliance.Reject, appliance.ReasonMFAPushDenied)
	if d.Message != appliance.MsgPushDenied {
		t.Errorf("message %q, want %q", d.Message, appliance.MsgPushDenied)
	}
}

func TestPushFraudLocksTheAccountAndAlerts(t *testing.T) {
	e := newPushEnv(t, "")
	e.duo.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Fraud, After: 100 * time.Millisecond}
	}
	c := pushClient(policy.Push{Provider: "duo", Mode: policy.PushHold})
	expect(t, e.decide(c, "pw-for-alice", nil), appliance.Reject, appliance.ReasonMFAPushFraud)
	// The right password no longer opens anything, and no push is sent.
	expect(t, e.decide(c, "pw-for-alice", nil), appliance.Reject, appliance.ReasonLockedOut)
	if e.duo.Pushes() != 1 {
		t.Errorf("got %d pushes, want 1", e.duo.Pushes())
	}
	rows, err := e.core.LastAudit(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rows, func(r admin.AuditRow) bool {
		return r.Outcome == "alert" && r.Reason == string(appliance.ReasonMFAPushFraud)
	}) {
		t.Errorf("no alert in the audit: %+v", rows)
	}
}

// TestSlowPushRefusedWithinBudget: a push the phone answers later than
// the client's budget is refused when the budget is spent, in hold mode.
func TestSlowPushRefusedWithinBudget(t *testing.T) {
	e := newPushEnv(t, "")
	e.duo.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Approve, After: 5 * time.Second}
	}
	start := time.Now()
	d := e.decide(pushClient(policy.Push{Provider: "duo", Mode: policy.PushHold, Budget: 1}), "pw-for-alice", nil)
	expect(t, d, appliance.Reject, appliance.ReasonMFAPushBudget)
	if time.Since(start) > 4*time.Second {
		t.Errorf("answered after %s: the budget was 1 s and the approval came at 5 s", time.Since(start))
	}
}

// TestSlowPushInAutoModeBecomesChallenge: auto mode with a budget too
// short to hold answers with a challenge at once; an answer to it holds
// the budget, and a spent budget is answered with a challenge on the same
// push again, until the phone approves.
func TestSlowPushInAutoModeBecomesChallenge(t *testing.T) {
	e := newPushEnv(t, "")
	e.duo.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Approve, After: 1500 * time.Millisecond}
	}
	c := pushClient(policy.Push{Provider: "duo", Mode: policy.PushAuto, Budget: 1})
	d := e.decide(c, "pw-for-alice", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	if d.Message != appliance.MsgPush {
		t.Errorf("message %q, want %q", d.Message, appliance.MsgPush)
	}
	d = e.decide(c, "", d.State)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	if d.Message != appliance.MsgPushWaiting {
		t.Errorf("message %q, want %q", d.Message, appliance.MsgPushWaiting)
	}
	expect(t, e.decide(c, "", d.State), appliance.Accept, appliance.ReasonOK)
	if e.duo.Pushes() != 1 {
		t.Errorf("got %d pushes, want 1", e.duo.Pushes())
	}
}

func TestPushProviderFaults(t *testing.T) {
	malformed := func(w http.ResponseWriter) { w.Write([]byte(`{"stat":"OK","response":`)) }
	fiveXX := func(w http.ResponseWriter) { http.Error(w, "bad gateway", http.StatusBadGateway) }
	cases := []struct {
		name     string
		skey     string
		fault    func(http.ResponseWriter)
		fallback policy.PushFallback
		outcome  appliance.Outcome
		reason   appliance.Reason
	}{
		{"5xx rejects by default", "", fiveXX, "", appliance.Reject, appliance.ReasonMFAProviderDown},
		{"5xx falls back to TOTP", "", fiveXX, policy.PushFallbackTOTP, appliance.Challenge, appliance.ReasonMFAChallenge},
		{"malformed JSON never falls back", "", malformed, policy.PushFallbackTOTP, appliance.Reject, appliance.ReasonMFAProviderError},
		{"wrong signature never falls back", "wrong-secret-key", nil, policy.PushFallbackTOTP, appliance.Reject, appliance.ReasonMFAProviderError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newPushEnv(t, c.skey)
			if c.fault != nil {
				e.failWith(c.fault)
			}
			cl := pushClient(policy.Push{Provider: "duo", Mode: policy.PushHold, Fallback: c.fallback})
			d := e.decide(cl, "pw-for-alice", nil)
			expect(t, d, c.outcome, c.reason)
			if e.duo.Pushes() != 0 {
				t.Errorf("got %d pushes, want none", e.duo.Pushes())
			}
			if c.outcome == appliance.Challenge {
				if !slices.Contains(d.Notes, "mfa_fallback_totp") || d.Message != appliance.MsgEnterCode {
					t.Errorf("notes %v, message %q: want the TOTP fallback", d.Notes, d.Message)
				}
				code, _ := mfa.HOTP(e.seed, uint64(mfa.Step(time.Now(), 30)), 6, "SHA1")
				expect(t, e.decide(cl, code, d.State), appliance.Accept, appliance.ReasonOK)
			}
		})
	}
}

func TestPushPreauthAnswers(t *testing.T) {
	for preauth, want := range map[string]appliance.Reason{"allow": appliance.ReasonOK, "deny": appliance.ReasonMFAProviderDeny, "enroll": appliance.ReasonMFANotEnrolled} {
		t.Run(preauth, func(t *testing.T) {
			e := newPushEnv(t, "")
			e.duo.SetUser("alice", mfatest.DuoUser{Preauth: preauth})
			d := e.decide(pushClient(policy.Push{Provider: "duo"}), "pw-for-alice", nil)
			if d.Reason != want {
				t.Errorf("got %s (steps %v), want %s", d.Reason, d.Steps, want)
			}
			if e.duo.Pushes() != 0 {
				t.Errorf("got %d pushes, want none", e.duo.Pushes())
			}
		})
	}
}

// TestPushProviderPerGroup: a group's provider wins; "totp" keeps the
// built-in codes for its members.
func TestPushProviderPerGroup(t *testing.T) {
	e := newPushEnv(t, "")
	c := pushClient(policy.Push{Provider: "duo", Groups: []policy.GroupProvider{{Group: "staff", Provider: policy.TOTP}}})
	d := e.decide(c, "pw-for-alice", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	if d.Message != appliance.MsgEnterCode || e.duo.Pushes() != 0 {
		t.Errorf("message %q, %d pushes: want the TOTP challenge and no push", d.Message, e.duo.Pushes())
	}
}

// TestFraudOnOneLoginStopsTheOther: the same user at two NASes; one push
// is reported as fraud, the other approved later. The lock the fraud
// brought stands against the approval.
func TestFraudOnOneLoginStopsTheOther(t *testing.T) {
	e := newPushEnv(t, "")
	e.duo.Answer = func(_ string, n int) mfatest.Answer {
		if n == 1 {
			return mfatest.Answer{Outcome: mfatest.Fraud, After: 200 * time.Millisecond}
		}
		return mfatest.Answer{Outcome: mfatest.Approve, After: time.Second}
	}
	c := pushClient(policy.Push{Provider: "duo", Mode: policy.PushHold})
	done := make(chan appliance.Decision, 1)
	go func() { done <- e.decide(c, "pw-for-alice", nil) }()
	for e.duo.Pushes() < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	second := e.decide(c, "pw-for-alice", nil)
	expect(t, <-done, appliance.Reject, appliance.ReasonMFAPushFraud)
	expect(t, second, appliance.Reject, appliance.ReasonLockedOut)
	if e.duo.Pushes() != 2 {
		t.Errorf("got %d pushes, want 2", e.duo.Pushes())
	}
}
