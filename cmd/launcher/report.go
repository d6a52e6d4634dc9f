package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/lineage/cacheclient"
)

// Bounds of the in-pod reporting. A report or a lookup that cannot get through in time
// is given up (and logged): neither may hold the task's pod, nor change its outcome.
const (
	lookupTimeout = 10 * time.Second
	postTimeout   = 30 * time.Second // all tries together
	postTries     = 5
	postBackoff   = 250 * time.Millisecond // doubled after each failed try
)

// reporter is the launcher's in-pod reporting, set up from the environment the compilers
// give run and importer tasks (launch.EnvEventsURL, launch.EnvCacheURL, ...).
type reporter struct {
	eventsURL string
	cache     *cacheclient.Client // nil: no cache lookups
	maxAge    time.Duration
	team      string
	attempt   int
	pipeline  string
	// taskID is the id the status function gives this task (launch.ClusterTaskID), empty
	// when the pod does not say: then the config's task id is used.
	taskID string
	log    *slog.Logger
}

// newReporter reads the environment; nil when neither reporting nor the cache is asked
// for. A malformed variable turns off what it configures (logged), never the task.
func newReporter(getenv func(string) string, iteration string, log *slog.Logger) *reporter {
	events, cache := getenv(launch.EnvEventsURL), getenv(launch.EnvCacheURL)
	if events == "" && cache == "" {
		return nil
	}
	r := &reporter{eventsURL: events, team: getenv(launch.EnvTeam), pipeline: getenv(launch.EnvPipeline), log: log}
	if a := getenv(launch.EnvAttempt); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil {
			log.Error("ignoring malformed run attempt; reporting attempt-less", "var", launch.EnvAttempt, "value", a)
			n = -1
		}
		r.attempt = n
	}
	var header http.Header
	if tok := getenv(launch.EnvCacheToken); tok != "" {
		header = http.Header{"Authorization": {"Bearer " + tok}}
	}
	if cache != "" {
		c, err := cacheclient.New(cache, &http.Client{Timeout: lookupTimeout}, header)
		if err != nil {
			log.Error("step cache off", "var", launch.EnvCacheURL, "err", err)
		} else {
			r.cache = c
		}
		if m := getenv(launch.EnvCacheMaxAge); m != "" && r.cache != nil {
			d, err := time.ParseDuration(m)
			if err != nil || d < 0 {
				// Guessing an age bound could reuse something too old: no lookup at all.
				log.Error("step cache off: malformed max age", "var", launch.EnvCacheMaxAge, "value", m)
				r.cache = nil
			}
			r.maxAge = d
		}
	}
	r.taskID, _ = launch.ClusterTaskID(getenv, iteration)
	return r
}

// lookup asks the step cache for outputs of an earlier execution with key. A miss, an
// unreachable cache, or a cached record that lacks one of the task's declared outputs
// all answer ok=false: the task then runs.
func (r *reporter) lookup(ctx context.Context, cfg launch.TaskConfig, key string) (out launch.Outputs, from string, ok bool) {
	if r == nil || r.cache == nil || !cfg.CacheEnabled || key == "" {
		return launch.Outputs{}, "", false
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	hit, found, err := r.cache.Lookup(ctx, key, r.maxAge)
	if err != nil {
		r.log.Warn("step cache lookup failed; running the task", "task", cfg.TaskID, "key", key, "err", err)
		return launch.Outputs{}, "", false
	}
	if !found {
		r.log.Info("step cache miss", "task", cfg.TaskID, "key", key)
		return launch.Outputs{}, "", false
	}
	out, err = launch.CachedOutputs(hit)
	if err != nil {
		r.log.Warn("unusable cache hit; running the task", "task", cfg.TaskID, "from", hit.Execution.ID, "err", err)
		return launch.Outputs{}, "", false
	}
	spec, err := cfg.ComponentSpec()
	if err != nil {
		return launch.Outputs{}, "", false
	}
	for name := range spec.GetOutputDefinitions().GetParameters() {
		if _, ok := out.Params[name]; !ok {
			r.log.Warn("cache hit lacks an output parameter; running the task", "task", cfg.TaskID, "from", hit.Execution.ID, "output", name)
			return launch.Outputs{}, "", false
		}
	}
	for name := range spec.GetOutputDefinitions().GetArtifacts() {
		if len(out.Artifacts[name]) == 0 {
			r.log.Warn("cache hit lacks an output artifact; running the task", "task", cfg.TaskID, "from", hit.Execution.ID, "output", name)
			return launch.Outputs{}, "", false
		}
	}
	return out, hit.Execution.ID, true
}

// outcome is how one task execution ended, as task.finished reports it.
type outcome struct {
	state      string
	start, end time.Time
	in         launch.Inputs
	out        launch.Outputs
	cacheKey   string
	cachedFrom string
	err        error
}

// finish posts the task's dev.pipefn.task.finished.v1 with its full lineage record. It
// never fails the task: what cannot be posted is logged.
func (r *reporter) finish(cfg launch.TaskConfig, o outcome) {
	if r == nil || r.eventsURL == "" {
		return
	}
	e, err := r.event(cfg, o)
	if err != nil {
		r.log.Error("task.finished not sent", "task", cfg.TaskID, "err", err)
		return
	}
	// Not the task's context: a cancelled task still reports that it was cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), postTimeout)
	defer cancel()
	if err := post(ctx, events.NewHTTPSender(r.eventsURL, &http.Client{Timeout: postTimeout / 2}), e); err != nil {
		r.log.Error("task.finished not sent", "task", cfg.TaskID, "id", e.ID(), "url", r.eventsURL, "err", err)
		return
	}
	r.log.Info("task.finished sent", "task", cfg.TaskID, "id", e.ID(), "state", o.state)
}

// post sends e, retrying transient failures with a doubling backoff, at most postTries
// times and until ctx ends. A permanent refusal (4xx) is not retried.
func post(ctx context.Context, s events.Sender, e cloudevents.Event) error {
	wait := postBackoff
	var err error
	for try := 1; ; try++ {
		if err = s.Send(ctx, e); err == nil || events.IsPermanent(err) || try == postTries {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// event builds the CloudEvent of an outcome: the task detail as the status function
// stores it, and the lineage record the lineage function prefers. Its id is
// events.NewTaskFinished's (run, attempt, task, state), so the status function's own
// announcement of the same fact, if any, is dropped as a duplicate downstream.
func (r *reporter) event(cfg launch.TaskConfig, o outcome) (cloudevents.Event, error) {
	id := r.taskID
	if id == "" {
		id = cfg.TaskID
	}
	start, end := o.start.UTC(), o.end.UTC()
	td := api.TaskDetail{RunID: cfg.RunID, TaskID: id, State: o.state, StartTime: &start, EndTime: &end,
		CachedFrom: o.cachedFrom}
	if o.err != nil {
		td.Error = &api.Status{Code: 2, Message: o.err.Error()}
	}
	td.InputParameters = values(o.in.Params)
	td.OutputParameters = values(o.out.Params)
	td.Inputs = uris(o.in.Artifacts)
	td.Outputs = uris(o.out.Artifacts)

	x := lineage.Execution{
		RunID: cfg.RunID, TaskID: id, TaskName: cfg.TaskName, State: o.state, Start: start, End: end,
		CacheKey: o.cacheKey, CachedFrom: o.cachedFrom,
		Parameters: td.InputParameters, OutputParameters: td.OutputParameters,
	}
	if td.Error != nil {
		x.Error = td.Error.Message
	}
	if c := cfg.Container; c != nil {
		x.Image = c.Image
		x.Command = append(append([]string{}, c.Command...), c.Args...)
	}
	rec := &lineage.TaskFinished{
		Pipeline:  r.pipeline,
		Execution: x,
		Inputs:    lineage.FromRuntimeArtifacts(o.in.Artifacts),
		Outputs:   lineage.FromRuntimeArtifacts(o.out.Artifacts),
	}
	return events.NewTaskFinished(launch.EventSource, o.end, events.TaskFinished{
		RunID: cfg.RunID, Team: r.team, Attempt: r.attempt, Task: td, CacheKey: o.cacheKey, Lineage: rec,
	})
}

func values(m map[string]*structpb.Value) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v.AsInterface()
	}
	return out
}

func uris(m map[string][]*pipelinespec.RuntimeArtifact) map[string]api.ArtifactList {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]api.ArtifactList, len(m))
	for name, list := range m {
		var l api.ArtifactList
		for _, a := range list {
			l.URIs = append(l.URIs, a.GetUri())
		}
		out[name] = l
	}
	return out
}

// stateOf maps how a task's execution ended onto its task state.
func stateOf(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return api.StateSucceeded
	case ctx.Err() != nil:
		// SIGTERM from the kubelet: the engine cancelled the task.
		return api.StateCanceled
	}
	return api.StateFailed
}
