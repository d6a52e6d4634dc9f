// Package handler is the status function: it maps what backends report (pipefn's own
// run.status events from the local executor, and, from a cluster, Tekton's and Argo's
// state) onto run and task states in the store, heals lost events with a resync on each
// tick, and serves the reads of runs: get, list, a live stream, and task logs.
package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/state"
)

// Store is what the status function needs of the state store.
type Store interface {
	GetRun(ctx context.Context, team, runID string) (api.Run, error)
	ListRuns(ctx context.Context, team string, opts state.ListOptions, f state.RunFilter) ([]api.Run, string, error)
	ListActive(ctx context.Context, team string, opts state.ListOptions) ([]api.Run, string, error)
	Transition(ctx context.Context, team, runID string, u state.StateUpdate) (bool, error)
	UpsertTask(ctx context.Context, team, runID string, t api.TaskDetail) (bool, error)
	Watch(ctx context.Context, team, runID, fromID string, fn func(state.RunEvent) error) error
	Teams(ctx context.Context) ([]string, error)
	ScheduledRunFinished(ctx context.Context, team string, run api.Run) error
}

// Logs reads task logs, wherever the backend keeps them.
type Logs interface {
	Open(ctx context.Context, team, runID, taskID string) (io.ReadCloser, error)
}

// Handler is the status function.
type Handler struct {
	Store Store
	// Logs reads task logs; nil answers 404 for every log.
	Logs Logs
	// Events carries re-announcements of runs whose submission was lost.
	Events events.Sender
	TeamOf func(r *http.Request) (string, error)
	// ResubmitAfter is how long a run may stay PENDING before the resync announces it
	// again (its first announcement may have been lost). Default 30s.
	ResubmitAfter time.Duration
	// Observers read the live state of cluster backends' runs by backend name ("tekton",
	// "argo"); the tick's resync applies what they see. Nil: no cluster.
	Observers map[string]Observer
	Source    string
	Now       func() time.Time
	Log       *slog.Logger
}

// Register mounts the event handlers on r.
func (h *Handler) Register(r *events.Router) {
	r.Handle(events.TypeRunStatus, h.RunStatus)
	r.Handle(events.TypeRunDispatched, h.RunDispatched)
	r.Handle(events.TypeTaskFinished, h.TaskFinished)
	r.Handle(events.TypePing, h.Tick)
	r.HandlePrefix(events.TektonPipelineRunPrefix, h.TektonEvent)
	r.HandlePrefix(events.TektonTaskRunPrefix, h.TektonEvent)
	r.HandlePrefix(APIServerResourcePrefix, h.APIServerEvent)
}

// RunStatus applies a backend's report: every task first, then the run's state. Both
// only move forward, so duplicated, late and reordered reports are harmless. A report of
// an earlier attempt than the run's current one (a retry started since) is dropped.
func (h *Handler) RunStatus(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	d, err := events.Decode[events.RunStatus](e)
	if err != nil {
		return nil, err
	}
	team := events.Team(e)
	if team == "" || team != d.Team {
		return nil, events.Permanent(fmt.Errorf("event %s: team attribute %q does not match data %q", e.ID(), team, d.Team))
	}
	run, err := h.Store.GetRun(ctx, team, d.RunID)
	if errors.Is(err, api.ErrNotFound) {
		return nil, events.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	if d.Attempt >= 0 && d.Attempt != run.Attempt {
		h.log().InfoContext(ctx, "stale status dropped", "run", d.RunID, "attempt", d.Attempt, "current", run.Attempt)
		return nil, nil
	}
	for _, t := range d.Tasks {
		if _, err := h.Store.UpsertTask(ctx, team, d.RunID, t); err != nil {
			if api.KindOf(err) == api.KindInvalid {
				return nil, events.Permanent(err)
			}
			return nil, err
		}
	}
	if d.State == "" {
		return nil, nil
	}
	u := state.StateUpdate{State: d.State, At: e.Time()}
	if d.Attempt >= 0 {
		// Checked again atomically with the move: a retry may start between the read above
		// and this write.
		u.Attempt = &d.Attempt
	}
	if d.Error != "" {
		u.Error = &api.Status{Code: 2, Message: d.Error}
	}
	changed, err := h.Store.Transition(ctx, team, d.RunID, u)
	if err != nil {
		if api.KindOf(err) == api.KindInvalid {
			return nil, events.Permanent(err)
		}
		return nil, err
	}
	if api.Terminal(d.State) && run.RecurringRunID != "" && (changed || api.Terminal(run.State)) {
		// Free the schedule's max_concurrency place now rather than at its next tick.
		// Idempotent, so a redelivered final status releases nothing twice.
		if err := h.Store.ScheduledRunFinished(ctx, team, run); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// RunDispatched notes that a run reached its backend.
func (h *Handler) RunDispatched(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	d, err := events.Decode[events.RunDispatched](e)
	if err != nil {
		return nil, err
	}
	h.log().InfoContext(ctx, "run dispatched", "run", d.RunID, "team", d.Team, "backend", d.Backend, "attempt", d.Attempt, "object", d.Object)
	return nil, nil
}

// Tick resyncs the active runs of every team. A run still PENDING well after it was
// created (or retried) is announced again: its submission may have been lost, and the
// compile function's dispatch is idempotent, so announcing twice is harmless.
func (h *Handler) Tick(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	now := e.Time()
	if now.IsZero() {
		now = h.now()
	}
	teams, err := h.Store.Teams(ctx)
	if err != nil {
		return nil, err
	}
	after := h.ResubmitAfter
	if after <= 0 {
		after = 30 * time.Second
	}
	for _, team := range teams {
		token := ""
		for {
			runs, next, err := h.Store.ListActive(ctx, team, state.ListOptions{PageSize: 500, PageToken: token})
			if err != nil {
				return nil, err
			}
			// Cluster runs: read their live objects, so a lost or reordered event heals.
			h.resync(ctx, team, runs, now)
			for _, r := range runs {
				if r.State != api.StatePending || now.Sub(lastChange(r)) < after {
					continue
				}
				se, err := events.NewRunSubmitted(h.Source, now, events.RunSubmitted{
					RunID: r.RunID, Team: team, Backend: r.Backend, Attempt: r.Attempt,
				})
				if err == nil && h.Events != nil {
					err = h.Events.Send(ctx, se)
				}
				if err != nil {
					h.log().ErrorContext(ctx, "resubmit pending run", "run", r.RunID, "team", team, "err", err)
					continue
				}
				h.log().InfoContext(ctx, "pending run announced again", "run", r.RunID, "team", team)
			}
			if next == "" {
				break
			}
			token = next
		}
	}
	return nil, nil
}

// lastChange is when the run last changed state (its creation when it never did).
func lastChange(r api.Run) time.Time {
	t := r.CreatedAt
	for _, c := range r.StateHistory {
		if c.UpdateTime.After(t) {
			t = c.UpdateTime
		}
	}
	return t
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
