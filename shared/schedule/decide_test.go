package schedule

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pipefn/pipefn/shared/api"
)

// tick is one tick of a simulated sequence: its time, and how many of the runs fired so
// far have finished before it (oldest first).
type tick struct {
	at       string
	finished int
}

// simulate feeds ticks to Decide the way functions/schedule does and returns the fired
// slots per tick (formatted "15:04:05" in UTC, or the full time when days differ).
func simulate(t *testing.T, rr api.RecurringRun, created string, ticks []tick) [][]string {
	t.Helper()
	s, err := Parse(rr.Trigger, rr.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	c := InitialCursor(s, ts(created))
	var fired []time.Time
	finished := 0
	var out [][]string
	for _, tk := range ticks {
		finished += tk.finished
		now := ts(tk.at)
		d := Decide(rr, s, c, now, len(fired)-finished)
		var got []string
		for _, f := range d.Fire {
			if f.After(now) {
				t.Fatalf("tick %s fired future slot %s", tk.at, f)
			}
			got = append(got, f.UTC().Format("01-02 15:04:05"))
		}
		if !d.NextDue.IsZero() && len(d.Fire) > 0 && !d.NextDue.After(d.Fire[len(d.Fire)-1]) {
			t.Fatalf("tick %s: NextDue %s not after last fired slot", tk.at, d.NextDue)
		}
		fired = append(fired, d.Fire...)
		c = d.Cursor
		out = append(out, got)
	}
	return out
}

func every(n int, from string, step time.Duration) []tick {
	var out []tick
	t := ts(from)
	for i := 0; i < n; i++ {
		out = append(out, tick{at: t.Format(time.RFC3339Nano)})
		t = t.Add(step)
	}
	return out
}

func TestDecide(t *testing.T) {
	start, end := ts("2026-01-01T10:02:00Z"), ts("2026-01-01T10:04:00Z")
	rr := func(trigger api.Trigger, mut ...func(*api.RecurringRun)) api.RecurringRun {
		r := api.RecurringRun{RecurringRunID: "rr", Trigger: trigger, Mode: api.ModeEnable}
		for _, m := range mut {
			m(&r)
		}
		return r
	}
	catchup := func(p string, cap int) func(*api.RecurringRun) {
		return func(r *api.RecurringRun) { r.Catchup, r.CatchupCap = p, cap }
	}
	gap := []tick{{at: "2026-01-01T10:00:05Z"}, {at: "2026-01-01T12:00:05Z"}}
	tests := []struct {
		name    string
		rr      api.RecurringRun
		created string
		ticks   []tick
		want    [][]string
	}{{
		name: "every minute, ticks a little late", rr: rr(cronTrigger("* * * * *")), created: "2026-01-01T09:59:30Z",
		ticks: every(3, "2026-01-01T10:00:02Z", time.Minute),
		want:  [][]string{{"01-01 10:00:00"}, {"01-01 10:01:00"}, {"01-01 10:02:00"}},
	}, {
		name: "duplicated and out-of-order ticks fire nothing twice", rr: rr(cronTrigger("* * * * *")), created: "2026-01-01T09:59:30Z",
		ticks: []tick{{at: "2026-01-01T10:01:00Z"}, {at: "2026-01-01T10:01:00Z"}, {at: "2026-01-01T10:00:00Z"}, {at: "2026-01-01T10:02:00Z"}},
		want:  [][]string{{"01-01 10:00:00", "01-01 10:01:00"}, nil, nil, {"01-01 10:02:00"}},
	}, {
		name: "six-field seconds cron fires every slot of the minute", rr: rr(cronTrigger("*/15 * * * * *")), created: "2026-01-01T10:00:00Z",
		ticks: every(2, "2026-01-01T10:01:00Z", time.Minute),
		want: [][]string{{"01-01 10:00:15", "01-01 10:00:30", "01-01 10:00:45", "01-01 10:01:00"},
			{"01-01 10:01:15", "01-01 10:01:30", "01-01 10:01:45", "01-01 10:02:00"}},
	}, {
		name:    "periodic every 150s",
		rr:      rr(api.Trigger{PeriodicSchedule: &api.PeriodicSchedule{IntervalSecond: 150}}),
		created: "2026-01-01T10:00:00Z", ticks: every(4, "2026-01-01T10:01:00Z", time.Minute),
		want: [][]string{nil, nil, {"01-01 10:02:30"}, nil},
	}, {
		name:    "start and end bound the slots",
		rr:      rr(api.Trigger{CronSchedule: &api.CronSchedule{Cron: "* * * * *", StartTime: &start, EndTime: &end}}),
		created: "2026-01-01T10:00:00Z", ticks: every(6, "2026-01-01T10:01:00Z", time.Minute),
		want: [][]string{nil, {"01-01 10:02:00"}, {"01-01 10:03:00"}, {"01-01 10:04:00"}, nil, nil},
	}, {
		name: "disabled fires nothing", rr: rr(cronTrigger("* * * * *"), func(r *api.RecurringRun) { r.Mode = api.ModeDisable }),
		created: "2026-01-01T10:00:00Z", ticks: every(2, "2026-01-01T10:01:00Z", time.Minute),
		want: [][]string{nil, nil},
	}, {
		name: "catch-up none after a two-hour gap fires only due slots", rr: rr(cronTrigger("* * * * *"), catchup(api.CatchupNone, 0)),
		created: "2026-01-01T09:59:30Z", ticks: gap,
		want: [][]string{{"01-01 10:00:00"}, {"01-01 11:59:00", "01-01 12:00:00"}},
	}, {
		name: "catch-up latest after a two-hour gap on an hourly cron fires the latest missed slot", rr: rr(cronTrigger("30 * * * *"), catchup(api.CatchupLatest, 0)),
		created: "2026-01-01T09:59:30Z", ticks: gap,
		want: [][]string{nil, {"01-01 11:30:00"}},
	}, {
		name: "no_catchup means latest", rr: rr(cronTrigger("30 * * * *"), func(r *api.RecurringRun) { r.NoCatchup = true }),
		created: "2026-01-01T09:59:30Z", ticks: gap,
		want: [][]string{nil, {"01-01 11:30:00"}},
	}, {
		name: "catch-up latest with a due slot fires only the due slot", rr: rr(cronTrigger("*/10 * * * *"), catchup(api.CatchupLatest, 0)),
		created: "2026-01-01T09:59:30Z", ticks: gap,
		want: [][]string{{"01-01 10:00:00"}, {"01-01 12:00:00"}},
	}, {
		name: "catch-up all with cap fires the most recent missed slots", rr: rr(cronTrigger("*/10 * * * *"), catchup(api.CatchupAll, 3)),
		created: "2026-01-01T09:59:30Z", ticks: gap,
		want: [][]string{{"01-01 10:00:00"}, {"01-01 11:30:00", "01-01 11:40:00", "01-01 11:50:00", "01-01 12:00:00"}},
	}, {
		name: "catch-up all by default fires every missed slot", rr: rr(cronTrigger("*/30 * * * *")),
		created: "2026-01-01T09:59:30Z", ticks: gap,
		want: [][]string{{"01-01 10:00:00"}, {"01-01 10:30:00", "01-01 11:00:00", "01-01 11:30:00", "01-01 12:00:00"}},
	}, {
		name:    "past start_time backfills under catch-up all",
		rr:      rr(api.Trigger{CronSchedule: &api.CronSchedule{Cron: "0 * * * *", StartTime: &start}}),
		created: "2026-01-01T12:30:00Z", ticks: []tick{{at: "2026-01-01T12:31:00Z"}},
		want: [][]string{{"01-01 11:00:00", "01-01 12:00:00"}},
	}, {
		name:    "max_concurrency holds slots back until runs finish, even under catch-up none",
		rr:      rr(cronTrigger("* * * * *"), catchup(api.CatchupNone, 0), func(r *api.RecurringRun) { r.MaxConcurrency = 1 }),
		created: "2026-01-01T09:59:30Z",
		ticks: []tick{
			{at: "2026-01-01T10:00:01Z"},
			{at: "2026-01-01T10:01:01Z"}, // 10:01 owed
			{at: "2026-01-01T10:05:01Z"}, // still blocked; 10:02.. wait behind the owed slot
			{at: "2026-01-01T10:06:01Z", finished: 1},
			{at: "2026-01-01T10:07:01Z", finished: 1},
		},
		// 10:02-10:04 became missed while 10:01 was owed and are skipped (catch-up none);
		// 10:05 and 10:06 were due at 10:06:01 and are owed in turn.
		want: [][]string{{"01-01 10:00:00"}, nil, nil, {"01-01 10:01:00"}, {"01-01 10:05:00"}},
	}, {
		name:    "max_concurrency 2 fires two of a catch-up burst, the rest later",
		rr:      rr(cronTrigger("*/30 * * * *"), func(r *api.RecurringRun) { r.MaxConcurrency = 2 }),
		created: "2026-01-01T09:59:30Z",
		ticks: []tick{
			{at: "2026-01-01T11:30:05Z"},
			{at: "2026-01-01T11:31:05Z"},
			{at: "2026-01-01T11:32:05Z", finished: 2},
		},
		want: [][]string{{"01-01 10:00:00", "01-01 10:30:00"}, nil, {"01-01 11:00:00", "01-01 11:30:00"}},
	}, {
		name: "New York spring forward fires 02:30 once at 03:00 EDT", rr: rr(cronTrigger("30 2 * * *"), func(r *api.RecurringRun) { r.TimeZone = "America/New_York" }),
		created: "2026-03-08T00:00:00Z", ticks: every(3, "2026-03-08T06:00:00Z", 30*time.Minute),
		want: [][]string{nil, nil, {"03-08 07:00:00"}},
	}, {
		name: "New York fall back fires 01:30 once", rr: rr(cronTrigger("30 1 * * *"), func(r *api.RecurringRun) { r.TimeZone = "America/New_York" }),
		created: "2026-10-31T12:00:00Z", ticks: every(6, "2026-11-01T05:00:00Z", 30*time.Minute),
		want: [][]string{nil, {"11-01 05:30:00"}, nil, nil, nil, nil},
	}, {
		name: "Berlin spring forward and fall back", rr: rr(cronTrigger("30 2 * * *"), catchup(api.CatchupNone, 0), func(r *api.RecurringRun) { r.TimeZone = "Europe/Berlin" }),
		created: "2026-03-28T12:00:00Z",
		ticks: []tick{{at: "2026-03-29T00:59:00Z"}, {at: "2026-03-29T01:00:00Z"}, {at: "2026-03-29T01:30:00Z"},
			{at: "2026-10-25T00:30:00Z"}, {at: "2026-10-25T01:30:00Z"}},
		want: [][]string{nil, {"03-29 01:00:00"}, nil, {"10-25 00:30:00"}, nil},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := simulate(t, tc.rr, tc.created, tc.ticks)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("fired per tick (-want +got):\n%s", diff)
			}
		})
	}
}
