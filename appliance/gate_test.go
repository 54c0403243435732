package appliance_test

import (
	"context"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	gate  *appliance.Gate
	st    *store.Store
	adm   *admin.Service
	clock *clock
	dir   string
}

// fastParams keep argon2id cheap in tests; the parameters are stored with
// each hash, so the code path is the production one.
var fastParams = passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Monday 2026-11-30 10:00 UTC.
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	alog, err := audit.New(st, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	h, err := passwd.NewHasher(fastParams, 2)
	if err != nil {
		t.Fatal(err)
	}
	local, err := upstream.NewLocal(st, h)
	if err != nil {
		t.Fatal(err)
	}
	g, err := appliance.NewGate(appliance.Config{
		Store: st, Audit: alog, Hasher: h, Logger: slog.New(slog.DiscardHandler), Now: clk.Now,
		Upstreams: map[string]upstream.Verifier{"local": local},
	})
	if err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(st, alog, h, "test")
	if err != nil {
		t.Fatal(err)
	}
	adm.Now = clk.Now
	if err := adm.SetSetting(t.Context(), "timezone", "UTC"); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, gate: g, st: st, adm: adm, clock: clk, dir: dir}
}

func (e *env) addUser(name, pw string, groups ...string) {
	e.t.Helper()
	if err := e.adm.AddUser(e.t.Context(), admin.NewUser{Name: name, Password: secrets.Secret(pw), Groups: groups}); err != nil {
		e.t.Fatal(err)
	}
}

// enroll returns the user's TOTP seed.
func (e *env) enroll(name string) []byte {
	e.t.Helper()
	en, err := e.adm.EnrollTOTP(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return seed
}

func (e *env) code(seed []byte, at time.Time) string {
	e.t.Helper()
	c, err := mfa.HOTP(seed, uint64(mfa.Step(at, 30)), 6, "SHA1")
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func client(mut func(*policy.Policy)) store.Client {
	p := policy.Default()
	if mut != nil {
		mut(&p)
	}
	return store.Client{Name: "ap", Door: "radius", Prefix: netip.MustParsePrefix("10.0.0.0/24"), Policy: p}
}

func mfaOff(p *policy.Policy) { p.MFA = policy.MFAOff }

func (e *env) decide(c store.Client, user, pw string, state []byte) appliance.Decision {
	e.t.Helper()
	d, err := e.gate.Decide(context.Background(), appliance.Request{
		Door: appliance.DoorRADIUS, Client: c, User: user, Password: secrets.Secret(pw),
		Method: appliance.MethodPAP, State: state, Source: netip.MustParseAddr("10.0.0.5"),
		Device: "AA-BB-CC-DD-EE-01",
	})
	if err != nil {
		e.t.Fatalf("Decide: %v", err)
	}
	return d
}

func expect(t *testing.T, d appliance.Decision, outcome appliance.Outcome, reason appliance.Reason) {
	t.Helper()
	if d.Outcome != outcome || d.Reason != reason {
		t.Fatalf("got %s/%s (steps %v), want %s/%s", d.Outcome, d.Reason, d.Steps, outcome, reason)
	}
}

func TestPasswordOnlyClientAccepts(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	d := e.decide(client(mfaOff), "alice", "correct horse", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if d.User != "alice" || d.AuditSeq == 0 {
		t.Fatalf("got user %q audit %d, want alice and an audit entry", d.User, d.AuditSeq)
	}
}

func TestRefusalsBeforePasswordLookAlike(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.addUser("bob", "battery staple")
	if err := e.adm.EditUser(t.Context(), "bob", admin.UserEdit{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	c := client(mfaOff)
	cases := []struct {
		user, pw string
		reason   appliance.Reason
	}{
		{"alice", "wrong", appliance.ReasonBadPassword},
		{"nobody", "wrong", appliance.ReasonUnknownUser},
		// A disabled account with a wrong password must not reveal that
		// it is disabled.
		{"bob", "wrong", appliance.ReasonBadPassword},
	}
	for _, tc := range cases {
		t.Run(tc.user, func(t *testing.T) {
			d := e.decide(c, tc.user, tc.pw, nil)
			expect(t, d, appliance.Reject, tc.reason)
			if d.Message != appliance.MsgDenied {
				t.Fatalf("got message %q, want the generic %q", d.Message, appliance.MsgDenied)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDisabledUserRejected(t *testing.T) {
	e := newEnv(t)
	e.addUser("bob", "battery staple")
	if err := e.adm.EditUser(t.Context(), "bob", admin.UserEdit{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.decide(client(mfaOff), "bob", "battery staple", nil), appliance.Reject, appliance.ReasonDisabled)
}

func TestExpiredUserRejected(t *testing.T) {
	e := newEnv(t)
	e.addUser("vendor", "vendor pass 1")
	if err := e.adm.EditUser(t.Context(), "vendor", admin.UserEdit{ExpiresAt: ptr(e.clock.Now().Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	d := e.decide(client(mfaOff), "vendor", "vendor pass 1", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if d.Attributes.SessionTimeout != 3600 {
		t.Fatalf("got Session-Timeout %d, want 3600 (the session must end with the account)", d.Attributes.SessionTimeout)
	}
	e.clock.Add(time.Hour)
	expect(t, e.decide(client(mfaOff), "vendor", "vendor pass 1", nil), appliance.Reject, appliance.ReasonExpired)
}

func TestOutsideHoursRejected(t *testing.T) {
	e := newEnv(t)
	e.addUser("nurse", "night shift 1")
	if err := e.adm.SetSetting(t.Context(), "timezone", "America/Chicago"); err != nil {
		t.Fatal(err)
	}
	// Mon-Fri 07:00-19:00 in Chicago; the clock says Monday 10:00 UTC =
	// 04:00 in Chicago: outside.
	if err := e.adm.EditUser(t.Context(), "nurse", admin.UserEdit{Hours: ptr("Mon-Fri 07:00-19:00")}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.decide(client(mfaOff), "nurse", "night shift 1", nil), appliance.Reject, appliance.ReasonOutsideHours)
	e.clock.Add(8 * time.Hour) // 12:00 in Chicago
	d := e.decide(client(mfaOff), "nurse", "night shift 1", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if d.Attributes.SessionTimeout != 7*3600 {
		t.Fatalf("got Session-Timeout %d, want %d (until 19:00)", d.Attributes.SessionTimeout, 7*3600)
	}
}

func TestGroupNotAllowed(t *testing.T) {
	e := newEnv(t)
	e.addUser("clerk", "front desk 1", "frontdesk")
	e.addUser("doc", "clinician 1", "clinicians")
	c := client(func(p *policy.Policy) { mfaOff(p); p.AllowedGroups = []string{"Clinicians"} })
	expect(t, e.decide(c, "clerk", "front desk 1", nil), appliance.Reject, appliance.ReasonGroupNotAllowed)
	expect(t, e.decide(c, "doc", "clinician 1", nil), appliance.Accept, appliance.ReasonOK)
}

func TestGroupRulesGiveVLAN(t *testing.T) {
	e := newEnv(t)
	e.addUser("doc", "clinician 1", "staff", "clinicians")
	c := client(func(p *policy.Policy) {
		mfaOff(p)
		p.SessionTimeout = 28800
		p.Rules = []policy.Rule{{Group: "clinicians", VLAN: 20, Class: "clin"}, {Group: "staff", VLAN: 30}}
	})
	d := e.decide(c, "doc", "clinician 1", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	want := appliance.Attributes{VLAN: 20, SessionTimeout: 28800, Class: "clin"}
	if d.Attributes != want {
		t.Fatalf("got %+v, want %+v", d.Attributes, want)
	}
}

func TestDeviceNotBoundRejected(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.addUser("bob", "battery staple")
	c := client(func(p *policy.Policy) { mfaOff(p); p.RequireDevice = true })
	// The request's Calling-Station-Id is AA-BB-CC-DD-EE-01.
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Reject, appliance.ReasonDeviceUnknown)
	if _, err := e.adm.AddDevice(t.Context(), "aa:bb:cc:dd:ee:01", "bob", "bob's laptop"); err != nil {
		t.Fatal(err)
	}
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Reject, appliance.ReasonDeviceUnknown)
	expect(t, e.decide(c, "bob", "battery staple", nil), appliance.Accept, appliance.ReasonOK)

	d, err := e.gate.Decide(t.Context(), appliance.Request{Door: appliance.DoorRADIUS, Client: c, User: "bob",
		Password: secrets.Secret("battery staple"), Method: appliance.MethodPAP})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, d, appliance.Reject, appliance.ReasonDeviceMissing)
}

func TestAppendedCodeAccepted(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	d := e.decide(client(nil), "alice", "correct horse,"+e.code(seed, e.clock.Now()), nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
}

func TestReplayedCodeRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	code := e.code(seed, e.clock.Now())
	expect(t, e.decide(client(nil), "alice", "correct horse,"+code, nil), appliance.Accept, appliance.ReasonOK)
	e.clock.Add(10 * time.Second)
	expect(t, e.decide(client(nil), "alice", "correct horse,"+code, nil), appliance.Reject, appliance.ReasonMFAReplay)
	// An older code than the last accepted one is a replay too.
	old := e.code(seed, e.clock.Now().Add(-30*time.Second))
	expect(t, e.decide(client(nil), "alice", "correct horse,"+old, nil), appliance.Reject, appliance.ReasonMFAReplay)
}

func TestCodeFromWrongWindowRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	for _, off := range []time.Duration{-90 * time.Second, 90 * time.Second, -10 * time.Minute} {
		d := e.decide(client(nil), "alice", "correct horse,"+e.code(seed, e.clock.Now().Add(off)), nil)
		expect(t, d, appliance.Reject, appliance.ReasonMFABadCode)
	}
	// One step of drift either way is accepted.
	expect(t, e.decide(client(nil), "alice", "correct horse,"+e.code(seed, e.clock.Now().Add(30*time.Second)), nil), appliance.Accept, appliance.ReasonOK)
}

func TestChallengeRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	d := e.decide(client(nil), "alice", "correct horse", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	if len(d.State) != 16 || d.Message != appliance.MsgEnterCode {
		t.Fatalf("got State %x message %q, want 16 bytes and the code prompt", d.State, d.Message)
	}
	e.clock.Add(20 * time.Second)
	expect(t, e.decide(client(nil), "alice", e.code(seed, e.clock.Now()), d.State), appliance.Accept, appliance.ReasonOK)
}

func TestStateUsableOnce(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	d := e.decide(client(nil), "alice", "correct horse", nil)
	expect(t, e.decide(client(nil), "alice", "000000", d.State), appliance.Reject, appliance.ReasonMFABadCode)
	expect(t, e.decide(client(nil), "alice", e.code(seed, e.clock.Now()), d.State), appliance.Reject, appliance.ReasonChallengeInvalid)
}

func TestStateFromAnotherUserRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.addUser("mallory", "mallory pass")
	e.enroll("alice")
	mseed := e.enroll("mallory")
	// mallory knows her own code; she tries to finish alice's challenge.
	d := e.decide(client(nil), "alice", "correct horse", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	expect(t, e.decide(client(nil), "mallory", e.code(mseed, e.clock.Now()), d.State), appliance.Reject, appliance.ReasonChallengeInvalid)
	// And a State from another client is refused too.
	d = e.decide(client(nil), "mallory", "mallory pass", nil)
	other := client(nil)
	other.Name = "vpn"
	expect(t, e.decide(other, "mallory", e.code(mseed, e.clock.Now()), d.State), appliance.Reject, appliance.ReasonChallengeInvalid)
	// A made-up State is refused.
	expect(t, e.decide(client(nil), "mallory", e.code(mseed, e.clock.Now()), []byte("0123456789abcdef")), appliance.Reject, appliance.ReasonChallengeInvalid)
}

func TestExpiredStateRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	d := e.decide(client(nil), "alice", "correct horse", nil)
	e.clock.Add(121 * time.Second)
	expect(t, e.decide(client(nil), "alice", e.code(seed, e.clock.Now()), d.State), appliance.Reject, appliance.ReasonChallengeExpired)
}

func TestPasswordWithCommaStillWorks(t *testing.T) {
	e := newEnv(t)
	e.addUser("carol", "pass,word")     // comma, no code shape after it
	e.addUser("dave", "hunter2,123456") // ends like an appended code
	cseed := e.enroll("carol")
	dseed := e.enroll("dave")
	c := client(nil)
	expect(t, e.decide(c, "carol", "pass,word", nil), appliance.Challenge, appliance.ReasonMFAChallenge)
	expect(t, e.decide(c, "carol", "pass,word,"+e.code(cseed, e.clock.Now()), nil), appliance.Accept, appliance.ReasonOK)
	expect(t, e.decide(c, "dave", "hunter2,123456", nil), appliance.Challenge, appliance.ReasonMFAChallenge)
	expect(t, e.decide(c, "dave", "hunter2,123456,"+e.code(dseed, e.clock.Now()), nil), appliance.Accept, appliance.ReasonOK)
}

func TestAppendOnlyClientNeedsCode(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.enroll("alice")
	d := e.decide(client(func(p *policy.Policy) { p.Style = policy.StyleAppend }), "alice", "correct horse", nil)
	expect(t, d, appliance.Reject, appliance.ReasonMFARequired)
	if d.State != nil {
		t.Fatal("got a State from an append-only client, want none")
	}
}

func TestMFARequiredButNotEnrolled(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	expect(t, e.decide(client(nil), "alice", "correct horse", nil), appliance.Reject, appliance.ReasonMFANotEnrolled)
	d := e.decide(client(func(p *policy.Policy) { p.MFA = policy.MFAEnrolled }), "alice", "correct horse", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !strings.Contains(strings.Join(d.Notes, ","), "mfa_not_enrolled") {
		t.Fatalf("got notes %v, want mfa_not_enrolled recorded", d.Notes)
	}
}

func TestLockoutAfterRepeatedFailures(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	c := client(mfaOff)
	for i := range 5 {
		expect(t, e.decide(c, "alice", "guess", nil), appliance.Reject, appliance.ReasonBadPassword)
		_ = i
	}
	// Locked: even the right password is refused, with the generic text.
	d := e.decide(c, "alice", "correct horse", nil)
	expect(t, d, appliance.Reject, appliance.ReasonLockedOut)
	if d.Message != appliance.MsgDenied {
		t.Fatalf("got message %q, want the generic one", d.Message)
	}
	rows, err := e.st.AuditRows(t.Context(), store.AuditFilter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var lockEntries int
	for _, r := range rows {
		if r.Kind == audit.KindSystem && r.Reason == string(appliance.ReasonLockedOut) {
			lockEntries++
		}
	}
	if lockEntries != 1 {
		t.Fatalf("got %d lock audit entries, want 1", lockEntries)
	}
	e.clock.Add(15 * time.Minute)
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	// Success cleared the count: four more failures do not lock.
	for range 4 {
		e.decide(c, "alice", "guess", nil)
	}
	expect(t, e.decide(c, "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
}

func TestBadCodesLockOut(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	for range 5 {
		expect(t, e.decide(client(nil), "alice", "correct horse,000000", nil), appliance.Reject, appliance.ReasonMFABadCode)
	}
	expect(t, e.decide(client(nil), "alice", "correct horse,"+e.code(seed, e.clock.Now()), nil), appliance.Reject, appliance.ReasonLockedOut)
}

func TestLockedUserCannotAnswerChallenge(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	d := e.decide(client(nil), "alice", "correct horse", nil)
	for range 5 {
		e.decide(client(mfaOff), "alice", "guess", nil)
	}
	expect(t, e.decide(client(nil), "alice", e.code(seed, e.clock.Now()), d.State), appliance.Reject, appliance.ReasonLockedOut)
}

func TestUnsupportedMethodsRefused(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	for _, m := range []appliance.Method{appliance.MethodCHAP, appliance.MethodMSCHAP, appliance.MethodEAP, appliance.MethodNone} {
		t.Run(string(m), func(t *testing.T) {
			d, err := e.gate.Decide(t.Context(), appliance.Request{Door: appliance.DoorRADIUS, Client: client(mfaOff), User: "alice", Method: m})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, d, appliance.Reject, appliance.ReasonUnsupportedAuth)
		})
	}
}

func TestBadUserNamesRefused(t *testing.T) {
	e := newEnv(t)
	for name, user := range map[string]string{
		"empty":     "",
		"not utf-8": "al\xffice",
		"300 bytes": strings.Repeat("a", 300),
		"control":   "alice\x00",
		"newline":   "alice\nreason=ok",
		"spaces":    " alice",
	} {
		t.Run(name, func(t *testing.T) {
			d := e.decide(client(mfaOff), user, "whatever", nil)
			expect(t, d, appliance.Reject, appliance.ReasonBadUserName)
		})
	}
	// The audit stores them safely: valid UTF-8, no control characters.
	rows, err := e.st.AuditRows(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if !utf8.ValidString(r.User) || strings.ContainsAny(r.User, "\x00\n") || len(r.User) > 128 {
			t.Fatalf("got audit user %q, want it sanitised", r.User)
		}
	}
}

func TestInvalidRequestRefusedAndAudited(t *testing.T) {
	e := newEnv(t)
	d, err := e.gate.Decide(t.Context(), appliance.Request{Door: appliance.DoorRADIUS, Client: client(nil), User: "alice",
		Method: appliance.MethodPAP, Invalid: appliance.ReasonBadRequest})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, d, appliance.Reject, appliance.ReasonBadRequest)
	if d.AuditSeq == 0 {
		t.Fatal("got no audit entry for a refused bad request")
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	db, err := sql.Open("sqlite", filepath.Join(e.dir, store.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk trouble'); END`); err != nil {
		t.Fatal(err)
	}
	d, err := e.gate.Decide(t.Context(), appliance.Request{Door: appliance.DoorRADIUS, Client: client(mfaOff), User: "alice",
		Password: secrets.Secret("correct horse"), Method: appliance.MethodPAP})
	if err == nil {
		t.Fatal("got no error when the audit entry could not be written")
	}
	expect(t, d, appliance.Reject, appliance.ReasonInternal)
}

func TestEveryDecisionAudited(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	before, _ := e.st.AuditRows(t.Context(), store.AuditFilter{})
	e.decide(client(mfaOff), "alice", "correct horse", nil)
	e.decide(client(mfaOff), "alice", "nope", nil)
	e.decide(client(mfaOff), "ghost", "nope", nil)
	after, _ := e.st.AuditRows(t.Context(), store.AuditFilter{})
	var got []string
	for _, r := range after[len(before):] {
		got = append(got, r.Outcome+"/"+r.Reason+"/"+r.User)
	}
	want := "accept/ok/alice reject/bad_password/alice reject/unknown_user/ghost"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

func TestChallengeTableBounded(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	e.enroll("alice")
	alog, _ := audit.New(e.st, e.clock.Now)
	h, _ := passwd.NewHasher(fastParams, 1)
	local, _ := upstream.NewLocal(e.st, h)
	g, err := appliance.NewGate(appliance.Config{Store: e.st, Audit: alog, Hasher: h, Logger: slog.New(slog.DiscardHandler),
		Now: e.clock.Now, Upstreams: map[string]upstream.Verifier{"local": local}, MaxChallenges: 2})
	if err != nil {
		t.Fatal(err)
	}
	req := appliance.Request{Door: appliance.DoorRADIUS, Client: client(nil), User: "alice", Password: secrets.Secret("correct horse"), Method: appliance.MethodPAP}
	for range 2 {
		d, _ := g.Decide(t.Context(), req)
		expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	}
	d, _ := g.Decide(t.Context(), req)
	expect(t, d, appliance.Reject, appliance.ReasonChallengeFull)
	// Expired challenges make room again.
	e.clock.Add(3 * time.Minute)
	d, _ = g.Decide(t.Context(), req)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
}

func TestNewGateRefusesMissingDependencies(t *testing.T) {
	if _, err := appliance.NewGate(appliance.Config{}); err == nil {
		t.Fatal("got a gate without a store, want an error")
	}
}

// fakeUpstream stands in for a directory in gate unit tests (the real
// connectors are tested against FreeRADIUS and slapd).
type fakeUpstream struct {
	users map[string]string // name → password
	err   error             // returned for every call when set
}

func (f fakeUpstream) Verify(_ context.Context, user string, pw secrets.Secret) (upstream.Identity, error) {
	if f.err != nil {
		return upstream.Identity{}, f.err
	}
	want, ok := f.users[user]
	if !ok {
		return upstream.Identity{}, upstream.ErrUnknownUser
	}
	if want != string(pw) {
		return upstream.Identity{}, upstream.ErrBadCredentials
	}
	return upstream.Identity{Name: user, Groups: []string{"corp-staff"}}, nil
}

func newEnvWithUpstream(t *testing.T, up upstream.Verifier) *env {
	t.Helper()
	e := newEnv(t)
	e.gate = newGateWith(t, e, up, fastParams)
	return e
}

func corp(p *policy.Policy) { p.Upstream, p.MFA = "corp", policy.MFAOff }

func TestUpstreamUserProvisioned(t *testing.T) {
	e := newEnvWithUpstream(t, fakeUpstream{users: map[string]string{"dana": "dana pw"}})
	d := e.decide(client(corp), "dana", "dana pw", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	u, err := e.st.UserByName(t.Context(), "dana")
	if err != nil || u.Source != "corp" || u.PasswordHash != "" {
		t.Fatalf("got %+v %v, want a provisioned record from corp without a password", u, err)
	}
	if !slices.Contains(d.Groups, "corp-staff") {
		t.Fatalf("got groups %v, want the upstream's", d.Groups)
	}
}

func TestUpstreamCannotTakeOverLocalAccount(t *testing.T) {
	e := newEnvWithUpstream(t, fakeUpstream{users: map[string]string{"alice": "directory pw"}})
	e.addUser("alice", "local password", "admins")
	d := e.decide(client(corp), "alice", "directory pw", nil)
	expect(t, d, appliance.Reject, appliance.ReasonUpstreamRefused)
}

func TestUpstreamLockoutRevealsNothing(t *testing.T) {
	e := newEnvWithUpstream(t, fakeUpstream{err: upstream.ErrAccountLockedOut})
	d := e.decide(client(corp), "anyone", "any", nil)
	expect(t, d, appliance.Reject, appliance.ReasonLockedOut)
	if d.Message != appliance.MsgDenied {
		t.Fatalf("got message %q, want the generic one (AD reports a lock whatever the password)", d.Message)
	}
}

func TestUnreachableUpstreamFailsClosed(t *testing.T) {
	e := newEnvWithUpstream(t, fakeUpstream{err: fmt.Errorf("%w: timeout", upstream.ErrUnreachable)})
	expect(t, e.decide(client(corp), "dana", "dana pw", nil), appliance.Reject, appliance.ReasonUpstreamDown)
}

// fakeAD accepts alice's password under AD's three name forms, as the LDAP
// connector does against Active Directory.
type fakeAD struct{}

func (fakeAD) Canonical(user string) string {
	if i := strings.IndexByte(user, '\\'); i >= 0 {
		return user[i+1:]
	}
	if i := strings.LastIndexByte(user, '@'); i > 0 {
		return user[:i]
	}
	return user
}

func (a fakeAD) Verify(_ context.Context, user string, pw secrets.Secret) (upstream.Identity, error) {
	if a.Canonical(user) != "alice" {
		return upstream.Identity{}, upstream.ErrUnknownUser
	}
	if string(pw) != "ad pw" {
		return upstream.Identity{}, upstream.ErrBadCredentials
	}
	return upstream.Identity{Name: "alice"}, nil
}

func TestLockoutHoldsWhateverNameFormIsTyped(t *testing.T) {
	e := newEnvWithUpstream(t, fakeAD{})
	c := client(func(p *policy.Policy) { p.Upstream = "corp" })
	// First login provisions alice; she enrols.
	expect(t, e.decide(c, "alice", "ad pw", nil), appliance.Reject, appliance.ReasonMFANotEnrolled)
	seed := e.enroll("alice")
	for _, typed := range []string{`CLINIC\alice`, "alice@clinic.local", "alice", `CLINIC\alice`, "alice@clinic.local"} {
		expect(t, e.decide(c, typed, "ad pw,000000", nil), appliance.Reject, appliance.ReasonMFABadCode)
	}
	for _, typed := range []string{"alice", `CLINIC\alice`, "alice@clinic.local"} {
		d := e.decide(c, typed, "ad pw,"+e.code(seed, e.clock.Now()), nil)
		expect(t, d, appliance.Reject, appliance.ReasonLockedOut)
	}
	// Wrong passwords typed in another form count against the same record.
	e.clock.Add(16 * time.Minute)
	for range 5 {
		expect(t, e.decide(c, `CLINIC\alice`, "guess", nil), appliance.Reject, appliance.ReasonBadPassword)
	}
	expect(t, e.decide(c, "alice", "ad pw,"+e.code(seed, e.clock.Now()), nil), appliance.Reject, appliance.ReasonLockedOut)
}

func TestChallengeAnsweredUnderTheTypedName(t *testing.T) {
	e := newEnvWithUpstream(t, fakeAD{})
	c := client(func(p *policy.Policy) { p.Upstream = "corp" })
	e.decide(c, "alice", "ad pw", nil)
	seed := e.enroll("alice")
	d := e.decide(c, `CLINIC\alice`, "ad pw", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	expect(t, e.decide(c, `CLINIC\alice`, e.code(seed, e.clock.Now()), d.State), appliance.Accept, appliance.ReasonOK)
}

// switchable is a directory the test can take down.
type switchable struct {
	fakeUpstream
	down atomic.Bool
}

func (s *switchable) Verify(ctx context.Context, user string, pw secrets.Secret) (upstream.Identity, error) {
	if s.down.Load() {
		return upstream.Identity{}, fmt.Errorf("%w: timeout", upstream.ErrUnreachable)
	}
	return s.fakeUpstream.Verify(ctx, user, pw)
}

// newGateWith builds a gate on e's store whose "corp" upstream is up, with
// params for its hasher (the cache worker's hash).
func newGateWith(t *testing.T, e *env, up upstream.Verifier, params passwd.Params) *appliance.Gate {
	t.Helper()
	alog, _ := audit.New(e.st, e.clock.Now)
	h, err := passwd.NewHasher(params, 1)
	if err != nil {
		t.Fatal(err)
	}
	local, _ := upstream.NewLocal(e.st, h)
	g, err := appliance.NewGate(appliance.Config{Store: e.st, Audit: alog, Hasher: h, Logger: slog.New(slog.DiscardHandler),
		Now: e.clock.Now, Upstreams: map[string]upstream.Verifier{"local": local, "corp": up}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func cachedCorp(p *policy.Policy) {
	p.Upstream, p.Failmode, p.MFA, p.Style = "corp", policy.FailCached, policy.MFAOff, policy.StyleChallenge
}

// waitForCacheJob returns once the cache worker has taken every queued
// verified password.
func waitForCacheJob(g *appliance.Gate) {
	for appliance.QueuedCacheJobs(g) > 0 {
		runtime.Gosched()
	}
}

func (e *env) cachedVerifier(user string) error {
	e.t.Helper()
	u, err := e.st.UserByName(e.t.Context(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.st.CachedVerifierFor(e.t.Context(), u.ID, "corp")
	return err
}

// TestCloseWaitsForTheCacheWorker: Close returns only once the worker has
// stored the verified password it was hashing, so whoever closes the store
// next cannot pull it from under the worker.
func TestCloseWaitsForTheCacheWorker(t *testing.T) {
	e := newEnv(t)
	// A slow hash keeps the worker busy while Close is called.
	g := newGateWith(t, e, fakeUpstream{users: map[string]string{"dana": "dana pw"}}, passwd.Params{MemoryKiB: 8 * 1024, Time: 2, Threads: 1})
	e.gate = g
	expect(t, e.decide(client(cachedCorp), "dana", "dana pw", nil), appliance.Accept, appliance.ReasonOK)
	waitForCacheJob(g)
	g.Close()
	if err := e.cachedVerifier("dana"); err != nil {
		t.Fatalf("got %v reading the verifier right after Close, want the one the worker held stored", err)
	}
	g.Close() // a second Close is harmless
}

// TestNoVerifierOlderThanTheLastLoginAfterClose: a login after Close
// cannot queue its password, so the older verifier goes instead of
// standing for a password the upstream verified since.
func TestNoVerifierOlderThanTheLastLoginAfterClose(t *testing.T) {
	e := newEnv(t)
	g := newGateWith(t, e, fakeUpstream{users: map[string]string{"dana": "dana pw"}}, fastParams)
	e.gate = g
	expect(t, e.decide(client(cachedCorp), "dana", "dana pw", nil), appliance.Accept, appliance.ReasonOK)
	waitForCacheJob(g)
	g.Close()
	if err := e.cachedVerifier("dana"); err != nil {
		t.Fatalf("got %v, want a verifier from the first login", err)
	}
	expect(t, e.decide(client(cachedCorp), "dana", "dana pw", nil), appliance.Accept, appliance.ReasonOK)
	if err := e.cachedVerifier("dana"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v reading the verifier after a login the closed gate could not cache, want it deleted", err)
	}
}

// TestCachedCredentialNeedsACode: with the upstream down, failmode cached
// accepts the password it verified last, and only with a code, which a
// challenge asks for even on a client without MFA.
func TestCachedCredentialNeedsACode(t *testing.T) {
	e := newEnv(t)
	up := &switchable{fakeUpstream: fakeUpstream{users: map[string]string{"dana": "dana pw"}}}
	g := newGateWith(t, e, up, fastParams)
	e.gate = g
	c := client(cachedCorp)
	expect(t, e.decide(c, "dana", "dana pw", nil), appliance.Accept, appliance.ReasonOK)
	waitForCacheJob(g)
	seed := e.enroll("dana")
	for e.cachedVerifier("dana") != nil {
		runtime.Gosched() // the worker is storing it
	}
	up.down.Store(true)

	expect(t, e.decide(c, "dana", "not dana pw", nil), appliance.Reject, appliance.ReasonBadPassword)
	d := e.decide(c, "dana", "dana pw", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	d = e.decide(c, "dana", e.code(seed, e.clock.Now()), d.State)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !slices.Contains(d.Notes, "accepted_from_cached_credential") || !slices.Contains(d.Groups, "corp-staff") {
		t.Fatalf("got notes %v, groups %v; want the cache's note and the groups the upstream verified", d.Notes, d.Groups)
	}
	// Past the cache window the cached password no longer stands in.
	e.clock.Add(8 * 24 * time.Hour)
	expect(t, e.decide(c, "dana", "dana pw", nil), appliance.Reject, appliance.ReasonUpstreamDown)
}

// TestFailmodeSecureNeverUsesTheCache: a verifier cached while the
// client was "cached" is not consulted once the operator switches it to
// "secure" (issue 16, finding 9): not for a new login, and not for the
// answer to a challenge the cache started; switched back, it is again.
func TestFailmodeSecureNeverUsesTheCache(t *testing.T) {
	e := newEnv(t)
	up := &switchable{fakeUpstream: fakeUpstream{users: map[string]string{"dana": "dana pw"}}}
	g := newGateWith(t, e, up, fastParams)
	e.gate = g
	cached, secure := client(cachedCorp), client(func(p *policy.Policy) { cachedCorp(p); p.Failmode = policy.FailSecure })
	expect(t, e.decide(cached, "dana", "dana pw", nil), appliance.Accept, appliance.ReasonOK)
	waitForCacheJob(g)
	seed := e.enroll("dana")
	for e.cachedVerifier("dana") != nil {
		runtime.Gosched()
	}
	up.down.Store(true)
	for i, step := range []struct {
		c    store.Client
		want appliance.Outcome
	}{{secure, appliance.Reject}, {cached, appliance.Challenge}, {secure, appliance.Reject}, {cached, appliance.Challenge}} {
		d := e.decide(step.c, "dana", "dana pw", nil)
		if d.Outcome != step.want {
			t.Fatalf("step %d (%s): got %s %s, want %s", i, step.c.Policy.Failmode, d.Outcome, d.Reason, step.want)
		}
		if step.want == appliance.Reject && d.Reason != appliance.ReasonUpstreamDown {
			t.Fatalf("step %d: got reason %s, want %s", i, d.Reason, appliance.ReasonUpstreamDown)
		}
	}
	// A challenge the cache started, answered after the switch to secure.
	d := e.decide(cached, "dana", "dana pw", nil)
	expect(t, d, appliance.Challenge, appliance.ReasonMFAChallenge)
	d = e.decide(secure, "dana", e.code(seed, e.clock.Now()), d.State)
	expect(t, d, appliance.Reject, appliance.ReasonUpstreamDown)
}

// TestTTLSPasswordIsAppendOnly: a password from inside an EAP-TTLS tunnel
// is checked like PAP, but no challenge can reach the device, so even on a
// client whose style allows challenges the code must come appended.
func TestTTLSPasswordIsAppendOnly(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	seed := e.enroll("alice")
	ttls := func(pw string) appliance.Decision {
		t.Helper()
		d, err := e.gate.Decide(t.Context(), appliance.Request{Door: appliance.DoorRADIUS, Client: client(nil), User: "alice",
			Password: secrets.Secret(pw), Method: appliance.MethodTTLSPAP, Device: "AA-BB-CC-00-11-22"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// The same client asks a PAP login for the code in a challenge.
	expect(t, e.decide(client(nil), "alice", "correct horse", nil), appliance.Challenge, appliance.ReasonMFAChallenge)
	d := ttls("correct horse")
	expect(t, d, appliance.Reject, appliance.ReasonMFARequired)
	if d.State != nil {
		t.Fatal("got a State for a TTLS password, want none")
	}
	expect(t, ttls("wrong horse,"+e.code(seed, e.clock.Now())), appliance.Reject, appliance.ReasonBadPassword)
	expect(t, ttls("correct horse,"+e.code(seed, e.clock.Now())), appliance.Accept, appliance.ReasonOK)
}

// TestHostileSourceCannotLockOutTheUser: failures from one source (here a
// station on the Wi-Fi) block that source only; the user logs in from her
// own laptop meanwhile, and the account locks only after failures from
// several sources (issue 16, finding 2).
func TestHostileSourceCannotLockOutTheUser(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	c := client(mfaOff)
	from := func(station, pw string) appliance.Decision {
		return e.decideReq(appliance.Request{Client: c, User: "alice", Password: secrets.Secret(pw), Method: appliance.MethodPAP,
			Source: netip.MustParseAddr("10.0.0.5"), Device: station})
	}
	const attacker, laptop = "02-66-66-66-66-66", "AA-BB-CC-DD-EE-01"
	for range 5 {
		expect(t, from(attacker, "guess"), appliance.Reject, appliance.ReasonBadPassword)
	}
	// The attacker's station is refused, even with the right password.
	d := from(attacker, "correct horse")
	expect(t, d, appliance.Reject, appliance.ReasonLockedOut)
	if !stepsSay(d, "the account is not locked") {
		t.Fatalf("story %v", d.Steps)
	}
	// Alice, from her laptop, is not.
	expect(t, from(laptop, "correct horse"), appliance.Accept, appliance.ReasonOK)
	// The console's counters name the refused station, not the laptop.
	ts := e.gate.Throttled(t.Context(), e.clock.Now())
	if len(ts) != 1 || ts[0].User != "alice" || ts[0].Station != "02:66:66:66:66:66" || ts[0].Address != "10.0.0.5" || !ts[0].Until.After(e.clock.Now()) {
		t.Fatalf("counters %+v, want the attacker's station refused", ts)
	}
	// More guesses from the blocked station change nothing.
	for range 20 {
		expect(t, from(attacker, "guess"), appliance.Reject, appliance.ReasonLockedOut)
	}
	expect(t, from(laptop, "correct horse"), appliance.Accept, appliance.ReasonOK)
	// Failures from three stations lock the account itself.
	for _, s := range []string{"02-00-00-00-00-01", "02-00-00-00-00-02", "02-00-00-00-00-03"} {
		for range 5 {
			from(s, "guess")
		}
	}
	expect(t, from(laptop, "correct horse"), appliance.Reject, appliance.ReasonLockedOut)
	// The lock and the blocks run out.
	e.clock.Add(16 * time.Minute)
	expect(t, from(attacker, "correct horse"), appliance.Accept, appliance.ReasonOK)
}
