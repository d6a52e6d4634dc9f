// Package allinone wires every pipefn function into one process on one port: what
// `pipefn up` runs on a laptop, and what the end-to-end tests start. The functions'
// handlers are the same ones Knative serves; only the transport differs (an in-process
// event bus instead of a Broker) and, by default, Redis is embedded.
package allinone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	compilefn "github.com/pipefn/pipefn/functions/compile/handler"
	lineagefn "github.com/pipefn/pipefn/functions/lineage/handler"
	schedulefn "github.com/pipefn/pipefn/functions/schedule/handler"
	statusfn "github.com/pipefn/pipefn/functions/status/handler"
	"github.com/pipefn/pipefn/functions/status/ui"
	submitfn "github.com/pipefn/pipefn/functions/submit/handler"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/serve"
	"github.com/pipefn/pipefn/shared/state"
)

// Config configures `pipefn up`.
type Config struct {
	// Addr is host:port to listen on (default 127.0.0.1:8080).
	Addr string
	// RedisURL names a Redis server; empty embeds one (state is lost on exit).
	RedisURL string
	// Backend is the default backend of runs that name none (default local).
	Backend string
	// DataDir keeps task logs, work directories and the local pipeline root. Empty: a
	// temporary directory removed on exit.
	DataDir string
	// Tick is the period of the schedule and resync ticks (default 5s; <0 disables).
	Tick time.Duration
	// CacheMaxAge bounds how old a step-cache entry may be to be reused (0: any age).
	CacheMaxAge time.Duration
	// Kubeconfig names the cluster of the tekton and argo backends. Empty: $KUBECONFIG,
	// in-cluster, ~/.kube/config, tried only when Backend is tekton or argo.
	Kubeconfig string
	// LauncherURL is the base URL at which the task pods of tekton and argo runs reach
	// this server: their launchers post task.finished to <LauncherURL>/events and ask the
	// step cache at <LauncherURL>/apis/v2beta1/cache/{key}. Empty: http://<Addr> when Addr
	// names a port (pods that share the host's network); with port 0, not at all. With
	// authentication on, launchers are never pointed here: they hold no credential, and
	// /events refuses pipefn's own event types from outside.
	LauncherURL string
	// Team is the team of every request while authentication is off (default "default").
	Team string
	// Auth authenticates every request, event post and stream; nil turns authentication
	// off (every request is Team, as on a laptop).
	Auth *auth.Authenticator
	// AuthTokens, with Auth nil, checks API tokens kept in this server's Redis (`pipefn
	// team create|token` makes them): every team whose token is presented is served.
	AuthTokens bool
	Log        *slog.Logger
	Now        func() time.Time
}

// Server is a running `pipefn up`.
type Server struct {
	// URL is the base URL clients use (http://host:port).
	URL   string
	Addr  net.Addr
	Store *state.Store
	Bus   *events.Bus

	cfg       Config
	embedded  bool
	local     *compilefn.LocalBackend
	cleanup   []func()
	closeOnce sync.Once
	done      chan error
	draining  atomic.Bool
	triggers  *submitfn.Triggers
}

// Start builds every function and starts serving; it returns once the listener accepts
// connections. The server stops when ctx ends: in-flight requests drain, running local
// tasks are cancelled and their final states recorded, then the event bus drains.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Backend == "" {
		cfg.Backend = "local"
	}
	if cfg.Team == "" {
		cfg.Team = "default"
	}
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, done: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "pipefn-up-")
		if err != nil {
			return nil, err
		}
		cfg.DataDir = dir
		s.cleanup = append(s.cleanup, func() { os.RemoveAll(dir) })
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	s.cfg = cfg
	if cfg.RedisURL == "" {
		st, stop, err := state.Embedded(cfg.Now)
		if err != nil {
			return nil, err
		}
		s.Store, s.embedded = st, true
		s.cleanup = append(s.cleanup, stop)
	} else {
		st, err := state.Open(ctx, cfg.RedisURL, cfg.Now)
		if err != nil {
			return nil, err
		}
		s.Store = st
		s.cleanup = append(s.cleanup, func() { _ = st.Close() })
	}

	log := cfg.Log
	router := events.NewRouter(log)
	s.Bus = events.NewBus(router, events.BusOptions{Logger: log, Concurrency: 16,
		DeadLetter: func(e cloudevents.Event, err error) {
			log.Error("event given up", "type", e.Type(), "id", e.ID(), "subject", e.Subject(), "err", err)
		}})
	authn, single := cfg.Auth, ""
	switch {
	case authn != nil:
	case cfg.AuthTokens:
		authn = &auth.Authenticator{Tokens: auth.FromStore(s.Store)}
	default:
		authn, single = auth.Off(cfg.Team), cfg.Team
	}
	teamOf := authn.TeamOf
	const source = "pipefn-up"

	logs := &compilefn.LocalLogs{Dir: filepath.Join(cfg.DataDir, "logs")}
	s.local = &compilefn.LocalBackend{
		Send: s.Bus, Logs: logs, Source: source + "/compile", Now: cfg.Now, Log: log.With("fn", "compile"),
		WorkDir: filepath.Join(cfg.DataDir, "work"),
		Cache:   &compilefn.LineageCache{Store: s.Store, MaxAge: cfg.CacheMaxAge},
	}
	compile := &compilefn.Handler{
		Runs:           s.Store,
		Backends:       map[string]compilefn.Backend{"local": s.local},
		DefaultBackend: cfg.Backend,
		PipelineRoot: func(team, runID string) string {
			return "file://" + filepath.Join(cfg.DataDir, "artifacts", team)
		},
		Source: source + "/compile", Now: cfg.Now, Log: log.With("fn", "compile"),
	}
	status := &statusfn.Handler{
		Store: s.Store, Logs: logs, Events: s.Bus, TeamOf: teamOf,
		Source: source + "/status", Now: cfg.Now, Log: log.With("fn", "status"),
	}
	submit := &submitfn.Handler{
		Store: s.Store, Events: s.Bus, TeamOf: teamOf, Team: single, DefaultBackend: cfg.Backend, Backends: []string{"local"},
		Source: source + "/submit", Now: cfg.Now, Log: log.With("fn", "submit"),
	}
	if cfg.Kubeconfig != "" || cfg.Backend == k8s.BackendTekton || cfg.Backend == k8s.BackendArgo {
		// A cluster: Tekton and Argo runs are dispatched there, observed on each tick and
		// their logs read from their pods.
		rc, err := k8s.LoadConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		kube, err := k8s.New(rc, k8s.Options{})
		if err != nil {
			return nil, err
		}
		maps.Copy(compile.Backends, compilefn.WithLauncherReport(compilefn.KubeBackends(kube, "", log.With("fn", "compile")),
			launcherReport(cfg, authn)))
		status.Observers = statusfn.KubeObservers(kube)
		status.Logs = &statusfn.RunLogs{Runs: s.Store, Local: logs, Kube: kube}
		submit.Backends = append(submit.Backends, k8s.BackendTekton, k8s.BackendArgo)
	}

	lineage := lineagefn.New(s.Store, teamOf, log.With("fn", "lineage"))
	lineage.Objects = artifacts.NewRouter(artifacts.S3Options{})
	lineage.DownloadRoots = []string{"file://" + filepath.Join(cfg.DataDir, "artifacts")}
	sched := &schedulefn.Handler{
		Store: s.Store, Log: log.With("fn", "schedule"), Now: cfg.Now, Team: teamOf,
		Submit: func(ctx context.Context, team string, run api.Run, key string) error {
			_, err := submit.SubmitRun(ctx, team, run, key)
			return err
		},
	}

	dedupe := func(h events.Handler) events.Handler { return events.Dedupe(s.Store, 24*time.Hour, h) }
	router.Handle(events.TypeRunSubmitted, dedupe(compile.Submitted))
	router.Handle(events.TypeRunCancel, dedupe(compile.CancelRequested))
	router.Handle(events.TypeRunStatus, status.RunStatus)
	router.Handle(events.TypeRunDispatched, status.RunDispatched)
	router.HandlePrefix(events.TektonPipelineRunPrefix, status.TektonEvent)
	router.HandlePrefix(events.TektonTaskRunPrefix, status.TektonEvent)
	router.HandlePrefix(statusfn.APIServerResourcePrefix, status.APIServerEvent)
	// Launchers' own reports also reach status (only they know a task was CACHED).
	router.Handle(events.TypeTaskFinished, fanout(s.Bus, dedupe(lineage.HandleTaskFinished), status.TaskFinished))
	ticks := []events.Handler{status.Tick, sched.OnTick}
	router.Handle(events.TypePing, fanout(s.Bus, ticks...))
	// Any other type may be bound to a pipeline (CloudEvent triggers).
	router.HandlePrefix("", submit.Triggers().Event)

	mux := http.NewServeMux()
	serve.Health(mux, s.Store.Ping, &s.draining)
	submit.Routes(mux)
	s.triggers = submit.Triggers()
	status.Routes(mux)
	lineage.Routes(mux)
	sched.Routes(mux)
	mux.Handle("POST /events", publishHandler(s.Bus, log, authn))
	mux.HandleFunc("/apis/", rest.NotFound)
	// The web UI, as the status function serves it: pages at /, /runs/{id}, ...
	ui.Routes(mux)

	ready := make(chan net.Addr, 1)
	go func() {
		err := serve.Run(ctx, mux, serve.Config{Addr: cfg.Addr, Log: log, Drain: 15 * time.Second,
			OnShutdown: s.shutdown}, &s.draining, ready)
		s.close()
		s.done <- err
	}()
	select {
	case addr := <-ready:
		s.Addr = addr
		s.URL = "http://" + addr.String()
	case err := <-s.done:
		return nil, err
	}
	if cfg.Tick > 0 {
		go s.tick(ctx, cfg.Tick)
	}
	ok = true
	return s, nil
}

// launcherReport points cluster launchers at this server's /events and cache API (see
// Config.LauncherURL); the zero report when they cannot reach it or may not use it.
func launcherReport(cfg Config, authn *auth.Authenticator) compilefn.LauncherReport {
	if authn.Enabled() {
		return compilefn.LauncherReport{}
	}
	base := strings.TrimRight(cfg.LauncherURL, "/")
	if base == "" {
		_, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil || port == "" || port == "0" {
			return compilefn.LauncherReport{}
		}
		base = "http://" + cfg.Addr
	}
	return compilefn.LauncherReport{EventsURL: base + "/events", CacheURL: base, CacheMaxAge: cfg.CacheMaxAge}
}

// Wait blocks until the server has stopped and returns why.
func (s *Server) Wait() error { return <-s.done }

// Embedded reports whether Redis is embedded (state is lost on exit).
func (s *Server) Embedded() bool { return s.embedded }

// DataDir is where logs, work directories and local artifacts go.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// shutdown stops local runs (recording their final states) and drains the bus.
func (s *Server) shutdown(ctx context.Context) error {
	err := s.local.Shutdown(ctx)
	if s.triggers != nil {
		// Webhook submissions still in flight (they start after the 202).
		if e := s.triggers.Wait(ctx); e != nil && err == nil {
			err = e
		}
	}
	if e := s.Bus.Drain(ctx); e != nil && err == nil {
		err = e
	}
	if e := s.Bus.Close(ctx); e != nil && err == nil {
		err = e
	}
	return err
}

func (s *Server) close() {
	s.closeOnce.Do(func() {
		for i := len(s.cleanup) - 1; i >= 0; i-- {
			s.cleanup[i]()
		}
	})
}

// tick sends the ticks a Knative PingSource would: the schedule and the status resync.
func (s *Server) tick(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e := cloudevents.NewEvent()
			e.SetID(fmt.Sprintf("tick-%d", now.UnixNano()))
			e.SetType(events.TypePing)
			e.SetSource("pipefn-up/ping")
			e.SetTime(now.UTC())
			e.SetExtension(events.ExtTeam, "_system")
			_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{})
			if err := s.Bus.Publish(ctx, e); err != nil && !errors.Is(err, events.ErrBusClosed) {
				s.cfg.Log.Warn("tick", "err", err)
			}
		}
	}
}

// fanout delivers one event to several handlers, as a Broker does with several Triggers
// on one type. Replies are published; the first error is returned (so the event is
// redelivered), after every handler ran.
func fanout(bus *events.Bus, hs ...events.Handler) events.Handler {
	return func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		var first error
		for _, h := range hs {
			reply, err := h(ctx, e)
			if err != nil && first == nil {
				first = err
			}
			if reply != nil {
				if err := bus.Publish(ctx, *reply); err != nil && first == nil {
					first = err
				}
			}
		}
		return nil, first
	}
}

// publishHandler accepts CloudEvents posted to /events (binary or structured mode) and
// routes them by type through the bus, as a Broker would: 202 once accepted.
// With authentication on, the poster needs an editor token, and the event's team is the
// token's: an event naming another team is refused as if that team did not exist.
func publishHandler(bus *events.Bus, log *slog.Logger, authn *auth.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		team, err := authn.TeamOf(r)
		if err != nil {
			rest.WriteError(w, r, log, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, "malformed CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		if authn.Enabled() {
			// pipefn's own, Tekton's and Knative's events carry their team in their data,
			// which a poster could forge; only events for CloudEvent bindings come in here.
			for _, internal := range []string{"dev.pipefn.", "dev.tekton.", "dev.knative."} {
				if strings.HasPrefix(e.Type(), internal) {
					rest.WriteError(w, r, log, api.Errorf(api.KindPermissionDenied, "event type %q is internal to pipefn", e.Type()))
					return
				}
			}
			if t, _ := e.Extensions()[events.ExtTeam].(string); t != "" && t != team {
				rest.WriteError(w, r, log, api.Errorf(api.KindNotFound, "team %q not found", t))
				return
			}
			e.SetExtension(events.ExtTeam, team)
		}
		if err := bus.Publish(r.Context(), *e); err != nil {
			status := http.StatusServiceUnavailable
			if events.IsPermanent(err) {
				status = http.StatusBadRequest
			}
			log.Warn("event refused", "type", e.Type(), "id", e.ID(), "err", err)
			http.Error(w, err.Error(), status)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}
