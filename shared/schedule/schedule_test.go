package schedule

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pipefn/pipefn/shared/api"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func cronTrigger(expr string) api.Trigger {
	return api.Trigger{CronSchedule: &api.CronSchedule{Cron: expr}}
}

// fmtAll renders instants in UTC and in loc, so a failing DST case shows both readings.
func fmtAll(ts []time.Time, loc *time.Location) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.UTC().Format(time.RFC3339)+" = "+t.In(loc).Format("2006-01-02 15:04:05 MST"))
	}
	return out
}

func TestSlots(t *testing.T) {
	start := ts("2026-01-01T00:00:30Z")
	tests := []struct {
		name     string
		trigger  api.Trigger
		tz       string
		from, to string
		limit    int
		want     []string // wall times in tz, "2006-01-02 15:04:05 MST"
	}{{
		name: "every minute", trigger: cronTrigger("* * * * *"),
		from: "2026-01-01T10:00:00Z", to: "2026-01-01T10:03:00Z",
		want: []string{"2026-01-01 10:01:00 UTC", "2026-01-01 10:02:00 UTC", "2026-01-01 10:03:00 UTC"},
	}, {
		name: "six fields with seconds", trigger: cronTrigger("*/20 * * * * *"),
		from: "2026-01-01T10:00:00Z", to: "2026-01-01T10:01:00Z",
		want: []string{"2026-01-01 10:00:20 UTC", "2026-01-01 10:00:40 UTC", "2026-01-01 10:01:00 UTC"},
	}, {
		name: "limit", trigger: cronTrigger("0 * * * *"),
		from: "2026-01-01T10:00:00Z", to: "2026-01-02T10:00:00Z", limit: 2,
		want: []string{"2026-01-01 11:00:00 UTC", "2026-01-01 12:00:00 UTC"},
	}, {
		name: "dom or dow when both restricted", trigger: cronTrigger("0 9 1 * MON"),
		from: "2026-05-28T00:00:00Z", to: "2026-06-09T00:00:00Z",
		want: []string{"2026-06-01 09:00:00 UTC", "2026-06-08 09:00:00 UTC"},
	}, {
		name: "descriptor in zone", trigger: cronTrigger("@daily"), tz: "Asia/Tokyo",
		from: "2026-01-01T00:00:00Z", to: "2026-01-03T00:00:00Z",
		want: []string{"2026-01-02 00:00:00 JST", "2026-01-03 00:00:00 JST"},
	}, {
		name:    "periodic anchored at start",
		trigger: api.Trigger{PeriodicSchedule: &api.PeriodicSchedule{IntervalSecond: 90, StartTime: &start}},
		from:    "2025-12-31T00:00:00Z", to: "2026-01-01T00:04:00Z",
		want: []string{"2026-01-01 00:00:30 UTC", "2026-01-01 00:02:00 UTC", "2026-01-01 00:03:30 UTC"},
	}, {
		name:    "periodic without start is anchored at the epoch",
		trigger: api.Trigger{PeriodicSchedule: &api.PeriodicSchedule{IntervalSecond: 3600}},
		from:    "2026-01-01T10:30:00Z", to: "2026-01-01T12:00:00Z",
		want: []string{"2026-01-01 11:00:00 UTC", "2026-01-01 12:00:00 UTC"},
	}, {
		// 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist and fires at 03:00 EDT.
		name: "New York spring forward", trigger: cronTrigger("30 2 * * *"), tz: "America/New_York",
		from: "2026-03-07T00:00:00Z", to: "2026-03-10T00:00:00Z",
		want: []string{"2026-03-07 02:30:00 EST", "2026-03-08 03:00:00 EDT", "2026-03-09 02:30:00 EDT"},
	}, {
		// 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice and fires once, the first time.
		name: "New York fall back", trigger: cronTrigger("30 1 * * *"), tz: "America/New_York",
		from: "2026-10-31T00:00:00Z", to: "2026-11-03T00:00:00Z",
		want: []string{"2026-10-31 01:30:00 EDT", "2026-11-01 01:30:00 EDT", "2026-11-02 01:30:00 EST"},
	}, {
		name: "New York gap collapses every-15-minutes into one slot", trigger: cronTrigger("*/15 1-3 8 3 *"), tz: "America/New_York",
		from: "2026-03-08T06:40:00Z", to: "2026-03-08T07:20:00Z",
		want: []string{"2026-03-08 01:45:00 EST", "2026-03-08 03:00:00 EDT", "2026-03-08 03:15:00 EDT"},
	}, {
		name: "New York repeated hour fires its minutes once", trigger: cronTrigger("*/20 1 1 11 *"), tz: "America/New_York",
		from: "2026-11-01T04:00:00Z", to: "2026-11-01T08:00:00Z",
		want: []string{"2026-11-01 01:00:00 EDT", "2026-11-01 01:20:00 EDT", "2026-11-01 01:40:00 EDT"},
	}, {
		// 2026-03-29 02:00 CET -> 03:00 CEST.
		name: "Berlin spring forward", trigger: cronTrigger("30 2 * * *"), tz: "Europe/Berlin",
		from: "2026-03-28T00:00:00Z", to: "2026-03-31T00:00:00Z",
		want: []string{"2026-03-28 02:30:00 CET", "2026-03-29 03:00:00 CEST", "2026-03-30 02:30:00 CEST"},
	}, {
		// 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice.
		name: "Berlin fall back", trigger: cronTrigger("30 2 * * *"), tz: "Europe/Berlin",
		from: "2026-10-24T00:00:00Z", to: "2026-10-27T00:00:00Z",
		want: []string{"2026-10-24 02:30:00 CEST", "2026-10-25 02:30:00 CEST", "2026-10-26 02:30:00 CET"},
	}, {
		name: "Berlin seconds cron across the gap", trigger: cronTrigger("0 59 1,2,3 29 3 *"), tz: "Europe/Berlin",
		from: "2026-03-29T00:00:00Z", to: "2026-03-29T02:00:00Z",
		want: []string{"2026-03-29 01:59:00 CET", "2026-03-29 03:00:00 CEST", "2026-03-29 03:59:00 CEST"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.trigger, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			loc := s.Location()
			var got []string
			for _, x := range s.Slots(ts(tc.from), ts(tc.to), tc.limit) {
				got = append(got, x.In(loc).Format("2006-01-02 15:04:05 MST"))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Slots (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextIsStrictlyIncreasingAcrossDST walks a whole year of an every-minute cron in
// two zones: every slot is after the previous one, and each wall time appears once.
func TestNextIsStrictlyIncreasingAcrossDST(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Europe/Berlin", "Australia/Lord_Howe"} {
		t.Run(zone, func(t *testing.T) {
			s, err := Parse(cronTrigger("*/7 * * * *"), zone)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			prev := ts("2026-01-01T00:00:00Z")
			for i := 0; i < 80000; i++ {
				n := s.Next(prev)
				if !n.After(prev) {
					t.Fatalf("Next(%s) = %s, not after", prev, n)
				}
				wall := n.In(s.Location()).Format("2006-01-02 15:04")
				if seen[wall] {
					t.Fatalf("wall time %s fired twice (at %s)", wall, n.UTC())
				}
				seen[wall] = true
				prev = n
			}
		})
	}
}

func TestLastSlots(t *testing.T) {
	s, err := Parse(cronTrigger("* * * * * *"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := s.LastSlots(ts("2026-01-01T00:00:00Z"), ts("2026-01-20T00:00:00Z"), 3)
	want := []time.Time{ts("2026-01-19T23:59:58Z"), ts("2026-01-19T23:59:59Z"), ts("2026-01-20T00:00:00Z")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LastSlots (-want +got):\n%s", diff)
	}
	daily, _ := Parse(cronTrigger("0 9 * * *"), "")
	got = daily.LastSlots(ts("2026-01-01T00:00:00Z"), ts("2026-01-03T08:00:00Z"), 5)
	want = []time.Time{ts("2026-01-01T09:00:00Z"), ts("2026-01-02T09:00:00Z")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LastSlots daily (-want +got):\n%s", diff)
	}
}

func TestSlotRunID(t *testing.T) {
	a := SlotRunID("rr1", ts("2026-01-01T00:00:00Z"))
	if a != SlotRunID("rr1", ts("2026-01-01T01:00:00+01:00")) {
		t.Error("same instant in another zone gives another id")
	}
	if a == SlotRunID("rr1", ts("2026-01-01T00:00:01Z")) || a == SlotRunID("rr2", ts("2026-01-01T00:00:00Z")) {
		t.Error("different slots share an id")
	}
	if len(a) != 36 || a[14] != '5' {
		t.Errorf("id %q is not a version-5 UUID", a)
	}
}

func TestSubstituteParams(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	got := SubstituteParams(map[string]any{
		"a": "run-[[ScheduledTime]]",
		"b": "[[ScheduledTime.2006-01-02]]/[[CurrentTime.15:04]]#[[Index]]",
		"c": "[[Unknown]] [[Index.x]] [[open",
		"d": 3.5,
	}, ts("2026-06-30T22:00:00Z"), ts("2026-06-30T22:00:05Z"), 7, berlin)
	want := map[string]any{
		"a": "run-20260701000000",
		"b": "2026-07-01/00:00#7",
		"c": "[[Unknown]] [[Index.x]] [[open",
		"d": 3.5,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SubstituteParams (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	now := ts("2026-01-01T00:00:00Z")
	start, end := ts("2026-02-01T00:00:00Z"), ts("2026-01-15T00:00:00Z")
	good := func() api.RecurringRun {
		return api.RecurringRun{
			DisplayName:              "nightly",
			PipelineVersionReference: &api.PipelineVersionReference{PipelineID: "p"},
			Trigger:                  cronTrigger("0 2 * * *"),
		}
	}
	tests := []struct {
		name   string
		mutate func(*api.RecurringRun)
		want   []Problem
	}{
		{"valid", func(*api.RecurringRun) {}, nil},
		{"six-field valid", func(r *api.RecurringRun) { r.Trigger = cronTrigger("0 0 2 * * *") }, nil},
		{"bad cron", func(r *api.RecurringRun) { r.Trigger = cronTrigger("61 * * * *") },
			[]Problem{{"trigger.cron_schedule.cron", `cron expression "61 * * * *": end of range (61) above maximum (59): 61`}}},
		{"never fires", func(r *api.RecurringRun) { r.Trigger = cronTrigger("0 0 30 2 *") },
			[]Problem{{"trigger.cron_schedule.cron", `"0 0 30 2 *" never fires`}}},
		{"unknown zone", func(r *api.RecurringRun) { r.TimeZone = "Mars/Olympus" },
			[]Problem{{"time_zone", `unknown IANA time zone "Mars/Olympus"`}}},
		{"end before start", func(r *api.RecurringRun) {
			r.Trigger.CronSchedule.StartTime, r.Trigger.CronSchedule.EndTime = &start, &end
		}, []Problem{{"trigger", "end_time 2026-01-15T00:00:00Z is not after start_time 2026-02-01T00:00:00Z"}}},
		{"zero interval", func(r *api.RecurringRun) { r.Trigger = api.Trigger{PeriodicSchedule: &api.PeriodicSchedule{}} },
			[]Problem{{"trigger.periodic_schedule.interval_second", "must be a positive number of seconds, got 0"}}},
		{"no trigger", func(r *api.RecurringRun) { r.Trigger = api.Trigger{} },
			[]Problem{{"trigger", "one of cron_schedule or periodic_schedule is required"}}},
		{"everything else at once", func(r *api.RecurringRun) {
			r.DisplayName, r.PipelineVersionReference, r.MaxConcurrency = "", nil, -1
			r.Catchup, r.CatchupCap, r.Mode = "sometimes", -2, "ON"
		}, []Problem{
			{"display_name", "is required"},
			{"pipeline_version_reference", "one of pipeline_version_reference or pipeline_spec is required"},
			{"max_concurrency", "must be 0 (unlimited) or more, got -1"},
			{"mode", `must be ENABLE or DISABLE, got "ON"`},
			{"catchup", `must be one of none, latest, all; got "sometimes"`},
			{"catchup_cap", "must be 0 (default 100) or more, got -2"},
		}},
		{"every", func(r *api.RecurringRun) { r.Trigger = cronTrigger("@every 1h") },
			[]Problem{{"trigger.cron_schedule.cron", `cron expression "@every 1h": @every is not a cron schedule; use periodic_schedule`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr := good()
			tc.mutate(&rr)
			err := Validate(rr, now)
			var got []Problem
			if err != nil {
				ve, ok := err.(*ValidationError)
				if !ok {
					t.Fatalf("error %T %v is not a *ValidationError", err, err)
				}
				got = ve.Problems
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}
