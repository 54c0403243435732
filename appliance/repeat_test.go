package appliance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// repeatEnv is an env with repeat_login_seconds set and alice logged in
// once, so her password is remembered.
func repeatEnv(t *testing.T, seconds string) *env {
	t.Helper()
	e := newEnv(t)
	if err := e.adm.SetSetting(t.Context(), "repeat_login_seconds", seconds); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Second) // the gate reads the settings again
	e.addUser("alice", "correct horse")
	return e
}

// hashed reports whether the decision's password step ran the full check
// (false: the repeat-login shortcut).
func hashed(d appliance.Decision) bool {
	for _, s := range d.Steps {
		if s.Stage == "password" && strings.Contains(s.Result, "repeat login") {
			return false
		}
	}
	return true
}

func TestRepeatLoginSkipsTheHash(t *testing.T) {
	e := repeatEnv(t, "300")
	first := e.decide(client(mfaOff), "alice", "correct horse", nil)
	expect(t, first, appliance.Accept, appliance.ReasonOK)
	if !hashed(first) {
		t.Fatal("the first login took the repeat-login shortcut")
	}
	e.clock.Add(time.Minute)
	again := e.decide(client(mfaOff), "alice", "correct horse", nil)
	expect(t, again, appliance.Accept, appliance.ReasonOK)
	if hashed(again) {
		t.Fatalf("a repeat login within the window was hashed again (steps %v)", again.Steps)
	}
	if again.User != "alice" || again.AuditSeq == 0 {
		t.Fatalf("got user %q audit %d, want alice audited", again.User, again.AuditSeq)
	}
	// Past the window, the hash again.
	e.clock.Add(5 * time.Minute)
	if d := e.decide(client(mfaOff), "alice", "correct horse", nil); !hashed(d) {
		t.Fatal("a login past the window took the shortcut")
	}
}

func TestRepeatLoginOffByDefault(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "correct horse")
	for range 2 {
		d := e.decide(client(mfaOff), "alice", "correct horse", nil)
		expect(t, d, appliance.Accept, appliance.ReasonOK)
		if !hashed(d) {
			t.Fatal("took the repeat-login shortcut with repeat_login_seconds unset")
		}
	}
	if n := appliance.RepeatEntries(e.gate); n != 0 {
		t.Fatalf("got %d repeat-login entries with the setting off, want 0", n)
	}
}

// TestRepeatLoginWrongPasswordIsHashedAndForgets: a wrong password never
// matches the remembered one; it costs the full check, counts as a
// failure, and the next right one is hashed again.
func TestRepeatLoginWrongPasswordIsHashedAndForgets(t *testing.T) {
	e := repeatEnv(t, "300")
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	d := e.decide(client(mfaOff), "alice", "correct horsf", nil)
	expect(t, d, appliance.Reject, appliance.ReasonBadPassword)
	if n := appliance.RepeatEntries(e.gate); n != 0 {
		t.Fatalf("got %d entries after a failed attempt, want 0", n)
	}
	if d := e.decide(client(mfaOff), "alice", "correct horse", nil); !hashed(d) {
		t.Fatal("the login after a failed attempt took the shortcut")
	}
}

func TestRepeatLoginForgottenOnPasswordChange(t *testing.T) {
	e := repeatEnv(t, "300")
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Password: secrets.Secret("battery staple")}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Reject, appliance.ReasonBadPassword)
	d := e.decide(client(mfaOff), "alice", "battery staple", nil)
	expect(t, d, appliance.Accept, appliance.ReasonOK)
	if !hashed(d) {
		t.Fatal("the new password took the shortcut before it was ever hashed")
	}
}

func TestRepeatLoginForgottenOnDisable(t *testing.T) {
	e := repeatEnv(t, "300")
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	yes, no := true, false
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Reject, appliance.ReasonDisabled)
	if n := appliance.RepeatEntries(e.gate); n != 0 {
		t.Fatalf("got %d entries after the account was disabled, want 0", n)
	}
	if err := e.adm.EditUser(t.Context(), "alice", admin.UserEdit{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if d := e.decide(client(mfaOff), "alice", "correct horse", nil); !hashed(d) {
		t.Fatal("the login after re-enabling took the shortcut")
	}
}

func TestRepeatLoginForgottenOnLockout(t *testing.T) {
	e := repeatEnv(t, "300")
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Accept, appliance.ReasonOK)
	if n := appliance.RepeatEntries(e.gate); n != 1 {
		t.Fatalf("got %d entries after a login, want 1", n)
	}
	// The account is locked from elsewhere (another NAS's failures, or the
	// console); the lock alone voids the entry.
	u, err := e.st.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		_, err := tx.RecordFailure(t.Context(), u.ID, e.clock.Now(), 1, 15*time.Minute)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	expect(t, e.decide(client(mfaOff), "alice", "correct horse", nil), appliance.Reject, appliance.ReasonLockedOut)
	if n := appliance.RepeatEntries(e.gate); n != 0 {
		t.Fatalf("got %d entries after the account was locked, want 0", n)
	}
	e.clock.Add(16 * time.Minute)
	if d := e.decide(client(mfaOff), "alice", "correct horse", nil); !hashed(d) {
		t.Fatal("the login after the lock ran out took the shortcut")
	}
}
