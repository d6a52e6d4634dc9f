// Command launcher is the entrypoint of every task of a compiled pipeline. It
// is a small static binary copied into the task's pod (subcommand copy) and
// then run in the user's image:
//
//	launcher run      --config-b64 B --param K=V ... --artifact K=URIS ... --results-dir D
//	launcher cond     --config-b64 B --param K=V ... --results-dir D
//	launcher importer --config-b64 B --param K=V ... --results-dir D
//	launcher items    --config-b64 B --param list=JSON --results-dir D
//	launcher items    --config-b64 B --extra-b64 E (levels) --param level-K=JSON ... --results-dir D
//	launcher copy [SRC] DST
//
// Artifact store credentials come from the environment (AWS_* and the SDK's
// usual chain for s3:// roots). PIPEFN_MOUNT_ROOT overrides where remote
// artifacts are placed locally (default "/", KFP's /s3/<bucket>/<key>).
// Loop extensions (--extra-b64, --iteration, --list-param, --list-artifact,
// result envelopes) are defined in shared/launch (extension.go): a matrixed
// task writes its results as launch.Envelope, and consumers pick or order
// them by iteration path.
//
// In a cluster whose compile function asks for it (PIPEFN_EVENTS_URL,
// PIPEFN_CACHE_URL and the other launch.Env* variables), run and importer
// also consult the step cache before the user command (a hit writes the
// cached outputs as the results and skips the command) and POST their own
// dev.pipefn.task.finished.v1 with the full lineage record afterwards; a
// report that cannot be posted is logged and never changes the exit code.
// The exit code is the user command's
// when it fails, 1 for launcher errors, 2 for a malformed command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	// SIGTERM from the kubelet (pod deletion, Tekton/Argo cancellation) must
	// reach the user's whole process tree, which Execute does on ctx cancel.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one launcher invocation and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "copy" {
		if err := copySelf(args[1:]); err != nil {
			fmt.Fprintf(stderr, "launcher copy: %v\n", err)
			return 1
		}
		return 0
	}
	inv, err := launch.ParseInvocation(args)
	if err != nil {
		fmt.Fprintf(stderr, "launcher: %v\n", err)
		return 2
	}
	switch inv.Command {
	case "cond":
		err = runCond(inv)
	case "items":
		err = runItems(inv)
	default:
		err = runTask(ctx, inv, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "launcher %s: %v\n", inv.Command, err)
		var ee *launch.ExitError
		if errors.As(err, &ee) && ee.Code > 0 {
			return ee.Code
		}
		return 1
	}
	return 0
}

func runTask(ctx context.Context, inv launch.Invocation, stdout, stderr io.Writer) error {
	cfg, err := launch.DecodeTaskConfig(inv.ConfigB64)
	if err != nil {
		return err
	}
	spec, err := cfg.ComponentSpec()
	if err != nil {
		return err
	}
	bound, err := inv.Bind(cfg.TaskID, launch.SpecTypes(spec))
	if err != nil {
		return fmt.Errorf("task %s: %w", cfg.TaskID, err)
	}
	cfg.TaskID = bound.TaskID
	types := map[string]launch.ParameterType{}
	for name, def := range spec.GetOutputDefinitions().GetParameters() {
		types[name] = ir.OutputParameterType(def)
	}
	rep := newReporter(os.Getenv, inv.Iteration, slog.Default())
	// The cache token is the launcher's, not the user command's (which inherits the
	// launcher's environment).
	_ = os.Unsetenv(launch.EnvCacheToken)
	start := time.Now()
	if bound.Skip {
		slog.Info("task skipped", "task", cfg.TaskID, "reason", bound.SkipReason)
		if err := bound.WriteSkippedResults(inv.ResultsDir, spec); err != nil {
			return err
		}
		rep.finish(cfg, outcome{state: api.StateSkipped, start: start, end: time.Now(), in: bound.Inputs})
		return nil
	}
	mount := os.Getenv("PIPEFN_MOUNT_ROOT")
	if mount == "" {
		mount = "/"
	}
	env := launch.Env{
		Store:     artifacts.NewRouter(artifacts.S3Options{}),
		Stdout:    stdout,
		Stderr:    stderr,
		MountRoot: mount,
	}
	o := outcome{start: start, in: bound.Inputs}
	if rep != nil {
		// The lineage record and the cache key cover each input's content (its digest),
		// which a bare URI on the command line does not carry. Execute gets the inputs as
		// bound: their metadata is read from the producer's sidecar there.
		o.in = launch.WithInputDigests(ctx, env.Store, bound.Inputs)
		if o.cacheKey, err = launch.CacheKey(cfg, o.in); err != nil {
			slog.Warn("no cache key", "task", cfg.TaskID, "err", err)
		}
	}
	if out, from, ok := rep.lookup(ctx, cfg, o.cacheKey); ok {
		// Served from the step cache: the cached outputs become this task's results,
		// exactly as if it had run, and the user command is not started.
		if err := bound.WriteResults(inv.ResultsDir, out, types); err != nil {
			o.state, o.end, o.err = api.StateFailed, time.Now(), err
			rep.finish(cfg, o)
			return err
		}
		slog.Info("task served from the step cache", "task", cfg.TaskID, "from", from, "key", o.cacheKey)
		o.state, o.end, o.out, o.cachedFrom = api.StateCached, time.Now(), out, from
		rep.finish(cfg, o)
		return nil
	}
	var out launch.Outputs
	if inv.Command == "importer" {
		out, err = launch.Import(ctx, cfg, bound.Inputs, env)
	} else {
		out, err = launch.Execute(ctx, cfg, bound.Inputs, env)
	}
	if err == nil {
		err = bound.WriteResults(inv.ResultsDir, out, types)
	}
	o.state, o.end, o.err = stateOf(ctx, err), time.Now(), err
	if err == nil {
		o.out = out
	}
	rep.finish(cfg, o)
	if err != nil {
		return err
	}
	slog.Info("task done", "task", cfg.TaskID, "params", len(out.Params), "artifacts", len(out.Artifacts))
	return nil
}

func runCond(inv launch.Invocation) error {
	cfg, err := launch.DecodeCondConfig(inv.ConfigB64)
	if err != nil {
		return err
	}
	bound, err := inv.Bind(cfg.TaskID, launch.Types{Param: func(n string) launch.ParameterType { return cfg.ParamTypes[n] }})
	if err != nil {
		return fmt.Errorf("task %s: %w", cfg.TaskID, err)
	}
	if bound.Skip {
		slog.Info("condition skipped", "task", bound.TaskID, "reason", bound.SkipReason)
		return bound.WriteCondResult(inv.ResultsDir, false)
	}
	ok, err := ir.EvalCondition(cfg.Condition, bound.Inputs.Params)
	if err != nil {
		return fmt.Errorf("task %s: %w", bound.TaskID, err)
	}
	slog.Info("condition evaluated", "task", bound.TaskID, "ok", ok)
	return bound.WriteCondResult(inv.ResultsDir, ok)
}

// runItems writes the loop's iterations for a Tekton matrix (see
// launch.Invocation.Items) as the array result launch.ItemsResult.
func runItems(inv launch.Invocation) error {
	if _, err := launch.DecodeTaskConfig(inv.ConfigB64); err != nil {
		return err
	}
	text, err := inv.Items()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(inv.ResultsDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(inv.ResultsDir, launch.ItemsResult), []byte(text), 0o644)
}

// copySelf copies SRC (default: this binary) to DST, executable, atomically,
// so the init step can place the launcher in the shared /pipefn volume.
func copySelf(args []string) error {
	var src, dst string
	switch len(args) {
	case 1:
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
		src, dst = self, args[0]
	case 2:
		src, dst = args[0], args[1]
	default:
		return fmt.Errorf("usage: launcher copy [SRC] DST")
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".launcher-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
