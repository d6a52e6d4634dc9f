// Package handler is the compile function: it turns a dev.pipefn.run.submitted.v1 event
// into work on the run's backend (a Tekton PipelineRun, an Argo Workflow, or the local
// executor) and replies dev.pipefn.run.dispatched.v1. It also carries terminations to the
// backend. Plain Go: no network of its own, testable through its handlers.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/ir"
)

// Runs is what the compile function reads of the store.
type Runs interface {
	GetRun(ctx context.Context, team, runID string) (api.Run, error)
	GetPipelineVersionIR(ctx context.Context, team, versionID string) ([]byte, error)
}

// Job is one run attempt handed to a backend.
type Job struct {
	Team     string
	Run      api.Run
	Attempt  int
	Pipeline *ir.Pipeline
	// Params are the run's bound root parameters.
	Params map[string]*structpb.Value
	// PipelineRoot is where the run's artifacts go.
	PipelineRoot string
	// Caching is false when the run asked for no step cache.
	Caching bool
}

// Backend runs jobs. Dispatch must be idempotent per (run, attempt): a redelivered event
// creates nothing twice.
type Backend interface {
	Dispatch(ctx context.Context, job Job) (events.RunDispatched, error)
	Cancel(ctx context.Context, team, runID string) error
}

// Handler is the compile function.
type Handler struct {
	Runs           Runs
	Backends       map[string]Backend
	DefaultBackend string
	// PipelineRoot returns the pipeline root for a team's run when neither the run nor
	// the IR names one.
	PipelineRoot func(team, runID string) string
	Source       string
	Now          func() time.Time
	Log          *slog.Logger
}

// Register mounts the handler's event handlers on r.
func (h *Handler) Register(r *events.Router) {
	r.Handle(events.TypeRunSubmitted, h.Submitted)
	r.Handle(events.TypeRunCancel, h.CancelRequested)
}

// Submitted compiles and dispatches a submitted run. A run that can never be dispatched
// (its IR no longer loads, its backend is unknown) is answered with a FAILED status, not
// an error: redelivery could not help.
func (h *Handler) Submitted(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	d, err := events.Decode[events.RunSubmitted](e)
	if err != nil {
		return nil, err
	}
	team := events.Team(e)
	if team == "" || team != d.Team {
		return nil, events.Permanent(fmt.Errorf("event %s: team attribute %q does not match data %q", e.ID(), team, d.Team))
	}
	run, err := h.Runs.GetRun(ctx, team, d.RunID)
	if errors.Is(err, api.ErrNotFound) {
		return nil, events.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	if api.Terminal(run.State) || run.State == api.StateCanceling || run.Attempt != d.Attempt {
		// A stale or duplicate submission: the run moved on without it.
		h.Log.InfoContext(ctx, "submission ignored", "run", run.RunID, "state", run.State, "attempt", run.Attempt, "event_attempt", d.Attempt)
		return nil, nil
	}
	backendName := run.Backend
	if backendName == "" {
		backendName = h.DefaultBackend
	}
	job, err := h.job(ctx, team, run, d.Attempt)
	if err != nil {
		return h.fail(team, run, d.Attempt, err)
	}
	backend, ok := h.Backends[backendName]
	if !ok {
		return h.fail(team, run, d.Attempt, fmt.Errorf("backend %q is not available here (have %v)", backendName, h.names()))
	}
	disp, err := backend.Dispatch(ctx, job)
	if err != nil {
		if events.IsPermanent(err) {
			return h.fail(team, run, d.Attempt, err)
		}
		return nil, fmt.Errorf("dispatch run %s to %s: %w", run.RunID, backendName, err)
	}
	reply, err := events.NewRunDispatched(h.Source, h.Now(), disp)
	if err != nil {
		return nil, err
	}
	return &reply, nil
}

// CancelRequested carries a termination to the run's backend.
func (h *Handler) CancelRequested(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	d, err := events.Decode[events.RunCancel](e)
	if err != nil {
		return nil, err
	}
	team := events.Team(e)
	run, err := h.Runs.GetRun(ctx, team, d.RunID)
	if errors.Is(err, api.ErrNotFound) {
		return nil, events.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	name := run.Backend
	if name == "" {
		name = h.DefaultBackend
	}
	b, ok := h.Backends[name]
	if !ok {
		return nil, events.Permanent(fmt.Errorf("run %s: backend %q is not available here", run.RunID, name))
	}
	if err := b.Cancel(ctx, team, run.RunID); err != nil {
		return nil, err
	}
	return nil, nil
}

// job loads the run's IR and binds its parameters.
func (h *Handler) job(ctx context.Context, team string, run api.Run, attempt int) (Job, error) {
	var data []byte
	switch {
	case len(run.PipelineSpec) > 0:
		data = api.IR(run.PipelineSpec)
	case run.PipelineVersionReference != nil && run.PipelineVersionReference.PipelineVersionID != "":
		var err error
		data, err = h.Runs.GetPipelineVersionIR(ctx, team, run.PipelineVersionReference.PipelineVersionID)
		if err != nil {
			return Job{}, err
		}
	default:
		return Job{}, fmt.Errorf("run %s has neither a pipeline spec nor a pipeline version", run.RunID)
	}
	p, err := ir.Load(data)
	if err != nil {
		return Job{}, err
	}
	var overrides map[string]any
	root := ""
	if run.RuntimeConfig != nil {
		overrides = run.RuntimeConfig.Parameters
		root = run.RuntimeConfig.PipelineRoot
	}
	params, err := p.BindParameters(overrides)
	if err != nil {
		return Job{}, err
	}
	if root == "" {
		root = p.RuntimeConfig.PipelineRoot()
	}
	if root == "" {
		root = p.Spec.GetDefaultPipelineRoot()
	}
	if root == "" && h.PipelineRoot != nil {
		root = h.PipelineRoot(team, run.RunID)
	}
	return Job{Team: team, Run: run, Attempt: attempt, Pipeline: p, Params: params, PipelineRoot: root,
		Caching: run.EnableCaching == nil || *run.EnableCaching}, nil
}

func (h *Handler) fail(team string, run api.Run, attempt int, cause error) (*cloudevents.Event, error) {
	h.Log.Warn("run cannot be dispatched", "run", run.RunID, "team", team, "err", cause)
	st, err := events.NewRunStatus(h.Source, h.Now(), events.RunStatus{
		RunID: run.RunID, Team: team, Attempt: attempt, State: api.StateFailed, Error: cause.Error(),
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

func (h *Handler) names() []string {
	var out []string
	for k := range h.Backends {
		out = append(out, k)
	}
	return out
}
