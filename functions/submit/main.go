// Command submit is the submit function: pipefn's REST writes (pipelines, versions,
// experiments, runs). It stores runs in Redis and announces them to the Broker.
//
// Environment: PORT, REDIS_URL, K_SINK (the Broker, set by a SinkBinding), PIPEFN_TEAM
// (the team this install serves), PIPEFN_BACKEND (default backend: tekton|argo),
// K_SERVICE/K_REVISION (log fields).
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	_ "time/tzdata"

	"github.com/pipefn/pipefn/functions/submit/handler"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/serve"
	"github.com/pipefn/pipefn/shared/state"
)

func main() { serve.Main("submit", build) }

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
	backend := getenv("PIPEFN_BACKEND")
	if backend == "" {
		backend = "tekton"
	}
	authn, err := auth.FromEnv(getenv, team, st) // PIPEFN_AUTH=off|tokens, PIPEFN_OIDC_*
	if err != nil {
		return serve.Mounted{}, err
	}
	h := &handler.Handler{
		Store: st, Events: events.NewHTTPSender(sink, nil), DefaultBackend: backend,
		Backends: []string{"tekton", "argo"},
		TeamOf:   authn.TeamOf,
		Team:     team,
		Source:   "pipefn/submit", Log: log,
	}
	h.Routes(mux)
	shutdown := func(ctx context.Context) error {
		// Webhook runs are submitted after the 202: let them finish before the store closes.
		if t := h.Triggers(); t != nil {
			if err := t.Wait(ctx); err != nil {
				log.Warn("webhook submissions still running at shutdown", "err", err)
			}
		}
		return st.Close()
	}
	return serve.Mounted{Ready: st.Ping, OnShutdown: shutdown}, nil
}
