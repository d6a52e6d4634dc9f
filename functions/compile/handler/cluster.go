package handler

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/argo"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/events"
)

// compileOnly is the Tekton or Argo backend of a compile function that has no cluster
// client: it compiles the run (so an IR the engine cannot take fails with the compiler's
// own message) and then fails the run, saying that dispatch is not available. The
// Kubernetes dispatcher replaces it (shared/k8s).
type compileOnly struct {
	target        string
	launcherImage string
	log           *slog.Logger
}

// ClusterBackends returns the tekton and argo backends.
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
		CachingDisabled: !job.Caching,
	}
	if job.Run.PipelineVersionReference != nil {
		opts.PipelineVersionID = job.Run.PipelineVersionReference.PipelineVersionID
	}
	return opts
}

// Compile compiles a job for target ("tekton" or "argo").
func Compile(job Job, target, launcherImage string) (any, error) {
	opts := Options(job, launcherImage)
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
