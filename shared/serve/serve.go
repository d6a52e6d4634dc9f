// Package serve runs an HTTP handler the way Knative expects a function to: it listens on
// $PORT, answers liveness and readiness probes, logs as JSON, and drains in-flight
// requests on SIGTERM before exiting.
package serve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Config says how to serve.
type Config struct {
	// Addr is host:port; when empty, ":"+$PORT (default 8080).
	Addr string
	// Drain bounds the graceful shutdown (Knative's default termination grace is 30s,
	// so the default stays well inside it).
	Drain time.Duration
	// Log receives the server's own messages.
	Log *slog.Logger
	// OnShutdown runs after the listener stops accepting and in-flight requests are done,
	// within the drain deadline (e.g. an event bus drain).
	OnShutdown func(ctx context.Context) error
}

// Addr returns the listen address from the environment as Knative sets it.
func Addr(getenv func(string) string) string {
	port := getenv("PORT")
	if _, err := strconv.Atoi(port); err != nil || port == "" {
		port = "8080"
	}
	return ":" + port
}

// Logger returns the JSON logger of a function, with Knative's service and revision
// names as fields when they are set.
func Logger(getenv func(string) string) *slog.Logger {
	l := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if s := getenv("K_SERVICE"); s != "" {
		l = l.With("service", s)
	}
	if r := getenv("K_REVISION"); r != "" {
		l = l.With("revision", r)
	}
	return l
}

// Health mounts /healthz (liveness) and /readyz (readiness) on mux. ready reports whether
// the process can take traffic (e.g. Redis reachable); nil means always ready.
func Health(mux *http.ServeMux, ready func(ctx context.Context) error, draining *atomic.Bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if draining != nil && draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := ready(ctx); err != nil {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Run serves h until ctx is done (SIGTERM via signal.NotifyContext in main), then stops
// accepting, waits for in-flight requests up to cfg.Drain and runs cfg.OnShutdown.
// ready, if set, is closed once the listener accepts connections. draining, if set, is
// raised when the drain starts so that /readyz fails and the load balancer moves on.
func Run(ctx context.Context, h http.Handler, cfg Config, draining *atomic.Bool, ready chan<- net.Addr) error {
	if cfg.Addr == "" {
		cfg.Addr = Addr(os.Getenv)
	}
	if cfg.Drain == 0 {
		cfg.Drain = 20 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	cfg.Log.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if draining != nil {
		draining.Store(true)
	}
	cfg.Log.Info("draining", "deadline", cfg.Drain.String())
	dctx, cancel := context.WithTimeout(context.Background(), cfg.Drain)
	defer cancel()
	err = srv.Shutdown(dctx)
	if cfg.OnShutdown != nil {
		if e := cfg.OnShutdown(dctx); e != nil && err == nil {
			err = e
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	cfg.Log.Info("stopped")
	return err
}
