package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	lineagefn "github.com/pipefn/pipefn/functions/lineage/handler"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

// launcherEnv runs the built binary with extra environment variables.
func launcherEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(launcherBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("run launcher: %v", err)
	return 0, ""
}

// receiver is a CloudEvents endpoint as a Broker ingress: it keeps what it receives and
// hands task.finished on to the real lineage handler (when set), as the Broker's trigger
// would.
type receiver struct {
	mu      sync.Mutex
	got     []cloudevents.Event
	lineage *lineagefn.Handler
}

func (r *receiver) handle(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
	if r.lineage != nil {
		return r.lineage.HandleTaskFinished(ctx, e)
	}
	return nil, nil
}

func (r *receiver) events() []cloudevents.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cloudevents.Event(nil), r.got...)
}

// TestReportAndStepCache runs the launcher as a task pod would with reporting on: a first
// run posts task.finished with the full lineage record, which the real lineage function
// records in a real Redis; a second run (another run of the same task, same inputs) finds
// it through the cache API, writes the cached outputs as its results and does not start
// the user command; a task with caching off, and a cache that cannot be reached, run.
func TestReportAndStepCache(t *testing.T) {
	st := state.New(redistest.Start(t), nil)
	// The lineage function authenticates: only the launchers' token is team t1.
	lin := lineagefn.New(st, func(r *http.Request) (string, error) {
		if r.Header.Get("Authorization") != "Bearer tok-1" {
			return "", api.Errorf(api.KindUnauthenticated, "bad token")
		}
		return "t1", nil
	}, nil)
	cacheSrv := httptest.NewServer(lin)
	defer cacheSrv.Close()
	recv := &receiver{lineage: lin}
	router := events.NewRouter(nil)
	router.Handle(events.TypeTaskFinished, recv.handle)
	eventsSrv := httptest.NewServer(events.HTTPHandler(router))
	defer eventsSrv.Close()

	rootDir := t.TempDir()
	root := artifacts.FileURI(rootDir)
	inURI := artifacts.Join(root, "run-0", "producer", "data")
	const content = "rows\n"
	if _, err := artifacts.NewLocal().Put(context.Background(), inURI, strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	inDigest := "sha256:" + hex.EncodeToString(sum[:])
	marker := filepath.Join(t.TempDir(), "ran")
	task := func(runID string, cache bool) launch.TaskConfig {
		cfg := launch.TaskConfig{RunID: runID, TaskID: "train", TaskName: "train", PipelineRoot: root, CacheEnabled: cache,
			Container: &launch.Container{Image: "alpine:3", Command: []string{"sh", "-c",
				`echo ran "$PIPEFN_CACHE_TOKEN" >> "$0"; printf '%s!' "$1" > "$2"; cat "$3" > "$4"`},
				Args: []string{marker, "{{$.inputs.parameters['msg']}}", "{{$.outputs.parameters['out'].output_file}}",
					"{{$.inputs.artifacts['data'].path}}", "{{$.outputs.artifacts['model'].path}}"}}}
		if err := cfg.SetComponent(spec(map[string]pipelinespec.ParameterType_ParameterTypeEnum{"msg": pipelinespec.ParameterType_STRING},
			[]string{"data"}, map[string]pipelinespec.ParameterType_ParameterTypeEnum{"out": pipelinespec.ParameterType_STRING},
			[]string{"model"})); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	env := func(cacheURL string) []string {
		return []string{
			launch.EnvEventsURL + "=" + eventsSrv.URL, launch.EnvCacheURL + "=" + cacheURL,
			launch.EnvTeam + "=t1", launch.EnvAttempt + "=0", launch.EnvPipeline + "=pipe", launch.EnvCacheToken + "=tok-1",
			// A TaskRun's labels (a loop iteration's id is tested in shared/launch and
			// functions/status): the status function calls it "train".
			launch.EnvTektonPipelineRun + "=pf-run-a0", launch.EnvTektonPipelineTask + "=train",
			launch.EnvTektonTaskRun + "=pf-run-a0-train-1",
		}
	}
	runs := func() int {
		b, _ := os.ReadFile(marker)
		return strings.Count(string(b), "ran")
	}
	invoke := func(cfg launch.TaskConfig, cacheURL string) map[string]string {
		t.Helper()
		results := t.TempDir()
		code, stderr := launcherEnv(t, env(cacheURL), cfg.Args(map[string]string{"msg": "hi"}, map[string]string{"data": inURI}, results)...)
		if code != 0 {
			t.Fatalf("launcher exited %d: %s", code, stderr)
		}
		return readResults(t, results)
	}

	// 1. A miss: the task runs and reports.
	first := invoke(task("run-1", true), cacheSrv.URL)
	modelURI := artifacts.Join(root, "run-1", "train", "model")
	wantResults := map[string]string{"p-out": "hi!", "a-model": modelURI}
	if diff := cmp.Diff(wantResults, first); diff != "" {
		t.Errorf("first run's results (-want +got):\n%s", diff)
	}
	if runs() != 1 {
		t.Fatalf("user command ran %d times, want 1", runs())
	}
	evs := recv.events()
	if len(evs) != 1 {
		t.Fatalf("received %d events, want 1", len(evs))
	}
	e := evs[0]
	attrs := map[string]string{"type": e.Type(), "source": e.Source(), "subject": e.Subject(), "id": e.ID(), "pfteam": events.Team(e)}
	if diff := cmp.Diff(map[string]string{"type": events.TypeTaskFinished, "source": launch.EventSource, "subject": "run-1",
		"id": "task:run-1:0:train:SUCCEEDED", "pfteam": "t1"}, attrs); diff != "" {
		t.Errorf("event attributes (-want +got):\n%s", diff)
	}
	d, err := events.Decode[events.TaskFinished](e)
	if err != nil {
		t.Fatal(err)
	}
	if d.Lineage == nil {
		t.Fatal("task.finished carries no lineage record")
	}
	key := d.CacheKey
	if !lineage.ValidCacheKey(key) || d.Lineage.Execution.CacheKey != key {
		t.Errorf("cache key %q, lineage record's %q; want one valid key", key, d.Lineage.Execution.CacheKey)
	}
	x := d.Lineage.Execution
	gotX := map[string]any{"run": x.RunID, "task": x.TaskID, "name": x.TaskName, "state": x.State, "image": x.Image,
		"params": x.Parameters, "outputs": x.OutputParameters, "pipeline": d.Lineage.Pipeline,
		"task state": d.Task.State, "task id": d.Task.TaskID, "attempt": d.Attempt}
	wantX := map[string]any{"run": "run-1", "task": "train", "name": "train", "state": api.StateSucceeded, "image": "alpine:3",
		"params": map[string]any{"msg": "hi"}, "outputs": map[string]any{"out": "hi!"}, "pipeline": "pipe",
		"task state": api.StateSucceeded, "task id": "train", "attempt": 0}
	if diff := cmp.Diff(wantX, gotX); diff != "" {
		t.Errorf("execution (-want +got):\n%s", diff)
	}
	in, out := d.Lineage.Inputs["data"], d.Lineage.Outputs["model"]
	if len(in) != 1 || in[0].URI != inURI || in[0].Digest != inDigest || in[0].Type != lineage.TypeDataset {
		t.Errorf("input artifact %+v; want %s with digest %s, type %s", in, inURI, inDigest, lineage.TypeDataset)
	}
	if len(out) != 1 || out[0].URI != modelURI || out[0].Digest != inDigest || out[0].Size != int64(len(content)) || out[0].Type != lineage.TypeDataset {
		t.Errorf("output artifact %+v; want %s (a copy of the input: same digest and size)", out, modelURI)
	}

	// 2. Another run of the same task with the same inputs: served from the cache.
	second := invoke(task("run-2", true), cacheSrv.URL)
	if diff := cmp.Diff(wantResults, second); diff != "" {
		t.Errorf("cached run's results (-want +got):\n%s", diff)
	}
	if runs() != 1 {
		t.Errorf("user command ran %d times; a cache hit must not run it", runs())
	}
	evs = recv.events()
	if len(evs) != 2 {
		t.Fatalf("received %d events, want 2", len(evs))
	}
	d2, err := events.Decode[events.TaskFinished](evs[1])
	if err != nil {
		t.Fatal(err)
	}
	from := lineage.ExecutionID("run-1", "train")
	got2 := []string{evs[1].ID(), d2.Task.State, d2.Task.CachedFrom, d2.Lineage.Execution.CachedFrom, d2.CacheKey}
	if diff := cmp.Diff([]string{"task:run-2:0:train:CACHED", api.StateCached, from, from, key}, got2); diff != "" {
		t.Errorf("cached task.finished (id, state, cached_from twice, key) (-want +got):\n%s", diff)
	}
	if o := d2.Lineage.Outputs["model"]; len(o) != 1 || o[0].URI != modelURI || o[0].Digest != inDigest {
		t.Errorf("cached output %+v, want the first run's %s", o, modelURI)
	}

	// 3. Caching off for the task: it runs although the cache has it.
	invoke(task("run-3", false), cacheSrv.URL)
	// 4. A cache that cannot be reached: the task runs.
	invoke(task("run-4", true), "http://127.0.0.1:1")
	if runs() != 3 {
		t.Errorf("user command ran %d times, want 3 (runs 1, 3 and 4)", runs())
	}
	if b, _ := os.ReadFile(marker); strings.Contains(string(b), "tok-1") {
		t.Errorf("the user command saw the cache token: %q", b)
	}
	var states []string
	for _, e := range recv.events()[2:] {
		states = append(states, e.ID())
	}
	if diff := cmp.Diff([]string{"task:run-3:0:train:SUCCEEDED", "task:run-4:0:train:SUCCEEDED"}, states); diff != "" {
		t.Errorf("later events (-want +got):\n%s", diff)
	}
}

// TestReportFailureKeepsOutcome: a receiver that refuses (permanently, or keeps failing)
// changes neither a succeeding nor a failing task's exit code; a failing task is reported
// FAILED with its error; transient refusals are retried, permanent ones are not.
func TestReportFailureKeepsOutcome(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		wantTries int
	}{
		{"permanent refusal", http.StatusBadRequest, 1},
		{"unavailable", http.StatusServiceUnavailable, postTries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var ids []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				ids = append(ids, r.Header.Get("ce-id"))
				mu.Unlock()
				http.Error(w, "no", tc.status)
			}))
			defer srv.Close()
			env := []string{launch.EnvEventsURL + "=" + srv.URL, launch.EnvTeam + "=t1", launch.EnvAttempt + "=1"}
			for _, c := range []struct {
				script string
				code   int
				id     string
			}{
				{"exit 0", 0, "task:r:1:t:SUCCEEDED"},
				{"exit 3", 3, "task:r:1:t:FAILED"},
			} {
				mu.Lock()
				ids = nil
				mu.Unlock()
				cfg := launch.TaskConfig{RunID: "r", TaskID: "t", PipelineRoot: artifacts.FileURI(t.TempDir()),
					Container: &launch.Container{Command: []string{"sh", "-c", c.script}}}
				code, stderr := launcherEnv(t, env, cfg.Args(nil, nil, t.TempDir())...)
				if code != c.code {
					t.Errorf("%q: exit %d, want %d; stderr: %s", c.script, code, c.code, stderr)
				}
				if !strings.Contains(stderr, "task.finished not sent") {
					t.Errorf("%q: the failed report is not logged: %s", c.script, stderr)
				}
				mu.Lock()
				want := make([]string, tc.wantTries)
				for i := range want {
					want[i] = c.id
				}
				if diff := cmp.Diff(want, ids); diff != "" {
					t.Errorf("%q: posts received (-want +got):\n%s", c.script, diff)
				}
				mu.Unlock()
			}
		})
	}
}
