// Package e2e drives pipefn end to end through its REST API: `pipefn up` (every function
// in one process) over a real redis-server, running the examples with the local executor.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/redistest"
)

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	srv *allinone.Server
	c   *client.Client
}

// start runs pipefn up on a free port over a fresh real Redis (or the embedded one).
func start(t testing.TB, embedded bool) *env {
	t.Helper()
	cfg := allinone.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Tick: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if os.Getenv("PIPEFN_E2E_LOG") != "" {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if !embedded {
		cfg.RedisURL = "redis://" + redistest.StartServer(t).Addr()
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := allinone.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("pipefn up: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			t.Errorf("pipefn up stopped with %v", err)
		}
	})
	return &env{srv: srv, c: client.New(srv.URL, "")}
}

// waitState watches a run until it reaches a terminal state (or want, if not terminal).
func (e *env) waitState(t testing.TB, runID string, want string) *api.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last *api.Run
	err := e.c.Watch(ctx, runID, func(r *api.Run) bool {
		last = r
		return r.State != want
	})
	if err != nil {
		t.Fatalf("watch %s: %v (last state %v)", runID, err, stateOf(last))
	}
	r, err := e.c.GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != want {
		t.Fatalf("run %s: state %s, want %s; error %+v; tasks %s", runID, r.State, want, r.Error, taskStates(r))
	}
	return r
}

func stateOf(r *api.Run) string {
	if r == nil {
		return "none"
	}
	return r.State
}

// taskStates maps each task id to its state.
func taskStates(r *api.Run) map[string]string {
	out := map[string]string{}
	if r.RunDetails == nil {
		return out
	}
	for _, t := range r.RunDetails.TaskDetails {
		out[t.TaskID] = t.State
	}
	return out
}

func task(r *api.Run, id string) api.TaskDetail {
	for _, t := range r.RunDetails.TaskDetails {
		if t.TaskID == id {
			return t
		}
	}
	return api.TaskDetail{}
}

func TestUploadRunSucceedsWithArtifactPassed(t *testing.T) {
	for _, embedded := range []bool{false, true} {
		t.Run(fmt.Sprintf("embedded=%v", embedded), func(t *testing.T) {
			e := start(t, embedded)
			ctx := context.Background()
			p, err := e.c.UploadPipeline(ctx, "hello", "", readExample(t, "hello-artifacts.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			run, err := e.c.CreateRun(ctx, &api.Run{
				DisplayName:              "first",
				PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID},
				RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"count": "4"}},
			}, "")
			if err != nil {
				t.Fatal(err)
			}
			if run.State != api.StatePending || run.PipelineVersionReference.PipelineVersionID == "" {
				t.Fatalf("created run: state %s, version ref %+v", run.State, run.PipelineVersionReference)
			}
			r := e.waitState(t, run.RunID, api.StateSucceeded)
			want := map[string]string{"produce": api.StateSucceeded, "summarise": api.StateSucceeded}
			if diff := cmp.Diff(want, taskStates(r)); diff != "" {
				t.Errorf("task states (-want +got):\n%s", diff)
			}
			if got := task(r, "produce").OutputParameters["lines"]; got != float64(4) {
				t.Errorf("produce.lines = %v, want 4", got)
			}
			if got := task(r, "summarise").OutputParameters["summary"]; got != "4 lines, first: hello pipefn #1" {
				t.Errorf("summarise.summary = %q", got)
			}
			uris := task(r, "produce").Outputs["data"].URIs
			if len(uris) != 1 || !strings.HasPrefix(uris[0], "file://") {
				t.Fatalf("produce.data URIs = %v", uris)
			}
			if in := task(r, "summarise").Inputs["data"].URIs; !cmp.Equal(in, uris) {
				t.Errorf("summarise read %v, produce wrote %v", in, uris)
			}
			var log bytes.Buffer
			if err := e.c.RunLog(ctx, run.RunID, "produce", &log); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log.String(), "wrote 4 lines") {
				t.Errorf("produce log = %q", log.String())
			}
			if r.FinishedAt == nil || len(r.StateHistory) < 3 {
				t.Errorf("finished_at %v, history %+v", r.FinishedAt, r.StateHistory)
			}
		})
	}
}

func TestCloneWithNewParameter(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	spec := specJSON(t, readExample(t, "hello-artifacts.yaml"))
	first, err := e.c.CreateRun(ctx, &api.Run{DisplayName: "inline", PipelineSpec: spec}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(t, first.RunID, api.StateSucceeded)
	clone, err := e.c.CloneRun(ctx, first.RunID, client.CloneRequest{Parameters: map[string]any{"message": "cloned"}})
	if err != nil {
		t.Fatal(err)
	}
	if clone.ClonedFrom != first.RunID || clone.RunID == first.RunID {
		t.Fatalf("clone: %+v", clone)
	}
	r := e.waitState(t, clone.RunID, api.StateSucceeded)
	if got := task(r, "summarise").OutputParameters["summary"]; got != "3 lines, first: cloned #1" {
		t.Errorf("clone's summary = %q", got)
	}
	if got := r.RuntimeConfig.Parameters["message"]; got != "cloned" {
		t.Errorf("clone's parameters = %v", r.RuntimeConfig.Parameters)
	}
}

func TestConditionAndLoop(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	spec := specJSON(t, readExample(t, "condition-loop.yaml"))
	heads, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec}, "")
	if err != nil {
		t.Fatal(err)
	}
	tails, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec, RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]any{"side": "tails"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	rh := e.waitState(t, heads.RunID, api.StateSucceeded)
	rt := e.waitState(t, tails.RunID, api.StateSucceeded)
	sh := taskStates(rh)
	for _, id := range []string{"flip", "condition-1", "condition-1.for-loop-2"} {
		if sh[id] != api.StateSucceeded {
			t.Errorf("heads: %s = %q (all: %v)", id, sh[id], sh)
		}
	}
	greets := 0
	for id, st := range sh {
		if strings.HasSuffix(id, ".greet") && st == api.StateSucceeded {
			greets++
		}
	}
	if greets != 3 {
		t.Errorf("heads: %d greet iterations succeeded, want 3 (%v)", greets, sh)
	}
	if sh["condition-3"] != api.StateSkipped {
		t.Errorf("heads: condition-3 = %q, want SKIPPED", sh["condition-3"])
	}
	st := taskStates(rt)
	if st["condition-1"] != api.StateSkipped || st["condition-3"] != api.StateSucceeded {
		t.Errorf("tails: %v", st)
	}
}

func TestFailingRunShowsErrorAndRetry(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	spec := specJSON(t, readExample(t, "failing.yaml"))
	run, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec}, "")
	if err != nil {
		t.Fatal(err)
	}
	r := e.waitState(t, run.RunID, api.StateFailed)
	st := taskStates(r)
	want := map[string]string{
		"exit-handler-1":          api.StateFailed,
		"exit-handler-1.prepare":  api.StateSucceeded,
		"exit-handler-1.validate": api.StateFailed,
		"exit-handler-1.publish":  api.StateSkipped,
		"report":                  api.StateSucceeded,
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("task states (-want +got):\n%s", diff)
	}
	if r.Error == nil || !strings.Contains(r.Error.Message, "validate") {
		t.Errorf("run error = %+v, want it to name the failed task", r.Error)
	}
	var log bytes.Buffer
	if err := e.c.RunLog(ctx, run.RunID, "exit-handler-1.validate", &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "validation failed: 3 rows have no label") {
		t.Errorf("validate log = %q", log.String())
	}

	// Retry: a new attempt; the task that succeeded is reused, the failing one runs again.
	if err := e.c.RetryRun(ctx, run.RunID); err != nil {
		t.Fatal(err)
	}
	r2 := e.waitState(t, run.RunID, api.StateFailed)
	if r2.Attempt != 1 {
		t.Errorf("attempt after retry = %d, want 1", r2.Attempt)
	}
	st2 := taskStates(r2)
	if st2["exit-handler-1.prepare"] != api.StateSucceeded && st2["exit-handler-1.prepare"] != api.StateCached {
		t.Errorf("prepare after retry = %s", st2["exit-handler-1.prepare"])
	}
	if st2["exit-handler-1.validate"] != api.StateFailed {
		t.Errorf("validate after retry = %s", st2["exit-handler-1.validate"])
	}
	// Retrying a run that is not FAILED or CANCELED is refused.
	ok, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: specJSON(t, readExample(t, "hello-artifacts.yaml"))}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(t, ok.RunID, api.StateSucceeded)
	var ce *client.Error
	if err := e.c.RetryRun(ctx, ok.RunID); !errors.As(err, &ce) || ce.HTTPStatus != http.StatusPreconditionFailed {
		t.Errorf("retry of a succeeded run: %v, want 412", err)
	}
}

func TestTerminateLongRun(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	pidFile := filepath.Join(t.TempDir(), "sleeper.pid")
	run, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: sleeperSpec(t, pidFile)}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the task's process exists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long task never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.c.TerminateRun(ctx, run.RunID); err != nil {
		t.Fatal(err)
	}
	r := e.waitState(t, run.RunID, api.StateCanceled)
	if got := taskStates(r)["sleep"]; got != api.StateCanceled {
		t.Errorf("sleep task = %s, want CANCELED", got)
	}
	pid := readPID(t, pidFile)
	deadline = time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs after terminate", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Terminating again is a no-op.
	if err := e.c.TerminateRun(ctx, run.RunID); err != nil {
		t.Errorf("second terminate: %v", err)
	}
}

func TestIdempotencyKeyReturnsFirstRun(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	spec := specJSON(t, readExample(t, "hello-artifacts.yaml"))
	a, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec}, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec}, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.RunID != b.RunID {
		t.Fatalf("same key, two runs: %s and %s", a.RunID, b.RunID)
	}
	e.waitState(t, a.RunID, api.StateSucceeded)
	list, err := e.c.ListRuns(ctx, client.ListRunsOptions{PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Runs) != 1 {
		t.Errorf("%d runs stored, want 1", len(list.Runs))
	}
}

func TestBadInputIsRefusedAndNothingStored(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	good := readExample(t, "hello-artifacts.yaml")
	p, err := e.c.UploadPipeline(ctx, "hello", "", good)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		do     func() error
		status int
		msg    string
	}{
		{"invalid IR", func() error {
			_, err := e.c.UploadPipeline(ctx, "broken", "", []byte("pipelineInfo: {name: x}\nschemaVersion: 9.9.9\nroot: {}\n"))
			return err
		}, 400, "schemaVersion"},
		{"unknown parameter", func() error {
			_, err := e.c.CreateRun(ctx, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID},
				RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]any{"nope": 1}}}, "")
			return err
		}, 400, "nope"},
		{"wrong type", func() error {
			_, err := e.c.CreateRun(ctx, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID},
				RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]any{"count": "many"}}}, "")
			return err
		}, 400, "count"},
		{"unknown pipeline", func() error {
			_, err := e.c.CreateRun(ctx, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: "no-such-pipeline"}}, "")
			return err
		}, 404, "no-such-pipeline"},
		{"unknown version", func() error {
			_, err := e.c.CreateRun(ctx, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID, PipelineVersionID: "v-missing"}}, "")
			return err
		}, 404, "v-missing"},
		{"neither spec nor version", func() error {
			_, err := e.c.CreateRun(ctx, &api.Run{DisplayName: "x"}, "")
			return err
		}, 400, "pipeline_spec or pipeline_version_reference"},
		{"unknown run", func() error {
			_, err := e.c.GetRun(ctx, "no-such-run")
			return err
		}, 404, "no-such-run"},
		{"duplicate pipeline name", func() error {
			_, err := e.c.UploadPipeline(ctx, "hello", "", good)
			return err
		}, 409, "hello"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if ce.HTTPStatus != c.status || !strings.Contains(ce.Message, c.msg) {
				t.Errorf("got %d %q, want %d containing %q", ce.HTTPStatus, ce.Message, c.status, c.msg)
			}
		})
	}
	list, err := e.c.ListRuns(ctx, client.ListRunsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Runs) != 0 {
		t.Errorf("%d runs stored by refused requests", len(list.Runs))
	}
	pl, err := e.c.ListPipelines(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Pipelines) != 1 {
		t.Errorf("%d pipelines stored, want 1", len(pl.Pipelines))
	}

	// An oversized body is refused with 413.
	big := bytes.Repeat([]byte("x"), 40<<20)
	_, err = e.c.UploadPipeline(ctx, "big", "", big)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized upload: %v, want 413", err)
	}
}

// specJSON converts an IR file to the JSON of a run's inline pipeline_spec.
func specJSON(t testing.TB, ir []byte) json.RawMessage {
	t.Helper()
	docs, err := irDocuments(ir)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 1 {
		return docs[0]
	}
	b, _ := json.Marshal(map[string]json.RawMessage{"pipeline_spec": docs[0], "platform_spec": docs[1]})
	return b
}

func sleeperSpec(t testing.TB, pidFile string) json.RawMessage {
	y := fmt.Sprintf(`
components:
  comp-sleep:
    executorLabel: exec-sleep
deploymentSpec:
  executors:
    exec-sleep:
      container:
        image: alpine
        command: [sh, -c, 'sleep 300 & echo $! > %s; wait']
pipelineInfo: {name: sleeper}
root:
  dag:
    tasks:
      sleep:
        componentRef: {name: comp-sleep}
        taskInfo: {name: sleep}
schemaVersion: 2.1.0
`, pidFile)
	return specJSON(t, []byte(y))
}

func readPID(t testing.TB, f string) int {
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid)
	return pid
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; only its parent has not reaped it yet.
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

var _ = sort.Strings
