package policy

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin and America/New_York for the DST cases
)

// The week of Monday 2026-11-30. day(time.Saturday, 3, 0) is Sat 2026-12-05 03:00.
func day(wd time.Weekday, hh, mm int) time.Time {
	// 2026-11-29 is a Sunday.
	return time.Date(2026, 11, 29+int(wd), hh, mm, 0, 0, time.UTC)
}

func TestParseHoursValid(t *testing.T) {
	tests := []struct {
		spec   string
		always bool
	}{
		{"", true},
		{"   ", true},
		{"Mon-Fri 07:00-19:00", false},
		{"Mon-Fri 07:00-19:00; Sat 08:00-12:00", false},
		{"mon-fri 07:00-19:00;", false},
		{"MON,wed,Fri 09:30-10:00", false},
		{"Fri-Mon 08:00-17:00", false},
		{"Mon-Fri 22:00-06:00", false},
		{"Sun 00:00-24:00", false},
		{"Sat 23:59-00:00", false},
		{"  Tue 7:05-9:10  ", false},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			h, err := ParseHours(tt.spec)
			if err != nil {
				t.Fatalf("ParseHours(%q): got error %v, want nil", tt.spec, err)
			}
			if got := h.Always(); got != tt.always {
				t.Errorf("Always(): got %v, want %v", got, tt.always)
			}
			if got, want := h.String(), strings.TrimSpace(tt.spec); got != want {
				t.Errorf("String(): got %q, want %q", got, want)
			}
		})
	}
}

func TestParseHoursInvalid(t *testing.T) {
	tests := []struct {
		name, spec string
	}{
		{"no time range", "Mon-Fri"},
		{"no days", "07:00-19:00"},
		{"three fields", "Mon-Fri 07:00-19:00 extra"},
		{"unknown day", "Mon-Fry 07:00-19:00"},
		{"unknown first day", "Monday 07:00-19:00"},
		{"empty day in list", "Mon,,Tue 07:00-19:00"},
		{"full day names", "Monday-Friday 07:00-19:00"},
		{"no dash in times", "Mon 07:00"},
		{"empty range", "Mon 07:00-07:00"},
		{"hour 25", "Mon 07:00-25:00"},
		{"24:30", "Mon 07:00-24:30"},
		{"minute 60", "Mon 07:60-08:00"},
		{"one-digit minute", "Mon 07:0-08:00"},
		{"negative hour", "Mon -1:00-08:00"},
		{"no colon", "Mon 0700-0800"},
		{"letters", "Mon ab:cd-08:00"},
		{"only separators", ";;"},
		{"too long", strings.Repeat("Mon 07:00-08:00;", 13)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.spec)
			if err == nil {
				t.Fatalf("ParseHours(%q): got %q and nil error, want an error", tt.spec, h)
			}
			if !strings.HasPrefix(err.Error(), "allowed hours: ") {
				t.Errorf("error: got %q, want it to start with %q", err, "allowed hours: ")
			}
		})
	}
}

func TestHoursRemaining(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		at       time.Time
		wantOK   bool
		wantLeft time.Duration
	}{
		{"always", "", day(time.Sunday, 3, 0), true, 0},

		{"office: inside", "Mon-Fri 07:00-19:00", day(time.Wednesday, 12, 0), true, 7 * time.Hour},
		{"office: at start", "Mon-Fri 07:00-19:00", day(time.Monday, 7, 0), true, 12 * time.Hour},
		{"office: minute before start", "Mon-Fri 07:00-19:00", day(time.Monday, 6, 59), false, 0},
		{"office: end is excluded", "Mon-Fri 07:00-19:00", day(time.Friday, 19, 0), false, 0},
		{"office: minute before end", "Mon-Fri 07:00-19:00", day(time.Friday, 18, 59), true, time.Minute},
		{"office: saturday", "Mon-Fri 07:00-19:00", day(time.Saturday, 12, 0), false, 0},
		{"office: sunday", "Mon-Fri 07:00-19:00", day(time.Sunday, 12, 0), false, 0},

		{"two windows: second", "Mon-Fri 07:00-19:00; Sat 08:00-12:00", day(time.Saturday, 11, 30), true, 30 * time.Minute},
		{"two windows: neither", "Mon-Fri 07:00-19:00; Sat 08:00-12:00", day(time.Saturday, 12, 0), false, 0},

		{"day list: listed", "Mon,Wed 09:00-10:00", day(time.Wednesday, 9, 15), true, 45 * time.Minute},
		{"day list: not listed", "Mon,Wed 09:00-10:00", day(time.Tuesday, 9, 15), false, 0},

		{"night shift: saturday 03:00 belongs to friday's shift", "Mon-Fri 22:00-06:00", day(time.Saturday, 3, 0), true, 3 * time.Hour},
		{"night shift: saturday 23:00 refused", "Mon-Fri 22:00-06:00", day(time.Saturday, 23, 0), false, 0},
		{"night shift: monday 03:00 refused (no sunday shift)", "Mon-Fri 22:00-06:00", day(time.Monday, 3, 0), false, 0},
		{"night shift: monday 23:00", "Mon-Fri 22:00-06:00", day(time.Monday, 23, 0), true, 7 * time.Hour},
		{"night shift: tuesday 05:59", "Mon-Fri 22:00-06:00", day(time.Tuesday, 5, 59), true, time.Minute},
		{"night shift: tuesday 06:00 refused", "Mon-Fri 22:00-06:00", day(time.Tuesday, 6, 0), false, 0},
		{"night shift: tuesday 12:00 refused", "Mon-Fri 22:00-06:00", day(time.Tuesday, 12, 0), false, 0},
		{"night shift: friday 21:59 refused", "Mon-Fri 22:00-06:00", day(time.Friday, 21, 59), false, 0},

		{"wrapping days: friday", "Fri-Mon 08:00-17:00", day(time.Friday, 9, 0), true, 8 * time.Hour},
		{"wrapping days: saturday", "Fri-Mon 08:00-17:00", day(time.Saturday, 9, 0), true, 8 * time.Hour},
		{"wrapping days: sunday", "Fri-Mon 08:00-17:00", day(time.Sunday, 9, 0), true, 8 * time.Hour},
		{"wrapping days: monday", "Fri-Mon 08:00-17:00", day(time.Monday, 9, 0), true, 8 * time.Hour},
		{"wrapping days: tuesday refused", "Fri-Mon 08:00-17:00", day(time.Tuesday, 9, 0), false, 0},
		{"wrapping days: thursday refused", "Fri-Mon 08:00-17:00", day(time.Thursday, 9, 0), false, 0},

		{"whole day: last minute", "Sun 00:00-24:00", day(time.Sunday, 23, 59), true, time.Minute},
		{"whole day: next day refused", "Sun 00:00-24:00", day(time.Monday, 0, 0), false, 0},
		{"single day range", "Wed-Wed 10:00-11:00", day(time.Thursday, 10, 30), false, 0},

		{"overlap: longest remaining wins", "Mon 08:00-10:00; Mon 08:00-12:00", day(time.Monday, 9, 0), true, 3 * time.Hour},
		{"overlap: night shift and day shift", "Mon-Sun 07:00-19:00; Mon-Sun 18:00-08:00", day(time.Tuesday, 18, 30), true, 13*time.Hour + 30*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.spec)
			if err != nil {
				t.Fatalf("ParseHours(%q): %v", tt.spec, err)
			}
			ok, left := h.Remaining(tt.at)
			if ok != tt.wantOK || left != tt.wantLeft {
				t.Errorf("%q at %s: got (%v, %v), want (%v, %v)", tt.spec, tt.at.Format("Mon 15:04"), ok, left, tt.wantOK, tt.wantLeft)
			}
		})
	}
}

// TestHoursFollowWallClockAcrossDST checks that allowed hours are wall-clock
// times in the site's zone on the days the clocks change too: "Sun
// 08:00-12:00" starts at 08:00 local time, not eight elapsed hours after
// midnight.
func TestHoursFollowWallClockAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		spec     string
		at       time.Time
		wantOK   bool
		wantLeft time.Duration
	}{
		// Berlin springs forward on Sun 2026-03-29 at 02:00 (one hour lost).
		{"spring: before start refused", "Sun 08:00-12:00", time.Date(2026, 3, 29, 7, 30, 0, 0, berlin), false, 0},
		{"spring: after start", "Sun 08:00-12:00", time.Date(2026, 3, 29, 8, 30, 0, 0, berlin), true, 3*time.Hour + 30*time.Minute},
		{"spring: after end refused", "Sun 08:00-12:00", time.Date(2026, 3, 29, 12, 30, 0, 0, berlin), false, 0},
		{"spring: night across the change", "Sat 22:00-06:00", time.Date(2026, 3, 29, 1, 0, 0, 0, berlin), true, 4 * time.Hour},
		{"spring: night starting on the change day", "Sun 22:00-06:00", time.Date(2026, 3, 29, 22, 30, 0, 0, berlin), true, 7*time.Hour + 30*time.Minute},
		{"spring: night starting on the change day, before start", "Sun 22:00-06:00", time.Date(2026, 3, 29, 21, 30, 0, 0, berlin), false, 0},
		// Berlin falls back on Sun 2026-10-25 at 03:00 (one hour repeated).
		{"autumn: before start refused", "Sun 08:00-12:00", time.Date(2026, 10, 25, 7, 30, 0, 0, berlin), false, 0},
		{"autumn: after start", "Sun 08:00-12:00", time.Date(2026, 10, 25, 8, 30, 0, 0, berlin), true, 3*time.Hour + 30*time.Minute},
		{"autumn: last minute", "Sun 08:00-12:00", time.Date(2026, 10, 25, 11, 59, 0, 0, berlin), true, time.Minute},
		{"autumn: night across the change", "Sat 22:00-06:00", time.Date(2026, 10, 25, 1, 0, 0, 0, berlin), true, 6 * time.Hour},
		// New York springs forward on Sun 2026-03-08 at 02:00.
		{"new york: spring before start refused", "Sun 07:00-19:00", time.Date(2026, 3, 8, 6, 30, 0, 0, newYork), false, 0},
		{"new york: spring after start", "Sun 07:00-19:00", time.Date(2026, 3, 8, 7, 30, 0, 0, newYork), true, 11*time.Hour + 30*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHours(tt.spec)
			if err != nil {
				t.Fatalf("ParseHours(%q): %v", tt.spec, err)
			}
			ok, left := h.Remaining(tt.at)
			if ok != tt.wantOK || left != tt.wantLeft {
				t.Errorf("%q at %s: got (%v, %v), want (%v, %v)", tt.spec, tt.at.Format("Mon 2006-01-02 15:04 MST"), ok, left, tt.wantOK, tt.wantLeft)
			}
		})
	}
}

// TestHoursUseTheTimeZoneOfT checks that Remaining reads t's own wall clock:
// the gate converts to the site's zone first.
func TestHoursUseTheTimeZoneOfT(t *testing.T) {
	h, err := ParseHours("Mon-Fri 07:00-19:00")
	if err != nil {
		t.Fatal(err)
	}
	// Monday 23:00 UTC is Tuesday 08:00 in UTC+9: allowed there only.
	tokyo := time.FixedZone("UTC+9", 9*60*60)
	utc := day(time.Monday, 23, 0)
	if ok, _ := h.Remaining(utc); ok {
		t.Errorf("Mon 23:00 UTC: got allowed, want refused")
	}
	ok, left := h.Remaining(utc.In(tokyo))
	if !ok || left != 11*time.Hour {
		t.Errorf("Tue 08:00 UTC+9: got (%v, %v), want (true, 11h0m0s)", ok, left)
	}
}
