package radius

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/appliancetest"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/mfa/mfatest"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// pushRig is a real core and RADIUS door on 127.0.0.1 with a Duo and an
// Okta stand-in configured as providers "duo" and "okta", a client for
// 127.0.0.1 ("vpn") and a user alice with a password.
type pushRig struct {
	core *appliancetest.Core
	addr *net.UDPAddr
	duo  *mfatest.Duo
	okta *mfatest.Okta
}

func newPushRig(t *testing.T, push policy.Push) *pushRig {
	t.Helper()
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	core := appliancetest.New(t, appliancetest.Options{})
	duo := mfatest.NewDuo("DIWJ8X6AEYOR5OMC6TQ1", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")
	t.Cleanup(duo.Close)
	duo.LongPoll = time.Second
	duo.SetUser("alice", mfatest.DuoUser{Push: true, Passcodes: []string{"493017"}})
	okta := mfatest.NewOkta("00Qtoken")
	t.Cleanup(okta.Close)
	okta.SetUser(mfatest.OktaUser{Login: "alice", Push: true})
	must(core.Admin.SetMFAProvider(ctx, admin.MFAProviderConfig{Name: "duo",
		Duo: &mfa.DuoSettings{APIHost: duo.Host(), IntegrationKey: duo.IKey, CAFile: mfatest.WriteCA(t, duo.Certificate())}, Secret: secrets.Secret(duo.SKey)}))
	must(core.Admin.SetMFAProvider(ctx, admin.MFAProviderConfig{Name: "okta",
		Okta: &mfa.OktaSettings{OrgURL: okta.URL, NumberMatching: true, CAFile: mfatest.WriteCA(t, okta.Certificate())}, Secret: secrets.Secret(okta.Token)}))
	_, err := core.Admin.AddClient(ctx, admin.NewClient{Name: "vpn", Address: "127.0.0.1/32", Secret: secrets.Secret(testSecret), Policy: policy.Default()})
	must(err)
	must(core.Admin.SetClientPush(ctx, "vpn", push))
	must(core.Admin.AddUser(ctx, admin.NewUser{Name: "alice", Groups: []string{"staff"}, Password: secrets.Secret("correct horse")}))
	s := &Server{Gate: core.Gate, Clients: core.Clients(appliance.DoorRADIUS), Logger: slog.New(slog.DiscardHandler), Workers: 2, DecideTimeout: 10 * time.Second}
	addr, done := listen(t, s.Serve)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return &pushRig{core: core, addr: addr, duo: duo, okta: okta}
}

// nasTimer is a NAS's retransmit timer: it sends a request, and again
// after gap while no answer came (the gap doubling each time with
// backoff), tries times in all.
type nasTimer struct {
	gap     time.Duration
	tries   int
	backoff bool
}

// The timers of docs/radius.md ("Retransmits"): a UniFi access point's
// hostapd (3 s, doubling), and a FortiGate with `config user radius`
// timeout 5 and remoteauthtimeout raised to 60 as Fortinet advises for
// MFA (a try every 5 s while it fits).
var (
	unifiTimer     = nasTimer{gap: 3 * time.Second, tries: 4, backoff: true}
	fortigateTimer = nasTimer{gap: 5 * time.Second, tries: 12}
)

// login sends b from its own socket on the NAS's timer and returns the
// answer (nil if the NAS gave up) and how many times it sent.
func (r *pushRig) login(t *testing.T, b []byte, timer nasTimer) (*radius.Packet, int) {
	t.Helper()
	return r.loginFrom(t, nas(t, r.addr), b, timer)
}

// loginFrom is login from the NAS socket c (a retransmit comes from the
// same port as the request it repeats).
func (r *pushRig) loginFrom(t *testing.T, c *net.UDPConn, b []byte, timer nasTimer) (*radius.Packet, int) {
	t.Helper()
	buf := make([]byte, radius.MaxPacketLength)
	gap := timer.gap
	for i := 1; i <= timer.tries; i++ {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(gap))
		if timer.backoff {
			gap *= 2
		}
		n, err := c.Read(buf)
		if err == nil {
			return checkSigned(t, buf[:n], b, testSecret), i
		}
	}
	return nil, timer.tries
}

func papWithState(t *testing.T, user, pw string, state []byte) []byte {
	t.Helper()
	p := accessRequest(t, user, pw)
	if state != nil {
		p.Add(rfc2865.State_Type, state)
	}
	return signed(t, p, testSecret)
}

func approveAfter(d time.Duration) func(string, int) mfatest.Answer {
	return func(string, int) mfatest.Answer { return mfatest.Answer{Outcome: mfatest.Approve, After: d} }
}

func TestRetransmitStormSendsOnePush(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushHold})
	r.duo.Answer = approveAfter(2 * time.Second)
	// A NAS gone mad: every 100 ms, 40 times.
	reply, sends := r.login(t, papWithState(t, "alice", "correct horse", nil), nasTimer{gap: 100 * time.Millisecond, tries: 40})
	if reply == nil || reply.Code != radius.CodeAccessAccept {
		t.Fatalf("got %v after %d sends, want Access-Accept", reply, sends)
	}
	if sends < 5 {
		t.Fatalf("the NAS sent %d times; the test wants a storm", sends)
	}
	if n := r.duo.Pushes(); n != 1 {
		t.Errorf("got %d pushes for one login, want 1", n)
	}
}

// TestPushSurvivesNASTimers: a UniFi and a FortiGate retransmitting on
// their own timers get one push per login and the Accept before they give
// up, each after it retransmitted.
func TestPushSurvivesNASTimers(t *testing.T) {
	cases := map[string]struct {
		timer nasTimer
		// approvals of the logins, in order, and the sends each must
		// have outlasted
		after []time.Duration
		sends []int
	}{
		// Sends at 0, 3, 9, 21 s.
		"unifi": {unifiTimer, []time.Duration{7 * time.Second}, []int{2}},
		// Sends every 5 s.
		"fortigate": {fortigateTimer, []time.Duration{12 * time.Second}, []int{3}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushAuto, Budget: 60})
			r.duo.Answer = func(_ string, n int) mfatest.Answer {
				return mfatest.Answer{Outcome: mfatest.Approve, After: c.after[n-1]}
			}
			for i := range c.after {
				reply, sends := r.login(t, papWithState(t, "alice", "correct horse", nil), c.timer)
				if reply == nil || reply.Code != radius.CodeAccessAccept {
					t.Fatalf("login %d: got %v after %d sends, want Access-Accept", i+1, reply, sends)
				}
				if sends < c.sends[i] {
					t.Errorf("login %d: answered after %d sends; the push was to outlast %d", i+1, sends, c.sends[i])
				}
				if n := r.duo.Pushes(); n != i+1 {
					t.Errorf("got %d pushes after %d logins", n, i+1)
				}
			}
		})
	}
}

// TestPushApprovedAfterNASGaveUpOpensNothing: mode hold with a 2 s
// budget; the phone approves at 3 s, after the refusal. The request's
// retransmit still gets the refusal, and a new login needs a new push.
func TestPushApprovedAfterNASGaveUpOpensNothing(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushHold, Budget: 2})
	r.duo.Answer = func(_ string, n int) mfatest.Answer {
		if n == 1 {
			return mfatest.Answer{Outcome: mfatest.Approve, After: 3 * time.Second}
		}
		return mfatest.Answer{Outcome: mfatest.Deny, After: 100 * time.Millisecond}
	}
	b := papWithState(t, "alice", "correct horse", nil)
	c := nas(t, r.addr)
	reply, _ := r.loginFrom(t, c, b, nasTimer{gap: 5 * time.Second, tries: 1})
	if reply == nil || reply.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject once the budget was spent", reply)
	}
	time.Sleep(1500 * time.Millisecond) // the phone approves meanwhile
	again, _ := r.loginFrom(t, c, b, nasTimer{gap: 2 * time.Second, tries: 1})
	if again == nil || again.Code != radius.CodeAccessReject {
		t.Fatalf("the same request again: got %v, want the cached Access-Reject", again)
	}
	fresh, _ := r.login(t, papWithState(t, "alice", "correct horse", nil), nasTimer{gap: 5 * time.Second, tries: 2})
	if fresh == nil || fresh.Code != radius.CodeAccessReject {
		t.Fatalf("a new login: got %v, want Access-Reject (its own push was denied)", fresh)
	}
	if n := r.duo.Pushes(); n != 2 {
		t.Errorf("got %d pushes, want 2 (one per login)", n)
	}
	rows, err := r.core.LastAudit(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, row := range rows {
		reasons = append(reasons, row.Reason)
	}
	if !strings.Contains(strings.Join(reasons, " "), string(appliance.ReasonMFAPushBudget)) {
		t.Errorf("audit reasons %v: want %s", reasons, appliance.ReasonMFAPushBudget)
	}
}

// TestPushStateGoodOnce: mode challenge answers at once; the next request
// in that State polls the push and is accepted; the State is then spent.
func TestPushStateGoodOnce(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushChallenge})
	r.duo.Answer = approveAfter(300 * time.Millisecond)
	first, _ := r.login(t, papWithState(t, "alice", "correct horse", nil), nasTimer{gap: 3 * time.Second, tries: 1})
	if first == nil || first.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v, want Access-Challenge", first)
	}
	if msg := rfc2865.ReplyMessage_GetString(first); msg != appliance.MsgPush {
		t.Errorf("Reply-Message %q, want %q", msg, appliance.MsgPush)
	}
	state := rfc2865.State_Get(first)
	ok, _ := r.login(t, papWithState(t, "alice", "", state), nasTimer{gap: 5 * time.Second, tries: 1})
	if ok == nil || ok.Code != radius.CodeAccessAccept {
		t.Fatalf("answer with the State: got %v, want Access-Accept", ok)
	}
	reused, _ := r.login(t, papWithState(t, "alice", "", state), nasTimer{gap: 5 * time.Second, tries: 1})
	if reused == nil || reused.Code != radius.CodeAccessReject {
		t.Fatalf("the State reused: got %v, want Access-Reject", reused)
	}
	if n := r.duo.Pushes(); n != 1 {
		t.Errorf("got %d pushes, want 1", n)
	}
}

// TestTwoNASesTwoPushes: the same user at two NASes at once gets two
// pushes, and each answer goes to its own request.
func TestTwoNASesTwoPushes(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushHold})
	var mu sync.Mutex
	r.duo.Answer = func(_ string, n int) mfatest.Answer {
		mu.Lock()
		defer mu.Unlock()
		if n == 1 {
			return mfatest.Answer{Outcome: mfatest.Approve, After: time.Second}
		}
		return mfatest.Answer{Outcome: mfatest.Deny, After: time.Second}
	}
	first := papWithState(t, "alice", "correct horse", nil)
	var wg sync.WaitGroup
	replies := make([]*radius.Packet, 2)
	wg.Add(1)
	go func() { defer wg.Done(); replies[0], _ = r.login(t, first, nasTimer{gap: 5 * time.Second, tries: 2}) }()
	waitFor(t, "the first push", func() bool { return r.duo.Pushes() == 1 })
	second := papWithState(t, "alice", "correct horse", nil)
	replies[1], _ = r.login(t, second, nasTimer{gap: 5 * time.Second, tries: 2})
	wg.Wait()
	if replies[0] == nil || replies[0].Code != radius.CodeAccessAccept {
		t.Errorf("first NAS: got %v, want Access-Accept (its push was approved)", replies[0])
	}
	if replies[1] == nil || replies[1].Code != radius.CodeAccessReject {
		t.Errorf("second NAS: got %v, want Access-Reject (its push was denied)", replies[1])
	}
	if n := r.duo.Pushes(); n != 2 {
		t.Errorf("got %d pushes, want 2", n)
	}
}

// TestNumberMatchingInReplyMessage: Okta's number challenge reaches the
// user in the Access-Challenge's Reply-Message.
func TestNumberMatchingInReplyMessage(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "okta", Mode: policy.PushHold})
	r.okta.NumberMatching = true
	r.okta.Answer = approveAfter(time.Second)
	first, _ := r.login(t, papWithState(t, "alice", "correct horse", nil), nasTimer{gap: 5 * time.Second, tries: 1})
	if first == nil || first.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v, want Access-Challenge (a number must be shown)", first)
	}
	msg := rfc2865.ReplyMessage_GetString(first)
	if !strings.HasPrefix(msg, "Number to match on your phone: ") {
		t.Fatalf("Reply-Message %q: want the number to match", msg)
	}
	ok, _ := r.login(t, papWithState(t, "alice", "", rfc2865.State_Get(first)), nasTimer{gap: 5 * time.Second, tries: 1})
	if ok == nil || ok.Code != radius.CodeAccessAccept {
		t.Fatalf("answer: got %v, want Access-Accept", ok)
	}
	if n := r.okta.Pushes(); n != 1 {
		t.Errorf("got %d pushes, want 1", n)
	}
}

// TestPasscodeInsteadOfPush: a Duo passcode typed in the challenge is
// checked with Duo.
func TestPasscodeInsteadOfPush(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushChallenge})
	r.duo.Answer = func(string, int) mfatest.Answer { return mfatest.Answer{Outcome: mfatest.Never} }
	first, _ := r.login(t, papWithState(t, "alice", "correct horse", nil), nasTimer{gap: 3 * time.Second, tries: 1})
	if first == nil || first.Code != radius.CodeAccessChallenge {
		t.Fatalf("got %v, want Access-Challenge", first)
	}
	ok, _ := r.login(t, papWithState(t, "alice", "493017", rfc2865.State_Get(first)), nasTimer{gap: 5 * time.Second, tries: 1})
	if ok == nil || ok.Code != radius.CodeAccessAccept {
		t.Fatalf("passcode: got %v, want Access-Accept", ok)
	}
}

// TestWaitingLoginsHoldNoWorker: six logins wait on pushes at once on a
// door with two workers. Were a waiting login to hold a worker, four would
// queue behind the first two pushes (2 s) and miss their NAS's 3.5 s.
func TestWaitingLoginsHoldNoWorker(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushHold})
	r.duo.Answer = approveAfter(2 * time.Second)
	var wg sync.WaitGroup
	replies := make([]*radius.Packet, 6)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i], _ = r.login(t, papWithState(t, "alice", "correct horse", nil), nasTimer{gap: 3500 * time.Millisecond, tries: 1})
		}()
	}
	wg.Wait()
	for i, p := range replies {
		if p == nil || p.Code != radius.CodeAccessAccept {
			t.Errorf("login %d: got %v, want Access-Accept in time", i+1, p)
		}
	}
	if n := r.duo.Pushes(); n != 6 {
		t.Errorf("got %d pushes, want 6", n)
	}
}

// TestNASThatStoppedGetsNoLateAccept: in mode hold, a NAS that resent
// once a second and then stopped has given up: the login is refused
// then, and the approval that comes later is not turned into an Accept
// for anyone.
func TestNASThatStoppedGetsNoLateAccept(t *testing.T) {
	r := newPushRig(t, policy.Push{Provider: "duo", Mode: policy.PushHold})
	r.duo.Answer = approveAfter(4 * time.Second)
	c := nas(t, r.addr)
	b := papWithState(t, "alice", "correct horse", nil)
	start := time.Now()
	if reply, _ := r.loginFrom(t, c, b, nasTimer{gap: time.Second, tries: 2}); reply != nil {
		t.Fatalf("got %v within 2 s; the push is approved at 4 s", reply.Code)
	}
	// The NAS has given up; the gate notices within half a gap more.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, radius.MaxPacketLength)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no final answer after the NAS stopped: %v", err)
	}
	if p := checkSigned(t, buf[:n], b, testSecret); p.Code != radius.CodeAccessReject {
		t.Fatalf("got %v, want Access-Reject", p.Code)
	}
	if took := time.Since(start); took >= 4*time.Second {
		t.Errorf("refused after %s: not before the approval at 4 s", took)
	}
	time.Sleep(time.Until(start.Add(4500 * time.Millisecond)))
	// The request again (a straggler) finds the refusal, not an Accept.
	again, _ := r.loginFrom(t, c, b, nasTimer{gap: 2 * time.Second, tries: 1})
	if again == nil || again.Code != radius.CodeAccessReject {
		t.Fatalf("the request again after the approval: got %v, want the Access-Reject", again)
	}
	if n := r.duo.Pushes(); n != 1 {
		t.Errorf("got %d pushes, want 1", n)
	}
}
