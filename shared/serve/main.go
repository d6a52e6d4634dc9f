package serve

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// Mounted is what a function's build step hands to Main: its handler, its readiness
// check and what to do once requests have drained.
type Mounted struct {
	Handler    http.Handler
	Ready      func(ctx context.Context) error
	OnShutdown func(ctx context.Context) error
}

// Build mounts a function's routes on mux from its environment.
type Build func(ctx context.Context, log *slog.Logger, getenv func(string) string, mux *http.ServeMux) (Mounted, error)

// Main is the whole life of a function's process: JSON logs, the root context cancelled
// by SIGTERM, then Serve. It exits non-zero when the function cannot start or stops
// with an error.
func Main(name string, build Build) {
	log := Logger(os.Getenv).With("fn", name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Serve(ctx, log, os.Getenv, build); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}

// Serve builds a function and serves it on $PORT with health endpoints until ctx ends,
// then drains. Tests call it with their own context and environment.
func Serve(ctx context.Context, log *slog.Logger, getenv func(string) string, build Build) error {
	mux := http.NewServeMux()
	m, err := build(ctx, log, getenv, mux)
	if err != nil {
		return err
	}
	var draining atomic.Bool
	Health(mux, m.Ready, &draining)
	h := m.Handler
	if h == nil {
		h = mux
	}
	return Run(ctx, h, Config{Addr: Addr(getenv), Log: log, OnShutdown: m.OnShutdown}, &draining, nil)
}
