package handler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/argo"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
)

// compileOnly is the Tekton or Argo backend of a compile function that has no cluster
// client: it compiles the run (so an IR the engine cannot take fails with the compiler's
// own message) and then fails the run, saying that dispatch is not available. KubeBackends
// are the real ones.
type compileOnly struct {
	target        string
	launcherImage string
	log           *slog.Logger
}

// ClusterBackends returns tekton and argo backends for a compile function that has no
// cluster client: they compile, then fail the run.
func ClusterBackends(launcherImage string, log *slog.Logger) map[string]Backend {
	return map[string]Backend{
		"tekton": &compileOnly{target: "tekton", launcherImage: launcherImage, log: log},
		"argo":   &compileOnly{target: "argo", launcherImage: launcherImage, log: log},
	}
}

// Options returns the compile options of a job.
func Options(job Job, launcherImage string) compile.Options {
	opts := compile.Options{
		RunID: job.Run.RunID, Team: job.Team, Namespace: job.Team, PipelineRoot: job.PipelineRoot,
		Params: job.Params, LauncherImage: launcherImage, ServiceAccount: job.Run.ServiceAccount,
		CachingDisabled: !job.Caching, Attempt: job.Attempt,
	}
	if job.Run.PipelineVersionReference != nil {
		opts.PipelineVersionID = job.Run.PipelineVersionReference.PipelineVersionID
	}
	return opts
}

// Compile compiles a job for target ("tekton" or "argo").
func Compile(job Job, target, launcherImage string) (any, error) {
	return compileReporting(job, target, launcherImage, LauncherReport{})
}

// LauncherReport says where the launchers of dispatched runs report their tasks and ask
// the step cache (compile.Options.EventsURL, CacheURL, CacheMaxAge). The zero value: they
// do neither, and the compiled objects are as without it.
type LauncherReport struct {
	EventsURL   string
	CacheURL    string
	CacheMaxAge time.Duration
	// CacheTokenSecret names the Secret (in the team's namespace) holding the token the
	// launchers present to the cache API (compile.Options.CacheTokenSecret).
	CacheTokenSecret string
}

// WithLauncherReport sets r on every KubeBackend of backends, and returns backends.
func WithLauncherReport(backends map[string]Backend, r LauncherReport) map[string]Backend {
	for _, b := range backends {
		if kb, ok := b.(*KubeBackend); ok {
			kb.Report = r
		}
	}
	return backends
}

func compileReporting(job Job, target, launcherImage string, r LauncherReport) (any, error) {
	opts := Options(job, launcherImage)
	opts.EventsURL, opts.CacheURL, opts.CacheMaxAge, opts.CacheTokenSecret = r.EventsURL, r.CacheURL, r.CacheMaxAge, r.CacheTokenSecret
	switch target {
	case "tekton":
		return tekton.Compile(job.Pipeline, opts)
	case "argo":
		return argo.Compile(job.Pipeline, opts)
	}
	return nil, fmt.Errorf("unknown target %q", target)
}

func (c *compileOnly) Dispatch(ctx context.Context, job Job) (events.RunDispatched, error) {
	if _, err := Compile(job, c.target, c.launcherImage); err != nil {
		return events.RunDispatched{}, events.Permanent(fmt.Errorf("compile for %s: %w", c.target, err))
	}
	return events.RunDispatched{}, events.Permanent(fmt.Errorf("run %s compiled for %s, but this compile function has no Kubernetes dispatcher", job.Run.RunID, c.target))
}

func (c *compileOnly) Cancel(ctx context.Context, team, runID string) error { return nil }

// KubeBackend creates a job's compiled PipelineRun (target "tekton") or Workflow
// ("argo") in the team's namespace. The object is named after the run and attempt, so a
// redelivered submission finds it there and creates nothing twice; a retry is a new
// attempt, hence a new object.
type KubeBackend struct {
	Target        string
	Client        *k8s.Client
	LauncherImage string
	// Report makes the runs' launchers report their own tasks and use the step cache.
	Report LauncherReport
	Log    *slog.Logger
}

// KubeBackends returns the tekton and argo backends over one cluster client.
func KubeBackends(c *k8s.Client, launcherImage string, log *slog.Logger) map[string]Backend {
	return map[string]Backend{
		k8s.BackendTekton: &KubeBackend{Target: k8s.BackendTekton, Client: c, LauncherImage: launcherImage, Log: log},
		k8s.BackendArgo:   &KubeBackend{Target: k8s.BackendArgo, Client: c, LauncherImage: launcherImage, Log: log},
	}
}

// Dispatch compiles the job and creates its object. A compile error, or an object the
// API server rejects as invalid or forbidden, fails the run (Permanent); anything else
// (the API server unreachable, throttled) is returned for redelivery.
func (b *KubeBackend) Dispatch(ctx context.Context, job Job) (events.RunDispatched, error) {
	obj, err := compileReporting(job, b.Target, b.LauncherImage, b.Report)
	if err != nil {
		return events.RunDispatched{}, events.Permanent(fmt.Errorf("compile run %s for %s: %w", job.Run.RunID, b.Target, err))
	}
	a := k8s.Attempt{RunID: job.Run.RunID, Team: job.Team, Attempt: job.Attempt}
	var name string
	var created bool
	switch o := obj.(type) {
	case *tektonv1.PipelineRun:
		name, created, err = b.Client.CreatePipelineRun(ctx, o, a)
	case *wfv1.Workflow:
		name, created, err = b.Client.CreateWorkflow(ctx, o, a)
	default:
		err = fmt.Errorf("compiler for %s returned %T", b.Target, obj)
	}
	if err != nil {
		if k8s.IsPermanent(err) {
			return events.RunDispatched{}, events.Permanent(err)
		}
		return events.RunDispatched{}, err
	}
	if b.Log != nil {
		b.Log.InfoContext(ctx, "run dispatched", "run", job.Run.RunID, "team", job.Team, "attempt", job.Attempt,
			"backend", b.Target, "object", name, "created", created)
	}
	return events.RunDispatched{RunID: job.Run.RunID, Team: job.Team, Backend: b.Target, Attempt: job.Attempt,
		Namespace: job.Team, Object: name}, nil
}

// Cancel asks the engine to stop every unfinished object of the run; the status
// function then sees the object end CANCELED.
func (b *KubeBackend) Cancel(ctx context.Context, team, runID string) error {
	return b.Client.Cancel(ctx, b.Target, team, runID)
}
