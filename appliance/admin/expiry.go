package admin

import (
	"context"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
)

// An account's expiry, as the operator types it and reads it back. A date
// alone means "the account works through that day" at the clinic, so it is
// the end of that day in the site's time zone (the timezone setting), not in
// UTC or in the zone of whoever typed it: 2026-12-31 on a Chicago site
// expires at midnight Chicago time, not at 18:00 the day before. The command
// line and the console both come through here, so the two cannot disagree.

// SiteZone is the site's time zone (the timezone setting; the system's
// zone when it is empty). Dates and times shown to an operator are in it.
func (s *Service) SiteZone(ctx context.Context) (*time.Location, error) {
	site, err := appliance.LoadSite(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	return site.TimeZone, nil
}

// ParseExpiry reads an expiry: empty or "never" is none (the zero time); a
// date (2026-12-31) is the end of that day in loc, that is the first
// instant of the next day, when the account stops working; a date and
// time without a zone (2026-12-31T17:00 or 2026-12-31 17:00) is that time
// in loc; a full timestamp with a zone (RFC 3339) stays as given.
func ParseExpiry(text string, loc *time.Location) (time.Time, error) {
	s := strings.TrimSpace(text)
	if s == "" || s == "never" {
		return time.Time{}, nil
	}
	if loc == nil {
		loc = time.Local
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		// Through the end of that day: time.Date normalises the 32nd and
		// keeps a daylight-saving change in mind.
		return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc), nil
	}
	return time.Time{}, invalid("the expiry %q is not a date like 2026-12-31 (the last day the account works), a time like 2026-12-31T17:00, or never", s)
}

// FormatExpiry shows an expiry in loc with the zone named: an expiry at
// midnight is the end of the day before (2026-12-31 America/Chicago, the
// last day the account works), anything else the date and time; "never"
// for none.
func FormatExpiry(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "never"
	}
	if loc == nil {
		loc = time.Local
	}
	l := t.In(loc)
	if l.Hour() == 0 && l.Minute() == 0 && l.Second() == 0 {
		return l.AddDate(0, 0, -1).Format("2006-01-02") + " " + ZoneName(loc, t)
	}
	return l.Format("2006-01-02 15:04") + " " + ZoneName(loc, t)
}

// ZoneName names loc for an operator: its IANA name (America/Chicago), or,
// for the system's zone, which has no such name here, its abbreviation at
// t (UTC, CET).
func ZoneName(loc *time.Location, t time.Time) string {
	if loc == nil {
		loc = time.Local
	}
	if n := loc.String(); n != "Local" && n != "" {
		return n
	}
	return t.In(loc).Format("MST")
}

// expiry resolves what an operator typed as an expiry against the site's
// zone (text wins over at when both are given, which is refused).
func (s *Service) expiry(ctx context.Context, text string, at time.Time) (time.Time, error) {
	if text == "" {
		return at, nil
	}
	if !at.IsZero() {
		return time.Time{}, invalid("give the expiry once, as a date or as a time, not both")
	}
	loc, err := s.SiteZone(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return ParseExpiry(text, loc)
}
