package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// Times on screen: every list and story shows dates and times in the
// site's time zone (the timezone setting, the zone allowed hours and the
// decision stories use), never the console's own, and a pane that lists
// times names the zone once in its header ("times America/Chicago"). The
// layouts are here, so two panes cannot disagree.

const (
	// layoutStamp is a list's time column: the date without the year
	// (a month name, so neither a US nor a European reader misreads it)
	// and the time to the second.
	layoutStamp = "Jan 02 15:04:05"
	// layoutMinute is a time to the minute, with the date.
	layoutMinute = "Jan 02 15:04"
	// layoutFull is a detail view's whole time.
	layoutFull = "2006-01-02 15:04:05"
	// layoutDay is a date alone.
	layoutDay = "2006-01-02"
)

// clock formats times in the site's zone.
type clock struct{ loc *time.Location }

func (c clock) zone() *time.Location {
	if c.loc == nil {
		return time.Local
	}
	return c.loc
}

func (c clock) format(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(c.zone()).Format(layout)
}

// stamp is a list's time: date and time to the second.
func (c clock) stamp(t time.Time) string { return c.format(t, layoutStamp) }

// minute is a date and time to the minute.
func (c clock) minute(t time.Time) string { return c.format(t, layoutMinute) }

// full is a date and time with the year, and the zone named.
func (c clock) full(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return c.format(t, layoutFull) + " " + admin.ZoneName(c.zone(), t)
}

// day is a date alone.
func (c clock) day(t time.Time) string { return c.format(t, layoutDay) }

// header names the zone for a pane's header line.
func (c clock) header(now time.Time) string { return "times " + admin.ZoneName(c.zone(), now) }

// expiry is an account's expiry as the admin service shows it everywhere
// (the last day it works, with the zone).
func (c clock) expiry(t time.Time) string { return admin.FormatExpiry(t, c.zone()) }

// expiryInput is an expiry as the groups-and-expiry form takes it back:
// the last day, or the date and time when it is not a whole day.
func (c clock) expiryInput(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	l := t.In(c.zone())
	if l.Hour() == 0 && l.Minute() == 0 && l.Second() == 0 {
		return l.AddDate(0, 0, -1).Format(layoutDay)
	}
	return l.Format("2006-01-02T15:04")
}

// clock is the console's formatter in the site's zone as last read.
func (m Model) clock() clock { return clock{loc: m.zone} }

// ZoneReader reads the site's time zone (the admin service's SiteZone).
type ZoneReader interface {
	SiteZone(ctx context.Context) (*time.Location, error)
}

type zoneMsg struct{ loc *time.Location }

// fetchZone reads the site's zone (at start, and when a pane is opened:
// the wizard or another admin may have changed it). Without a reader, or
// when it cannot be read, the console keeps what it has (at first, the
// system's zone).
func (m Model) fetchZone() tea.Cmd {
	z, ok := m.p.Audit.(ZoneReader)
	if !ok {
		if z, ok = m.p.Users.(ZoneReader); !ok {
			return nil
		}
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		loc, err := z.SiteZone(ctx)
		if err != nil || loc == nil {
			return nil
		}
		return zoneMsg{loc}
	}
}

// expiryDay is an expiry in a list's column: the last day the account
// works (the zone is in the pane's header), "-" for none.
func (c clock) expiryDay(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	l := t.In(c.zone())
	if l.Hour() == 0 && l.Minute() == 0 && l.Second() == 0 {
		l = l.AddDate(0, 0, -1)
	}
	return l.Format(layoutDay)
}

// since is a time in a sentence ("since 08:00:00 on Nov 30"): the time
// first, as it is read aloud, then the day.
func (c clock) since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return c.format(t, "15:04:05") + " on " + c.format(t, "Jan 02")
}

// abbrev names the zone briefly, for a column header with no room for
// America/Chicago: (CST), (UTC).
func (c clock) abbrev(now time.Time) string { return "(" + now.In(c.zone()).Format("MST") + ")" }
