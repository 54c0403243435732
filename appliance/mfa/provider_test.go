package mfa_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/mfa/mfatest"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

func newDuo(t *testing.T) (*mfatest.Duo, *mfa.Duo) {
	t.Helper()
	s := mfatest.NewDuo("DIWJ8X6AEYOR5OMC6TQ1", "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")
	t.Cleanup(s.Close)
	s.LongPoll = 2 * time.Second
	p, err := mfa.NewDuo(mfa.DuoSettings{APIHost: s.Host(), IntegrationKey: s.IKey, CAFile: mfatest.WriteCA(t, s.Certificate())}, secrets.Secret(s.SKey))
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func newOkta(t *testing.T) (*mfatest.Okta, *mfa.Okta) {
	t.Helper()
	s := mfatest.NewOkta("00QCjAl4MlV-WPXM-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	t.Cleanup(s.Close)
	p, err := mfa.NewOkta(mfa.OktaSettings{OrgURL: s.URL, CAFile: mfatest.WriteCA(t, s.Certificate())}, secrets.Secret(s.Token))
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// waitFor polls until the push is done.
func waitFor(t *testing.T, p mfa.Provider, push mfa.Push) mfa.PushResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		r, err := p.Poll(ctx, push)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Done() {
			return r
		}
		if ctx.Err() != nil {
			t.Fatalf("push still %s", r.Status)
		}
	}
}

func TestPushOutcomes(t *testing.T) {
	cases := []struct {
		outcome mfatest.Outcome
		want    mfa.Status
		okta    mfa.Status // Okta has no fraud result: REJECTED
	}{
		{mfatest.Approve, mfa.StatusApproved, mfa.StatusApproved},
		{mfatest.Deny, mfa.StatusDenied, mfa.StatusDenied},
		{mfatest.Fraud, mfa.StatusFraud, mfa.StatusDenied},
		{mfatest.Timeout, mfa.StatusTimeout, mfa.StatusTimeout},
	}
	for _, c := range cases {
		t.Run("duo/"+string(c.outcome), func(t *testing.T) {
			s, p := newDuo(t)
			s.PushTimeout = 300 * time.Millisecond
			s.SetUser("alice", mfatest.DuoUser{Push: true})
			s.Answer = func(string, int) mfatest.Answer {
				return mfatest.Answer{Outcome: c.outcome, After: 100 * time.Millisecond}
			}
			pre, err := p.Preauth(t.Context(), "alice", "192.0.2.7")
			if err != nil || pre.Result != mfa.PreauthAuth || !pre.Push {
				t.Fatalf("preauth: got %+v, %v; want auth with push", pre, err)
			}
			push, err := p.StartPush(t.Context(), "alice", mfa.PushInfo{IP: "192.0.2.7", Client: "VPN"})
			if err != nil {
				t.Fatal(err)
			}
			if got := waitFor(t, p, push); got.Status != c.want {
				t.Errorf("got %s, want %s", got.Status, c.want)
			}
			if s.Pushes() != 1 {
				t.Errorf("got %d pushes, want 1", s.Pushes())
			}
		})
		t.Run("okta/"+string(c.outcome), func(t *testing.T) {
			s, p := newOkta(t)
			s.PushTimeout = 300 * time.Millisecond
			s.SetUser(mfatest.OktaUser{Login: "alice@clinic.example", Push: true})
			s.Answer = func(string, int) mfatest.Answer {
				return mfatest.Answer{Outcome: c.outcome, After: 100 * time.Millisecond}
			}
			push, err := p.StartPush(t.Context(), "alice@clinic.example", mfa.PushInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if got := waitFor(t, p, push); got.Status != c.okta {
				t.Errorf("got %s, want %s", got.Status, c.okta)
			}
			if s.Pushes() != 1 {
				t.Errorf("got %d pushes, want 1", s.Pushes())
			}
		})
	}
}

func TestPreauthResults(t *testing.T) {
	s, p := newDuo(t)
	s.SetUser("bypass", mfatest.DuoUser{Preauth: "allow"})
	s.SetUser("locked", mfatest.DuoUser{Preauth: "deny"})
	for user, want := range map[string]mfa.PreauthResult{"bypass": mfa.PreauthAllow, "locked": mfa.PreauthDeny, "nobody": mfa.PreauthEnroll} {
		got, err := p.Preauth(t.Context(), user, "")
		if err != nil || got.Result != want {
			t.Errorf("duo %s: got %+v, %v; want %s", user, got, err, want)
		}
	}
	o, op := newOkta(t)
	o.SetUser(mfatest.OktaUser{Login: "bob", Status: "SUSPENDED", Push: true})
	o.SetUser(mfatest.OktaUser{Login: "carol"})
	for user, want := range map[string]mfa.PreauthResult{"bob": mfa.PreauthDeny, "carol": mfa.PreauthEnroll, "nobody": mfa.PreauthEnroll} {
		got, err := op.Preauth(t.Context(), user, "")
		if err != nil || got.Result != want {
			t.Errorf("okta %s: got %+v, %v; want %s", user, got, err, want)
		}
	}
}

// TestDuoStandInRefusesBadSignature shows the stand-in checks Duo's
// request signing: the official client's requests pass, a wrong secret
// key gets Duo's 40103, and a stale Date is refused.
func TestDuoStandInRefusesBadSignature(t *testing.T) {
	s, _ := newDuo(t)
	s.SetUser("alice", mfatest.DuoUser{Push: true})
	wrong, err := mfa.NewDuo(mfa.DuoSettings{APIHost: s.Host(), IntegrationKey: s.IKey, CAFile: mfatest.WriteCA(t, s.Certificate())}, secrets.Secret("not-the-secret-key"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Preauth(t.Context(), "alice", "")
	if !errors.Is(err, mfa.ErrRefused) || !strings.Contains(err.Error(), "40103") {
		t.Errorf("wrong secret key: got %v, want ErrRefused with 40103", err)
	}
	// A request signed right but dated an hour ago.
	params := url.Values{"username": {"alice"}}
	date := time.Now().Add(-time.Hour).UTC().Format(time.RFC1123Z)
	req, _ := http.NewRequest("POST", s.URL+"/auth/v2/preauth", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Date", date)
	req.Header.Set("Authorization", mfatest.Sign(s.IKey, s.SKey, date, "POST", s.Host(), "/auth/v2/preauth", params))
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stale Date: got HTTP %d, want 401", resp.StatusCode)
	}
	// The same, dated now, passes: the refusal above was the date.
	date = time.Now().UTC().Format(time.RFC1123Z)
	req, _ = http.NewRequest("POST", s.URL+"/auth/v2/preauth", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Date", date)
	req.Header.Set("Authorization", mfatest.Sign(s.IKey, s.SKey, date, "POST", s.Host(), "/auth/v2/preauth", params))
	if resp, err = s.Client().Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signed now: got HTTP %d, want 200", resp.StatusCode)
	}
}

func TestProviderFaults(t *testing.T) {
	faults := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  error
	}{
		{"5xx", func(w http.ResponseWriter) { http.Error(w, "upstream connect error", http.StatusBadGateway) }, mfa.ErrUnreachable},
		{"malformed JSON", func(w http.ResponseWriter) { w.Write([]byte(`{"stat":"OK","response":{"result":`)) }, mfa.ErrBadResponse},
		{"unknown result", func(w http.ResponseWriter) {
			w.Write([]byte(`{"stat":"OK","response":{"result":"maybe"}}`))
		}, mfa.ErrBadResponse},
	}
	for _, f := range faults {
		t.Run("duo/"+f.name, func(t *testing.T) {
			s, p := newDuo(t)
			s.Intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool { f.write(w); return true }
			if _, err := p.Preauth(t.Context(), "alice", ""); !errors.Is(err, f.want) {
				t.Errorf("got %v, want %v", err, f.want)
			}
		})
		t.Run("okta/"+f.name, func(t *testing.T) {
			s, p := newOkta(t)
			s.Intercept = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) bool { f.write(w); return true }
			if _, err := p.Preauth(t.Context(), "alice", ""); !errors.Is(err, f.want) {
				t.Errorf("got %v, want %v", err, f.want)
			}
		})
	}
	t.Run("slow", func(t *testing.T) {
		s, p := newDuo(t)
		s.Intercept = func(w http.ResponseWriter, r *http.Request, _ string, _ int) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			return true
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if _, err := p.Preauth(ctx, "alice", ""); !errors.Is(err, mfa.ErrUnreachable) {
			t.Errorf("got %v, want ErrUnreachable", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		// Without ca_file the Duo client trusts only Duo's pinned root.
		s, _ := newDuo(t)
		p, err := mfa.NewDuo(mfa.DuoSettings{APIHost: s.Host(), IntegrationKey: s.IKey}, secrets.Secret(s.SKey))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Preauth(t.Context(), "alice", ""); !errors.Is(err, mfa.ErrBadResponse) {
			t.Errorf("got %v, want ErrBadResponse", err)
		}
	})
	t.Run("okta wrong token", func(t *testing.T) {
		s, _ := newOkta(t)
		p, _ := mfa.NewOkta(mfa.OktaSettings{OrgURL: s.URL, CAFile: mfatest.WriteCA(t, s.Certificate())}, secrets.Secret("wrong"))
		if _, err := p.Preauth(t.Context(), "alice", ""); !errors.Is(err, mfa.ErrRefused) || !strings.Contains(err.Error(), "E0000011") {
			t.Errorf("got %v, want ErrRefused E0000011", err)
		}
	})
}

// TestOktaPollLinkStaysOnTheOrg: a poll link to another host is not
// followed, so the API token never leaves for it.
func TestOktaPollLinkStaysOnTheOrg(t *testing.T) {
	_, p := newOkta(t)
	_, err := p.Poll(t.Context(), mfa.Push{Poll: "https://attacker.example/api/v1/users/x/factors/y/transactions/z"})
	if !errors.Is(err, mfa.ErrBadResponse) {
		t.Errorf("got %v, want ErrBadResponse", err)
	}
}

func TestNumberMatching(t *testing.T) {
	s, p := newOkta(t)
	s.NumberMatching = true
	s.SetUser(mfatest.OktaUser{Login: "alice", Push: true})
	push, err := p.StartPush(t.Context(), "alice", mfa.PushInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if push.Number == "" {
		t.Error("okta: no number from a number matching challenge")
	}
	d, dp := newDuo(t)
	d.SetUser("alice", mfatest.DuoUser{Push: true, VerifiedPush: "708"})
	d.Answer = func(string, int) mfatest.Answer { return mfatest.Answer{Outcome: mfatest.Approve, After: time.Second} }
	dpush, err := dp.StartPush(t.Context(), "alice", mfa.PushInfo{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := dp.Poll(t.Context(), dpush)
	if err != nil || r.Status != mfa.StatusWaiting || r.Number != "708" {
		t.Errorf("duo verified push: got %+v, %v; want waiting with 708", r, err)
	}
}

func TestPasscodes(t *testing.T) {
	s, p := newDuo(t)
	s.SetUser("alice", mfatest.DuoUser{Push: true, Passcodes: []string{"123456"}})
	for _, c := range []struct {
		code string
		want mfa.Status
	}{{"123456", mfa.StatusApproved}, {"123456", mfa.StatusDenied}, {"000000", mfa.StatusDenied}} {
		if r, err := p.VerifyPasscode(t.Context(), "alice", c.code); err != nil || r.Status != c.want {
			t.Errorf("duo %s: got %+v, %v; want %s", c.code, r, err, c.want)
		}
	}
	o, op := newOkta(t)
	o.SetUser(mfatest.OktaUser{Login: "alice", TOTP: []string{"654321"}})
	for _, c := range []struct {
		code string
		want mfa.Status
	}{{"654321", mfa.StatusApproved}, {"654321", mfa.StatusDenied}} {
		if r, err := op.VerifyPasscode(t.Context(), "alice", c.code); err != nil || r.Status != c.want {
			t.Errorf("okta %s: got %+v, %v; want %s", c.code, r, err, c.want)
		}
	}
}
