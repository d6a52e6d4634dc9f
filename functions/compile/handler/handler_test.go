package handler

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

type recBackend struct {
	mu         sync.Mutex
	dispatched []Job
	canceled   []string
	err        error
}

func (b *recBackend) Dispatch(_ context.Context, j Job) (events.RunDispatched, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return events.RunDispatched{}, b.err
	}
	b.dispatched = append(b.dispatched, j)
	return events.RunDispatched{RunID: j.Run.RunID, Team: j.Team, Backend: "rec", Attempt: j.Attempt}, nil
}

func (b *recBackend) Cancel(_ context.Context, team, runID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.canceled = append(b.canceled, team+"/"+runID)
	return nil
}

func example(t *testing.T) json.RawMessage {
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "examples", "hello-artifacts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ir.SpecJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func setup(t *testing.T) (*Handler, *state.Store, *recBackend) {
	st := state.New(redistest.Start(t), nil)
	b := &recBackend{}
	h := &Handler{Runs: st, Backends: map[string]Backend{"rec": b}, DefaultBackend: "rec", Source: "test",
		Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PipelineRoot: func(team, runID string) string { return "file:///tmp/" + team }}
	return h, st, b
}

func submitted(t *testing.T, run api.Run, attempt int) cloudevents.Event {
	e, err := events.NewRunSubmitted("test", time.Now(), events.RunSubmitted{RunID: run.RunID, Team: "t1", Backend: run.Backend, Attempt: attempt})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSubmittedDispatchesWithBoundParameters(t *testing.T) {
	h, st, b := setup(t)
	ctx := context.Background()
	run, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: example(t),
		RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]any{"count": 7}}}, state.CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := h.Submitted(ctx, submitted(t, run, 0))
	if err != nil {
		t.Fatal(err)
	}
	if reply == nil || reply.Type() != events.TypeRunDispatched {
		t.Fatalf("reply = %v, want run.dispatched", reply)
	}
	if len(b.dispatched) != 1 {
		t.Fatalf("%d dispatches", len(b.dispatched))
	}
	j := b.dispatched[0]
	if j.Params["count"].GetNumberValue() != 7 || j.Params["message"].GetStringValue() != "hello pipefn" {
		t.Errorf("bound params = %v", j.Params)
	}
	if j.PipelineRoot != "file:///tmp/t1" || !j.Caching {
		t.Errorf("job root %q caching %v", j.PipelineRoot, j.Caching)
	}
}

func TestStaleOrEndedSubmissionsAreIgnored(t *testing.T) {
	h, st, b := setup(t)
	ctx := context.Background()
	run, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: example(t)}, state.CreateRunOptions{})
	// An event for an attempt the run has not reached is ignored, as is one for an ended run.
	if reply, err := h.Submitted(ctx, submitted(t, run, 3)); err != nil || reply != nil {
		t.Errorf("future attempt: %v %v", reply, err)
	}
	if _, err := st.UpdateState(ctx, "t1", run.RunID, api.StateCanceled, time.Now()); err != nil {
		t.Fatal(err)
	}
	if reply, err := h.Submitted(ctx, submitted(t, run, 0)); err != nil || reply != nil {
		t.Errorf("canceled run: %v %v", reply, err)
	}
	if len(b.dispatched) != 0 {
		t.Errorf("dispatched %d times", len(b.dispatched))
	}
}

func TestUndispatchableRunsFail(t *testing.T) {
	h, st, b := setup(t)
	ctx := context.Background()
	unknown, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: example(t), Backend: "nope"}, state.CreateRunOptions{})
	broken, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{"pipelineInfo":{"name":"x"},"schemaVersion":"9.0.0"}`)}, state.CreateRunOptions{})
	badParam, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: example(t),
		RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]any{"count": "many"}}}, state.CreateRunOptions{})
	for name, run := range map[string]api.Run{"unknown backend": unknown, "broken IR": broken, "bad parameter": badParam} {
		reply, err := h.Submitted(ctx, submitted(t, run, 0))
		if err != nil {
			t.Errorf("%s: err %v, want a FAILED status reply", name, err)
			continue
		}
		d, err := events.Decode[events.RunStatus](*reply)
		if err != nil || d.State != api.StateFailed || d.Error == "" {
			t.Errorf("%s: reply %+v (%v)", name, d, err)
		}
	}
	// A transient backend failure is returned, so the Broker redelivers.
	b.err = errors.New("api server is down")
	ok, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: example(t)}, state.CreateRunOptions{})
	if _, err := h.Submitted(ctx, submitted(t, ok, 0)); err == nil || events.IsPermanent(err) {
		t.Errorf("transient dispatch failure: err %v, want transient", err)
	}
	// Another team's event for this run finds nothing.
	e := submitted(t, ok, 0)
	e.SetExtension(events.ExtTeam, "t2")
	if _, err := h.Submitted(ctx, e); !events.IsPermanent(err) {
		t.Errorf("team mismatch: %v", err)
	}
}

func TestCancelReachesTheBackend(t *testing.T) {
	h, st, b := setup(t)
	ctx := context.Background()
	run, _, _ := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: example(t)}, state.CreateRunOptions{})
	e, err := events.NewRunCancel("test", time.Now(), events.RunCancel{RunID: run.RunID, Team: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CancelRequested(ctx, e); err != nil {
		t.Fatal(err)
	}
	if len(b.canceled) != 1 || b.canceled[0] != "t1/"+run.RunID {
		t.Errorf("canceled = %v", b.canceled)
	}
}
