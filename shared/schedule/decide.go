package schedule

import (
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// DueWindow is how old a slot may be at tick time and still count as due rather than
// missed: one PingSource period (a minute) plus slack for delivery delays. Due slots fire
// whatever the catch-up policy; only older (missed) slots are subject to it.
const DueWindow = 90 * time.Second

// Cursor is a schedule's progress. Every slot at or before Last is settled (fired or
// skipped by policy). Slots in (Last, OwedThrough] were accepted by the policy but held
// back by max_concurrency; they fire on later ticks regardless of their age.
type Cursor struct {
	Last        time.Time
	OwedThrough time.Time
}

// InitialCursor is the cursor of a newly created or re-enabled schedule at time now:
// slots after now are owed, and when start_time lies in the past, slots from start_time
// on are eligible for catch-up (as KFP backfills from a past start time).
func InitialCursor(s Schedule, now time.Time) Cursor {
	if s.start != nil && s.start.Before(now) {
		return Cursor{Last: s.start.Add(-time.Nanosecond)}
	}
	return Cursor{Last: now}
}

// Decision says what one tick does to one schedule.
type Decision struct {
	// Fire lists the slots to fire now, oldest first.
	Fire []time.Time
	// Cursor is the schedule's progress after firing.
	Cursor Cursor
	// NextDue is when the schedule next needs a tick's attention: the next slot after
	// the cursor, or the oldest owed slot. Zero when it will never fire again (end_time
	// passed, or disabled).
	NextDue time.Time
	// Blocked is true when max_concurrency held back slots the policy accepted.
	Blocked bool
}

// Policy returns the effective catch-up policy of rr: catchup when set, else KFP's
// no_catchup (true means latest), else all.
func Policy(rr api.RecurringRun) string {
	switch {
	case rr.Catchup != "":
		return rr.Catchup
	case rr.NoCatchup:
		return api.CatchupLatest
	default:
		return api.CatchupAll
	}
}

// Decide applies the trigger, start/end times, catch-up policy and max_concurrency of rr
// to the slots after cursor c up to now, given active runs of rr still running. It is
// deterministic in its arguments.
func Decide(rr api.RecurringRun, s Schedule, c Cursor, now time.Time, active int) Decision {
	d := Decision{Cursor: c}
	if rr.Mode == api.ModeDisable {
		return d
	}
	capacity := -1 // unlimited
	if rr.MaxConcurrency > 0 {
		capacity = max(int(rr.MaxConcurrency)-active, 0)
	}
	take := func(slots []time.Time) []time.Time {
		if capacity < 0 {
			return slots
		}
		n := min(capacity, len(slots))
		capacity -= n
		return slots[:n]
	}

	to := now
	if s.end != nil && s.end.Before(to) {
		to = *s.end
	}

	// Owed slots first: they were accepted on an earlier tick.
	if c.OwedThrough.After(c.Last) {
		owed := s.Slots(c.Last, c.OwedThrough, 0)
		fire := take(owed)
		d.Fire = append(d.Fire, fire...)
		if len(fire) < len(owed) {
			if len(fire) > 0 {
				d.Cursor.Last = fire[len(fire)-1]
			}
			d.Blocked = true
			d.NextDue = s.nextInBounds(d.Cursor.Last)
			return d
		}
		d.Cursor = Cursor{Last: c.OwedThrough}
	}

	lo := d.Cursor.Last
	if to.After(lo) {
		accepted := acceptNew(rr, s, lo, to, now)
		fire := take(accepted)
		d.Fire = append(d.Fire, fire...)
		switch {
		case len(fire) == len(accepted):
			d.Cursor = Cursor{Last: to}
		default:
			d.Blocked = true
			last := accepted[0].Add(-time.Nanosecond)
			if len(fire) > 0 {
				last = fire[len(fire)-1]
			}
			d.Cursor = Cursor{Last: last, OwedThrough: accepted[len(accepted)-1]}
		}
	}
	d.NextDue = s.nextInBounds(d.Cursor.Last)
	return d
}

// acceptNew returns the slots in (lo, to] that the catch-up policy fires: the due ones
// and, depending on the policy, some missed ones. The result is always a contiguous tail
// of the slots in (lo, to], which is what lets Cursor describe owed slots with one bound.
func acceptNew(rr api.RecurringRun, s Schedule, lo, to, now time.Time) []time.Time {
	dueFrom := now.Add(-DueWindow) // slots after dueFrom are due
	if dueFrom.Before(lo) {
		dueFrom = lo
	}
	var due []time.Time
	if to.After(dueFrom) {
		due = s.Slots(dueFrom, to, 0)
	}
	missedTo := dueFrom
	if to.Before(missedTo) {
		missedTo = to
	}
	var missed []time.Time
	if missedTo.After(lo) {
		switch Policy(rr) {
		case api.CatchupLatest:
			if len(due) == 0 {
				missed = s.LastSlots(lo, missedTo, 1)
			}
		case api.CatchupAll:
			limit := rr.CatchupCap
			if limit <= 0 {
				limit = api.DefaultCatchCap
			}
			missed = s.LastSlots(lo, missedTo, limit)
		}
	}
	return append(missed, due...)
}

// NextDue is when a schedule with cursor c next needs a tick: its first slot after
// c.Last within start/end (an owed slot, when there are any); zero when it never fires
// again.
func (s Schedule) NextDue(c Cursor) time.Time { return s.nextInBounds(c.Last) }
