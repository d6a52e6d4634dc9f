package handler

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
)

// Observer reads the live state of one backend's runs: what the resync on each tick
// compares the store with, so that a lost or reordered event never leaves a run stuck.
type Observer interface {
	// Observe returns the status of each run whose backend object exists, by run id.
	Observe(ctx context.Context, team string, runs []api.Run) (map[string]events.RunStatus, error)
}

// KubeObserver observes a Tekton or Argo backend through shared/k8s, and prunes the
// team's finished objects at most every PruneEvery (default 10 minutes).
type KubeObserver struct {
	Client     *k8s.Client
	Backend    string
	PruneEvery time.Duration
	// Log receives prune and re-cancel reports (default slog.Default()).
	Log *slog.Logger

	mu        sync.Mutex
	lastPrune map[string]time.Time
	applied   map[string][sha256.Size]byte // team/run -> digest of the last status applied
}

// maxApplied bounds the memory of applied statuses; past it the memory starts over (a
// forgotten status is applied once more, which is harmless).
const maxApplied = 100_000

// Seen reports whether st is exactly the status last applied for its run, so that a
// steady resync does not rewrite what the store already holds.
func (o *KubeObserver) Seen(st events.RunStatus) bool {
	d := digest(st)
	o.mu.Lock()
	defer o.mu.Unlock()
	prev, ok := o.applied[st.Team+"/"+st.RunID]
	return ok && prev == d
}

// Remember records st as applied.
func (o *KubeObserver) Remember(st events.RunStatus) {
	d := digest(st)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.applied == nil || len(o.applied) >= maxApplied {
		o.applied = map[string][sha256.Size]byte{}
	}
	o.applied[st.Team+"/"+st.RunID] = d
}

func digest(st events.RunStatus) [sha256.Size]byte {
	b, _ := json.Marshal(st)
	return sha256.Sum256(b)
}

// memo is what an Observer may offer to skip re-applying an unchanged status.
type memo interface {
	Seen(events.RunStatus) bool
	Remember(events.RunStatus)
}

// KubeObservers returns observers for both cluster backends over one client.
func KubeObservers(c *k8s.Client) map[string]Observer {
	return map[string]Observer{
		k8s.BackendTekton: &KubeObserver{Client: c, Backend: k8s.BackendTekton},
		k8s.BackendArgo:   &KubeObserver{Client: c, Backend: k8s.BackendArgo},
	}
}

// Observe reads the runs' objects in the team's namespace. A run pipefn is cancelling
// whose object still runs as if nothing happened (the object was created just after the
// cancel went out, or the patch was lost) is cancelled again.
func (o *KubeObserver) Observe(ctx context.Context, team string, runs []api.Run) (map[string]events.RunStatus, error) {
	o.prune(ctx, team)
	sts, err := o.Client.Observe(ctx, o.Backend, team, runs)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		st, ok := sts[r.RunID]
		if !ok || r.State != api.StateCanceling || (st.State != api.StatePending && st.State != api.StateRunning) {
			continue
		}
		err := o.Client.Cancel(ctx, o.Backend, team, r.RunID)
		o.log().InfoContext(ctx, "cancelling run again: its object still runs", "backend", o.Backend, "team", team, "run", r.RunID, "err", err)
	}
	return sts, nil
}

func (o *KubeObserver) prune(ctx context.Context, team string) {
	every := o.PruneEvery
	if every <= 0 {
		every = 10 * time.Minute
	}
	o.mu.Lock()
	if o.lastPrune == nil {
		o.lastPrune = map[string]time.Time{}
	}
	due := time.Since(o.lastPrune[team]) >= every
	if due {
		o.lastPrune[team] = time.Now()
	}
	o.mu.Unlock()
	if !due {
		return
	}
	n, err := o.Client.Prune(ctx, o.Backend, team)
	if err != nil || n > 0 {
		o.log().InfoContext(ctx, "pruned finished objects", "backend", o.Backend, "team", team, "deleted", n, "err", err)
	}
}

func (o *KubeObserver) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// resync reads the live object of every run of the page that a cluster backend runs, and
// applies what it finds exactly as a status event. A run that is CANCELING but has no
// object (it was never created) can end only one way: CANCELED; a RUNNING run whose
// object is gone ends FAILED, since nothing will report on it again. Errors
// are logged, not returned: one unreachable cluster must not stop the tick for the rest.
func (h *Handler) resync(ctx context.Context, team string, runs []api.Run, now time.Time) {
	if len(h.Observers) == 0 {
		return
	}
	by := map[string][]api.Run{}
	for _, r := range runs {
		if _, ok := h.Observers[r.Backend]; ok {
			by[r.Backend] = append(by[r.Backend], r)
		}
	}
	// Every observer is asked, even with no runs, so that it can prune the team's
	// finished objects when the team has nothing active.
	for backend, obs := range h.Observers {
		rs := by[backend]
		sts, err := obs.Observe(ctx, team, rs)
		if err != nil {
			h.log().ErrorContext(ctx, "resync: observe backend", "backend", backend, "team", team, "err", err)
			continue
		}
		for _, r := range rs {
			st, ok := sts[r.RunID]
			if !ok {
				switch r.State {
				case api.StateCanceling:
					st = events.RunStatus{RunID: r.RunID, Team: team, Attempt: r.Attempt, State: api.StateCanceled,
						Error: "terminated while its " + backend + " object did not exist"}
				case api.StateRunning:
					// It ran, so its object existed: someone deleted it, and nothing
					// will ever report this attempt again.
					st = events.RunStatus{RunID: r.RunID, Team: team, Attempt: r.Attempt, State: api.StateFailed,
						Error: "its " + backend + " object was deleted while the run was active"}
				default:
					// PENDING: not created yet; the resubmission below heals a lost one.
					continue
				}
			}
			m, _ := h.Observers[backend].(memo)
			if m != nil && m.Seen(st) {
				continue
			}
			var reports func(context.Context) (bool, error)
			if lr, ok := h.Observers[backend].(LauncherReporting); ok {
				run := r
				reports = func(ctx context.Context) (bool, error) { return lr.LauncherReports(ctx, team, run) }
			}
			if err := h.applyStatus(ctx, st, now, reports); err != nil {
				h.log().ErrorContext(ctx, "resync: apply status", "run", r.RunID, "team", team, "err", err)
				continue
			}
			if m != nil {
				m.Remember(st)
			}
		}
	}
}

// applyStatus runs a backend's report through RunStatus, the one path every report
// takes: stale attempts dropped, tasks first, states forward only. Tasks the report
// shows ended for the first time are announced as dev.pipefn.task.finished.v1 (for
// lineage), as the local backend does for its own tasks; their ids are stable per task,
// attempt and state, so a repeated announcement is dropped downstream.
//
// Not so for the successes of an object whose launchers report their own tasks (reports,
// asked only when there is something to announce, says so): their records are complete,
// and the lineage store keeps the first success of a task, so the engine's thinner one
// must never be first. (A succeeded cond or items task of such an object, which no
// launcher reports, is then not announced at all: it has no artifacts to trace.) An error from reports is returned before anything is applied, so that the
// report is retried (redelivery, or the next tick) rather than announced blindly.
func (h *Handler) applyStatus(ctx context.Context, st events.RunStatus, at time.Time, reports func(context.Context) (bool, error)) error {
	if at.IsZero() {
		at = h.now()
	}
	e, err := events.NewRunStatus(h.Source, at, st)
	if err != nil {
		return events.Permanent(err)
	}
	ended := h.newlyEnded(ctx, st)
	if len(ended) > 0 && reports != nil {
		own, err := reports(ctx)
		if err != nil {
			return fmt.Errorf("run %s: does its object's launchers report? %w", st.RunID, err)
		}
		if own {
			// Only successes: a pod that failed, was killed or never started (OOM, a
			// deadline, an image that cannot be pulled, a skipped task) may never have run
			// its launcher, and the engine's record is then all lineage will get.
			kept := ended[:0]
			for _, t := range ended {
				if t.State != api.StateSucceeded {
					kept = append(kept, t)
				}
			}
			ended = kept
		}
	}
	if _, err := h.RunStatus(ctx, e); err != nil {
		return err
	}
	for _, t := range ended {
		tf, err := events.NewTaskFinished(h.Source, at, events.TaskFinished{RunID: st.RunID, Team: st.Team, Attempt: st.Attempt, Task: t})
		if err == nil {
			err = h.Events.Send(ctx, tf)
		}
		if err != nil {
			// The task's state is stored; only lineage misses it. Redelivery of the
			// backend's event, or the next resync, does not resend it, so say so loudly.
			h.log().ErrorContext(ctx, "announce finished task", "run", st.RunID, "task", t.TaskID, "err", err)
		}
	}
	return nil
}

// newlyEnded lists the report's tasks that are terminal while the store does not yet
// show them so. Nothing when there is nobody to tell or the report is of another attempt.
func (h *Handler) newlyEnded(ctx context.Context, st events.RunStatus) []api.TaskDetail {
	if h.Events == nil {
		return nil
	}
	var cands []api.TaskDetail
	for _, t := range st.Tasks {
		if api.Terminal(t.State) {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	run, err := h.Store.GetRun(ctx, st.Team, st.RunID)
	if err != nil || (st.Attempt >= 0 && st.Attempt != run.Attempt) {
		return nil
	}
	stored := map[string]string{}
	if run.RunDetails != nil {
		for _, t := range run.RunDetails.TaskDetails {
			stored[t.TaskID] = t.State
		}
	}
	var out []api.TaskDetail
	for _, t := range cands {
		if !api.Terminal(stored[t.TaskID]) {
			out = append(out, t)
		}
	}
	return out
}

// applyBackendEvent applies a status decoded from an engine's event.
func (h *Handler) applyBackendEvent(ctx context.Context, e cloudevents.Event, st events.RunStatus, ok bool, err error) (*cloudevents.Event, error) {
	if err != nil {
		return nil, events.Permanent(err)
	}
	if !ok || st.RunID == "" || st.Team == "" {
		return nil, nil
	}
	at := e.Time()
	own := launcherReports(e.Data())
	reports := func(context.Context) (bool, error) { return own, nil }
	if err := h.applyStatus(ctx, st, at, reports); err != nil {
		if api.KindOf(err) == api.KindNotFound {
			// A run deleted from the store, or an object in another install's namespace.
			return nil, events.Permanent(err)
		}
		return nil, err
	}
	if api.Terminal(st.State) && len(st.Tasks) == 0 {
		// The event ended the run without saying how its tasks ended (Tekton's
		// PipelineRun events carry no TaskRuns). An ended run is no longer resynced, so
		// read its object once more now: its tasks end with their own states (the one
		// that failed FAILED), not left RUNNING.
		if run, err := h.Store.GetRun(ctx, st.Team, st.RunID); err == nil && (st.Attempt < 0 || run.Attempt == st.Attempt) {
			h.resync(ctx, st.Team, []api.Run{run}, at)
		}
	}
	return nil, nil
}

// RunLogs reads task logs from where the run's backend keeps them: the pod of a cluster
// run, the local executor's files otherwise.
type RunLogs struct {
	Runs interface {
		GetRun(ctx context.Context, team, runID string) (api.Run, error)
	}
	Local Logs
	Kube  *k8s.Client
}

// Open opens the log of a run's task.
func (l *RunLogs) Open(ctx context.Context, team, runID, taskID string) (io.ReadCloser, error) {
	run, err := l.Runs.GetRun(ctx, team, runID)
	if err != nil {
		return nil, err
	}
	if (run.Backend == k8s.BackendTekton || run.Backend == k8s.BackendArgo) && l.Kube != nil {
		return l.Kube.TaskLogs(ctx, run.Backend, team, run, taskID)
	}
	if l.Local == nil {
		return nil, api.Errorf(api.KindNotFound, "no log for task %q of run %q", taskID, runID)
	}
	return l.Local.Open(ctx, team, runID, taskID)
}
