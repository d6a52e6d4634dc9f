package handler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/local"
)

// LocalBackend runs jobs on this machine with the local executor and reports every task
// state change as dev.pipefn.run.status.v1 events, and every finished task as
// dev.pipefn.task.finished.v1, exactly as a cluster backend's status path would.
type LocalBackend struct {
	Send   events.Sender
	Logs   *LocalLogs
	Source string
	Now    func() time.Time
	Log    *slog.Logger
	// Parallelism bounds concurrent tasks per run (0: number of CPUs).
	Parallelism int
	// WorkDir holds task working directories (default: a temporary directory).
	WorkDir string
	// Cache, when set, is the step cache consulted for tasks with caching on (runs that
	// did not turn it off, tasks whose IR enables it).
	Cache StepCache

	mu      sync.Mutex
	running map[string]*localRun
	// done keeps, per run, the outputs of tasks that succeeded in earlier attempts, so a
	// retry re-runs only what failed (KFP's retry semantics).
	done map[string]map[string]launch.Outputs
	wg   sync.WaitGroup
}

// StepCache finds the outputs of an earlier successful execution with the same cache key;
// cachedFrom names that execution. Entries are not written here: every finished task's
// lineage record carries its key, and the lineage store is the cache.
type StepCache interface {
	Lookup(ctx context.Context, team, key string) (out launch.Outputs, cachedFrom string, ok bool, err error)
}

type localRun struct {
	attempt int
	cancel  context.CancelFunc
}

func runKey(team, runID string) string { return team + "/" + runID }

// Dispatch starts the job in the background. A second Dispatch of the same run attempt
// (a redelivered event) starts nothing.
func (b *LocalBackend) Dispatch(_ context.Context, job Job) (events.RunDispatched, error) {
	d := events.RunDispatched{RunID: job.Run.RunID, Team: job.Team, Backend: "local", Attempt: job.Attempt}
	key := runKey(job.Team, job.Run.RunID)
	b.mu.Lock()
	if b.running == nil {
		b.running = map[string]*localRun{}
		b.done = map[string]map[string]launch.Outputs{}
	}
	if r, ok := b.running[key]; ok && r.attempt >= job.Attempt {
		b.mu.Unlock()
		return d, nil
	}
	// Detached from the event's context: the run outlives the delivery that started it.
	ctx, cancel := context.WithCancel(context.Background())
	b.running[key] = &localRun{attempt: job.Attempt, cancel: cancel}
	prev := b.done[key]
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer cancel()
		b.execute(ctx, job, prev)
		b.mu.Lock()
		if r := b.running[key]; r != nil && r.attempt == job.Attempt {
			delete(b.running, key)
		}
		b.mu.Unlock()
	}()
	return d, nil
}

// Cancel stops a running job; its processes are killed and its tasks end CANCELED. A run
// that is not running here is reported CANCELED directly, so a termination never hangs.
func (b *LocalBackend) Cancel(ctx context.Context, team, runID string) error {
	b.mu.Lock()
	r, ok := b.running[runKey(team, runID)]
	b.mu.Unlock()
	if ok {
		r.cancel()
		return nil
	}
	return b.status(ctx, team, runID, -1, api.StateCanceled, nil, "terminated")
}

// Shutdown cancels every running job and waits for them to report, within ctx.
func (b *LocalBackend) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	for _, r := range b.running {
		r.cancel()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *LocalBackend) execute(ctx context.Context, job Job, prev map[string]launch.Outputs) {
	team, runID := job.Team, job.Run.RunID
	log := b.Log.With("run", runID, "team", team, "attempt", job.Attempt)
	succeeded := map[string]launch.Outputs{}
	// latest keeps every task's last detail: the final status carries them all, so the
	// run is never seen ended while some of its tasks still show an earlier state (events
	// may be handled out of order).
	latest := map[string]api.TaskDetail{}
	metas := map[string]*taskMeta{}
	var mu sync.Mutex
	workDir := b.WorkDir
	if workDir != "" {
		workDir = filepath.Join(workDir, team, runID)
	}
	opts := local.Options{
		RunID:        runID,
		PipelineRoot: job.PipelineRoot,
		Params:       job.Params,
		WorkDir:      workDir,
		Parallelism:  b.Parallelism,
		Now:          b.Now,
		Warn:         func(msg string) { log.Warn(msg) },
		Logs: func(taskID string) io.Writer {
			if b.Logs == nil {
				return io.Discard
			}
			return b.Logs.writer(team, runID, taskID)
		},
		Report: func(u local.TaskUpdate) {
			td := TaskDetail(u)
			mu.Lock()
			if u.State == local.StateSucceeded || u.State == local.StateCached {
				succeeded[u.TaskID] = u.Outputs
			}
			meta := metas[u.TaskID]
			if meta != nil && meta.cachedFrom != "" {
				td.CachedFrom = meta.cachedFrom
			}
			latest[u.TaskID] = td
			mu.Unlock()
			b.report(team, job, u, td, meta)
		},
	}
	// CacheLookup is asked before every container and importer task: it notes the task's
	// config and cache key (for its lineage record), reuses what an earlier attempt of
	// this run produced (a retry re-runs only what did not succeed), then asks the cache.
	opts.CacheLookup = func(ctx context.Context, req local.CacheRequest) (launch.Outputs, bool, error) {
		key, err := launch.CacheKey(req.Config, req.Inputs)
		if err != nil {
			log.Warn("no cache key", "task", req.TaskID, "err", err)
		}
		meta := &taskMeta{config: req.Config, cacheKey: key}
		mu.Lock()
		metas[req.TaskID] = meta
		mu.Unlock()
		if out, ok := prev[req.TaskID]; ok {
			return out, true, nil
		}
		if b.Cache == nil || !job.Caching || !req.Config.CacheEnabled || key == "" {
			return launch.Outputs{}, false, nil
		}
		out, from, ok, err := b.Cache.Lookup(ctx, team, key)
		if err != nil || !ok {
			// A cache that cannot answer must not fail the task: run it.
			if err != nil {
				log.Warn("step cache lookup", "task", req.TaskID, "err", err)
			}
			return launch.Outputs{}, false, nil
		}
		mu.Lock()
		meta.cachedFrom = from
		mu.Unlock()
		return out, true, nil
	}
	_ = b.status(context.Background(), team, runID, job.Attempt, api.StateRunning, nil, "")
	state, err := local.Run(ctx, job.Pipeline, opts)
	msg := ""
	if err != nil && state != local.StateSucceeded {
		msg = err.Error()
	}
	if state == local.StateCanceled {
		msg = "terminated"
	}
	b.mu.Lock()
	key := runKey(team, runID)
	all := map[string]launch.Outputs{}
	for k, v := range prev {
		all[k] = v
	}
	for k, v := range succeeded {
		all[k] = v
	}
	b.done[key] = all
	b.mu.Unlock()
	log.Info("local run ended", "state", state, "err", msg)
	mu.Lock()
	final := make([]api.TaskDetail, 0, len(latest))
	for _, td := range latest {
		final = append(final, td)
	}
	mu.Unlock()
	sort.Slice(final, func(i, j int) bool { return final[i].TaskID < final[j].TaskID })
	if err := b.status(context.Background(), team, runID, job.Attempt, state, final, msg); err != nil {
		log.Error("report final state", "err", err)
	}
}

// report turns one task update into a run.status event (and a task.finished event when
// the task reached a final state).
func (b *LocalBackend) report(team string, job Job, u local.TaskUpdate, td api.TaskDetail, meta *taskMeta) {
	ctx := context.Background()
	if err := b.status(ctx, team, job.Run.RunID, job.Attempt, api.StateRunning, []api.TaskDetail{td}, ""); err != nil {
		b.Log.Error("report task state", "run", job.Run.RunID, "task", u.TaskID, "err", err)
	}
	if !api.Terminal(u.State) {
		return
	}
	if b.Logs != nil {
		b.Logs.closeTask(team, job.Run.RunID, u.TaskID)
	}
	if b.Send == nil {
		return
	}
	tf := events.TaskFinished{RunID: job.Run.RunID, Team: team, Attempt: job.Attempt, Task: td}
	if meta != nil {
		tf.CacheKey = meta.cacheKey
		tf.Lineage = lineageRecord(job, u, td, meta)
	}
	e, err := events.NewTaskFinished(b.Source, b.now(), tf)
	if err == nil {
		err = b.Send.Send(ctx, e)
	}
	if err != nil {
		b.Log.Error("report task finished", "run", job.Run.RunID, "task", u.TaskID, "err", err)
	}
}

func (b *LocalBackend) status(ctx context.Context, team, runID string, attempt int, state string, tasks []api.TaskDetail, msg string) error {
	if b.Send == nil {
		return errors.New("local backend has no event sender")
	}
	e, err := events.NewRunStatus(b.Source, b.now(), events.RunStatus{RunID: runID, Team: team, Attempt: attempt, State: state, Tasks: tasks, Error: msg})
	if err != nil {
		return err
	}
	return b.Send.Send(ctx, e)
}

func (b *LocalBackend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// TaskDetail converts an executor update into the API's task detail.
func TaskDetail(u local.TaskUpdate) api.TaskDetail {
	td := api.TaskDetail{
		RunID: u.RunID, TaskID: u.TaskID, DisplayName: u.Name, ParentTaskID: u.ParentID, State: u.State,
	}
	if !u.Start.IsZero() {
		t := u.Start.UTC()
		td.StartTime = &t
	}
	if !u.End.IsZero() {
		t := u.End.UTC()
		td.EndTime = &t
	}
	if u.Error != "" {
		td.Error = &api.Status{Code: 2, Message: u.Error}
	}
	if len(u.Inputs.Params) > 0 {
		td.InputParameters = map[string]any{}
		for k, v := range u.Inputs.Params {
			td.InputParameters[k] = v.AsInterface()
		}
	}
	if len(u.Outputs.Params) > 0 {
		td.OutputParameters = map[string]any{}
		for k, v := range u.Outputs.Params {
			td.OutputParameters[k] = v.AsInterface()
		}
	}
	td.Inputs = artifactLists(u.Inputs.Artifacts)
	td.Outputs = artifactLists(u.Outputs.Artifacts)
	return td
}

func artifactLists[T interface{ GetUri() string }](m map[string][]T) map[string]api.ArtifactList {
	if len(m) == 0 {
		return nil
	}
	out := map[string]api.ArtifactList{}
	for name, list := range m {
		var l api.ArtifactList
		for _, a := range list {
			l.URIs = append(l.URIs, a.GetUri())
		}
		out[name] = l
	}
	return out
}

// LocalLogs keeps the logs of local tasks as files: <Dir>/<team>/<run>/<task>.log.
type LocalLogs struct {
	Dir  string
	mu   sync.Mutex
	open map[string]*lockedFile
}

type lockedFile struct {
	mu sync.Mutex
	f  *os.File
}

func (l *lockedFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *LocalLogs) path(team, runID, taskID string) string {
	return filepath.Join(l.Dir, safe(team), safe(runID), safe(taskID)+".log")
}

// writer opens a task's log for appending; retries append to the same log. It stays
// open until the task's final state is reported (closeTask).
func (l *LocalLogs) writer(team, runID, taskID string) io.Writer {
	p := l.path(team, runID, taskID)
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.open[p]; ok {
		return w
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return io.Discard
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	if l.open == nil {
		l.open = map[string]*lockedFile{}
	}
	w := &lockedFile{f: f}
	l.open[p] = w
	return w
}

// closeTask closes a task's log once the task has ended.
func (l *LocalLogs) closeTask(team, runID, taskID string) {
	p := l.path(team, runID, taskID)
	l.mu.Lock()
	w, ok := l.open[p]
	delete(l.open, p)
	l.mu.Unlock()
	if ok {
		w.mu.Lock()
		_ = w.f.Close()
		w.mu.Unlock()
	}
}

// Open returns a task's log.
func (l *LocalLogs) Open(_ context.Context, team, runID, taskID string) (io.ReadCloser, error) {
	f, err := os.Open(l.path(team, runID, taskID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, api.Errorf(api.KindNotFound, "no log for task %q of run %q", taskID, runID)
	}
	return f, err
}

// Tasks lists the tasks of a run that have a log, sorted.
func (l *LocalLogs) Tasks(team, runID string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(l.Dir, safe(team), safe(runID)))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name()[:len(e.Name())-len(filepath.Ext(e.Name()))])
	}
	sort.Strings(out)
	return out, nil
}

// safe keeps a path segment inside its directory whatever the id holds.
func safe(s string) string {
	if s == "" || s == "." || s == ".." {
		return fmt.Sprintf("_%x", s)
	}
	b := []byte(s)
	for i, c := range b {
		if c == '/' || c == '\\' || c == 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// lineageRecord is the full lineage of a finished container or importer task.
func lineageRecord(job Job, u local.TaskUpdate, td api.TaskDetail, meta *taskMeta) *lineage.TaskFinished {
	e := lineage.Execution{
		RunID: job.Run.RunID, TaskID: u.TaskID, TaskName: u.Name, State: u.State,
		Start: u.Start, End: u.End, CacheKey: meta.cacheKey, CachedFrom: meta.cachedFrom,
		Parameters: td.InputParameters, OutputParameters: td.OutputParameters, Error: u.Error,
	}
	if c := meta.config.Container; c != nil {
		e.Image = c.Image
		e.Command = append(append([]string{}, c.Command...), c.Args...)
	}
	if comp, err := meta.config.ComponentSpec(); err == nil && comp != nil {
		e.Component = comp.GetExecutorLabel()
	}
	return &lineage.TaskFinished{
		Pipeline:  job.Pipeline.Spec.GetPipelineInfo().GetName(),
		Execution: e,
		Inputs:    lineage.FromRuntimeArtifacts(u.Inputs.Artifacts),
		Outputs:   lineage.FromRuntimeArtifacts(u.Outputs.Artifacts),
	}
}
