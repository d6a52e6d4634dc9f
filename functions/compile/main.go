// Command compile is the compile function: it turns dev.pipefn.run.submitted.v1 into the
// run's backend object and replies dev.pipefn.run.dispatched.v1.
//
// Environment: PORT, REDIS_URL, KUBECONFIG (default: in-cluster), PIPEFN_TEAM, PIPEFN_BACKEND (default tekton),
// PIPEFN_LAUNCHER_IMAGE, PIPEFN_PIPELINE_ROOT (e.g. s3://bucket/team),
// PIPEFN_LAUNCHER_EVENTS_URL (where task pods POST their task.finished: the Broker's
// ingress; unset: the status function announces tasks from the engine's state),
// PIPEFN_LAUNCHER_CACHE_URL (the lineage function's cache API as task pods reach it;
// unset: no step cache in the cluster), PIPEFN_LAUNCHER_CACHE_TOKEN_SECRET (a Secret in
// the team namespace whose key "token" is a viewer API token the launchers present to
// it), PIPEFN_CACHE_MAX_AGE (a Go duration; unset: any age), K_SERVICE/K_REVISION.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pipefn/pipefn/functions/compile/handler"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/serve"
	"github.com/pipefn/pipefn/shared/state"
)

func main() { serve.Main("compile", build) }

func build(ctx context.Context, log *slog.Logger, getenv func(string) string, mux *http.ServeMux) (serve.Mounted, error) {
	st, err := state.Open(ctx, getenv("REDIS_URL"), nil)
	if err != nil {
		return serve.Mounted{}, err
	}
	backend := getenv("PIPEFN_BACKEND")
	if backend == "" {
		backend = "tekton"
	}
	root := getenv("PIPEFN_PIPELINE_ROOT")
	// The cluster comes from the usual places: KUBECONFIG, else the pod's service account.
	rc, err := k8s.LoadConfig(getenv("KUBECONFIG"))
	if err != nil {
		return serve.Mounted{}, fmt.Errorf("compile: tekton and argo runs need a cluster: %w", err)
	}
	kube, err := k8s.New(rc, k8s.Options{})
	if err != nil {
		return serve.Mounted{}, err
	}
	report := handler.LauncherReport{EventsURL: getenv("PIPEFN_LAUNCHER_EVENTS_URL"), CacheURL: getenv("PIPEFN_LAUNCHER_CACHE_URL"),
		CacheTokenSecret: getenv("PIPEFN_LAUNCHER_CACHE_TOKEN_SECRET")}
	if v := getenv("PIPEFN_CACHE_MAX_AGE"); v != "" {
		if report.CacheMaxAge, err = time.ParseDuration(v); err != nil || report.CacheMaxAge < 0 {
			return serve.Mounted{}, fmt.Errorf("compile: PIPEFN_CACHE_MAX_AGE=%q: want a non-negative Go duration (24h)", v)
		}
	}
	h := &handler.Handler{
		Runs:           st,
		Backends:       handler.WithLauncherReport(handler.KubeBackends(kube, getenv("PIPEFN_LAUNCHER_IMAGE"), log), report),
		DefaultBackend: backend,
		PipelineRoot:   func(team, runID string) string { return root },
		Source:         "pipefn/compile", Log: log,
	}
	router := events.NewRouter(log)
	// A Broker delivers at least once: a redelivered submission or cancel is dropped here.
	router.Handle(events.TypeRunSubmitted, events.Dedupe(st, 24*time.Hour, h.Submitted))
	router.Handle(events.TypeRunCancel, events.Dedupe(st, 24*time.Hour, h.CancelRequested))
	ce := events.HTTPHandler(router)
	mux.Handle("POST /{$}", ce)
	mux.Handle("POST /events", ce)
	return serve.Mounted{Ready: st.Ping, OnShutdown: func(context.Context) error { return st.Close() }}, nil
}
