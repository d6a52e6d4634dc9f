// Command status is the status function: it folds backend reports into run and task
// states, resyncs active runs on each tick, and serves the reads of runs (get, list, live
// stream, logs).
//
// Environment: PORT, REDIS_URL, KUBECONFIG (default: in-cluster), K_SINK (the Broker), PIPEFN_TEAM, K_SERVICE/K_REVISION.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pipefn/pipefn/functions/status/handler"
	"github.com/pipefn/pipefn/functions/status/ui"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/serve"
	"github.com/pipefn/pipefn/shared/state"
)

func main() { serve.Main("status", build) }

func build(ctx context.Context, log *slog.Logger, getenv func(string) string, mux *http.ServeMux) (serve.Mounted, error) {
	team := getenv("PIPEFN_TEAM")
	if team == "" {
		return serve.Mounted{}, errors.New("PIPEFN_TEAM is not set: name the team this install serves")
	}
	st, err := state.Open(ctx, getenv("REDIS_URL"), nil)
	if err != nil {
		return serve.Mounted{}, err
	}
	sink, err := events.SinkFromEnv()
	if err != nil {
		return serve.Mounted{}, err
	}
	authn, err := auth.FromEnv(getenv, team, st) // PIPEFN_AUTH=off|tokens, PIPEFN_OIDC_*
	if err != nil {
		return serve.Mounted{}, err
	}
	h := &handler.Handler{
		Store: st, Events: events.NewHTTPSender(sink, nil),
		TeamOf: authn.TeamOf,
		Source: "pipefn/status", Log: log,
	}
	// Cluster runs are observed on each tick and their logs read from their pods; the
	// cluster comes from KUBECONFIG or the pod's service account.
	rc, err := k8s.LoadConfig(getenv("KUBECONFIG"))
	if err != nil {
		return serve.Mounted{}, fmt.Errorf("status: %w", err)
	}
	kube, err := k8s.New(rc, k8s.Options{})
	if err != nil {
		return serve.Mounted{}, err
	}
	h.Observers = handler.KubeObservers(kube)
	h.Logs = &handler.RunLogs{Runs: st, Kube: kube}
	h.Routes(mux)
	// The web UI; its pages call the REST API, which in a cluster the other functions
	// serve behind the same host.
	ui.Routes(mux)
	router := events.NewRouter(log)
	h.Register(router)
	ce := events.HTTPHandler(router)
	mux.Handle("POST /{$}", ce)
	mux.Handle("POST /events", ce)
	return serve.Mounted{Ready: st.Ping, OnShutdown: func(context.Context) error { return st.Close() }}, nil
}
