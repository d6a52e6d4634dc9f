// Package handler is the submit function: the REST writes of pipefn's KFP v2beta1 shaped
// API (pipelines, versions, experiments, runs and their custom methods). Every write is
// validated in full before anything is stored, and a run that is stored is announced with
// dev.pipefn.run.submitted.v1. Plain Go over small interfaces; no network of its own.
package handler

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// Store is what the submit function needs of the state store.
type Store interface {
	CreatePipeline(ctx context.Context, team string, p api.Pipeline) (api.Pipeline, error)
	GetPipeline(ctx context.Context, team, id string) (api.Pipeline, error)
	GetPipelineByName(ctx context.Context, team, name string) (api.Pipeline, error)
	ListPipelines(ctx context.Context, team string, opts state.ListOptions) ([]api.Pipeline, string, error)
	DeletePipeline(ctx context.Context, team, id string, cascade bool) error
	CreatePipelineVersion(ctx context.Context, team string, v api.PipelineVersion, ir []byte) (api.PipelineVersion, error)
	GetPipelineVersion(ctx context.Context, team, pipelineID, versionID string) (api.PipelineVersion, error)
	GetPipelineVersionIR(ctx context.Context, team, versionID string) ([]byte, error)
	ListPipelineVersions(ctx context.Context, team, pipelineID string, opts state.ListOptions) ([]api.PipelineVersion, string, error)
	LatestPipelineVersion(ctx context.Context, team, pipelineID string) (api.PipelineVersion, error)
	DeletePipelineVersion(ctx context.Context, team, pipelineID, versionID string) error

	CreateExperiment(ctx context.Context, team string, e api.Experiment) (api.Experiment, error)
	DefaultExperiment(ctx context.Context, team string) (api.Experiment, error)
	GetExperiment(ctx context.Context, team, id string) (api.Experiment, error)
	ListExperiments(ctx context.Context, team string, opts state.ListOptions, storageState string) ([]api.Experiment, string, error)
	ArchiveExperiment(ctx context.Context, team, id string) error
	UnarchiveExperiment(ctx context.Context, team, id string) error

	RunStore
}

// Handler serves the submit function's REST API.
type Handler struct {
	Store Store
	// Events carries run.submitted and run.cancel onward.
	Events events.Sender
	// TeamOf authenticates a request and names its team; it runs before anything else.
	TeamOf func(r *http.Request) (string, error)
	// DefaultBackend is the backend of runs that name none.
	DefaultBackend string
	// Backends lists the backends a run may name.
	Backends []string
	// MaxUpload bounds an uploaded IR file (default 32 MiB).
	MaxUpload int64
	// Team, when set, is the one team this install serves (webhooks and bound CloudEvents
	// of other teams are refused); empty for a multi-team server.
	Team   string
	Source string
	Now    func() time.Time
	Log    *slog.Logger

	triggersOnce sync.Once
	triggers     *Triggers
}

// Routes mounts the REST writes on mux. Reads of pipelines, versions and experiments are
// served here too (they are cheap and keep one entry point for those resources); reads of
// runs belong to the status function.
func (h *Handler) Routes(mux *http.ServeMux) {
	const p = "/apis/v2beta1"
	mux.HandleFunc("POST "+p+"/pipelines/upload", h.team(h.uploadPipeline))
	mux.HandleFunc("POST "+p+"/pipelines/upload_version", h.team(h.uploadVersion))
	mux.HandleFunc("POST "+p+"/pipelines", h.team(h.createPipeline))
	mux.HandleFunc("POST "+p+"/pipelines/create", h.team(h.createPipelineAndVersion))
	mux.HandleFunc("GET "+p+"/pipelines", h.team(h.listPipelines))
	mux.HandleFunc("GET "+p+"/pipelines/{id}", h.team(h.getPipeline))
	mux.HandleFunc("DELETE "+p+"/pipelines/{id}", h.team(h.deletePipeline))
	mux.HandleFunc("POST "+p+"/pipelines/{id}/versions", h.team(h.createVersion))
	mux.HandleFunc("GET "+p+"/pipelines/{id}/versions", h.team(h.listVersions))
	mux.HandleFunc("GET "+p+"/pipelines/{id}/versions/{vid}", h.team(h.getVersion))
	mux.HandleFunc("DELETE "+p+"/pipelines/{id}/versions/{vid}", h.team(h.deleteVersion))

	mux.HandleFunc("POST "+p+"/experiments", h.team(h.createExperiment))
	mux.HandleFunc("GET "+p+"/experiments", h.team(h.listExperiments))
	mux.HandleFunc("GET "+p+"/experiments/{id}", h.team(h.getExperiment))
	mux.HandleFunc("POST "+p+"/experiments/{action}", h.team(h.experimentAction))

	mux.HandleFunc("POST "+p+"/runs", h.team(h.createRun))
	mux.HandleFunc("POST "+p+"/runs/{action}", h.team(h.runAction))

	if t := h.Triggers(); t != nil {
		t.Routes(mux)
	}
}

// Triggers returns the webhooks, chat-ops and CloudEvent bindings over this handler, or
// nil when the store keeps no triggers. It is built once.
func (h *Handler) Triggers() *Triggers {
	h.triggersOnce.Do(func() {
		if ts, ok := h.Store.(TriggerStore); ok {
			h.triggers = &Triggers{Submit: h, Store: ts, TeamOf: h.TeamOf, Team: h.Team, Now: h.Now, Log: h.Log}
		}
	})
	return h.triggers
}

// team authenticates first, then runs fn; errors become KFP error answers.
func (h *Handler) team(fn rest.TeamHandler) http.HandlerFunc {
	return rest.WithTeam(h.TeamOf, h.Log, fn)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func listOptions(r *http.Request) (state.ListOptions, error) {
	size, token, err := rest.Paging(r, 20, 1000)
	if err != nil {
		return state.ListOptions{}, err
	}
	return state.ListOptions{PageSize: size, PageToken: token, SortBy: r.URL.Query().Get("sort_by")}, nil
}
