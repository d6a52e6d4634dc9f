// Command lineage is the lineage function: it records task.finished CloudEvents (POST /
// or /events, as a Knative Trigger delivers them) and serves the artifacts, lineage and
// step-cache API under /apis/v2beta1/.
//
// Environment: PORT (default 8080), REDIS_URL, PIPEFN_TEAM (the team this install
// serves), K_SERVICE and K_REVISION (log fields).
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/pipefn/pipefn/functions/lineage/handler"
	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/serve"
	"github.com/pipefn/pipefn/shared/state"
)

func main() { serve.Main("lineage", build) }

func build(ctx context.Context, log *slog.Logger, getenv func(string) string, mux *http.ServeMux) (serve.Mounted, error) {
	team := getenv("PIPEFN_TEAM")
	if team == "" {
		return serve.Mounted{}, errors.New("PIPEFN_TEAM is not set: name the team this lineage function serves")
	}
	st, err := state.Open(ctx, getenv("REDIS_URL"), nil)
	if err != nil {
		return serve.Mounted{}, err
	}
	authn, err := auth.FromEnv(getenv, team, st) // PIPEFN_AUTH=off|tokens, PIPEFN_OIDC_*
	if err != nil {
		return serve.Mounted{}, err
	}
	h := handler.New(st, authn.TeamOf, log)
	if root := getenv("PIPEFN_PIPELINE_ROOT"); root != "" {
		// Downloads of the team's artifacts: signed links to its S3 prefix.
		h.Objects = artifacts.NewRouter(artifacts.S3Options{})
		h.DownloadRoots = []string{root}
	}
	h.Routes(mux)
	router := events.NewRouter(log)
	// A Broker delivers at least once; recording is idempotent, dedupe saves the work.
	router.Handle(events.TypeTaskFinished, events.Dedupe(st, 24*time.Hour, h.HandleTaskFinished))
	ce := events.HTTPHandler(router)
	mux.Handle("POST /{$}", ce)
	mux.Handle("POST /events", ce)
	return serve.Mounted{Ready: st.Ping, OnShutdown: func(context.Context) error { return st.Close() }}, nil
}

// run serves the function until ctx ends (tests call it with their own environment).
func run(ctx context.Context, log *slog.Logger, getenv func(string) string) error {
	return serve.Serve(ctx, log, getenv, build)
}
