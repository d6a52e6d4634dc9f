package schedule

import (
	"fmt"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// Schedule is a parsed trigger: the set of instants at which a recurring run fires,
// before start/end bounds, catch-up and concurrency are applied (Decide applies those).
type Schedule struct {
	loc    *time.Location
	cron   *cronFields   // set for cron triggers
	period time.Duration // set for periodic triggers
	anchor time.Time     // periodic slots are anchor + k*period
	start  *time.Time
	end    *time.Time
}

// Parse parses a trigger in time zone tz (an IANA name; empty means UTC). Exactly one of
// cron_schedule and periodic_schedule must be set.
func Parse(trigger api.Trigger, tz string) (Schedule, error) {
	loc, err := LoadZone(tz)
	if err != nil {
		return Schedule{}, err
	}
	s := Schedule{loc: loc}
	switch {
	case trigger.CronSchedule != nil && trigger.PeriodicSchedule != nil:
		return Schedule{}, fmt.Errorf("trigger: set either cron_schedule or periodic_schedule, not both")
	case trigger.CronSchedule != nil:
		f, err := parseCron(trigger.CronSchedule.Cron)
		if err != nil {
			return Schedule{}, fmt.Errorf("trigger.cron_schedule.cron: %w", err)
		}
		s.cron = &f
		s.start, s.end = trigger.CronSchedule.StartTime, trigger.CronSchedule.EndTime
	case trigger.PeriodicSchedule != nil:
		p := trigger.PeriodicSchedule
		if p.IntervalSecond <= 0 {
			return Schedule{}, fmt.Errorf("trigger.periodic_schedule.interval_second: must be a positive number of seconds, got %d", p.IntervalSecond)
		}
		if p.IntervalSecond > int64(100*365*24*3600) {
			return Schedule{}, fmt.Errorf("trigger.periodic_schedule.interval_second: %d seconds is more than 100 years", p.IntervalSecond)
		}
		s.period = time.Duration(p.IntervalSecond) * time.Second
		s.start, s.end = p.StartTime, p.EndTime
		if s.start != nil {
			s.anchor = s.start.UTC()
		} else {
			s.anchor = time.Unix(0, 0).UTC()
		}
	default:
		return Schedule{}, fmt.Errorf("trigger: one of cron_schedule or periodic_schedule is required")
	}
	if s.start != nil && s.end != nil && !s.end.After(*s.start) {
		return Schedule{}, fmt.Errorf("trigger: end_time %s is not after start_time %s",
			s.end.Format(time.RFC3339), s.start.Format(time.RFC3339))
	}
	return s, nil
}

// LoadZone loads an IANA time zone; empty means UTC. Binaries embed tzdata
// (import _ "time/tzdata"), so this does not depend on the host's zoneinfo.
func LoadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	// time.LoadLocation accepts "Local", which would make results depend on the host.
	if tz == "Local" {
		return nil, fmt.Errorf("time_zone: %q is not allowed; name an IANA zone such as Europe/Berlin", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("time_zone: unknown IANA time zone %q", tz)
	}
	return loc, nil
}

// Location is the schedule's time zone.
func (s Schedule) Location() *time.Location { return s.loc }

// Bounds returns the trigger's start and end times (nil when absent).
func (s Schedule) Bounds() (start, end *time.Time) { return s.start, s.end }

// Next returns the first slot strictly after after, ignoring start and end times; the
// zero time when there is none (a cron that never matches).
func (s Schedule) Next(after time.Time) time.Time {
	if s.cron == nil {
		if s.period <= 0 {
			return time.Time{}
		}
		// The smallest anchor + k*period > after.
		d := after.Sub(s.anchor)
		if d < 0 {
			k := (-d) / s.period // slots at or before after: anchor - k*period
			t := s.anchor.Add(-k * s.period)
			if !t.After(after) {
				t = t.Add(s.period)
			}
			return t
		}
		k := d/s.period + 1
		return s.anchor.Add(k * s.period)
	}
	w := wallOf(after, s.loc).Truncate(time.Second)
	for {
		wall, ok := s.cron.nextWall(w)
		if !ok {
			return time.Time{}
		}
		if t := resolve(wall, s.loc); t.After(after) {
			return t
		}
		w = wall.Add(time.Second)
	}
}

// nextInBounds is Next restricted to start and end: the first slot after after that is
// not before start and not after end; zero when none.
func (s Schedule) nextInBounds(after time.Time) time.Time {
	if s.start != nil && after.Before(*s.start) {
		after = s.start.Add(-time.Nanosecond)
	}
	t := s.Next(after)
	if t.IsZero() || (s.end != nil && t.After(*s.end)) {
		return time.Time{}
	}
	return t
}

// Slots returns the first limit slots in (from, to], oldest first, within the trigger's
// start and end times. limit <= 0 means no limit.
func (s Schedule) Slots(from, to time.Time, limit int) []time.Time {
	var out []time.Time
	for t := s.nextInBounds(from); !t.IsZero() && !t.After(to); t = s.nextInBounds(t) {
		out = append(out, t)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// LastSlots returns the last n slots in (from, to], oldest first. It searches backwards
// in growing windows, so a long outage of a frequent cron costs about as much as the n
// slots returned, not as the whole gap.
func (s Schedule) LastSlots(from, to time.Time, n int) []time.Time {
	if n <= 0 || !to.After(from) {
		return nil
	}
	for d := time.Minute; ; d *= 4 {
		lo := to.Add(-d)
		final := !lo.After(from) || d > 200*365*24*time.Hour
		if final {
			lo = from
		}
		sl := s.Slots(lo, to, 0)
		if len(sl) >= n || final {
			if len(sl) > n {
				sl = sl[len(sl)-n:]
			}
			return sl
		}
	}
}
