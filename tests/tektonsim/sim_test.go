package tektonsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/local"
)

var (
	buildOnce   sync.Once
	launcherBin string
	buildErr    error
)

// launcher builds cmd/launcher once per test binary.
func launcher(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tektonsim-launcher-")
		if err != nil {
			buildErr = err
			return
		}
		launcherBin = filepath.Join(dir, "launcher")
		out, err := exec.Command("go", "build", "-o", launcherBin, "github.com/pipefn/pipefn/cmd/launcher").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/launcher: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return launcherBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if launcherBin != "" {
		os.RemoveAll(filepath.Dir(launcherBin))
	}
	os.Exit(code)
}

// outcome is what a backend did, comparable across backends: per executor
// task (IR name and iteration path) "FAILED" or its outputs (parameters
// decoded, artifacts by content), plus the run's state.
type outcome struct {
	State string
	Tasks map[string]any
}

// taskKey names an executor task by IR name and iteration index path.
func taskKey(name string, path []int) string {
	if len(path) == 0 {
		return name
	}
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = strconv.Itoa(p)
	}
	return name + "[" + strings.Join(parts, ",") + "]"
}

// readArtifact is an artifact's content: a file's text, or a directory's
// files as name=text lines.
func readArtifact(t *testing.T, uri string) string {
	t.Helper()
	p, ok := strings.CutPrefix(uri, "file://")
	if !ok {
		t.Fatalf("artifact URI %q is not file://", uri)
	}
	info, err := os.Stat(p)
	if err != nil {
		return "<missing: " + err.Error() + ">"
	}
	if !info.IsDir() {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	var lines []string
	filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			rel, _ := filepath.Rel(p, path)
			lines = append(lines, rel+"="+string(b))
		}
		return nil
	})
	return strings.Join(lines, "\n")
}

func outputsOf(t *testing.T, out launch.Outputs) map[string]any {
	m := map[string]any{}
	for name, v := range out.Params {
		m["p:"+name] = v.AsInterface()
	}
	for name, arts := range out.Artifacts {
		var texts []string
		for _, a := range arts {
			texts = append(texts, readArtifact(t, a.GetUri()))
		}
		m["a:"+name] = texts
	}
	return m
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// runLocal runs p with the local executor.
func runLocal(t *testing.T, p *ir.Pipeline, params map[string]*structpb.Value) outcome {
	t.Helper()
	var mu sync.Mutex
	last := map[string]local.TaskUpdate{}
	logs := map[string]*lockedBuffer{}
	state, err := local.Run(context.Background(), p, local.Options{
		RunID: "run-1", PipelineRoot: "file://" + t.TempDir(), Params: params, WorkDir: t.TempDir(),
		Report: func(u local.TaskUpdate) {
			mu.Lock()
			last[u.TaskID] = u
			mu.Unlock()
		},
		Logs: func(id string) io.Writer {
			mu.Lock()
			defer mu.Unlock()
			if logs[id] == nil {
				logs[id] = &lockedBuffer{}
			}
			return logs[id]
		},
	})
	if err != nil && state == "" {
		t.Fatalf("local.Run: %v", err)
	}
	o := outcome{State: state, Tasks: map[string]any{}}
	for id, u := range last {
		if u.Kind != local.KindContainer && u.Kind != local.KindImporter {
			continue
		}
		var path []int
		for _, seg := range strings.Split(id, ".") {
			if digits.MatchString(seg) {
				n, _ := strconv.Atoi(seg)
				path = append(path, n)
			}
		}
		// The DAG path without iteration indices gives the Tekton
		// compiler's flattened task name.
		var names []string
		for _, seg := range strings.Split(id, ".") {
			if !digits.MatchString(seg) {
				names = append(names, seg)
			}
		}
		key := taskKey(tektonName(names), path)
		if u.State == local.StateFailed {
			t.Logf("local task %s failed: %s", id, u.Error)
		}
		switch u.State {
		case local.StateSucceeded:
			m := outputsOf(t, u.Outputs)
			if b := logs[id]; b != nil {
				m["log"] = userLog(b.String())
			} else {
				m["log"] = userLog("")
			}
			o.Tasks[key] = m
		case local.StateFailed:
			o.Tasks[key] = "FAILED"
		}
	}
	return o
}

// runTekton compiles p for Tekton and runs it through the simulator.
func runTekton(t *testing.T, p *ir.Pipeline, params map[string]*structpb.Value) (outcome, *Result) {
	t.Helper()
	pr, err := tekton.Compile(p, compile.Options{
		RunID: "run-1", Namespace: "ns", PipelineRoot: "file://" + t.TempDir(), Params: params,
		LauncherImage: "ghcr.io/pipefn/launcher:test",
	})
	if err != nil {
		t.Fatalf("tekton.Compile: %v", err)
	}
	res, err := Run(context.Background(), pr, Options{Launcher: launcher(t), WorkDir: t.TempDir(), Logs: testLog{t}})
	if err != nil {
		t.Fatalf("simulate: %v", err)
	}
	o := outcome{State: local.StateSucceeded, Tasks: map[string]any{}}
	if !res.Succeeded {
		o.State = local.StateFailed
	}
	for _, tr := range res.TaskRuns {
		inv, err := launch.ParseInvocation(tr.Args)
		if err != nil {
			t.Fatalf("TaskRun %s: %v", tr.Name, err)
		}
		if inv.Command != "run" && inv.Command != "importer" {
			continue
		}
		var path []int
		if inv.Iteration != "" {
			var it launch.Iteration
			if err := json.Unmarshal([]byte(inv.Iteration), &it); err != nil {
				t.Fatalf("TaskRun %s: --iteration: %v", tr.Name, err)
			}
			path = it.IndexPath()
		}
		key := taskKey(tr.PipelineTask, path)
		if _, dup := o.Tasks[key]; dup {
			t.Fatalf("tekton: two TaskRuns map to %s", key)
		}
		if !tr.Succeeded {
			o.Tasks[key] = "FAILED"
			continue
		}
		if strings.Contains(tr.Output, `msg="task skipped"`) {
			continue
		}
		cfg, err := launch.DecodeTaskConfig(inv.ConfigB64)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := cfg.ComponentSpec()
		if err != nil {
			t.Fatal(err)
		}
		var out launch.Outputs
		out.Params = map[string]*structpb.Value{}
		out.Artifacts = map[string][]*pipelinespec.RuntimeArtifact{}
		for name, def := range spec.GetOutputDefinitions().GetParameters() {
			text := unwrap(t, tr, tr.Results[launch.ParamResult(name)])
			v, err := launch.DecodeParam(text, def.GetParameterType())
			if err != nil {
				t.Fatalf("TaskRun %s: output %s: %v", tr.Name, name, err)
			}
			out.Params[name] = v
		}
		for name := range spec.GetOutputDefinitions().GetArtifacts() {
			text := unwrap(t, tr, tr.Results[launch.ArtifactResult(name)])
			uris, err := launch.DecodeArtifactURIs(text)
			if err != nil {
				t.Fatalf("TaskRun %s: artifact %s: %v", tr.Name, name, err)
			}
			for _, u := range uris {
				out.Artifacts[name] = append(out.Artifacts[name], &pipelinespec.RuntimeArtifact{Uri: u})
			}
		}
		m := outputsOf(t, out)
		m["log"] = userLog(tr.Output)
		o.Tasks[key] = m
	}
	return o, res
}

// unwrap takes a result's value out of its envelope (matrixed TaskRuns).
func unwrap(t *testing.T, tr *TaskRun, text string) string {
	t.Helper()
	if !strings.HasPrefix(text, `{"path":`) {
		return text
	}
	env, err := launch.DecodeEnvelope(text)
	if err != nil {
		t.Fatalf("TaskRun %s: %v", tr.Name, err)
	}
	return env.Value
}

// userLog is the user command's output lines, without the launcher's own
// log lines (log/slog text: time=... level=...).
func userLog(s string) []string {
	out := []string{}
	for _, line := range strings.Split(s, "\n") {
		// A user line without a final newline runs into the launcher's
		// next log line.
		line = slogLine.ReplaceAllString(line, "")
		if line == "" {
			continue
		}
		line = finalStatus.ReplaceAllStringFunc(line, statusNames)
		out = append(out, line)
	}
	slices.Sort(out) // stdout and stderr interleave differently
	return out
}

var (
	slogLine    = regexp.MustCompile(`time=\d{4}-\d\d-\d\dT\S+ level=[A-Z]+ msg=.*$`)
	finalStatus = regexp.MustCompile(`\{.*"state":"[A-Z]+".*\}`)
)

// statusNames drops the message of a printed PipelineTaskFinalStatus's
// error. Known difference: it names the failed tasks by their ids, the
// local executor's dotted IR path ("exit-handler-1.fail-op") and Tekton's
// flattened pipeline task name ("exit-handler-1-fail-op").
func statusNames(s string) string {
	var st map[string]any
	if json.Unmarshal([]byte(s), &st) != nil {
		return s
	}
	if e, ok := st["error"].(map[string]any); ok {
		if _, ok := e["message"]; ok {
			e["message"] = "<failed tasks>"
		}
	}
	b, _ := json.Marshal(st)
	return string(b)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tektonName is the pipeline task name the Tekton compiler gives the IR
// task at path (its documented naming rule, shared/compile/tekton names.go):
// the path joined with "-"; when longer than 63 characters, cut to 54 and
// suffixed with the first 8 hex digits of the SHA-256 of the path.
func tektonName(path []string) string {
	base := strings.ToLower(strings.Join(path, "-"))
	if len(base) <= 63 {
		return base
	}
	sum := sha256.Sum256([]byte(strings.Join(path, "\x00") + "\x01"))
	return strings.TrimRight(base[:54], "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	if testing.Verbose() {
		l.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// load reads a pipeline file relative to the repository root.
func load(t *testing.T, rel string) *ir.Pipeline {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ir.Load(b)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return p
}

// agree runs p on both backends and requires the same outcome.
func agree(t *testing.T, p *ir.Pipeline, params map[string]any, wantState string) outcome {
	t.Helper()
	bound, err := p.BindParameters(params)
	if err != nil {
		t.Fatal(err)
	}
	want := runLocal(t, p, bound)
	got, res := runTekton(t, p, bound)
	defer func() {
		if !t.Failed() {
			return
		}
		shown := 0
		for _, tr := range res.TaskRuns {
			if !tr.Succeeded && shown < 3 {
				shown++
				t.Logf("failed TaskRun %s:\n%s", tr.Name, tr.Output)
			}
		}
		t.Logf("skipped: %v", res.Skipped)
	}()
	if want.State != wantState {
		t.Errorf("local run state %s, want %s", want.State, wantState)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Tekton (simulated) differs from the local executor (-local +tekton):\n%s", d)
	}
	return got
}

func TestExamples(t *testing.T) {
	for _, tc := range []struct {
		file   string
		params map[string]any
		state  string
	}{
		{"examples/hello-artifacts.yaml", nil, local.StateSucceeded},
		{"examples/train-model.yaml", nil, local.StateSucceeded},
		{"examples/condition-loop.yaml", nil, local.StateSucceeded},
		{"examples/condition-loop.yaml", map[string]any{"side": "tails"}, local.StateSucceeded},
		{"examples/failing.yaml", nil, local.StateFailed},
	} {
		t.Run(filepath.Base(tc.file)+fmt.Sprint(tc.params), func(t *testing.T) {
			got := agree(t, load(t, tc.file), tc.params, tc.state)
			if len(got.Tasks) == 0 {
				t.Error("no task ran")
			}
		})
	}
}

// The local executor's shell-only test pipelines (shared/local/testdata).
func TestLocalTestdata(t *testing.T) {
	const dir = "shared/local/testdata/"
	t.Run("static loop of 12 with Collected fan-in", func(t *testing.T) {
		p := load(t, dir+"loop_static.yaml")
		// 12 iterations: Tekton orders aggregated results by TaskRun name
		// ("-10" before "-2"); the gathered list must still be in order.
		var items []string
		for i := range 12 {
			items = append(items, fmt.Sprintf(`{"a":"i%d","b":%d}`, i, i))
		}
		setRaw(t, p, "for-loop-1", "["+strings.Join(items, ",")+"]")
		got := agree(t, p, map[string]any{"dir": t.TempDir()}, local.StateSucceeded)
		want := `["i0-0","i1-1","i2-2","i3-3","i4-4","i5-5","i6-6","i7-7","i8-8","i9-9","i10-10","i11-11"]`
		if d := cmp.Diff(want, got.Tasks["gather"].(map[string]any)["p:Output"]); d != "" {
			t.Errorf("gathered (-want +got):\n%s", d)
		}
	})
	t.Run("dynamic loop of 12 over an upstream output", func(t *testing.T) {
		p := load(t, dir+"loop_dynamic.yaml")
		p.Spec.GetRoot().GetDag().GetTasks()["make-list"].GetInputs().GetParameters()["count"].GetRuntimeValue().Value = &pipelinespec.ValueOrRuntimeParameter_Constant{Constant: structpb.NewNumberValue(12)}
		got := agree(t, p, nil, local.StateSucceeded)
		if d := cmp.Diff(650.0, got.Tasks["sum"].(map[string]any)["p:Output"]); d != "" {
			t.Errorf("sum of squares (-want +got):\n%s", d)
		}
	})
	for _, tc := range []struct {
		file   string
		params map[string]any
		state  string
	}{
		{"loop_artifacts.yaml", nil, local.StateSucceeded},
		{"nested.yaml", nil, local.StateSucceeded},
		{"if_elif_else.yaml", map[string]any{"num": "7"}, local.StateSucceeded},
		{"if_elif_else.yaml", map[string]any{"num": "5"}, local.StateSucceeded},
		{"if_elif_else.yaml", map[string]any{"num": "1"}, local.StateSucceeded},
		// exit_handler.yaml is not here: its ignore_upstream_failure task
		// sits below the root DAG, which the Tekton compiler rejects
		// (finally tasks run only after the whole pipeline).
		{"condition.yaml", map[string]any{"side": "heads"}, local.StateSucceeded},
		{"condition.yaml", map[string]any{"side": "tails"}, local.StateSucceeded},
		{"two_step.yaml", nil, local.StateSucceeded},
	} {
		t.Run(tc.file+fmt.Sprint(tc.params), func(t *testing.T) {
			agree(t, load(t, dir+tc.file), tc.params, tc.state)
		})
	}
}

// setRaw replaces the static item list of a root ParallelFor.
func setRaw(t *testing.T, p *ir.Pipeline, task, raw string) {
	t.Helper()
	it := p.Spec.GetRoot().GetDag().GetTasks()[task].GetParameterIterator()
	if it.GetItems().GetRaw() == "" {
		t.Fatalf("task %s has no raw items", task)
	}
	it.Items.Kind = &pipelinespec.ParameterIteratorSpec_ItemsSpec_Raw{Raw: raw}
}
