package local

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"google.golang.org/protobuf/encoding/protojson"
)

// executor is one deploymentSpec executor with its Kubernetes settings.
type executor struct {
	label string
	spec  *pipelinespec.PipelineDeploymentConfig_ExecutorSpec
	k8s   *ir.KubernetesExecutorConfig
}

// deployment returns the typed deployment config: ir.Load decodes it once;
// a Pipeline built by hand only has the Struct form.
func deployment(p *ir.Pipeline) (*pipelinespec.PipelineDeploymentConfig, error) {
	if p.Deployment != nil {
		return p.Deployment, nil
	}
	d := &pipelinespec.PipelineDeploymentConfig{}
	if p.Spec.GetDeploymentSpec() == nil {
		return d, nil
	}
	b, err := protojson.Marshal(p.Spec.GetDeploymentSpec())
	if err != nil {
		return nil, fmt.Errorf("local: deploymentSpec: %w", err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("local: deploymentSpec: %w", err)
	}
	return d, nil
}

func decodeExecutors(p *ir.Pipeline) (map[string]*executor, error) {
	d, err := deployment(p)
	if err != nil {
		return nil, err
	}
	out := map[string]*executor{}
	for label, spec := range d.GetExecutors() {
		e := &executor{label: label, spec: spec}
		if p.Kubernetes != nil {
			e.k8s = p.Kubernetes.Executors[label]
		}
		out[label] = e
	}
	return out, nil
}

// runExecutor runs a container or importer task: cache lookup, then up to
// 1+maxRetryCount attempts, each under the executor's active deadline.
func (r *runner) runExecutor(ctx context.Context, sc *scope, info taskInfo, t *pipelinespec.PipelineTaskSpec, comp *pipelinespec.ComponentSpec, in launch.Inputs, why map[string]string) result {
	in, err := withDefaults(comp, in, why)
	if err != nil {
		return r.finalize(info, result{state: StateFailed, err: err.Error()}, in, time.Time{})
	}
	label := comp.GetExecutorLabel()
	ex := r.executors[label]
	if ex == nil {
		return r.finalize(info, result{state: StateFailed, err: fmt.Sprintf("executor %q is not defined in deploymentSpec.executors", label)}, in, time.Time{})
	}
	cfg := launch.TaskConfig{
		RunID:        r.opts.RunID,
		TaskID:       info.id,
		TaskName:     info.name,
		PipelineRoot: r.root,
		CacheEnabled: t.GetCachingOptions().GetEnableCache(),
	}
	if err := cfg.SetComponent(comp); err != nil {
		return r.finalize(info, result{state: StateFailed, err: err.Error()}, in, time.Time{})
	}
	run := launch.Execute
	switch {
	case ex.spec.GetContainer() != nil:
		cfg.Container = launch.ContainerFromSpec(ex.spec.GetContainer())
	case ex.spec.GetImporter() != nil:
		if err := cfg.SetImporter(ex.spec.GetImporter()); err != nil {
			return r.finalize(info, result{state: StateFailed, err: err.Error()}, in, time.Time{})
		}
		run = launch.Import
	default:
		return r.finalize(info, result{state: StateFailed, err: fmt.Sprintf("executor %q: only container and importer executors run locally", label)}, in, time.Time{})
	}
	extraEnv, err := r.secretEnv(sc, ex)
	if err != nil {
		return r.finalize(info, result{state: StateFailed, err: err.Error()}, in, time.Time{})
	}

	req := CacheRequest{RunID: r.opts.RunID, TaskID: info.id, Name: info.name, Config: cfg, Inputs: in}
	// The hook decides: besides the step cache (req.Config.CacheEnabled) it
	// serves re-runs that reuse the tasks an earlier attempt finished.
	if r.opts.CacheLookup != nil {
		out, hit, err := r.opts.CacheLookup(ctx, req)
		switch {
		case err != nil:
			r.warn(fmt.Sprintf("task %s: cache lookup failed, running the task: %v", info.id, err))
		case hit:
			now := r.opts.Now()
			return r.finalize(info, result{state: StateCached, outputs: out}, in, now)
		}
	}

	policy := t.GetRetryPolicy()
	var deadline time.Duration
	if ex.k8s != nil && ex.k8s.ActiveDeadlineSeconds > 0 {
		deadline = time.Duration(ex.k8s.ActiveDeadlineSeconds) * time.Second
	}
	logs := r.logs(info.id)
	start := r.opts.Now()
	var lastErr string
	for attempt := 1; ; attempt++ {
		// Wait for a slot before reporting RUNNING, so RUNNING means a
		// process is (about to be) alive.
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			if attempt > 1 {
				return r.finalizeAttempt(info, result{state: StateCanceled, err: "run canceled before a retry after: " + lastErr}, in, start, attempt-1)
			}
			return r.finalize(info, result{state: StateCanceled, err: "run canceled before the task started"}, in, time.Time{})
		}
		u := info.update(StateRunning)
		u.Start, u.Inputs, u.Attempt, u.Error = start, in, attempt, lastErr
		r.report(u)

		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline > 0 {
			actx, cancel = context.WithTimeout(ctx, deadline)
		}
		env := launch.Env{
			Store:       r.opts.Store,
			WorkDir:     filepath.Join(r.opts.WorkDir, safePath(r.opts.RunID), safePath(info.id), "attempt-"+strconv.Itoa(attempt)),
			Stdout:      logs,
			Stderr:      logs,
			ExtraEnv:    extraEnv,
			GracePeriod: r.opts.GracePeriod,
		}
		var out launch.Outputs
		err := os.MkdirAll(env.WorkDir, 0o755)
		if err == nil {
			out, err = safeRun(run, actx, cfg, in, env)
			// Scratch only: outputs are in the store by now.
			os.RemoveAll(env.WorkDir)
		}
		timedOut := deadline > 0 && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		<-r.sem

		if err == nil {
			if cfg.CacheEnabled && r.opts.CacheStore != nil {
				if err := r.opts.CacheStore(ctx, req, out); err != nil {
					r.warn(fmt.Sprintf("task %s: cache store failed: %v", info.id, err))
				}
			}
			return r.finalizeAttempt(info, result{state: StateSucceeded, outputs: out}, in, start, attempt)
		}
		if ctx.Err() != nil {
			return r.finalizeAttempt(info, result{state: StateCanceled, err: "run canceled: " + err.Error()}, in, start, attempt)
		}
		lastErr = err.Error()
		if timedOut {
			lastErr = fmt.Sprintf("timed out after %s (activeDeadlineSeconds): %v", deadline, err)
		}
		wait, again := retryWait(policy, attempt, r.opts.Now().Sub(start))
		if !again {
			return r.finalizeAttempt(info, result{state: StateFailed, err: lastErr}, in, start, attempt)
		}
		if err := r.opts.Sleep(ctx, wait); err != nil {
			return r.finalizeAttempt(info, result{state: StateCanceled, err: "run canceled while waiting to retry after: " + lastErr}, in, start, attempt)
		}
	}
}

// safeRun calls run, turning a panic into an error: one task's bug must
// not take down the whole local control plane.
func safeRun(run func(context.Context, launch.TaskConfig, launch.Inputs, launch.Env) (launch.Outputs, error),
	ctx context.Context, cfg launch.TaskConfig, in launch.Inputs, env launch.Env) (out launch.Outputs, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in the task runtime: panic: %v", p)
		}
	}()
	return run(ctx, cfg, in, env)
}

// finalizeAttempt is finalize with the attempt number kept on the report.
func (r *runner) finalizeAttempt(info taskInfo, res result, in launch.Inputs, start time.Time, attempt int) result {
	u := info.update(res.state)
	u.Start, u.End, u.Inputs, u.Outputs, u.Error, u.Attempt = start, r.opts.Now(), in, res.outputs, res.err, attempt
	r.noteFailure(u, res)
	r.report(u)
	return res
}

// maxRetryWindow is KFP's cap on backoffMaxDuration (and its default).
const maxRetryWindow = time.Hour

// retryWait decides whether a task that failed its attempt-th attempt,
// elapsed after its first start, is retried, and after how long. The wait is
// backoffDuration * backoffFactor^(attempt-1) (factor 2 when unset); no
// retry starts once backoffMaxDuration (at most, and by default, 1h) has
// passed since the first attempt, as Argo's backoff.maxDuration does.
func retryWait(p *pipelinespec.PipelineTaskSpec_RetryPolicy, attempt int, elapsed time.Duration) (time.Duration, bool) {
	if p == nil || attempt > int(p.GetMaxRetryCount()) {
		return 0, false
	}
	window := maxRetryWindow
	if d := p.GetBackoffMaxDuration(); d != nil && d.AsDuration() > 0 && d.AsDuration() < window {
		window = d.AsDuration()
	}
	if elapsed >= window {
		return 0, false
	}
	factor := p.GetBackoffFactor()
	if factor <= 0 {
		factor = 2
	}
	base := p.GetBackoffDuration().AsDuration()
	wait := time.Duration(float64(base) * math.Pow(factor, float64(attempt-1)))
	if wait < 0 || wait > window-elapsed { // overflow, or past the window
		wait = window - elapsed
	}
	return wait, true
}

// safePath turns a run or task id into one path element that cannot climb
// out of the work directory.
func safePath(id string) string {
	if id == "" || id == "." || id == ".." {
		return "_" + id
	}
	return strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == 0 {
			return '_'
		}
		return c
	}, id)
}
