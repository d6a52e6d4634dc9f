package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser accepts five fields, KFP's six with leading seconds, and descriptors.
// robfig/cron is used only for parsing; the next-time search is ours (nextWall and
// resolve) because the DST rules documented in the package doc differ from robfig's.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
	cron.Month | cron.Dow | cron.Descriptor)

// starBit marks a field written as * or ? (robfig's convention); it matters only for the
// day-of-month / day-of-week combination rule.
const starBit = 1 << 63

// cronFields are the parsed fields as bit sets (bit n set = value n allowed).
type cronFields struct {
	second, minute, hour, dom, month, dow uint64
}

func parseCron(expr string) (cronFields, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return cronFields{}, fmt.Errorf("cron expression is empty")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return cronFields{}, fmt.Errorf("cron expression %q carries a time zone prefix; set time_zone instead", expr)
	}
	if strings.HasPrefix(expr, "@every") {
		return cronFields{}, fmt.Errorf("cron expression %q: @every is not a cron schedule; use periodic_schedule", expr)
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return cronFields{}, fmt.Errorf("cron expression %q: %v", expr, err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return cronFields{}, fmt.Errorf("cron expression %q is not a field schedule", expr)
	}
	return cronFields{spec.Second, spec.Minute, spec.Hour, spec.Dom, spec.Month, spec.Dow}, nil
}

func has(bits uint64, v int) bool { return bits&(1<<uint(v)) != 0 }

// dayMatches applies Vixie cron's rule: if either day field is a star, both must match;
// otherwise either may.
func (f cronFields) dayMatches(w time.Time) bool {
	domOK := has(f.dom, w.Day())
	dowOK := has(f.dow, int(w.Weekday()))
	if f.dom&starBit != 0 || f.dow&starBit != 0 {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// searchYears bounds the search; an expression that matches nothing within it (30 Feb)
// is treated as never firing.
const searchYears = 8

// nextWall returns the first wall-clock time >= w matching f. Wall-clock times are
// represented as time.Time values in UTC, so that civil arithmetic never meets a DST
// change; the zone is applied afterwards by resolve. ok is false when nothing matches
// within searchYears.
func (f cronFields) nextWall(w time.Time) (time.Time, bool) {
	limit := w.AddDate(searchYears, 0, 0)
	w = w.Truncate(time.Second)
	for w.Before(limit) {
		if !has(f.month, int(w.Month())) {
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !f.dayMatches(w) {
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !has(f.hour, w.Hour()) {
			w = time.Date(w.Year(), w.Month(), w.Day(), w.Hour()+1, 0, 0, 0, time.UTC)
			continue
		}
		if !has(f.minute, w.Minute()) {
			w = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute()+1, 0, 0, time.UTC)
			continue
		}
		if !has(f.second, w.Second()) {
			w = w.Add(time.Second)
			continue
		}
		return w, true
	}
	return time.Time{}, false
}

// wallOf returns the wall-clock reading of t in loc, as a UTC-represented wall time.
func wallOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// resolve maps wall time w in loc to the instant that fires for it: the earliest instant
// whose wall clock reads w (a repeated wall time fires at its first occurrence) or, when
// no instant reads w (a gap), the instant at which the gap ends.
func resolve(w time.Time, loc *time.Location) time.Time {
	// Interpreting w with the offsets in force a day before and a day after covers every
	// zone whose offset changes at most once within a day, which is all of tzdata's
	// ordinary DST changes.
	u := w.Unix()
	var best time.Time
	for _, probe := range []int64{u - 86400, u + 86400} {
		_, off := time.Unix(probe, 0).In(loc).Zone()
		c := time.Unix(u-int64(off), int64(w.Nanosecond())).UTC()
		if wallOf(c, loc).Equal(w) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best
	}
	// A gap: the earlier offset puts w's reading before the change; the zone period that
	// instant belongs to ends exactly where the gap ends.
	_, offAfter := time.Unix(u+86400, 0).In(loc).Zone()
	before := time.Unix(u-int64(offAfter), 0).In(loc)
	_, end := before.ZoneBounds()
	if end.IsZero() {
		// No change after all (cannot happen for a real gap); fall back to the naive instant.
		return before.UTC()
	}
	return end.UTC()
}
