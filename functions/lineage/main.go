// Command lineage is the lineage function: it records task.finished CloudEvents (POST /
// or /events, as a Knative Trigger delivers them) and serves the artifacts, lineage and
// step-cache API under /apis/v2beta1/.
//
// Environment: PORT (default 8080), REDIS_URL (default redis://127.0.0.1:6379/0),
// PIPEFN_TEAM (the team this install serves; the lead's authentication will replace it),
// K_SERVICE and K_REVISION (log fields).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pipefn/pipefn/functions/lineage/handler"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/state"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if s := os.Getenv("K_SERVICE"); s != "" {
		log = log.With("service", s)
	}
	if r := os.Getenv("K_REVISION"); r != "" {
		log = log.With("revision", r)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log, os.Getenv); err != nil {
		log.Error("lineage function stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, getenv func(string) string) error {
	redisURL := getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	team := getenv("PIPEFN_TEAM")
	if team == "" {
		return errors.New("PIPEFN_TEAM is not set: name the team this lineage function serves")
	}
	port := getenv("PORT")
	if _, err := strconv.Atoi(port); err != nil {
		port = "8080"
	}
	st, err := state.OpenForLineage(redisURL, nil)
	if err != nil {
		return err
	}
	defer st.LineageClose()

	// One team per install until authentication is wired: every request acts for it.
	teamOf := func(*http.Request) (string, error) { return team, nil }
	h := handler.New(st, teamOf, log)
	router := events.NewRouter(log)
	h.Register(router)

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/apis/v2beta1/", h)
	ceh := events.HTTPHandler(router)
	mux.Handle("POST /{$}", ceh)
	mux.Handle("POST /events", ceh)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			writeStatus(w, &api.Error{Kind: api.KindUnavailable, Message: "draining"})
			return
		}
		rctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.LineageReady(rctx); err != nil {
			writeStatus(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return fmt.Errorf("listen on :%s: %w", port, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "team", team)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// SIGTERM: fail readiness, finish in-flight requests (Knative's grace is 30s).
	draining.Store(true)
	log.Info("draining")
	dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("drain: %w", err)
	}
	log.Info("stopped")
	return nil
}

func writeStatus(w http.ResponseWriter, err error) {
	status, code, msg := api.StatusOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Status{Code: code, Message: msg})
}
