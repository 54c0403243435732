package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/mfa/mfatest"
)

// Push MFA against the real NAS side: radclient with its own retransmit
// timer (-r 3 -t 3: a try every 3 s, 3 retries) against the daemon, whose
// Duo or Okta provider is a stand-in in this test process, reached over
// TLS with the stand-in's certificate as the provider's ca_file.

// radclientTimer is radclient with its retransmit timer, as a NAS.
func radclientTimer(t *testing.T, addr, attrs string) string {
	t.Helper()
	cmd := exec.Command("radclient", "-x", "-r", "3", "-t", "3", addr, "auth", secret)
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// sends counts the Access-Requests radclient sent (its first and its
// retransmits).
func sends(out string) int { return strings.Count(out, "Sent Access-Request") }

func setupDuo(t *testing.T, mode string) (string, *daemon, *mfatest.Duo) {
	t.Helper()
	data, d := setup(t)
	duo := mfatest.NewDuo("DIWJ8X6AEYOR5OMC6TQ1", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")
	t.Cleanup(duo.Close)
	duo.LongPoll = 2 * time.Second
	duo.SetUser("alice", mfatest.DuoUser{Push: true})
	mustCG(t, data, duo.SKey, "mfa", "provider", "set", "duo", "--duo", duo.Host(), "--integration-key", duo.IKey,
		"--ca-file", mfatest.WriteCA(t, duo.Certificate()), "--secret-stdin")
	mustCG(t, data, "", "mfa", "push", "local", "--provider", "duo", "--mode", mode)
	return data, d, duo
}

// TestRadclientPushSurvivesRetransmits: the phone approves after 4 s;
// radclient retransmits at 3 s; one push, and the Accept reaches it.
func TestRadclientPushSurvivesRetransmits(t *testing.T) {
	data, d, duo := setupDuo(t, "hold")
	duo.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Approve, After: 4 * time.Second}
	}
	out := radclientTimer(t, d.auth, pap("alice", "correct horse battery"))
	if got := received(out); got != "Access-Accept" {
		t.Fatalf("got %s, want Access-Accept\n%s\n%s", got, out, d.stderr)
	}
	if n := sends(out); n < 2 {
		t.Errorf("radclient sent %d times; the push was to outlast its first timeout\n%s", n, out)
	}
	if n := duo.Pushes(); n != 1 {
		t.Errorf("got %d pushes for one login, want 1", n)
	}
	show := mustCG(t, data, "", "audit", "tail")
	if !strings.Contains(show, "accept    ok") {
		t.Errorf("audit tail lacks the accept:\n%s", show)
	}
}

// TestRadclientPushDenied: a denied push is refused, with one push.
func TestRadclientPushDenied(t *testing.T) {
	data, d, duo := setupDuo(t, "hold")
	duo.Answer = func(string, int) mfatest.Answer { return mfatest.Answer{Outcome: mfatest.Deny, After: time.Second} }
	out := radclientTimer(t, d.auth, pap("alice", "correct horse battery"))
	if got := received(out); got != "Access-Reject" {
		t.Fatalf("got %s, want Access-Reject\n%s", got, out)
	}
	if n := duo.Pushes(); n != 1 {
		t.Errorf("got %d pushes, want 1", n)
	}
	if tail := mustCG(t, data, "", "audit", "tail"); !strings.Contains(tail, "mfa_push_denied") {
		t.Errorf("audit tail lacks mfa_push_denied:\n%s", tail)
	}
}

// TestRadclientPushChallengeWithNumber: Okta with number matching, mode
// challenge: the Access-Challenge's Reply-Message shows the number; the
// answer in that State (just OK) polls the push.
func TestRadclientPushChallengeWithNumber(t *testing.T) {
	data, d := setup(t)
	okta := mfatest.NewOkta("00Qe2e-token")
	t.Cleanup(okta.Close)
	okta.NumberMatching = true
	okta.SetUser(mfatest.OktaUser{Login: "alice", Push: true})
	okta.Answer = func(string, int) mfatest.Answer {
		return mfatest.Answer{Outcome: mfatest.Approve, After: 2 * time.Second}
	}
	mustCG(t, data, okta.Token, "mfa", "provider", "set", "okta", "--okta", okta.URL, "--number-matching",
		"--ca-file", mfatest.WriteCA(t, okta.Certificate()), "--secret-stdin")
	mustCG(t, data, "", "mfa", "push", "local", "--provider", "okta", "--mode", "challenge")
	out := radclientTimer(t, d.auth, pap("alice", "correct horse battery"))
	if got := received(out); got != "Access-Challenge" {
		t.Fatalf("got %s, want Access-Challenge\n%s", got, out)
	}
	if !strings.Contains(out, "Number to match on your phone: ") {
		t.Fatalf("no number in the Reply-Message:\n%s", out)
	}
	m := stateRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no State in the challenge:\n%s", out)
	}
	answer := fmt.Sprintf("User-Name = alice, User-Password = \"OK\", State = %s, Message-Authenticator = 0x00", m[1])
	out = radclientTimer(t, d.auth, answer)
	if got := received(out); got != "Access-Accept" {
		t.Fatalf("answer in the State: got %s, want Access-Accept\n%s\n%s", got, out, mustCG(t, data, "", "audit", "tail"))
	}
	out = radclientTimer(t, d.auth, answer)
	if got := received(out); got != "Access-Reject" {
		t.Fatalf("the State reused: got %s, want Access-Reject\n%s", got, out)
	}
	if n := okta.Pushes(); n != 1 {
		t.Errorf("got %d pushes, want 1", n)
	}
}
