package admin

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestExpiryDayEndsAtMidnightInSiteZone: "--expires 2026-12-31" on a
// Chicago site must keep the account working through 31 December in
// Chicago, not stop it at 18:00 there (midnight UTC).
func TestExpiryDayEndsAtMidnightInSiteZone(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	if err := s.SetSetting(ctx, "timezone", "America/Chicago"); err != nil {
		t.Fatal(err)
	}
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, NewUser{Name: "partner", Expires: "2026-12-31"}); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2027, 1, 1, 0, 0, 0, 0, chicago)
	u, err := s.Store.UserByName(ctx, "partner")
	if err != nil {
		t.Fatal(err)
	}
	if !u.ExpiresAt.Equal(want) {
		t.Errorf("add: got expiry %s, want %s", u.ExpiresAt.UTC(), want.UTC())
	}
	if got := FormatExpiry(u.ExpiresAt, chicago); got != "2026-12-31 America/Chicago" {
		t.Errorf("shown as %q, want %q", got, "2026-12-31 America/Chicago")
	}

	day := "2027-03-14" // the day Chicago moves its clocks forward
	if err := s.EditUser(ctx, "partner", UserEdit{Expires: &day}); err != nil {
		t.Fatal(err)
	}
	u, _ = s.Store.UserByName(ctx, "partner")
	if want := time.Date(2027, 3, 15, 0, 0, 0, 0, chicago); !u.ExpiresAt.Equal(want) {
		t.Errorf("set: got expiry %s, want %s", u.ExpiresAt.UTC(), want.UTC())
	}

	stamp := "2027-02-01T09:30:00Z" // a full timestamp stays as given
	if err := s.EditUser(ctx, "partner", UserEdit{Expires: &stamp}); err != nil {
		t.Fatal(err)
	}
	u, _ = s.Store.UserByName(ctx, "partner")
	if want := time.Date(2027, 2, 1, 9, 30, 0, 0, time.UTC); !u.ExpiresAt.Equal(want) {
		t.Errorf("timestamp: got expiry %s, want %s", u.ExpiresAt.UTC(), want)
	}
	if got := FormatExpiry(u.ExpiresAt, chicago); got != "2027-02-01 03:30 America/Chicago" {
		t.Errorf("timestamp shown as %q", got)
	}

	never := "never"
	if err := s.EditUser(ctx, "partner", UserEdit{Expires: &never}); err != nil {
		t.Fatal(err)
	}
	if u, _ = s.Store.UserByName(ctx, "partner"); !u.ExpiresAt.IsZero() {
		t.Errorf("never: got expiry %s, want none", u.ExpiresAt)
	}
	bad := "31/12/2026"
	if err := s.EditUser(ctx, "partner", UserEdit{Expires: &bad}); err == nil {
		t.Errorf("expiry %q accepted", bad)
	}
}

func TestParseExpiry(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"never", time.Time{}},
		{"2026-12-31", time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)},
		{"2026-12-31T17:00", time.Date(2026, 12, 31, 17, 0, 0, 0, berlin)},
		{"2026-12-31 17:00", time.Date(2026, 12, 31, 17, 0, 0, 0, berlin)},
		{"2026-12-31T17:00:00-06:00", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)},
	} {
		got, err := ParseExpiry(tc.in, berlin)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseExpiry(%q): got %s, %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

// TestAuditBeforePagesBack: the console's first read is the newest page,
// and each next one the page before it, oldest first within a page.
func TestAuditBeforePagesBack(t *testing.T) {
	s := newService(t)
	ctx := t.Context()
	for i := range 7 {
		if err := s.AddUser(ctx, NewUser{Name: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.AuditBefore(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(page); !slices.Equal(got, []int64{5, 6, 7}) {
		t.Fatalf("newest page: got %v, want [5 6 7]", got)
	}
	page, err = s.AuditBefore(ctx, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(page); !slices.Equal(got, []int64{2, 3, 4}) {
		t.Fatalf("page before 5: got %v, want [2 3 4]", got)
	}
	if page, _ = s.AuditBefore(ctx, 2, 3); !slices.Equal(seqs(page), []int64{1}) {
		t.Fatalf("page before 2: got %v, want [1]", seqs(page))
	}
}

func seqs(rows []AuditRow) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.Seq
	}
	return out
}
