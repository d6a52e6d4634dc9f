// Command schedule is the schedule function: the recurring-run REST API and the
// PingSource tick receiver that fires recurring runs exactly once.
//
// Environment: PORT, REDIS_URL, SUBMIT_URL (the submit function's base URL; scheduled
// runs are created through its REST API with an Idempotency-Key), PIPEFN_TEAM (the team
// this install serves; empty serves every team in Redis), K_SERVICE/K_REVISION.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	// Schedules' time zones must not depend on the image having zoneinfo.
	_ "time/tzdata"

	"github.com/pipefn/pipefn/functions/schedule/handler"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/serve"
	"github.com/pipefn/pipefn/shared/state"
)

func main() { serve.Main("schedule", build) }

func build(ctx context.Context, log *slog.Logger, getenv func(string) string, mux *http.ServeMux) (serve.Mounted, error) {
	submitURL := getenv("SUBMIT_URL")
	if submitURL == "" {
		return serve.Mounted{}, errors.New("SUBMIT_URL is not set: name the submit function's base URL")
	}
	team := getenv("PIPEFN_TEAM")
	if team == "" {
		return serve.Mounted{}, errors.New("PIPEFN_TEAM is not set: name the team this install serves")
	}
	st, err := state.Open(ctx, getenv("REDIS_URL"), nil)
	if err != nil {
		return serve.Mounted{}, err
	}
	authn, err := auth.FromEnv(getenv, team, st) // PIPEFN_AUTH=off|tokens, PIPEFN_OIDC_*
	if err != nil {
		return serve.Mounted{}, err
	}
	// With PIPEFN_AUTH=tokens the submit function wants an editor token of the team.
	client := &http.Client{Timeout: 30 * time.Second, Transport: auth.BearerTransport(getenv("PIPEFN_SUBMIT_TOKEN"), nil)}
	h := &handler.Handler{
		Store:  st,
		Submit: handler.HTTPSubmitter(submitURL, client),
		Log:    log,
		Team:   authn.TeamOf,
		Teams:  func(context.Context) ([]string, error) { return []string{team}, nil },
	}
	h.Routes(mux)
	router := events.NewRouter(log)
	h.Register(router)
	ce := events.HTTPHandler(router)
	mux.Handle("POST /{$}", ce)
	mux.Handle("POST /events", ce)
	return serve.Mounted{Ready: st.Ping, OnShutdown: func(context.Context) error { return st.Close() }}, nil
}
