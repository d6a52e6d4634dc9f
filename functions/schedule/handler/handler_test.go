package handler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"sort"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/schedule"
	"github.com/pipefn/pipefn/shared/state"
)

const team = "team-a"

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// runs stands in for the submit function's idempotent Create: the first call with a key
// creates the run, later calls with the same key create nothing. It records creations
// and calls so tests can tell "submitted twice" from "created twice".
type runs struct {
	mu      sync.Mutex
	created map[string]api.Run // by idempotency key
	calls   map[string]int
	// fail, when set, decides per call whether to fail (after or before creating).
	fail func(key string, call int) (created bool, err error)
}

func newRuns() *runs { return &runs{created: map[string]api.Run{}, calls: map[string]int{}} }

func (r *runs) submit(_ context.Context, tm string, run api.Run, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tm != team {
		return fmt.Errorf("submit for team %q", tm)
	}
	if key != run.RunID {
		return fmt.Errorf("idempotency key %q is not the run id %q", key, run.RunID)
	}
	r.calls[key]++
	if r.fail != nil {
		if create, err := r.fail(key, r.calls[key]); err != nil {
			if create {
				if _, ok := r.created[key]; !ok {
					r.created[key] = run
				}
			}
			return err
		}
	}
	if _, ok := r.created[key]; !ok {
		r.created[key] = run
	}
	return nil
}

func (r *runs) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.created {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func tickEvent(at time.Time, id string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(events.TypePing)
	e.SetSource("/apis/v1/namespaces/pipefn/pingsources/tick")
	e.SetTime(at)
	return e
}

func recurring(id, cron string, mut ...func(*api.RecurringRun)) api.RecurringRun {
	rr := api.RecurringRun{
		RecurringRunID:           id,
		DisplayName:              id,
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: "p", PipelineVersionID: "v"},
		Trigger:                  api.Trigger{CronSchedule: &api.CronSchedule{Cron: cron}},
		RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"when": "[[ScheduledTime]]", "n": "[[Index]]"}},
	}
	for _, m := range mut {
		m(&rr)
	}
	return rr
}

// expectIDs lists the run ids of rr's slots in (from, to].
func expectIDs(t *testing.T, rr api.RecurringRun, from, to time.Time) []string {
	t.Helper()
	s, err := schedule.Parse(rr.Trigger, rr.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sl := range s.Slots(from, to, 0) {
		out = append(out, schedule.SlotRunID(rr.RecurringRunID, sl))
	}
	return out
}

// TestConcurrentReplicasExactlyOnce runs three handlers, each with its own connection,
// on one real Redis, and feeds them every tick three times, shuffled, with late and
// out-of-order ticks: each slot's run is created exactly once, and no slot is missing.
func TestConcurrentReplicasExactlyOnce(t *testing.T) {
	srv := redistest.StartServer(t)
	created := ts("2026-03-08T06:00:30Z")
	clock := func() time.Time { return created }
	rs := newRuns()
	var hs []*Handler
	for i := 0; i < 3; i++ {
		hs = append(hs, &Handler{Store: state.New(srv.Client(), clock), Submit: rs.submit, Log: quiet()})
	}
	start := ts("2026-03-08T06:03:00Z")
	defs := []api.RecurringRun{
		recurring("every-minute", "* * * * *"),
		recurring("seconds", "*/20 * * * * *"),
		recurring("ny-0230", "30 2 * * *", func(r *api.RecurringRun) { r.TimeZone = "America/New_York" }), // DST gap at 07:00Z
		recurring("periodic", "", func(r *api.RecurringRun) {
			r.Trigger = api.Trigger{PeriodicSchedule: &api.PeriodicSchedule{IntervalSecond: 150, StartTime: &start}}
		}),
		recurring("capped", "*/5 * * * * *", func(r *api.RecurringRun) { r.Catchup, r.CatchupCap = api.CatchupAll, 1000 }),
	}
	ctx := context.Background()
	for _, d := range defs {
		if _, err := hs[0].Store.CreateRecurringRun(ctx, team, d); err != nil {
			t.Fatal(err)
		}
	}
	// Ticks every minute from 06:01 to 07:10, each three times, shuffled in windows of
	// ten so that ticks arrive late and out of order and replicas race on the same tick.
	var ticks []time.Time
	for m := 1; m <= 70; m++ {
		at := ts("2026-03-08T06:00:00Z").Add(time.Duration(m) * time.Minute).Add(150 * time.Millisecond)
		ticks = append(ticks, at, at, at)
	}
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < len(ticks); i += 30 {
		w := ticks[i:min(i+30, len(ticks))]
		rnd.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i, at := range ticks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := hs[i%3].OnTick(ctx, tickEvent(at, fmt.Sprint(i))); err != nil {
				t.Errorf("tick %s on replica %d: %v", at, i%3, err)
			}
		}()
	}
	wg.Wait()

	last := ticks[0]
	for _, at := range ticks {
		if at.After(last) {
			last = at
		}
	}
	var want []string
	for _, d := range defs {
		want = append(want, expectIDs(t, d, created, last)...)
	}
	sort.Strings(want)
	calls := 0
	for _, n := range rs.calls {
		calls += n
	}
	t.Logf("%d runs expected, %d created, %d submit calls", len(want), len(rs.created), calls)
	if diff := cmp.Diff(want, rs.ids()); diff != "" {
		t.Errorf("created runs (-want +got):\n%s", diff)
	}
	// Each slot was claimed once: a schedule's [[Index]] values are exactly 1..N (a
	// second claim of a slot would take an index and leave a gap).
	indexes := map[string][]string{}
	for _, run := range rs.created {
		indexes[run.RecurringRunID] = append(indexes[run.RecurringRunID], run.RuntimeConfig.Parameters["n"].(string))
	}
	for rrID, got := range indexes {
		var want []string
		for i := 1; i <= len(got); i++ {
			want = append(want, fmt.Sprint(i))
		}
		sort.Strings(want)
		sort.Strings(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("[[Index]] values of %s (-want +got):\n%s", rrID, diff)
		}
	}
	// The New York 02:30 of the spring-forward day fired once, at 03:00 EDT.
	ny := schedule.SlotRunID("ny-0230", ts("2026-03-08T07:00:00Z"))
	if _, ok := rs.created[ny]; !ok {
		t.Errorf("the 02:30 New York slot on the DST day did not fire at 03:00 EDT")
	}
	if got := rs.created[ny].ScheduledAt; got == nil || !got.Equal(ts("2026-03-08T07:00:00Z")) {
		t.Errorf("scheduled_at of the DST slot = %v", got)
	}
}

// TestCrashBetweenClaimAndSubmit: a submit that fails (before or after the run was
// created) leaves the claim pending; the next tick submits the same run id again, and
// the run exists exactly once.
func TestCrashBetweenClaimAndSubmit(t *testing.T) {
	for _, createdBeforeFailure := range []bool{false, true} {
		t.Run(fmt.Sprintf("created=%v", createdBeforeFailure), func(t *testing.T) {
			srv := redistest.StartServer(t)
			created := ts("2026-01-01T10:00:30Z")
			rs := newRuns()
			rs.fail = func(key string, call int) (bool, error) {
				if call == 1 {
					return createdBeforeFailure, &api.Error{Kind: api.KindUnavailable, Message: "submit function unreachable"}
				}
				return false, nil
			}
			h := &Handler{Store: state.New(srv.Client(), func() time.Time { return created }), Submit: rs.submit, Log: quiet()}
			ctx := context.Background()
			rr := recurring("hourly", "0 * * * *")
			if _, err := h.Store.CreateRecurringRun(ctx, team, rr); err != nil {
				t.Fatal(err)
			}
			slot := ts("2026-01-01T11:00:00Z")
			id := schedule.SlotRunID("hourly", slot)

			rep, err := h.Tick(ctx, team, ts("2026-01-01T11:00:01Z"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Report{Unsubmitted: []string{id}}, rep); diff != "" {
				t.Errorf("first tick (-want +got):\n%s", diff)
			}
			if st, _ := h.Store.SlotClaimState(ctx, team, "hourly", slot); st != "claimed" {
				t.Errorf("claim state after failed submit = %q, want claimed", st)
			}
			// A duplicate of the same tick does not resubmit (same-tick claims belong to
			// the replica that made them) and claims nothing new.
			rep, err = h.Tick(ctx, team, ts("2026-01-01T11:00:01Z"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Report{}, rep); diff != "" {
				t.Errorf("duplicate tick (-want +got):\n%s", diff)
			}
			rep, err = h.Tick(ctx, team, ts("2026-01-01T11:01:01Z"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Report{Submitted: []string{id}}, rep); diff != "" {
				t.Errorf("next tick (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{id}, rs.ids()); diff != "" {
				t.Errorf("created runs (-want +got):\n%s", diff)
			}
			if rs.calls[id] != 2 {
				t.Errorf("submit called %d times for %s, want 2", rs.calls[id], id)
			}
			if st, _ := h.Store.SlotClaimState(ctx, team, "hourly", slot); st != "submitted" {
				t.Errorf("claim state = %q, want submitted", st)
			}
			rep, err = h.Tick(ctx, team, ts("2026-01-01T11:02:01Z"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Report{}, rep); diff != "" {
				t.Errorf("third tick (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPermanentSubmitFailureIsNotRetried: a run the submit function refuses (its pipeline
// version is gone) is marked failed, releases its max_concurrency place and is not
// submitted again.
func TestPermanentSubmitFailureIsNotRetried(t *testing.T) {
	srv := redistest.StartServer(t)
	created := ts("2026-01-01T10:00:30Z")
	rs := newRuns()
	rs.fail = func(string, int) (bool, error) {
		return false, api.Errorf(api.KindNotFound, "pipeline version v not found")
	}
	h := &Handler{Store: state.New(srv.Client(), func() time.Time { return created }), Submit: rs.submit, Log: quiet()}
	ctx := context.Background()
	if _, err := h.Store.CreateRecurringRun(ctx, team, recurring("m", "* * * * *", func(r *api.RecurringRun) { r.MaxConcurrency = 1 })); err != nil {
		t.Fatal(err)
	}
	for i, at := range []string{"2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z"} {
		rep, err := h.Tick(ctx, team, ts(at))
		if err != nil {
			t.Fatal(err)
		}
		want := Report{Failed: []string{schedule.SlotRunID("m", ts(at).Truncate(time.Minute))}}
		if diff := cmp.Diff(want, rep); diff != "" {
			t.Errorf("tick %d (-want +got):\n%s", i, diff)
		}
	}
}

// TestMaxConcurrency: with max_concurrency 1 a slot waits while the previous run is
// active and fires once it finishes, reported either through ScheduledRunFinished or,
// for a run whose end was never reported, found by the tick in the runs store. Runs are
// created in the real runs store the way the submit function does: a fresh run id,
// deduplicated by the idempotency key.
func TestMaxConcurrency(t *testing.T) {
	srv := redistest.StartServer(t)
	created := ts("2026-01-01T10:00:30Z")
	store := state.New(srv.Client(), func() time.Time { return created })
	ctx := context.Background()
	made := map[string]api.Run{} // by idempotency key
	h := &Handler{Store: store, Log: quiet(), Submit: func(ctx context.Context, tm string, run api.Run, key string) error {
		run.RunID = ""
		r, _, err := store.CreateRun(ctx, tm, run, state.CreateRunOptions{IdempotencyKey: key})
		made[key] = r
		return err
	}}
	if _, err := store.CreateRecurringRun(ctx, team, recurring("one", "* * * * *", func(r *api.RecurringRun) { r.MaxConcurrency = 1 })); err != nil {
		t.Fatal(err)
	}
	id := func(hm string) string { return schedule.SlotRunID("one", ts("2026-01-01T"+hm+":00Z")) }
	steps := []struct {
		at     string
		before func()
		want   Report
	}{
		{at: "10:01", want: Report{Submitted: []string{id("10:01")}}},
		{at: "10:02", want: Report{Blocked: 1}},
		{at: "10:03", want: Report{Blocked: 1}},
		{at: "10:04", before: func() {
			if err := store.ScheduledRunFinished(ctx, team, made[id("10:01")]); err != nil {
				t.Fatal(err)
			}
		}, want: Report{Submitted: []string{id("10:02")}, Blocked: 1}},
		{at: "10:05", before: func() {
			// The run of 10:02 ends, but nobody tells the schedule.
			for _, st := range []string{api.StateRunning, api.StateSucceeded} {
				if ok, err := store.UpdateState(ctx, team, made[id("10:02")].RunID, st, ts("2026-01-01T10:04:30Z")); err != nil || !ok {
					t.Fatalf("UpdateState %s: %v %v", st, ok, err)
				}
			}
		}, want: Report{Submitted: []string{id("10:03")}, Blocked: 1}},
		{at: "10:06", before: func() {
			// A deleted run no longer holds its place either.
			if err := store.DeleteRun(ctx, team, made[id("10:03")].RunID); err != nil {
				t.Fatal(err)
			}
		}, want: Report{Submitted: []string{id("10:04")}, Blocked: 1}},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		rep, err := h.Tick(ctx, team, ts("2026-01-01T"+st.at+":00.5Z"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, rep); diff != "" {
			t.Errorf("tick %s (-want +got):\n%s", st.at, diff)
		}
	}
	active, err := store.ActiveScheduleRuns(ctx, team, "one")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{id("10:04")}, active); diff != "" {
		t.Errorf("active runs (-want +got):\n%s", diff)
	}
	if r := made[id("10:04")]; r.RecurringRunID != "one" || r.ScheduledAt == nil || !r.ScheduledAt.Equal(ts("2026-01-01T10:04:00Z")) {
		t.Errorf("stored run: %+v", r)
	}
}

// TestRunFor checks the run built for a slot: id, scheduled_at and KFP's macros.
func TestRunFor(t *testing.T) {
	rr := recurring("nightly", "0 0 * * *", func(r *api.RecurringRun) {
		r.TimeZone, r.ExperimentID, r.ServiceAccount, r.Backend = "Europe/Berlin", "exp", "sa", "argo"
	})
	slot := ts("2026-06-30T22:00:00Z")
	c := state.Claim{RecurringRunID: "nightly", Slot: slot, RunID: schedule.SlotRunID("nightly", slot), Index: 4}
	got := RunFor(rr, c, ts("2026-06-30T22:00:07Z"))
	want := api.Run{
		ExperimentID:             "exp",
		RunID:                    c.RunID,
		DisplayName:              "nightly 2026-07-01T00:00:00+02:00",
		StorageState:             api.StorageAvailable,
		PipelineVersionReference: rr.PipelineVersionReference,
		RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"when": "20260701000000", "n": "4"}},
		ServiceAccount:           "sa",
		CreatedAt:                ts("2026-06-30T22:00:07Z"),
		ScheduledAt:              &slot,
		RecurringRunID:           "nightly",
		Backend:                  "argo",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RunFor (-want +got):\n%s", diff)
	}
}
