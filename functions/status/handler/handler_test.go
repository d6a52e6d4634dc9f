package handler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

type captured struct {
	mu  sync.Mutex
	evs []cloudevents.Event
}

func (c *captured) Send(_ context.Context, e cloudevents.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, e)
	return nil
}

func newHandler(t *testing.T, now time.Time) (*Handler, *state.Store, *captured) {
	st := state.New(redistest.Start(t), func() time.Time { return now })
	sent := &captured{}
	return &Handler{Store: st, Events: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return now }, Source: "test"}, st, sent
}

func status(t *testing.T, runID string, attempt int, st string, at time.Time, tasks ...api.TaskDetail) cloudevents.Event {
	t.Helper()
	e, err := events.NewRunStatus("test", at, events.RunStatus{RunID: runID, Team: "t1", Attempt: attempt, State: st, Tasks: tasks})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tstate(r api.Run) map[string]string {
	out := map[string]string{}
	for _, t := range r.RunDetails.TaskDetails {
		out[t.TaskID] = t.State
	}
	return out
}

// TestOutOfOrderAndDuplicateStatus feeds one run's reports in every order a Broker might
// deliver them, twice each, and expects the same final record.
func TestOutOfOrderAndDuplicateStatus(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h, st, _ := newHandler(t, now)
	ctx := context.Background()
	run, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`)}, state.CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start, end := now.Add(time.Second), now.Add(3*time.Second)
	reports := []cloudevents.Event{
		status(t, run.RunID, 0, api.StateRunning, start, api.TaskDetail{TaskID: "a", State: api.StatePending}),
		status(t, run.RunID, 0, api.StateRunning, start, api.TaskDetail{TaskID: "a", State: api.StateRunning, StartTime: &start}),
		status(t, run.RunID, 0, api.StateRunning, end, api.TaskDetail{TaskID: "a", State: api.StateSucceeded, EndTime: &end,
			OutputParameters: map[string]any{"x": 1.0}}),
		status(t, run.RunID, 0, api.StateSucceeded, end),
	}
	// Reverse order, then the right order again: duplicates of everything.
	for _, i := range []int{3, 2, 1, 0, 0, 1, 2, 3} {
		if _, err := h.RunStatus(ctx, reports[i]); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	got, err := st.GetRun(ctx, "t1", run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.StateSucceeded {
		t.Errorf("run state = %s, want SUCCEEDED", got.State)
	}
	if diff := cmp.Diff(map[string]string{"a": api.StateSucceeded}, tstate(got)); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	a := got.RunDetails.TaskDetails[0]
	if a.StartTime == nil || !a.StartTime.Equal(start) || a.EndTime == nil || !a.EndTime.Equal(end) {
		t.Errorf("task times: start %v end %v (a late RUNNING must still fill the start time)", a.StartTime, a.EndTime)
	}
	if a.OutputParameters["x"] != 1.0 {
		t.Errorf("outputs = %v", a.OutputParameters)
	}
}

func TestStaleAttemptIsDropped(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h, st, _ := newHandler(t, now)
	ctx := context.Background()
	run, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`)}, state.CreateRunOptions{})
	if _, err := h.RunStatus(ctx, status(t, run.RunID, 0, api.StateFailed, now)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Retry(ctx, "t1", run.RunID); err != nil {
		t.Fatal(err)
	}
	// A late report of attempt 0 must not fail attempt 1.
	if _, err := h.RunStatus(ctx, status(t, run.RunID, 0, api.StateFailed, now, api.TaskDetail{TaskID: "a", State: api.StateFailed})); err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetRun(ctx, "t1", run.RunID)
	if got.State != api.StatePending || got.Attempt != 1 || len(got.RunDetails.TaskDetails) != 0 {
		t.Errorf("after a stale report: state %s attempt %d tasks %v", got.State, got.Attempt, tstate(got))
	}
	if _, err := h.RunStatus(ctx, status(t, run.RunID, 1, api.StateSucceeded, now)); err != nil {
		t.Fatal(err)
	}
	got, _ = st.GetRun(ctx, "t1", run.RunID)
	if got.State != api.StateSucceeded {
		t.Errorf("attempt 1's report: state %s", got.State)
	}
}

func TestBadReportsArePermanent(t *testing.T) {
	now := time.Now()
	h, st, _ := newHandler(t, now)
	ctx := context.Background()
	run, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`)}, state.CreateRunOptions{})
	cases := map[string]cloudevents.Event{
		"unknown run":   status(t, "nope", 0, api.StateRunning, now),
		"unknown state": status(t, run.RunID, 0, "EXPLODED", now),
		"bad task":      status(t, run.RunID, 0, api.StateRunning, now, api.TaskDetail{TaskID: "", State: api.StateRunning}),
	}
	other := status(t, run.RunID, 0, api.StateRunning, now)
	other.SetExtension(events.ExtTeam, "t2")
	cases["team mismatch"] = other
	for name, e := range cases {
		if _, err := h.RunStatus(ctx, e); !events.IsPermanent(err) {
			t.Errorf("%s: err = %v, want a permanent error", name, err)
		}
	}
}

func TestTickAnnouncesStuckPendingRuns(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h, st, sent := newHandler(t, now)
	ctx := context.Background()
	stuck, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "stuck", PipelineSpec: json.RawMessage(`{}`), Backend: "local"}, state.CreateRunOptions{})
	running, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "running", PipelineSpec: json.RawMessage(`{}`)}, state.CreateRunOptions{})
	if _, err := st.UpdateState(ctx, "t1", running.RunID, api.StateRunning, now); err != nil {
		t.Fatal(err)
	}
	tick := cloudevents.NewEvent()
	tick.SetID("tick-1")
	tick.SetType(events.TypePing)
	tick.SetSource("test")
	// Too early: nothing is announced.
	tick.SetTime(now.Add(10 * time.Second))
	if _, err := h.Tick(ctx, tick); err != nil {
		t.Fatal(err)
	}
	if len(sent.evs) != 0 {
		t.Fatalf("announced %d runs 10s after creation", len(sent.evs))
	}
	tick.SetTime(now.Add(time.Minute))
	if _, err := h.Tick(ctx, tick); err != nil {
		t.Fatal(err)
	}
	if len(sent.evs) != 1 {
		t.Fatalf("announced %d events, want 1", len(sent.evs))
	}
	d, err := events.Decode[events.RunSubmitted](sent.evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.RunID != stuck.RunID || d.Backend != "local" || events.Team(sent.evs[0]) != "t1" {
		t.Errorf("announced %+v", d)
	}
}
