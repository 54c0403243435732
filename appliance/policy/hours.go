package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Hours is a weekly schedule of allowed login times, such as
// "Mon-Fri 07:00-19:00; Sat 08:00-12:00". A window whose end is before its
// start runs past midnight ("Mon-Fri 22:00-06:00" is a night shift starting
// on those days). The zero value allows every hour.
type Hours struct {
	spec    string
	windows []window
}

type window struct {
	days       [7]bool // indexed by time.Weekday
	start, end int     // minutes after midnight; end may be <= start (crosses midnight)
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseHours parses a schedule. An empty string means "always".
func ParseHours(spec string) (Hours, error) {
	spec = strings.TrimSpace(spec)
	h := Hours{spec: spec}
	if spec == "" {
		return h, nil
	}
	if len(spec) > 200 {
		return Hours{}, errors.New("allowed hours: too long (200 characters at most)")
	}
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Fields(part)
		if len(fields) != 2 {
			return Hours{}, fmt.Errorf("allowed hours: %q should look like \"Mon-Fri 07:00-19:00\"", part)
		}
		var w window
		for _, dr := range strings.Split(fields[0], ",") {
			a, b, isRange := strings.Cut(strings.ToLower(dr), "-")
			da, ok := dayNames[a]
			if !ok {
				return Hours{}, fmt.Errorf("allowed hours: %q is not a day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", a)
			}
			db := da
			if isRange {
				if db, ok = dayNames[b]; !ok {
					return Hours{}, fmt.Errorf("allowed hours: %q is not a day (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", b)
				}
			}
			for d := da; ; d = (d + 1) % 7 {
				w.days[d] = true
				if d == db {
					break
				}
			}
		}
		s, e, ok := strings.Cut(fields[1], "-")
		if !ok {
			return Hours{}, fmt.Errorf("allowed hours: %q should be a time range like 07:00-19:00", fields[1])
		}
		var err error
		if w.start, err = parseClock(s); err != nil {
			return Hours{}, err
		}
		if w.end, err = parseClock(e); err != nil {
			return Hours{}, err
		}
		if w.start == w.end {
			return Hours{}, fmt.Errorf("allowed hours: %q is an empty range", fields[1])
		}
		h.windows = append(h.windows, w)
	}
	if len(h.windows) == 0 {
		return Hours{}, errors.New("allowed hours: no time ranges given")
	}
	return h, nil
}

func parseClock(s string) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("allowed hours: %q is not a time of day like 07:30", s)
	}
	return h*60 + m, nil
}

// String returns the schedule as given.
func (h Hours) String() string { return h.spec }

// Always reports whether the schedule has no limits.
func (h Hours) Always() bool { return len(h.windows) == 0 }

// Remaining reports whether t (already in the site's time zone) is inside an
// allowed window and, if so, how long that window still lasts (0 for
// "always"). Overlapping windows are not merged; the longest remaining wins.
func (h Hours) Remaining(t time.Time) (bool, time.Duration) {
	if h.Always() {
		return true, 0
	}
	y, m, d := t.Date()
	best, found := time.Duration(0), false
	for _, w := range h.windows {
		// A window starting today, and one that started yesterday and
		// runs past midnight.
		for back := 0; back <= 1; back++ {
			// Wall-clock times built with time.Date, not offsets from
			// midnight, so the windows keep their hours on the days the
			// clocks change.
			if !w.days[time.Date(y, m, d-back, 12, 0, 0, 0, t.Location()).Weekday()] {
				continue
			}
			start := time.Date(y, m, d-back, 0, w.start, 0, 0, t.Location())
			endDay := d - back
			if w.end <= w.start {
				endDay++
			}
			end := time.Date(y, m, endDay, 0, w.end, 0, 0, t.Location())
			if !t.Before(start) && t.Before(end) {
				if r := end.Sub(t); r > best {
					best = r
				}
				found = true
			}
		}
	}
	return found, best
}
