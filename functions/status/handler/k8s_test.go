package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/state"
)

// seen is an Observer over a fixed picture of a cluster (the real one is tested against
// a real API server in tests/k8s).
type seen struct {
	by  map[string]events.RunStatus
	err error
	got [][]string // run ids asked, per call
}

func (s *seen) Observe(_ context.Context, team string, runs []api.Run) (map[string]events.RunStatus, error) {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.RunID)
	}
	s.got = append(s.got, ids)
	return s.by, s.err
}

func ping(at time.Time) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID("tick")
	e.SetType(events.TypePing)
	e.SetSource("test")
	e.SetTime(at)
	return e
}

// TestResync: the tick applies what each backend's observer sees, forward only and per
// attempt; a run terminated before its object existed ends CANCELED, a running run whose
// object was deleted ends FAILED; a failing observer
// does not stop the others; local runs are never asked about.
func TestResync(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h, st, sent := newHandler(t, now)
	h.ResubmitAfter = time.Hour
	ctx := context.Background()
	mk := func(backend string) api.Run {
		r, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: backend, PipelineSpec: json.RawMessage(`{}`), Backend: backend}, state.CreateRunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	done, stale, stopped, gone, local, broken := mk("tekton"), mk("tekton"), mk("tekton"), mk("tekton"), mk("local"), mk("argo")
	if _, err := st.Transition(ctx, "t1", stopped.RunID, state.StateUpdate{State: api.StateCanceling}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Transition(ctx, "t1", gone.RunID, state.StateUpdate{State: api.StateRunning}); err != nil {
		t.Fatal(err)
	}
	end := now.Add(-time.Minute)
	tk := &seen{by: map[string]events.RunStatus{
		done.RunID: {RunID: done.RunID, Team: "t1", Attempt: 0, State: api.StateSucceeded,
			Tasks: []api.TaskDetail{{TaskID: "a", State: api.StateSucceeded, EndTime: &end, PodName: "p-a"}}},
		// An object of an earlier attempt than the run's (the run says 0; this says 3).
		stale.RunID: {RunID: stale.RunID, Team: "t1", Attempt: 3, State: api.StateFailed},
	}}
	ar := &seen{err: errors.New("cluster unreachable")}
	h.Observers = map[string]Observer{"tekton": tk, "argo": ar}
	if _, err := h.Tick(ctx, ping(now)); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, id := range []string{done.RunID, stale.RunID, stopped.RunID, gone.RunID, local.RunID, broken.RunID} {
		r, err := st.GetRun(ctx, "t1", id)
		if err != nil {
			t.Fatal(err)
		}
		got[r.DisplayName+":"+id[:4]] = r.State
	}
	want := map[string]string{
		"tekton:" + done.RunID[:4]:    api.StateSucceeded,
		"tekton:" + stale.RunID[:4]:   api.StatePending,
		"tekton:" + stopped.RunID[:4]: api.StateCanceled,
		"tekton:" + gone.RunID[:4]:    api.StateFailed, // it ran, and its object is gone
		"local:" + local.RunID[:4]:    api.StatePending,
		"argo:" + broken.RunID[:4]:    api.StatePending,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("run states after the resync (-want +got):\n%s", diff)
	}
	r, _ := st.GetRun(ctx, "t1", done.RunID)
	if diff := cmp.Diff(map[string]string{"a": api.StateSucceeded}, tstate(r)); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if len(tk.got) != 1 || len(tk.got[0]) != 4 || len(ar.got) != 1 {
		t.Errorf("observers asked %v (tekton) %v (argo); want one call each, 4 tekton runs", tk.got, ar.got)
	}
	finished := func() []string {
		var out []string
		for _, e := range sent.evs {
			if e.Type() == events.TypeTaskFinished {
				out = append(out, e.ID())
			}
		}
		return out
	}
	wantFinished := []string{"task:" + done.RunID + ":0:a:SUCCEEDED"}
	if diff := cmp.Diff(wantFinished, finished()); diff != "" {
		t.Errorf("task.finished announced (-want +got):\n%s", diff)
	}
	// A second tick with the same picture changes nothing (finished runs are no longer
	// active, so they are not even asked about).
	if _, err := h.Tick(ctx, ping(now.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantFinished, finished()); diff != "" {
		t.Errorf("task.finished after a second tick (-want +got):\n%s", diff)
	}
	if len(tk.got) != 2 || len(tk.got[1]) != 1 || tk.got[1][0] != stale.RunID {
		t.Errorf("second tick asked tekton about %v, want only the still-pending run", tk.got[len(tk.got)-1])
	}
}

// TestTektonAndAPIServerEvents: engine events decode to the same reports; objects
// pipefn did not create and deletions are ignored; malformed data is permanent.
func TestTektonAndAPIServerEvents(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h, st, _ := newHandler(t, now)
	ctx := context.Background()
	run, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`), Backend: "argo"}, state.CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(typ, data string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID(typ + data)
		e.SetType(typ)
		e.SetSource("test")
		e.SetTime(now)
		_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(data))
		return e
	}
	labels := `"labels":{"pipefn.dev/run-id":"` + run.RunID + `","pipefn.dev/team":"t1","pipefn.dev/attempt":"0"}`
	wf := `{"apiVersion":"argoproj.io/v1alpha1","kind":"Workflow","metadata":{"name":"pf-x-a0","namespace":"t1",` + labels + `},"spec":{},"status":{"phase":"%s"}}`
	steps := []struct {
		e         cloudevents.Event
		want      string
		permanent bool
	}{
		{e: ev(TypeAPIServerAdd, `{"kind":"ConfigMap","metadata":{"name":"x"}}`), want: api.StatePending},
		{e: ev(TypeAPIServerUpdate, fmt.Sprintf(wf, "Running")), want: api.StateRunning},
		{e: ev(TypeAPIServerDelete, fmt.Sprintf(wf, "Running")), want: api.StateRunning},
		{e: ev("dev.tekton.event.pipelinerun.started.v1", `{"pipelineRun":{"metadata":{"name":"y","namespace":"t1"}}}`), want: api.StateRunning},
		{e: ev("dev.tekton.event.pipelinerun.started.v1", `not json`), want: api.StateRunning, permanent: true},
		{e: ev(TypeAPIServerUpdate, fmt.Sprintf(wf, "Succeeded")), want: api.StateSucceeded},
		{e: ev(TypeAPIServerUpdate, fmt.Sprintf(wf, "Running")), want: api.StateSucceeded},
	}
	r := events.NewRouter(h.log())
	h.Register(r)
	for i, s := range steps {
		_, err := r.Dispatch(ctx, s.e)
		if s.permanent != (err != nil && events.IsPermanent(err)) || (!s.permanent && err != nil) {
			t.Errorf("step %d (%s): err %v, permanent wanted %v", i, s.e.Type(), err, s.permanent)
		}
		got, _ := st.GetRun(ctx, "t1", run.RunID)
		if got.State != s.want {
			t.Errorf("step %d (%s): run %s, want %s", i, s.e.Type(), got.State, s.want)
		}
	}
}

// TestEndingEventWithoutTasksReadsTheObject: an engine event that ends a run but says
// nothing of its tasks (Tekton's PipelineRun events) makes the status function read the
// run's object once more, since an ended run is no longer resynced: the tasks end with
// their own states (the failed one FAILED, not RUNNING or CANCELED).
func TestEndingEventWithoutTasksReadsTheObject(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h, st, _ := newHandler(t, now)
	ctx := context.Background()
	run, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`), Backend: "tekton"}, state.CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := now.Add(time.Second)
	if _, err := h.RunStatus(ctx, status(t, run.RunID, 0, api.StateRunning, start,
		api.TaskDetail{TaskID: "a", State: api.StateRunning, StartTime: &start},
		api.TaskDetail{TaskID: "b", State: api.StatePending})); err != nil {
		t.Fatal(err)
	}
	end := now.Add(time.Minute)
	tk := &seen{by: map[string]events.RunStatus{run.RunID: {RunID: run.RunID, Team: "t1", Attempt: 0, State: api.StateFailed,
		Tasks: []api.TaskDetail{{TaskID: "a", State: api.StateFailed, EndTime: &end}, {TaskID: "b", State: api.StateSkipped}}}}}
	h.Observers = map[string]Observer{"tekton": tk}
	e := cloudevents.NewEvent()
	e.SetID("pr-failed")
	e.SetType("dev.tekton.event.pipelinerun.failed.v1")
	e.SetSource("test")
	e.SetTime(end)
	if _, err := h.applyBackendEvent(ctx, e, events.RunStatus{RunID: run.RunID, Team: "t1", Attempt: 0, State: api.StateFailed}, true, nil); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRun(ctx, "t1", run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.StateFailed {
		t.Errorf("run state %s, want FAILED", got.State)
	}
	if diff := cmp.Diff(map[string]string{"a": api.StateFailed, "b": api.StateSkipped}, tstate(got)); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{run.RunID}}, tk.got); diff != "" {
		t.Errorf("observer asked (-want +got):\n%s", diff)
	}
}
