// Package handler is the lineage function: it records dev.pipefn.task.finished.v1 events
// as MLMD-shaped lineage and serves artifacts, lineage graphs, run metrics and the step
// cache over KFP-style REST (/apis/v2beta1/...). It is plain Go over a Store, testable
// without a network.
package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/rest"
)

// Store is what the handler needs of the lineage store (shared/state's *Store).
type Store interface {
	RecordTaskFinished(ctx context.Context, team string, tf lineage.TaskFinished) error
	RunArtifacts(ctx context.Context, team, runID string) ([]lineage.ArtifactDetail, error)
	RunExecutions(ctx context.Context, team, runID string) ([]lineage.Execution, error)
	GetArtifact(ctx context.Context, team, id string) (lineage.ArtifactDetail, error)
	Lineage(ctx context.Context, team, startID string, dir lineage.Direction, depth int) (lineage.Graph, error)
	ArtifactsByURI(ctx context.Context, team, uri string) ([]lineage.Artifact, error)
	CacheLookup(ctx context.Context, team, key string, maxAge time.Duration) (lineage.CacheHit, bool, error)
}

// TeamOf resolves the team a request acts for (the lead wires authentication into it).
// Its errors should be api errors (unauthenticated, permission denied).
type TeamOf func(r *http.Request) (string, error)

// MaxCompareRuns bounds runs:compare.
const MaxCompareRuns = 20

// Handler serves the lineage REST API and handles task.finished events.
type Handler struct {
	// Objects, when set, serves artifact downloads for URIs under DownloadRoots.
	Objects       Objects
	DownloadRoots []string

	store  Store
	teamOf TeamOf
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns a Handler. log may be nil (slog.Default()).
func New(store Store, teamOf TeamOf, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{store: store, teamOf: teamOf, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /apis/v2beta1/runs/{run_id}/artifacts", h.runArtifacts)
	h.mux.HandleFunc("GET /apis/v2beta1/runs/{run_id}/metrics", h.runMetrics)
	h.mux.HandleFunc("GET /apis/v2beta1/runs:compare", h.compareRuns)
	h.mux.HandleFunc("GET /apis/v2beta1/artifacts", h.artifactsByURI)
	h.mux.HandleFunc("GET /apis/v2beta1/artifacts/{artifact_id}", h.getArtifact)
	h.mux.HandleFunc("GET /apis/v2beta1/artifacts/{artifact_id}/lineage", h.lineage)
	h.mux.HandleFunc("GET /apis/v2beta1/cache/{key}", h.cacheLookup)
	return h
}

// Routes mounts the REST API's routes on mux (pipefn up shares one mux between the
// functions).
func (h *Handler) Routes(mux *http.ServeMux) {
	for _, p := range []string{
		"GET /apis/v2beta1/runs/{run_id}/artifacts",
		"GET /apis/v2beta1/runs/{run_id}/metrics",
		"GET /apis/v2beta1/runs:compare",
		"GET /apis/v2beta1/artifacts",
		"GET /apis/v2beta1/artifacts/{artifact_id}",
		"GET /apis/v2beta1/artifacts/{artifact_id}/lineage",
		"GET /apis/v2beta1/cache/{key}",
	} {
		mux.Handle(p, h.mux)
	}
}

// ServeHTTP serves the REST API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Register routes task.finished events to the handler.
func (h *Handler) Register(r *events.Router) { r.Handle(events.TypeTaskFinished, h.HandleTaskFinished) }

// HandleTaskFinished records one task.finished event (team from the pfteam extension).
// A malformed event is a Permanent error (not redelivered); a store outage is transient.
// Lineage ends the chain: there is no reply event.
func (h *Handler) HandleTaskFinished(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	team := events.Team(e)
	if team == "" {
		return nil, events.Permanent(fmt.Errorf("lineage: event %s (%s) has no %s extension", e.ID(), e.Type(), events.ExtTeam))
	}
	tf, err := lineage.DecodeTaskFinished(e.Data())
	if err != nil {
		return nil, events.Permanent(fmt.Errorf("lineage: event %s: %w", e.ID(), err))
	}
	if err := h.store.RecordTaskFinished(ctx, team, tf); err != nil {
		if api.KindOf(err) == api.KindInvalid {
			return nil, events.Permanent(fmt.Errorf("lineage: event %s: %w", e.ID(), err))
		}
		return nil, fmt.Errorf("lineage: record event %s: %w", e.ID(), err)
	}
	h.log.InfoContext(ctx, "recorded task", "team", team, "run_id", tf.Execution.RunID,
		"task_id", tf.Execution.TaskID, "state", tf.Execution.State, "event_id", e.ID())
	return nil, nil
}

// team resolves the request's team; a resolver error without a kind is unauthenticated.
func (h *Handler) team(r *http.Request) (string, error) {
	if h.teamOf == nil {
		return "", &api.Error{Kind: api.KindUnauthenticated, Message: "no team resolver configured"}
	}
	t, err := h.teamOf(r)
	if err != nil {
		if api.KindOf(err) == api.KindInternal {
			return "", &api.Error{Kind: api.KindUnauthenticated, Message: "cannot resolve the team", Err: err}
		}
		return "", err
	}
	return t, nil
}

func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Warn("write response", "err", err)
	}
}

// writeError answers {"code","message"} with the status of err's kind.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := api.StatusOf(err)
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h.writeJSON(w, status, api.Status{Code: code, Message: msg})
}

// ArtifactView is one artifact as the REST API shows it.
type ArtifactView struct {
	ArtifactID          string           `json:"artifact_id"`
	Name                string           `json:"name"`
	Type                string           `json:"type"`
	URI                 string           `json:"uri"`
	ProducerTask        string           `json:"producer_task,omitempty"`
	ProducerExecutionID string           `json:"producer_execution_id,omitempty"`
	RunID               string           `json:"run_id,omitempty"`
	Size                int64            `json:"size"`
	Digest              string           `json:"digest,omitempty"`
	CreatedAt           *time.Time       `json:"created_at,omitempty"`
	Metadata            map[string]any   `json:"metadata,omitempty"`
	Metrics             *lineage.Metrics `json:"metrics,omitempty"`
	// MetricsError says why the metadata of a metrics artifact could not be read.
	MetricsError string `json:"metrics_error,omitempty"`
}

// ExecutionView is one execution as the REST API shows it.
type ExecutionView struct {
	ExecutionID      string         `json:"execution_id"`
	RunID            string         `json:"run_id"`
	TaskID           string         `json:"task_id"`
	TaskName         string         `json:"task_name,omitempty"`
	State            string         `json:"state"`
	Image            string         `json:"image,omitempty"`
	Parameters       map[string]any `json:"parameters,omitempty"`
	OutputParameters map[string]any `json:"output_parameters,omitempty"`
	StartTime        *time.Time     `json:"start_time,omitempty"`
	EndTime          *time.Time     `json:"end_time,omitempty"`
	CacheKey         string         `json:"cache_key,omitempty"`
	CachedFrom       string         `json:"cached_from,omitempty"`
}

// ArtifactDetailView is an artifact with its producer and consumers.
type ArtifactDetailView struct {
	ArtifactView
	Producer  *ExecutionView  `json:"producer,omitempty"`
	Consumers []ExecutionView `json:"consumers"`
	// DownloadURL, with ?view=DOWNLOAD, is where the bytes can be fetched (KFP's shape).
	DownloadURL string `json:"download_url,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func executionView(e lineage.Execution) ExecutionView {
	return ExecutionView{
		ExecutionID: e.ID, RunID: e.RunID, TaskID: e.TaskID, TaskName: e.TaskName, State: e.State,
		Image: e.Image, Parameters: e.Parameters, OutputParameters: e.OutputParameters,
		StartTime: timePtr(e.Start), EndTime: timePtr(e.End), CacheKey: e.CacheKey, CachedFrom: e.CachedFrom,
	}
}

func artifactView(a lineage.Artifact, producer *lineage.Execution) ArtifactView {
	v := ArtifactView{
		ArtifactID: a.ID, Name: a.Name, Type: a.Type, URI: a.URI, ProducerExecutionID: a.ProducerExecutionID,
		Size: a.Size, Digest: a.Digest, CreatedAt: timePtr(a.CreatedAt), Metadata: a.Metadata,
	}
	if producer != nil {
		v.ProducerTask = producer.TaskName
		if v.ProducerTask == "" {
			v.ProducerTask = producer.TaskID
		}
		v.RunID = producer.RunID
	}
	if lineage.IsMetricsType(a.Type) {
		m, err := lineage.ParseMetrics(a.Type, a.Metadata)
		if err != nil {
			v.MetricsError = err.Error()
		} else {
			v.Metrics = &m
		}
	}
	return v
}

func (h *Handler) runArtifacts(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	ds, err := h.store.RunArtifacts(r.Context(), team, r.PathValue("run_id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]ArtifactView, 0, len(ds))
	for _, d := range ds {
		out = append(out, artifactView(d.Artifact, d.Producer))
	}
	h.writeJSON(w, http.StatusOK, map[string]any{"artifacts": out})
}

func (h *Handler) getArtifact(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id, verb := rest.SplitAction(r.PathValue("artifact_id"))
	switch verb {
	case "":
	case "download":
		h.download(w, r, team, id)
		return
	default:
		h.writeError(w, r, api.Errorf(api.KindNotFound, "unknown artifact method %q (want download)", verb))
		return
	}
	d, err := h.store.GetArtifact(r.Context(), team, id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	v := ArtifactDetailView{ArtifactView: artifactView(d.Artifact, d.Producer), Consumers: []ExecutionView{}}
	if r.URL.Query().Get("view") == "DOWNLOAD" {
		v.DownloadURL = h.downloadURL(r.Context(), id, d.Artifact.URI)
	}
	if d.Producer != nil {
		p := executionView(*d.Producer)
		v.Producer = &p
	}
	for _, c := range d.Consumers {
		v.Consumers = append(v.Consumers, executionView(c))
	}
	h.writeJSON(w, http.StatusOK, v)
}

func (h *Handler) lineage(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	dir, err := lineage.ParseDirection(q.Get("direction"))
	if err != nil {
		h.writeError(w, r, api.Errorf(api.KindInvalid, "%v", err))
		return
	}
	depth := lineage.DefaultDepth
	if s := q.Get("depth"); s != "" {
		depth, err = strconv.Atoi(s)
		if err != nil || depth < 0 || depth > lineage.MaxDepth {
			h.writeError(w, r, api.Errorf(api.KindInvalid, "depth %q: want an integer 0..%d", s, lineage.MaxDepth))
			return
		}
	}
	g, err := h.store.Lineage(r.Context(), team, r.PathValue("artifact_id"), dir, depth)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, g)
}

func (h *Handler) artifactsByURI(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	uri := r.URL.Query().Get("uri")
	if uri == "" {
		h.writeError(w, r, api.Errorf(api.KindInvalid, "query parameter uri is required"))
		return
	}
	arts, err := h.store.ArtifactsByURI(r.Context(), team, uri)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]ArtifactView, 0, len(arts))
	for _, a := range arts {
		out = append(out, artifactView(a, nil))
	}
	h.writeJSON(w, http.StatusOK, map[string]any{"artifacts": out})
}

// MetricsView is the metrics of one artifact of a run.
type MetricsView struct {
	ArtifactID   string `json:"artifact_id"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	ProducerTask string `json:"producer_task,omitempty"`
	lineage.Metrics
	MetricsError string `json:"metrics_error,omitempty"`
}

func (h *Handler) metricsOf(ctx context.Context, team, runID string) ([]MetricsView, error) {
	ds, err := h.store.RunArtifacts(ctx, team, runID)
	if err != nil {
		return nil, err
	}
	out := []MetricsView{}
	for _, d := range ds {
		if !lineage.IsMetricsType(d.Type) {
			continue
		}
		v := artifactView(d.Artifact, d.Producer)
		mv := MetricsView{ArtifactID: v.ArtifactID, Name: v.Name, Type: v.Type, ProducerTask: v.ProducerTask, MetricsError: v.MetricsError}
		if v.Metrics != nil {
			mv.Metrics = *v.Metrics
		}
		out = append(out, mv)
	}
	return out, nil
}

func (h *Handler) runMetrics(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	runID := r.PathValue("run_id")
	ms, err := h.metricsOf(r.Context(), team, runID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, map[string]any{"run_id": runID, "metrics": ms})
}

// RunComparison is one run's column of runs:compare. Parameters are keyed
// "<task>.<parameter>" and metrics "<producer task>.<metric>", since a run's tasks may
// share parameter and metric names.
type RunComparison struct {
	RunID      string             `json:"run_id"`
	Parameters map[string]any     `json:"parameters"`
	Metrics    map[string]float64 `json:"metrics"`
}

// Comparison is the answer of runs:compare: the union of names as rows, one column per run.
type Comparison struct {
	Runs           []RunComparison `json:"runs"`
	ParameterNames []string        `json:"parameter_names"`
	MetricNames    []string        `json:"metric_names"`
}

func (h *Handler) compareRuns(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var ids []string
	seen := map[string]bool{}
	for _, s := range strings.Split(r.URL.Query().Get("run_ids"), ",") {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			ids = append(ids, s)
		}
	}
	if len(ids) == 0 || len(ids) > MaxCompareRuns {
		h.writeError(w, r, api.Errorf(api.KindInvalid, "run_ids: want 1 to %d comma-separated run ids, got %d", MaxCompareRuns, len(ids)))
		return
	}
	cmp := Comparison{Runs: []RunComparison{}}
	pnames, mnames := map[string]bool{}, map[string]bool{}
	for _, id := range ids {
		rc := RunComparison{RunID: id, Parameters: map[string]any{}, Metrics: map[string]float64{}}
		exes, err := h.store.RunExecutions(r.Context(), team, id)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		for _, e := range exes {
			task := e.TaskName
			if task == "" {
				task = e.TaskID
			}
			for k, v := range e.Parameters {
				rc.Parameters[task+"."+k] = v
				pnames[task+"."+k] = true
			}
		}
		ms, err := h.metricsOf(r.Context(), team, id)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		for _, m := range ms {
			for k, v := range m.Scalars {
				rc.Metrics[m.ProducerTask+"."+k] = v
				mnames[m.ProducerTask+"."+k] = true
			}
		}
		cmp.Runs = append(cmp.Runs, rc)
	}
	cmp.ParameterNames, cmp.MetricNames = sortedSet(pnames), sortedSet(mnames)
	h.writeJSON(w, http.StatusOK, cmp)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseMaxAge reads the cache API's max_age: a Go duration ("24h", "90m") or a number of
// seconds; empty or 0 means any age.
func ParseMaxAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(1<<62)/int64(time.Second) {
			return 0, fmt.Errorf("max_age %q: out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("max_age %q: want a non-negative duration (24h) or seconds", s)
	}
	return d, nil
}

func (h *Handler) cacheLookup(w http.ResponseWriter, r *http.Request) {
	team, err := h.team(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	key := r.PathValue("key")
	if !lineage.ValidCacheKey(key) {
		h.writeError(w, r, api.Errorf(api.KindInvalid, "cache key %q: want 64 lower-case hex characters", key))
		return
	}
	maxAge, err := ParseMaxAge(r.URL.Query().Get("max_age"))
	if err != nil {
		h.writeError(w, r, api.Errorf(api.KindInvalid, "%v", err))
		return
	}
	hit, ok, err := h.store.CacheLookup(r.Context(), team, key, maxAge)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if !ok {
		h.writeError(w, r, api.Errorf(api.KindNotFound, "no cached execution for key %s", key))
		return
	}
	h.writeJSON(w, http.StatusOK, hit)
}
