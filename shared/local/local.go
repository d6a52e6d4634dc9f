// Package local runs a KFP v2 pipeline on this machine: every container task
// is a child process group started by shared/launch, and the IR's DAGs,
// conditions, loops, exit handlers, retries and timeouts are interpreted
// directly. It is the backend of `pipefn up`, so pipelines run with no
// cluster, and it reports every task state change as it happens.
//
// Semantics worth knowing (they follow KFP where KFP defines them):
//
//   - Task ids are the IR task names from the root joined by '.', with the
//     iteration index after a loop: "for-loop-1.2.print". Artifacts land at
//     <pipeline root>/<run id>/<task id>/<output name>.
//   - A task runs when every upstream task (dependentTasks and the producers
//     of its data inputs) SUCCEEDED or was CACHED. If an upstream task FAILED,
//     was SKIPPED or CANCELED, the task is SKIPPED (it never ran) with an
//     error naming the upstream, and so is everything inside it. Tasks with
//     triggerPolicy.strategy ALL_UPSTREAM_TASKS_COMPLETED (exit handlers,
//     ignore_upstream_failure) run once upstream tasks reached any final state;
//     outputs a failed producer never wrote fall back to the consumer's input
//     defaults. taskFinalStatus inputs are {state, pipelineJobResourceName (the
//     run id), pipelineTaskName, error: {code, message}} with pipefn's state
//     names.
//   - Independent branches keep running after a failure; the enclosing DAG
//     (and the run) is FAILED once everything has settled.
//   - A false triggerPolicy.condition SKIPs the task and everything inside it.
//   - A loop's output parameters are lists over its iterations, in item
//     order, leaving out iterations that produced nothing (a skipped
//     condition); its output artifacts are the iterations' lists joined.
//   - Retries follow retryPolicy: the wait before retry k is backoffDuration
//     times backoffFactor^(k-1) (factor 2 by default), and no retry starts once
//     backoffMaxDuration (at most and by default 1h) has passed since the
//     first attempt. activeDeadlineSeconds bounds each attempt.
//   - Canceling ctx kills every running process group; tasks not yet
//     started, exit handlers included, end CANCELED.
//   - Platform settings with no local meaning (images, resources, node
//     selectors, tolerations, volumes...) are ignored and listed once through
//     Options.Warn. Secrets and config maps exposed as environment variables
//     are read from the host: PIPEFN_SECRET_<SECRET>_<KEY> and
//     PIPEFN_CONFIGMAP_<NAME>_<KEY> (upper-cased, every character other than
//     A-Z and 0-9 replaced by '_'); a missing one fails the task unless the
//     setting is optional.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"google.golang.org/protobuf/types/known/structpb"
)

// Task and run states (KFP v2beta1 names). Runs end in SUCCEEDED, FAILED or
// CANCELED.
const (
	StatePending   = "PENDING"
	StateRunning   = "RUNNING"
	StateSucceeded = "SUCCEEDED"
	StateFailed    = "FAILED"
	StateSkipped   = "SKIPPED"
	StateCached    = "CACHED"
	StateCanceled  = "CANCELED"
)

// Task kinds reported in TaskUpdate.Kind.
const (
	KindContainer = "container" // an executor with a container
	KindImporter  = "importer"  // an importer executor
	KindDAG       = "dag"       // a nested pipeline, condition or exit-handler group
	KindLoop      = "loop"      // a ParallelFor task; its iterations are children
	KindIteration = "iteration" // one iteration of a loop; runs the loop body
)

// TaskUpdate is one state change of one task.
type TaskUpdate struct {
	RunID string
	// TaskID is unique in the run: the IR task names from the root joined by
	// '.', with the iteration index after a loop ("for-loop-1.2.print").
	TaskID string
	// Name is the IR task name (the key in its DAG's tasks map).
	Name string
	// ParentID is the TaskID of the enclosing DAG, loop or iteration; "" for
	// tasks of the root DAG.
	ParentID string
	Kind     string
	State    string
	// Start is set from RUNNING on, End on final states.
	Start, End time.Time
	// Attempt counts executions of a container task (1 on the first RUNNING,
	// 2 on the first retry...); 0 for other kinds.
	Attempt int
	// Inputs are the resolved inputs (set from RUNNING on, and on SKIPPED
	// by condition); Outputs are set on SUCCEEDED and CACHED.
	Inputs  launch.Inputs
	Outputs launch.Outputs
	// Error says why a task FAILED, was SKIPPED or CANCELED, or, on a RUNNING
	// retry, why the previous attempt failed.
	Error string
}

// CacheRequest describes a task about to execute, for the cache hooks.
type CacheRequest struct {
	RunID, TaskID, Name string
	Config              launch.TaskConfig
	Inputs              launch.Inputs
}

// Options configure one local run. RunID is required.
type Options struct {
	RunID string
	// PipelineRoot is the artifact root URI. Empty: the PipelineJob's output
	// directory, else the spec's defaultPipelineRoot, else
	// file://<WorkDir>/pipeline-root.
	PipelineRoot string
	// Params are the bound root input parameters (ir.Pipeline.BindParameters);
	// missing ones fall back to the root inputDefinitions defaults.
	Params map[string]*structpb.Value
	// Store holds artifacts; nil opens the store for PipelineRoot.
	Store artifacts.Store
	// WorkDir is where task working directories go; empty uses a temporary
	// directory that is removed when Run returns.
	WorkDir string
	// Report receives every state change. Run calls it from one goroutine at
	// a time, in the order the changes happened, so it need not lock.
	Report func(TaskUpdate)
	// Logs returns where a task's stdout and stderr go; nil discards them.
	// The writer may be called from two goroutines (stdout and stderr).
	Logs func(taskID string) io.Writer
	// Now is the clock for reported times and retry windows; nil is time.Now.
	Now func() time.Time
	// Sleep waits d between retries, returning early with ctx's error; nil
	// uses a real timer. Tests inject it to observe backoff.
	Sleep func(ctx context.Context, d time.Duration) error
	// Parallelism bounds how many container tasks run at once in the whole
	// run; 0 means the number of CPUs.
	Parallelism int
	// GracePeriod is how long a canceled or timed-out task gets between
	// SIGTERM and SIGKILL; 0 keeps launch's default (10s).
	GracePeriod time.Duration
	// Warn receives one message per platform feature ignored locally.
	Warn func(string)
	// Getenv looks up host environment variables for secrets; nil is
	// os.LookupEnv.
	Getenv func(string) (string, bool)
	// CacheLookup, when set, is asked before every container or importer
	// task runs; a hit reports the task CACHED with the returned outputs.
	// req.Config.CacheEnabled says whether the pipeline allows the step
	// cache for the task; the hook decides (a resumed run may reuse tasks
	// regardless).
	CacheLookup func(ctx context.Context, req CacheRequest) (launch.Outputs, bool, error)
	// CacheStore, when set, is given the outputs of every task with caching
	// enabled that succeeded. Its error goes to Warn; it does not fail the
	// task.
	CacheStore func(ctx context.Context, req CacheRequest, out launch.Outputs) error
}

// Run executes p and blocks until it finishes. The returned state is
// SUCCEEDED, FAILED or CANCELED. err is nil on SUCCEEDED; on FAILED it names
// the first task that failed; on CANCELED it is ctx's error. A run that could
// not start (bad options, a pipeline that cannot be interpreted) returns
// FAILED and an error before any task is reported.
func Run(ctx context.Context, p *ir.Pipeline, opts Options) (string, error) {
	r, cleanup, err := newRunner(ctx, p, opts)
	if err != nil {
		return StateFailed, err
	}
	defer cleanup()
	res := r.runRoot(ctx)
	if ctx.Err() != nil {
		return StateCanceled, ctx.Err()
	}
	if res.state == StateSucceeded {
		return StateSucceeded, nil
	}
	if first := r.firstFailure(); first != "" {
		return StateFailed, errors.New(first)
	}
	return StateFailed, fmt.Errorf("run %s: %s", opts.RunID, res.err)
}

// runner holds what every task of one run shares.
type runner struct {
	p         *ir.Pipeline
	opts      Options
	root      string // pipeline root URI
	rootIn    launch.Inputs
	executors map[string]*executor
	sem       chan struct{} // bounds concurrent container executions

	reportMu sync.Mutex

	failMu    sync.Mutex
	firstFail string
}

func newRunner(ctx context.Context, p *ir.Pipeline, opts Options) (*runner, func(), error) {
	if p == nil || p.Spec == nil || p.Spec.GetRoot() == nil {
		return nil, nil, errors.New("local: pipeline has no root component")
	}
	if p.Spec.GetRoot().GetDag() == nil {
		return nil, nil, errors.New("local: the root component is not a DAG")
	}
	rootIn, err := rootInputs(p.Spec.GetRoot(), opts.Params)
	if err != nil {
		return nil, nil, err
	}
	if opts.RunID == "" {
		return nil, nil, errors.New("local: Options.RunID is empty")
	}
	cleanup := func() {}
	if opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "pipefn-local-")
		if err != nil {
			return nil, nil, fmt.Errorf("local: create work dir: %w", err)
		}
		opts.WorkDir = dir
		cleanup = func() { os.RemoveAll(dir) }
	}
	fail := func(err error) (*runner, func(), error) {
		cleanup()
		return nil, nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepTimer
	}
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.NumCPU()
	}
	root := opts.PipelineRoot
	if root == "" {
		root = p.RuntimeConfig.PipelineRoot()
	}
	if root == "" {
		root = p.Spec.GetDefaultPipelineRoot()
	}
	if root == "" {
		abs, err := filepath.Abs(filepath.Join(opts.WorkDir, "pipeline-root"))
		if err != nil {
			return fail(fmt.Errorf("local: pipeline root: %w", err))
		}
		root = artifacts.FileURI(abs)
	}
	if opts.Store == nil {
		st, err := artifacts.Open(ctx, root)
		if err != nil {
			return fail(fmt.Errorf("local: %w", err))
		}
		opts.Store = st
	}
	execs, err := decodeExecutors(p)
	if err != nil {
		return fail(err)
	}
	r := &runner{p: p, opts: opts, root: root, rootIn: rootIn, executors: execs, sem: make(chan struct{}, opts.Parallelism)}
	r.warnPlatform()
	return r, cleanup, nil
}

// report forwards u to Options.Report, one call at a time.
func (r *runner) report(u TaskUpdate) {
	if r.opts.Report == nil {
		return
	}
	u.RunID = r.opts.RunID
	r.reportMu.Lock()
	defer r.reportMu.Unlock()
	r.opts.Report(u)
}

// noteFailure remembers the first task that failed on its own account.
func (r *runner) noteFailure(u TaskUpdate, res result) {
	if res.state != StateFailed || res.inherited {
		return
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.firstFail == "" {
		r.firstFail = fmt.Sprintf("task %s failed: %s", u.TaskID, u.Error)
	}
}

func (r *runner) firstFailure() string {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.firstFail
}

func (r *runner) warn(msg string) {
	if r.opts.Warn != nil {
		r.opts.Warn(msg)
	}
}

func (r *runner) logs(taskID string) io.Writer {
	if r.opts.Logs == nil {
		return io.Discard
	}
	if w := r.opts.Logs(taskID); w != nil {
		return w
	}
	return io.Discard
}

// sleepTimer waits d with a real timer or until ctx ends.
func sleepTimer(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
