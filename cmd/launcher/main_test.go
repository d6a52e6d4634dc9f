package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/artifacts/s3test"
	"github.com/pipefn/pipefn/shared/launch"
)

// launcherBin is built once per test binary run by TestMain.
var launcherBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipefn-launcher-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	launcherBin = filepath.Join(dir, "launcher")
	build := exec.Command("go", "build", "-o", launcherBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build cmd/launcher: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// launcher runs the built binary and returns its exit code and output.
func launcher(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(launcherBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run launcher: %v", err)
	return 0, "", ""
}

func readResults(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func spec(inParams map[string]pipelinespec.ParameterType_ParameterTypeEnum, inArts []string, outParams map[string]pipelinespec.ParameterType_ParameterTypeEnum, outArts []string) *pipelinespec.ComponentSpec {
	s := &pipelinespec.ComponentSpec{
		InputDefinitions:  &pipelinespec.ComponentInputsSpec{Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{}, Artifacts: map[string]*pipelinespec.ComponentInputsSpec_ArtifactSpec{}},
		OutputDefinitions: &pipelinespec.ComponentOutputsSpec{Parameters: map[string]*pipelinespec.ComponentOutputsSpec_ParameterSpec{}, Artifacts: map[string]*pipelinespec.ComponentOutputsSpec_ArtifactSpec{}},
	}
	typ := &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Dataset"}}
	for n, pt := range inParams {
		s.InputDefinitions.Parameters[n] = &pipelinespec.ComponentInputsSpec_ParameterSpec{ParameterType: pt}
	}
	for _, n := range inArts {
		s.InputDefinitions.Artifacts[n] = &pipelinespec.ComponentInputsSpec_ArtifactSpec{ArtifactType: typ}
	}
	for n, pt := range outParams {
		s.OutputDefinitions.Parameters[n] = &pipelinespec.ComponentOutputsSpec_ParameterSpec{ParameterType: pt}
	}
	for _, n := range outArts {
		s.OutputDefinitions.Artifacts[n] = &pipelinespec.ComponentOutputsSpec_ArtifactSpec{ArtifactType: typ}
	}
	return s
}

func TestRunEndToEnd(t *testing.T) {
	rootDir := t.TempDir()
	root := artifacts.FileURI(rootDir)
	inURI := artifacts.Join(root, "run-0", "producer", "text")
	if _, err := artifacts.NewLocal().Put(context.Background(), inURI, strings.NewReader("one two three")); err != nil {
		t.Fatal(err)
	}
	cfg := launch.TaskConfig{RunID: "run-7", TaskID: "count.0", TaskName: "count", PipelineRoot: root,
		Container: &launch.Container{Image: "alpine", Command: []string{"sh", "-c",
			`wc -w < "$0" | tr -d ' \n' > "$1"; echo "$2" > "$3"; printf '%s' "$4" > "$5"; echo to-stdout`},
			Args: []string{"{{$.inputs.artifacts['text'].path}}", "{{$.outputs.parameters['words'].output_file}}",
				"{{$.inputs.parameters['label']}}", "{{$.outputs.artifacts['copy'].path}}",
				"{{$.inputs.parameters['weights']}}", "{{$.outputs.parameters['weights_out'].output_file}}"}}}
	err := cfg.SetComponent(spec(
		map[string]pipelinespec.ParameterType_ParameterTypeEnum{"label": pipelinespec.ParameterType_STRING, "weights": pipelinespec.ParameterType_LIST},
		[]string{"text"},
		map[string]pipelinespec.ParameterType_ParameterTypeEnum{"words": pipelinespec.ParameterType_NUMBER_INTEGER, "weights_out": pipelinespec.ParameterType_LIST},
		[]string{"copy"}))
	if err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(t.TempDir(), "results")
	code, stdout, stderr := launcher(t, cfg.Args(map[string]string{"label": "hello = world", "weights": "[0.5, 1]"}, map[string]string{"text": inURI}, results)...)
	if code != 0 {
		t.Fatalf("launcher run exited %d\nstderr: %s", code, stderr)
	}
	if !strings.Contains(stdout, "to-stdout") {
		t.Errorf("user stdout not passed through: %q", stdout)
	}
	outURI := artifacts.Join(root, "run-7", "count.0", "copy")
	want := map[string]string{"p-words": "3", "p-weights_out": "[0.5,1]", "a-copy": outURI}
	if diff := cmp.Diff(want, readResults(t, results)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(rootDir, "run-7", "count.0", "copy")); err != nil || string(b) != "hello = world\n" {
		t.Errorf("uploaded artifact = %q, %v", b, err)
	}
}

func TestRunExitCodeAndErrors(t *testing.T) {
	cfg := launch.TaskConfig{RunID: "r", TaskID: "t", PipelineRoot: artifacts.FileURI(t.TempDir()),
		Container: &launch.Container{Command: []string{"sh", "-c", "echo failing >&2; exit 4"}}}
	code, _, stderr := launcher(t, cfg.Args(nil, nil, t.TempDir())...)
	if code != 4 || !strings.Contains(stderr, "failing") || !strings.Contains(stderr, "command exited with code 4") {
		t.Errorf("exit %d, stderr %q; want 4 with the user's and the launcher's message", code, stderr)
	}
	code, _, stderr = launcher(t, "run", "--results-dir", "/tmp")
	if code != 2 || !strings.Contains(stderr, "--config-b64 is required") {
		t.Errorf("bad args: exit %d, stderr %q", code, stderr)
	}
	cfg.SetComponent(spec(map[string]pipelinespec.ParameterType_ParameterTypeEnum{"n": pipelinespec.ParameterType_NUMBER_INTEGER}, nil, nil, nil))
	code, _, stderr = launcher(t, cfg.Args(map[string]string{"n": "many"}, nil, t.TempDir())...)
	if code != 1 || !strings.Contains(stderr, "--param n") {
		t.Errorf("badly typed param: exit %d, stderr %q", code, stderr)
	}
}

func TestCond(t *testing.T) {
	cc := launch.CondConfig{TaskID: "t-cond", Condition: "inputs.parameter_values['n'] > 2 && inputs.parameter_values['s'] == 'go'",
		ParamTypes: map[string]pipelinespec.ParameterType_ParameterTypeEnum{"n": pipelinespec.ParameterType_NUMBER_INTEGER, "s": pipelinespec.ParameterType_STRING}}
	for _, tt := range []struct {
		n, want string
	}{{"3", "true"}, {"1", "false"}} {
		results := t.TempDir()
		code, _, stderr := launcher(t, cc.Args(map[string]string{"n": tt.n, "s": "go"}, results)...)
		if code != 0 {
			t.Fatalf("cond exited %d: %s", code, stderr)
		}
		if diff := cmp.Diff(map[string]string{"ok": tt.want}, readResults(t, results)); diff != "" {
			t.Errorf("n=%s results (-want +got):\n%s", tt.n, diff)
		}
	}
	bad := launch.CondConfig{TaskID: "t-cond", Condition: "inputs.nope == 1"}
	code, _, stderr := launcher(t, bad.Args(nil, t.TempDir())...)
	if code != 1 || !strings.Contains(stderr, "inputs.nope") {
		t.Errorf("bad condition: exit %d, stderr %q", code, stderr)
	}
}

func TestImporter(t *testing.T) {
	cfg := launch.TaskConfig{RunID: "r", TaskID: "importer"}
	err := cfg.SetImporter(&pipelinespec.PipelineDeploymentConfig_ImporterSpec{
		ArtifactUri: &pipelinespec.ValueOrRuntimeParameter{Value: &pipelinespec.ValueOrRuntimeParameter_RuntimeParameter{RuntimeParameter: "uri"}},
		TypeSchema:  &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Model"}},
		Metadata:    &structpb.Struct{},
	})
	if err != nil {
		t.Fatal(err)
	}
	results := t.TempDir()
	code, _, stderr := launcher(t, cfg.ImporterArgs(map[string]string{"uri": "s3://models/m1"}, results)...)
	if code != 0 {
		t.Fatalf("importer exited %d: %s", code, stderr)
	}
	if diff := cmp.Diff(map[string]string{"a-artifact": "s3://models/m1"}, readResults(t, results)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestCopy(t *testing.T) {
	self, err := os.ReadFile(launcherBin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "pipefn", "launcher")
	if code, _, stderr := launcher(t, "copy", dst); code != 0 {
		t.Fatalf("copy exited %d: %s", code, stderr)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, self) {
		t.Fatalf("copied binary differs from the launcher (%d vs %d bytes, %v)", len(got), len(self), err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm()&0o111 == 0 {
		t.Errorf("copied binary is not executable: %v", st.Mode())
	}
	// The copy runs: it is the launcher.
	if code, _, stderr := launcher(t, "copy"); code != 1 || !strings.Contains(stderr, "usage") {
		t.Errorf("copy without args: exit %d, %q", code, stderr)
	}
	out, err := exec.Command(dst, "explode").CombinedOutput()
	if !strings.Contains(string(out), `unknown subcommand "explode"`) {
		t.Errorf("copied launcher output = %q, %v", out, err)
	}
	// Two-argument form copies any file.
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("payload"), 0o600)
	dst2 := filepath.Join(t.TempDir(), "dst")
	if code, _, stderr := launcher(t, "copy", src, dst2); code != 0 {
		t.Fatalf("copy SRC DST exited %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(dst2); string(b) != "payload" {
		t.Errorf("copy SRC DST wrote %q", b)
	}
}

// TestSIGTERMStopsTree: the kubelet's SIGTERM to the launcher must end the
// user's whole process tree, and the launcher must exit non-zero.
func TestSIGTERMStopsTree(t *testing.T) {
	arg := fmt.Sprintf("%d.%06d", 300+rand.IntN(100), rand.IntN(1000000))
	cfg := launch.TaskConfig{RunID: "r", TaskID: "t", PipelineRoot: artifacts.FileURI(t.TempDir()),
		Container: &launch.Container{Command: []string{"sh", "-c", fmt.Sprintf("sleep %[1]s & sleep %[1]s", arg)}}}
	cmd := exec.Command(launcherBin, cfg.Args(nil, nil, t.TempDir())...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sleeps to start", func() bool { return countSleepers(arg) == 2 })
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("launcher after SIGTERM: %v, stderr %q; want exit 1 and 'cancelled'", err, stderr.String())
	}
	waitFor(t, "the process tree to be gone", func() bool { return countSleepers(arg) == 0 })
}

func countSleepers(arg string) int {
	want := "sleep\x00" + arg + "\x00"
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || string(b) != want {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		n++
	}
	return n
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

func TestItemsAndGuards(t *testing.T) {
	cfg := launch.TaskConfig{RunID: "r", TaskID: "loop-items"}
	base := cfg.Args(map[string]string{"list": `[{"a":1},"two"]`}, nil, t.TempDir())
	base[0] = "items"
	results := base[len(base)-1]
	if code, _, stderr := launcher(t, base...); code != 0 {
		t.Fatalf("items exited %d: %s", code, stderr)
	}
	want := map[string]string{launch.ItemsResult: `["{\"index\":0,\"item\":{\"a\":1}}","{\"index\":1,\"item\":\"two\"}"]`}
	if diff := cmp.Diff(want, readResults(t, results)); diff != "" {
		t.Errorf("items results (-want +got):\n%s", diff)
	}

	// A guarded loop body whose condition is false for this iteration
	// writes empty results and succeeds without running the command.
	marker := filepath.Join(t.TempDir(), "ran")
	body := launch.TaskConfig{RunID: "r", TaskID: "body", PipelineRoot: artifacts.FileURI(t.TempDir()),
		Container: &launch.Container{Command: []string{"sh", "-c", "touch " + marker}}}
	body.SetComponent(spec(nil, nil, map[string]pipelinespec.ParameterType_ParameterTypeEnum{"out": pipelinespec.ParameterType_STRING}, []string{"model"}))
	inv, err := launch.ParseInvocation(body.Args(nil, nil, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	inv.Iteration = `{"index":1,"item":"x"}`
	inv.ListParams = map[string][]string{"pf-guard-0": {"true", "false"}}
	extra := launch.Extra{Guards: []string{"pf-guard-0"}, ListInputs: map[string]launch.ListInput{"pf-guard-0": {PerIteration: true, ElementType: "STRING"}}}
	inv.ExtraB64 = encodeExtra(t, extra)
	code, _, stderr := launcher(t, inv.Args()...)
	if code != 0 {
		t.Fatalf("skipped body exited %d: %s", code, stderr)
	}
	if diff := cmp.Diff(map[string]string{"p-out": "", "a-model": ""}, readResults(t, inv.ResultsDir)); diff != "" {
		t.Errorf("skipped results (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran although its guard was false")
	}
	if !strings.Contains(stderr, "task skipped") || !strings.Contains(stderr, "body.1") {
		t.Errorf("stderr does not report the skip of body.1: %q", stderr)
	}
}

func encodeExtra(t *testing.T, e launch.Extra) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestRunS3FromEnvironment: the launcher finds its S3 pipeline root through
// the AWS_* environment alone, as in a pod.
func TestRunS3FromEnvironment(t *testing.T) {
	srv := s3test.Start(t)
	srv.Store(t, "root", artifacts.S3Options{}) // creates the bucket and sets AWS_* for the child
	t.Setenv("PIPEFN_MOUNT_ROOT", t.TempDir())  // keep /s3 of the test machine clean
	cfg := launch.TaskConfig{RunID: "run-s3", TaskID: "make", PipelineRoot: "s3://root/pipelines",
		Container: &launch.Container{Command: []string{"sh", "-c", `echo made > "$0"`}, Args: []string{"{{$.outputs.artifacts['data'].path}}"}}}
	cfg.SetComponent(spec(nil, nil, nil, []string{"data"}))
	results := t.TempDir()
	if code, _, stderr := launcher(t, cfg.Args(nil, nil, results)...); code != 0 {
		t.Fatalf("launcher exited %d: %s", code, stderr)
	}
	uri := "s3://root/pipelines/run-s3/make/data"
	if diff := cmp.Diff(map[string]string{"a-data": uri}, readResults(t, results)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(srv.Dir, "root", "pipelines", "run-s3", "make", "data")); err != nil || string(b) != "made\n" {
		t.Errorf("object on the server = %q, %v", b, err)
	}
	// A consumer in another "pod" reads it back by URI.
	consumer := launch.TaskConfig{RunID: "run-s3", TaskID: "use", PipelineRoot: "s3://root/pipelines",
		Container: &launch.Container{Command: []string{"sh", "-c", `cat "$0" > "$1"`},
			Args: []string{"{{$.inputs.artifacts['data'].path}}", "{{$.outputs.parameters['text'].output_file}}"}}}
	consumer.SetComponent(spec(nil, []string{"data"}, map[string]pipelinespec.ParameterType_ParameterTypeEnum{"text": pipelinespec.ParameterType_STRING}, nil))
	results = t.TempDir()
	if code, _, stderr := launcher(t, consumer.Args(nil, map[string]string{"data": uri}, results)...); code != 0 {
		t.Fatalf("consumer exited %d: %s", code, stderr)
	}
	if diff := cmp.Diff(map[string]string{"p-text": "made\n"}, readResults(t, results)); diff != "" {
		t.Errorf("consumer results (-want +got):\n%s", diff)
	}
}
