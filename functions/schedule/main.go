// Command schedule is the schedule function: the recurring-run REST API and the
// PingSource tick receiver that fires recurring runs exactly once.
//
// Environment: PORT (Knative; default 8080), REDIS_URL (required), SUBMIT_URL (the
// submit function's base URL; required), K_SERVICE and K_REVISION (log fields).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	// Time zones of schedules must not depend on the image having zoneinfo.
	_ "time/tzdata"

	"github.com/pipefn/pipefn/functions/schedule/handler"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/state"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With(
		"service", os.Getenv("K_SERVICE"), "revision", os.Getenv("K_REVISION"))
	if err := run(log); err != nil {
		log.Error("schedule function stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		return errors.New("REDIS_URL is not set")
	}
	submitURL := os.Getenv("SUBMIT_URL")
	if submitURL == "" {
		return errors.New("SUBMIT_URL is not set: name the submit function's base URL")
	}
	store, err := state.OpenForSchedule(redisURL, nil)
	if err != nil {
		return err
	}
	defer store.ScheduleClose()

	h := &handler.Handler{
		Store:  store,
		Submit: handler.HTTPSubmitter(submitURL, &http.Client{Timeout: 30 * time.Second}),
		Log:    log,
		// Heals max_concurrency when a run's end was never reported to the schedule.
		RunState: func(ctx context.Context, team, runID string) (string, error) {
			r, err := store.GetRun(ctx, team, runID)
			return r.State, err
		},
	}
	router := events.NewRouter(log)
	h.Register(router)

	mux := http.NewServeMux()
	h.Routes(mux)
	mux.Handle("POST /", events.HTTPHandler(router)) // CloudEvents from the Broker
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := store.SchedulePing(r.Context()); err != nil {
			http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("schedule function listening", "port", port)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Knative gives a terminating pod time to drain in-flight ticks and requests.
	shutdown, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
