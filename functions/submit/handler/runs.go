package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// RunStore is what the submit function needs of the store for runs.
type RunStore interface {
	CreateRun(ctx context.Context, team string, r api.Run, opts state.CreateRunOptions) (api.Run, bool, error)
	GetRun(ctx context.Context, team, runID string) (api.Run, error)
	Transition(ctx context.Context, team, runID string, u state.StateUpdate) (bool, error)
	Retry(ctx context.Context, team, runID string) (api.Run, []string, error)
	ArchiveRun(ctx context.Context, team, runID string) error
	UnarchiveRun(ctx context.Context, team, runID string) error
	DeleteRun(ctx context.Context, team, runID string) error
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 200

// createRun validates the whole request (pipeline, parameters, experiment, backend)
// before anything is stored, stores the run, and announces it.
func (h *Handler) createRun(w http.ResponseWriter, r *http.Request, team string) error {
	var in api.Run
	if err := rest.DecodeJSON(w, r, defaultMaxUpload, &in); err != nil {
		return err
	}
	if in.RunID != "" {
		return api.Errorf(api.KindInvalid, "invalid run: run_id is set by the server")
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return api.Errorf(api.KindInvalid, "Idempotency-Key is longer than %d bytes", maxIdempotencyKey)
	}
	run, err := h.SubmitRun(r.Context(), team, in, key)
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, run)
	return nil
}

// SubmitRun validates, stores and announces a run. It is the one path every way of
// starting a run takes (REST, clone, webhooks, chat, schedules). In-process callers may
// choose the run's id (the schedule derives it from the slot); the REST API may not. With an idempotency key a
// repeated call returns the first run and announces it again while it is still PENDING,
// which heals a crash between storing and announcing.
func (h *Handler) SubmitRun(ctx context.Context, team string, in api.Run, idempotencyKey string) (api.Run, error) {
	run, err := h.prepareRun(ctx, team, in)
	if err != nil {
		return api.Run{}, err
	}
	stored, created, err := h.Store.CreateRun(ctx, team, run, state.CreateRunOptions{IdempotencyKey: idempotencyKey})
	if err != nil {
		return api.Run{}, err
	}
	if created || stored.State == api.StatePending {
		if err := h.announce(ctx, team, stored); err != nil {
			// The run is stored and will be announced again by a retried request (same
			// idempotency key) or picked up by the status resync; say it is not dispatched yet.
			h.log().ErrorContext(ctx, "announce run", "run", stored.RunID, "team", team, "err", err)
		}
	}
	return stored, nil
}

func (h *Handler) announce(ctx context.Context, team string, run api.Run) error {
	e, err := events.NewRunSubmitted(h.Source, h.now(), events.RunSubmitted{
		RunID: run.RunID, Team: team, Backend: run.Backend, Attempt: run.Attempt,
		PipelineVersionID: versionID(run),
	})
	if err != nil {
		return err
	}
	return h.Events.Send(ctx, e)
}

func versionID(r api.Run) string {
	if r.PipelineVersionReference == nil {
		return ""
	}
	return r.PipelineVersionReference.PipelineVersionID
}

// prepareRun resolves and checks everything a run needs and returns the run to store.
func (h *Handler) prepareRun(ctx context.Context, team string, in api.Run) (api.Run, error) {
	var problems []string
	if in.State != "" && in.State != api.StatePending {
		problems = append(problems, fmt.Sprintf("state %q: a new run is PENDING", in.State))
	}
	backend := in.Backend
	if backend == "" {
		backend = h.DefaultBackend
	}
	if len(h.Backends) > 0 && !slices.Contains(h.Backends, backend) {
		problems = append(problems, fmt.Sprintf("backend %q: want one of %s", backend, strings.Join(h.Backends, ", ")))
	}
	if len(problems) > 0 {
		return api.Run{}, api.Errorf(api.KindInvalid, "invalid run: %s", strings.Join(problems, "; "))
	}

	// The pipeline: exactly one of an inline spec and a version reference.
	hasSpec := len(in.PipelineSpec) > 0 && string(in.PipelineSpec) != "null"
	hasRef := in.PipelineVersionReference != nil && (in.PipelineVersionReference.PipelineID != "" || in.PipelineVersionReference.PipelineVersionID != "")
	var data []byte
	switch {
	case hasSpec && hasRef:
		return api.Run{}, api.Errorf(api.KindInvalid, "invalid run: give pipeline_spec or pipeline_version_reference, not both")
	case !hasSpec && !hasRef:
		return api.Run{}, api.Errorf(api.KindInvalid, "invalid run: pipeline_spec or pipeline_version_reference is required")
	case hasSpec:
		data = api.IR(in.PipelineSpec)
	default:
		ref := *in.PipelineVersionReference
		if ref.PipelineVersionID == "" {
			v, err := h.Store.LatestPipelineVersion(ctx, team, ref.PipelineID)
			if err != nil {
				return api.Run{}, err
			}
			ref.PipelineVersionID = v.PipelineVersionID
		} else {
			v, err := h.Store.GetPipelineVersion(ctx, team, ref.PipelineID, ref.PipelineVersionID)
			if err != nil {
				return api.Run{}, err
			}
			ref.PipelineID = v.PipelineID
		}
		var err error
		data, err = h.Store.GetPipelineVersionIR(ctx, team, ref.PipelineVersionID)
		if err != nil {
			return api.Run{}, err
		}
		in.PipelineVersionReference = &ref
	}
	p, err := loadIR(data)
	if err != nil {
		return api.Run{}, err
	}
	var params map[string]any
	if in.RuntimeConfig != nil {
		params = in.RuntimeConfig.Parameters
	}
	bound, err := p.BindParameters(params)
	if err != nil {
		return api.Run{}, api.Errorf(api.KindInvalid, "invalid run parameters: %v", err)
	}
	if len(params) > 0 {
		// Keep what the caller gave, in its declared type ("4" from a CLI flag becomes 4),
		// so that reads and clones show typed values.
		typed := make(map[string]any, len(params))
		for k := range params {
			if v, ok := bound[k]; ok {
				typed[k] = v.AsInterface()
			}
		}
		rc := *in.RuntimeConfig
		rc.Parameters = typed
		in.RuntimeConfig = &rc
	}
	if in.ExperimentID != "" {
		e, err := h.Store.GetExperiment(ctx, team, in.ExperimentID)
		if err != nil {
			return api.Run{}, err
		}
		if e.StorageState == api.StorageArchived {
			return api.Run{}, api.Errorf(api.KindFailedPrecondition, "experiment %s is archived", e.ExperimentID)
		}
	}
	if in.DisplayName == "" {
		in.DisplayName = p.Spec.GetPipelineInfo().GetName()
	}
	return api.Run{
		RunID:                    in.RunID,
		ExperimentID:             in.ExperimentID,
		DisplayName:              in.DisplayName,
		Description:              in.Description,
		PipelineVersionReference: in.PipelineVersionReference,
		PipelineSpec:             compactSpec(in.PipelineSpec),
		RuntimeConfig:            in.RuntimeConfig,
		ServiceAccount:           in.ServiceAccount,
		RecurringRunID:           in.RecurringRunID,
		ScheduledAt:              in.ScheduledAt,
		Backend:                  backend,
		EnableCaching:            in.EnableCaching,
		ClonedFrom:               in.ClonedFrom,
	}, nil
}

func compactSpec(spec json.RawMessage) json.RawMessage {
	if len(spec) == 0 {
		return nil
	}
	return spec
}

// runAction serves POST /runs/{id}:terminate|:retry|:archive|:unarchive|:clone.
func (h *Handler) runAction(w http.ResponseWriter, r *http.Request, team string) error {
	id, verb := rest.SplitAction(r.PathValue("action"))
	ctx := r.Context()
	switch verb {
	case "terminate":
		return h.terminate(w, r, team, id)
	case "retry":
		run, reset, err := h.Store.Retry(ctx, team, id)
		if err != nil {
			return err
		}
		h.log().InfoContext(ctx, "run retried", "run", id, "team", team, "attempt", run.Attempt, "reset_tasks", len(reset))
		if err := h.announce(ctx, team, run); err != nil {
			return err
		}
		rest.WriteJSON(w, http.StatusOK, struct{}{})
		return nil
	case "archive":
		if err := h.Store.ArchiveRun(ctx, team, id); err != nil {
			return err
		}
	case "unarchive":
		if err := h.Store.UnarchiveRun(ctx, team, id); err != nil {
			return err
		}
	case "clone":
		return h.clone(w, r, team, id)
	case "":
		return api.Errorf(api.KindNotFound, "no route POST %s (runs are created with POST /apis/v2beta1/runs)", r.URL.Path)
	default:
		return api.Errorf(api.KindNotFound, "unknown run method %q (want terminate, retry, archive, unarchive or clone)", verb)
	}
	rest.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (h *Handler) terminate(w http.ResponseWriter, r *http.Request, team, id string) error {
	if err := h.Terminate(r.Context(), team, id); err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// Terminate moves a run to CANCELING and asks its backend to stop it (REST :terminate,
// chat-ops cancel). Terminating a run that has already ended is a no-op, as in KFP.
func (h *Handler) Terminate(ctx context.Context, team, id string) error {
	run, err := h.Store.GetRun(ctx, team, id)
	if err != nil {
		return err
	}
	if api.Terminal(run.State) {
		return nil
	}
	if _, err := h.Store.Transition(ctx, team, id, state.StateUpdate{State: api.StateCanceling}); err != nil {
		return err
	}
	e, err := events.NewRunCancel(h.Source, h.now(), events.RunCancel{RunID: id, Team: team, Attempt: run.Attempt})
	if err != nil {
		return err
	}
	return h.Events.Send(ctx, e)
}

// cloneRequest is pipefn's clone body: what to change of the source run.
type cloneRequest struct {
	DisplayName   string         `json:"display_name,omitempty"`
	Parameters    map[string]any `json:"parameters,omitempty"`
	ExperimentID  string         `json:"experiment_id,omitempty"`
	Backend       string         `json:"backend,omitempty"`
	EnableCaching *bool          `json:"enable_caching,omitempty"`
}

// clone creates a run from another run's pipeline and parameters, with overrides.
func (h *Handler) clone(w http.ResponseWriter, r *http.Request, team, id string) error {
	var req cloneRequest
	if r.ContentLength != 0 {
		if err := rest.DecodeJSON(w, r, 0, &req); err != nil {
			return err
		}
	}
	src, err := h.Store.GetRun(r.Context(), team, id)
	if err != nil {
		return err
	}
	params := map[string]any{}
	root := ""
	if src.RuntimeConfig != nil {
		for k, v := range src.RuntimeConfig.Parameters {
			params[k] = v
		}
		root = src.RuntimeConfig.PipelineRoot
	}
	for k, v := range req.Parameters {
		params[k] = v
	}
	run := api.Run{
		DisplayName:              firstNonEmpty(req.DisplayName, "Clone of "+src.DisplayName),
		Description:              src.Description,
		ExperimentID:             firstNonEmpty(req.ExperimentID, src.ExperimentID),
		PipelineVersionReference: src.PipelineVersionReference,
		PipelineSpec:             src.PipelineSpec,
		RuntimeConfig:            &api.RuntimeConfig{Parameters: params, PipelineRoot: root},
		ServiceAccount:           src.ServiceAccount,
		Backend:                  firstNonEmpty(req.Backend, src.Backend),
		EnableCaching:            src.EnableCaching,
		ClonedFrom:               src.RunID,
	}
	if req.EnableCaching != nil {
		run.EnableCaching = req.EnableCaching
	}
	out, err := h.SubmitRun(r.Context(), team, run, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
