package launch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/artifacts/s3test"
)

// comp builds a component spec from compact declarations: params "name:TYPE",
// artifacts "name" (system.Artifact).
type comp struct {
	inParams, outParams []string
	inArts, outArts     []string
	optional            []string
	defaults            map[string]any
}

func (c comp) spec(t testing.TB) *pipelinespec.ComponentSpec {
	t.Helper()
	s := &pipelinespec.ComponentSpec{
		InputDefinitions: &pipelinespec.ComponentInputsSpec{
			Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{},
			Artifacts:  map[string]*pipelinespec.ComponentInputsSpec_ArtifactSpec{},
		},
		OutputDefinitions: &pipelinespec.ComponentOutputsSpec{
			Parameters: map[string]*pipelinespec.ComponentOutputsSpec_ParameterSpec{},
			Artifacts:  map[string]*pipelinespec.ComponentOutputsSpec_ArtifactSpec{},
		},
	}
	typ := func(decl string) (string, ParameterType) {
		name, tn, _ := strings.Cut(decl, ":")
		return name, ParameterType(pipelinespec.ParameterType_ParameterTypeEnum_value[tn])
	}
	for _, d := range c.inParams {
		n, pt := typ(d)
		ps := &pipelinespec.ComponentInputsSpec_ParameterSpec{ParameterType: pt}
		for _, o := range c.optional {
			ps.IsOptional = ps.IsOptional || o == n
		}
		if dv, ok := c.defaults[n]; ok {
			ps.DefaultValue = mustValue(t, dv)
		}
		s.InputDefinitions.Parameters[n] = ps
	}
	for _, d := range c.outParams {
		n, pt := typ(d)
		s.OutputDefinitions.Parameters[n] = &pipelinespec.ComponentOutputsSpec_ParameterSpec{ParameterType: pt}
	}
	art := &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Artifact"}, SchemaVersion: "0.0.1"}
	for _, n := range c.inArts {
		s.InputDefinitions.Artifacts[n] = &pipelinespec.ComponentInputsSpec_ArtifactSpec{ArtifactType: art}
	}
	for _, n := range c.outArts {
		s.OutputDefinitions.Artifacts[n] = &pipelinespec.ComponentOutputsSpec_ArtifactSpec{ArtifactType: art}
	}
	return s
}

// shTask is a task running `sh -c script` with args as $0, $1, ...
func shTask(t testing.TB, root string, c comp, script string, args ...string) TaskConfig {
	t.Helper()
	cfg := TaskConfig{RunID: "run-1", TaskID: "loop.1.step", TaskName: "step", PipelineRoot: root,
		Container: &Container{Image: "alpine", Command: []string{"sh", "-c", script}, Args: args}}
	if err := cfg.SetComponent(c.spec(t)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func localEnv(t testing.TB) (Env, string, *bytes.Buffer) {
	var logs bytes.Buffer
	return Env{Store: artifacts.NewLocal(), Stdout: &logs, Stderr: &logs, GracePeriod: 2 * time.Second},
		artifacts.FileURI(t.TempDir()), &logs
}

func params(t testing.TB, kv map[string]any) map[string]*structpb.Value {
	out := map[string]*structpb.Value{}
	for k, v := range kv {
		out[k] = mustValue(t, v)
	}
	return out
}

func TestExecuteParams(t *testing.T) {
	env, root, logs := localEnv(t)
	c := comp{
		inParams:  []string{"msg:STRING", "n:NUMBER_INTEGER", "cfg:STRUCT", "flag:BOOLEAN", "opt:STRING", "dflt:NUMBER_DOUBLE"},
		outParams: []string{"shout:STRING", "double:NUMBER_INTEGER", "echo:STRUCT", "items:LIST"},
		optional:  []string{"opt"},
		defaults:  map[string]any{"dflt": 0.5},
	}
	cfg := shTask(t, root, c, `printf '%s!' "$0" > "$2"; echo $(( $1 * 2 )) > "$3"; printf '%s' "$4" > "$5"; printf '["%s",%s]' "$6" "$7" > "$8"; echo "logged $0"`,
		"{{$.inputs.parameters['msg']}}", "{{$.inputs.parameters['n']}}",
		"{{$.outputs.parameters['shout'].output_file}}", "{{$.outputs.parameters['double'].output_file}}",
		"{{$.inputs.parameters['cfg']}}", "{{$.outputs.parameters['echo'].output_file}}",
		"{{$.inputs.parameters['flag']}}", "{{$.inputs.parameters['dflt']}}", "{{$.outputs.parameters['items'].output_file}}")
	in := Inputs{Params: params(t, map[string]any{"msg": "hi there", "n": 21, "cfg": map[string]any{"b": 1, "a": "x"}, "flag": true})}
	out, err := Execute(context.Background(), cfg, in, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	want := Outputs{
		Params: params(t, map[string]any{
			"shout": "hi there!", "double": 42, "echo": map[string]any{"a": "x", "b": 1}, "items": []any{"true", 0.5},
		}),
		Artifacts: map[string][]*pipelinespec.RuntimeArtifact{},
	}
	if diff := cmp.Diff(want, out, protocmp.Transform()); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "logged hi there") {
		t.Errorf("stdout not streamed; logs = %q", logs)
	}
}

func TestExecuteInputErrors(t *testing.T) {
	env, root, _ := localEnv(t)
	c := comp{inParams: []string{"a:STRING", "b:STRING"}, inArts: []string{"data"}}
	cfg := shTask(t, root, c, "true")
	_, err := Execute(context.Background(), cfg, Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"data": {{Uri: root + "/x"}}}}, env)
	if err == nil || !strings.Contains(err.Error(), "input parameters without a value or default: a, b") {
		t.Errorf("missing params error = %v", err)
	}
	_, err = Execute(context.Background(), cfg, Inputs{Params: params(t, map[string]any{"a": "1", "b": "2"})}, env)
	if err == nil || !strings.Contains(err.Error(), "input artifacts without a value: data") {
		t.Errorf("missing artifact error = %v", err)
	}
	_, err = Execute(context.Background(), cfg, Inputs{Params: params(t, map[string]any{"a": "1", "b": "2"}),
		Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"data": {{Uri: root + "/nope"}}}}, env)
	if err == nil || !strings.Contains(err.Error(), "input artifact data") || !errors.Is(err, artifacts.ErrNotExist) {
		t.Errorf("absent artifact error = %v", err)
	}
	noContainer := cfg
	noContainer.Container = nil
	if _, err := Execute(context.Background(), noContainer, Inputs{}, env); err == nil || !strings.Contains(err.Error(), "no container") {
		t.Errorf("no container error = %v", err)
	}
}

func TestExecuteArtifacts(t *testing.T) {
	env, root, logs := localEnv(t)
	ctx := context.Background()
	inURI := artifacts.Join(root, "run-0", "producer", "data")
	if _, err := env.Store.Put(ctx, inURI, strings.NewReader("hello artifact\n")); err != nil {
		t.Fatal(err)
	}
	c := comp{inArts: []string{"data"}, outArts: []string{"model"}, outParams: []string{"seen:STRING"}}
	cfg := shTask(t, root, c, `tr a-z A-Z < "$0" > "$1" && printf '%s' "$2" > "$3"`,
		"{{$.inputs.artifacts['data'].path}}", "{{$.outputs.artifacts['model'].path}}",
		"{{$.inputs.artifacts['data'].uri}}", "{{$.outputs.parameters['seen'].output_file}}")
	in := Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"data": {{Uri: inURI}}}}
	out, err := Execute(ctx, cfg, in, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	wantURI := artifacts.Join(root, "run-1", "loop.1.step", "model")
	content := "HELLO ARTIFACT\n"
	want := []*pipelinespec.RuntimeArtifact{{
		Name: "model", Uri: wantURI,
		Type: &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Artifact"}, SchemaVersion: "0.0.1"},
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			MetaSize:   structpb.NewNumberValue(float64(len(content))),
			MetaDigest: structpb.NewStringValue(digestOf(content)),
		}},
	}}
	if diff := cmp.Diff(want, out.Artifacts["model"], protocmp.Transform()); diff != "" {
		t.Errorf("output artifact (-want +got):\n%s", diff)
	}
	if got := readURI(t, env.Store, wantURI); got != content {
		t.Errorf("stored artifact = %q, want %q", got, content)
	}
	// The uri placeholder is the real URI even though the file was copied.
	if got := out.Params["seen"].GetStringValue(); got != inURI {
		t.Errorf("{{...uri}} = %q, want %q", got, inURI)
	}
}

func TestExecuteMissingOutputs(t *testing.T) {
	env, root, _ := localEnv(t)
	cfg := shTask(t, root, comp{outParams: []string{"answer:NUMBER_INTEGER"}}, "true")
	_, err := Execute(context.Background(), cfg, Inputs{}, env)
	if err == nil || !strings.Contains(err.Error(), `output parameter "answer": the command wrote neither`) {
		t.Errorf("missing output parameter error = %v", err)
	}
	cfg = shTask(t, root, comp{outParams: []string{"answer:NUMBER_INTEGER"}}, `echo forty-two > "$0"`, "{{$.outputs.parameters['answer'].output_file}}")
	_, err = Execute(context.Background(), cfg, Inputs{}, env)
	if err == nil || !strings.Contains(err.Error(), `output parameter "answer"`) || !strings.Contains(err.Error(), "not a NUMBER_INTEGER") {
		t.Errorf("badly typed output parameter error = %v", err)
	}
	cfg = shTask(t, root, comp{outArts: []string{"model"}}, "true")
	_, err = Execute(context.Background(), cfg, Inputs{}, env)
	if err == nil || !strings.Contains(err.Error(), `output artifact "model": the command did not write`) {
		t.Errorf("missing output artifact error = %v", err)
	}
}

func TestExecuteExecutorInputAndOutput(t *testing.T) {
	env, root, logs := localEnv(t)
	env.WorkDir = t.TempDir()
	c := comp{inParams: []string{"lr:NUMBER_DOUBLE"}, outParams: []string{"ei:STRING", "best:NUMBER_DOUBLE"}, outArts: []string{"metrics"}}
	// Like KFP's Python executor: read {{$}}, write ExecutorOutput JSON with
	// a parameter value and metadata for a metrics artifact that has no file.
	cfg := shTask(t, root, c, `printf '%s' "$0" > "$1"; printf '%s' '{"parameterValues":{"best":0.75},"artifacts":{"metrics":{"artifacts":[{"metadata":{"accuracy":0.9}}]}}}' > "$2"`,
		"{{$}}", "{{$.outputs.parameters['ei'].output_file}}", "{{$.outputs.output_file}}")
	out, err := Execute(context.Background(), cfg, Inputs{Params: params(t, map[string]any{"lr": 0.01})}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	if got := out.Params["best"].GetNumberValue(); got != 0.75 {
		t.Errorf("best = %v, want 0.75 from the executor output", got)
	}
	if got := out.Artifacts["metrics"][0].GetMetadata().GetFields()["accuracy"].GetNumberValue(); got != 0.9 {
		t.Errorf("metrics metadata accuracy = %v, want 0.9", got)
	}
	var ei pipelinespec.ExecutorInput
	if err := protojson.Unmarshal([]byte(out.Params["ei"].GetStringValue()), &ei); err != nil {
		t.Fatalf("{{$}} is not ExecutorInput JSON: %v", err)
	}
	work := env.WorkDir
	want := &pipelinespec.ExecutorInput{
		Inputs: &pipelinespec.ExecutorInput_Inputs{ParameterValues: params(t, map[string]any{"lr": 0.01})},
		Outputs: &pipelinespec.ExecutorInput_Outputs{
			Parameters: map[string]*pipelinespec.ExecutorInput_OutputParameter{
				"ei":   {OutputFile: filepath.Join(work, "outputs", "parameters", "ei", "data")},
				"best": {OutputFile: filepath.Join(work, "outputs", "parameters", "best", "data")},
			},
			Artifacts: map[string]*pipelinespec.ArtifactList{"metrics": {Artifacts: []*pipelinespec.RuntimeArtifact{{
				Name: "metrics",
				Type: &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Artifact"}, SchemaVersion: "0.0.1"},
				// file:// roots: the executor sees the local path as the URI.
				Uri:      filepath.Join(work, "outputs", "artifacts", "metrics", "metrics"),
				Metadata: &structpb.Struct{},
			}}}},
			OutputFile: filepath.Join(work, "outputs", "executor_output.json"),
		},
	}
	if diff := cmp.Diff(want, &ei, protocmp.Transform()); diff != "" {
		t.Errorf("executor input (-want +got):\n%s", diff)
	}
}

func TestExecutePlaceholders(t *testing.T) {
	env, root, logs := localEnv(t)
	c := comp{inParams: []string{"name:STRING", "missing:STRING", "n:NUMBER_INTEGER", "job:STRING"}, optional: []string{"missing"}, outParams: []string{"line:STRING"}}
	cfg := shTask(t, root, c, `printf '%s|' "$@" > "$0"`,
		"{{$.outputs.parameters['line'].output_file}}",
		`{"IfPresent": {"InputName": "name", "Then": ["--name", "{{$.inputs.parameters['name']}}"]}}`,
		`{"IfPresent": {"InputName": "missing", "Then": ["--missing"], "Else": ["--no-missing"]}}`,
		`{"Concat": ["n=", "{{$.inputs.parameters['n']}}", ",task=", "{{$.pipeline_task_name}}"]}`,
		"{{$.pipeline_job_uuid}}/{{$.pipeline_task_uuid}}/{{$.pipeline_root}}",
		"{{$.inputs.parameters['job']}}")
	cfg.Container.Env = []EnvVar{{Name: "GREETING", Value: "hello {{$.inputs.parameters['name']}}"}}
	cfg.Container.Command[2] = `printf '%s|' "$@" "$GREETING" > "$0"`
	in := Inputs{Params: params(t, map[string]any{"name": "ada", "n": 7, "job": "job-{{$.pipeline_job_name}}"})}
	out, err := Execute(context.Background(), cfg, in, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	want := "--name|ada|--no-missing|n=7,task=step|run-1/loop.1.step/" + root + "|job-run-1|hello ada|"
	if got := out.Params["line"].GetStringValue(); got != want {
		t.Errorf("resolved args = %q, want %q", got, want)
	}

	bad := shTask(t, root, c, "true", "{{$.inputs.parameters['nope']}}")
	_, err = Execute(context.Background(), bad, Inputs{Params: params(t, map[string]any{"name": "a", "n": 1, "job": "j"})}, env)
	if err == nil || !strings.Contains(err.Error(), `input parameter "nope" has no value`) {
		t.Errorf("unknown parameter placeholder error = %v", err)
	}
}

func TestExecuteExitCode(t *testing.T) {
	env, root, logs := localEnv(t)
	cfg := shTask(t, root, comp{}, "echo boom >&2; exit 3")
	_, err := Execute(context.Background(), cfg, Inputs{}, env)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.TaskID != "loop.1.step" {
		t.Fatalf("error = %v, want ExitError code 3", err)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("stderr not streamed: %q", logs)
	}
	cfg = shTask(t, root, comp{}, "kill -KILL $$")
	_, err = Execute(context.Background(), cfg, Inputs{}, env)
	if !errors.As(err, &ee) || ee.Code != 128+9 {
		t.Errorf("killed command error = %v, want ExitError code 137", err)
	}
	cfg = shTask(t, root, comp{}, "true")
	cfg.Container.Command = []string{"/does/not/exist"}
	if _, err := Execute(context.Background(), cfg, Inputs{}, env); err == nil || !strings.Contains(err.Error(), "start /does/not/exist") {
		t.Errorf("missing binary error = %v", err)
	}
}

// sleepers lists live (non-zombie) processes whose command line is exactly
// "sleep <arg>".
func sleepers(t *testing.T, arg string) []string {
	t.Helper()
	want := "sleep\x00" + arg + "\x00"
	ents, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || string(cmdline) != want {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Field 3, after "pid (comm)", is the state; Z is a zombie.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, e.Name())
	}
	return pids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecuteCancelKillsTree(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		grace        time.Duration
	}{
		{"sigterm", "sleep %[1]s & sleep %[1]s", 5 * time.Second},
		// The tree ignores SIGTERM; only SIGKILL after the grace period ends it.
		{"sigkill after grace", `trap "" TERM; sleep %[1]s & sleep %[1]s; wait`, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, root, _ := localEnv(t)
			env.GracePeriod = tc.grace
			arg := fmt.Sprintf("%d.%06d", 100+rand.IntN(100), rand.IntN(1000000)) // unique to this test
			cfg := shTask(t, root, comp{}, fmt.Sprintf(tc.script, arg))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { _, err := Execute(ctx, cfg, Inputs{}, env); errc <- err }()
			waitFor(t, "both sleeps to start", func() bool { return len(sleepers(t, arg)) == 2 })
			start := time.Now()
			cancel()
			var err error
			select {
			case err = <-errc:
			case <-time.After(15 * time.Second):
				t.Fatal("Execute did not return after cancellation")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
			if tc.grace < time.Second && time.Since(start) < tc.grace {
				t.Errorf("returned after %v, before the %v grace period", time.Since(start), tc.grace)
			}
			waitFor(t, "the process tree to be gone", func() bool { return len(sleepers(t, arg)) == 0 })
		})
	}
}

func TestExecuteLeavesNoStragglers(t *testing.T) {
	env, root, _ := localEnv(t)
	arg := fmt.Sprintf("%d.%06d", 200+rand.IntN(100), rand.IntN(1000000))
	// The background sleep keeps stdout open; Execute must still return
	// promptly when the main process exits, and take the child with it.
	cfg := shTask(t, root, comp{}, fmt.Sprintf("sleep %s & echo started", arg))
	start := time.Now()
	if _, err := Execute(context.Background(), cfg, Inputs{}, env); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Execute took %v; it waited for a background child", d)
	}
	waitFor(t, "the background child to be gone", func() bool { return len(sleepers(t, arg)) == 0 })
}

func TestExecuteDirectoryArtifact(t *testing.T) {
	env, root, logs := localEnv(t)
	ctx := context.Background()
	producer := shTask(t, root, comp{outArts: []string{"dataset"}},
		`mkdir -p "$0/sub" && echo one > "$0/a.txt" && echo two > "$0/sub/b.txt"`, "{{$.outputs.artifacts['dataset'].path}}")
	out, err := Execute(ctx, producer, Inputs{}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	ds := out.Artifacts["dataset"][0]
	if got := ds.GetMetadata().GetFields()[MetaSize].GetNumberValue(); got != 8 {
		t.Errorf("directory size = %v, want 8", got)
	}
	consumer := shTask(t, root, comp{inArts: []string{"dataset"}, outParams: []string{"joined:STRING"}},
		`cat "$0/a.txt" "$0/sub/b.txt" > "$1"`, "{{$.inputs.artifacts['dataset'].path}}", "{{$.outputs.parameters['joined'].output_file}}")
	consumer.TaskID = "consumer"
	out, err = Execute(ctx, consumer, Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"dataset": {ds}}}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	if got := out.Params["joined"].GetStringValue(); got != "one\ntwo\n" {
		t.Errorf("consumer read %q, want the directory's files", got)
	}
}

func TestExecuteS3(t *testing.T) {
	srv := s3test.Start(t)
	store := srv.Store(t, "pipefn", artifacts.S3Options{})
	ctx := context.Background()
	if _, err := store.Put(ctx, "s3://pipefn/in/words", strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	mount := t.TempDir()
	env := Env{Store: store, Stdout: &logs, Stderr: &logs, MountRoot: mount}
	c := comp{inArts: []string{"words"}, outArts: []string{"rev"}, outParams: []string{"paths:STRING"}}
	cfg := shTask(t, "s3://pipefn/root", c, `rev < "$0" > "$1"; printf '%s %s' "$0" "$1" > "$2"`,
		"{{$.inputs.artifacts['words'].path}}", "{{$.outputs.artifacts['rev'].path}}", "{{$.outputs.parameters['paths'].output_file}}")
	out, err := Execute(ctx, cfg, Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"words": {{Uri: "s3://pipefn/in/words"}}}}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs.String())
	}
	// Remote artifacts sit at KFP's /s3/<bucket>/<key> below the mount root.
	wantPaths := filepath.Join(mount, "s3/pipefn/in/words") + " " + filepath.Join(mount, "s3/pipefn/root/run-1/loop.1.step/rev")
	if got := out.Params["paths"].GetStringValue(); got != wantPaths {
		t.Errorf("paths = %q, want %q", got, wantPaths)
	}
	uri := out.Artifacts["rev"][0].GetUri()
	if uri != "s3://pipefn/root/run-1/loop.1.step/rev" {
		t.Errorf("output uri = %q", uri)
	}
	if got := readURI(t, store, uri); got != "cba" {
		t.Errorf("uploaded = %q, want %q", got, "cba")
	}
	info, err := store.Stat(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if md := out.Artifacts["rev"][0].GetMetadata().GetFields(); md[MetaDigest].GetStringValue() != info.Digest || info.Digest != digestOf("cba") {
		t.Errorf("digest metadata %v, stored %q, want %q", md[MetaDigest], info.Digest, digestOf("cba"))
	}
}

func TestKFPPaths(t *testing.T) {
	x := &execution{mountRoot: "/", kfpPaths: true}
	tests := []struct{ uri, path, shown string }{
		{"s3://b/k/x", "/s3/b/k/x", "s3://b/k/x"},
		{"gs://b/k", "/gcs/b/k", "gs://b/k"},
		{"minio://b/k", "/minio/b/k", "minio://b/k"},
		{"file:///data/x", "/fallback", "/fallback"},
	}
	for _, tt := range tests {
		p, s := x.localPathFor(tt.uri, "/fallback")
		if p != tt.path || s != tt.shown {
			t.Errorf("localPathFor(%q) = %q, %q; want %q, %q", tt.uri, p, s, tt.path, tt.shown)
		}
	}
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func readURI(t testing.TB, st artifacts.Store, uri string) string {
	t.Helper()
	rc, err := st.Get(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	b.ReadFrom(rc)
	return b.String()
}

// TestExecuteMetadataCrossesPods: engines pass only the URI of an artifact
// to the next pod; its metadata must come back from the producer's sidecar.
func TestExecuteMetadataCrossesPods(t *testing.T) {
	env, root, logs := localEnv(t)
	ctx := context.Background()
	producer := shTask(t, root, comp{outArts: []string{"metrics"}},
		`printf '%s' '{"artifacts":{"metrics":{"artifacts":[{"metadata":{"accuracy":0.9,"name":"m1"}}]}}}' > "$0"`, "{{$.outputs.output_file}}")
	out, err := Execute(ctx, producer, Inputs{}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	uri := out.Artifacts["metrics"][0].GetUri()
	if got := readURI(t, env.Store, uri); got != "" {
		t.Errorf("metadata-only artifact object = %q, want empty", got)
	}
	consumer := shTask(t, root, comp{inArts: []string{"metrics"}, outParams: []string{"seen:STRING"}},
		`printf '%s %s' "$0" "$1" > "$2"`, "{{$.inputs.artifacts['metrics'].metadata['accuracy']}}",
		"{{$.inputs.artifacts['metrics'].metadata['name']}}", "{{$.outputs.parameters['seen'].output_file}}")
	consumer.TaskID = "consumer"
	bare := &pipelinespec.RuntimeArtifact{Uri: uri} // as `--artifact metrics=URI` delivers it
	out, err = Execute(ctx, consumer, Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"metrics": {bare}}}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	if got := out.Params["seen"].GetStringValue(); got != "0.9 m1" {
		t.Errorf("metadata placeholders = %q, want %q", got, "0.9 m1")
	}
	if bare.GetMetadata() != nil {
		t.Errorf("Execute modified the caller's input artifact")
	}
}
