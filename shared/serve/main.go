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

// Main is the whole life of a function's process: JSON logs, the root context cancelled
// by SIGTERM, build, health endpoints, serve on $PORT, drain. build mounts the function's
// routes on mux.
func Main(name string, build func(ctx context.Context, log *slog.Logger, getenv func(string) string, mux *http.ServeMux) (Mounted, error)) {
	log := Logger(os.Getenv).With("fn", name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	mux := http.NewServeMux()
	m, err := build(ctx, log, os.Getenv, mux)
	if err != nil {
		log.Error("start failed", "err", err)
		os.Exit(1)
	}
	var draining atomic.Bool
	Health(mux, m.Ready, &draining)
	h := m.Handler
	if h == nil {
		h = mux
	}
	if err := Run(ctx, h, Config{Addr: Addr(os.Getenv), Log: log, OnShutdown: m.OnShutdown}, &draining, nil); err != nil {
		log.Error("stopped", "err", err)
		os.Exit(1)
	}
}
