package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/redistest"
)

// pipefn runs the CLI in-process and returns its output and exit code.
func pipefn(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return out.String(), 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return out.String() + ee.Error(), ee.code
	}
	return out.String() + err.Error(), 1
}

func examplePath(name string) string { return filepath.Join("..", "..", "examples", name) }

func TestCompileCommand(t *testing.T) {
	dir := t.TempDir()
	for _, target := range []string{"tekton", "argo"} {
		out := filepath.Join(dir, target+".yaml")
		if got, code := pipefn(t, "compile", examplePath("hello-artifacts.yaml"), "--target", target, "--param", "count=2", "-o", out); code != 0 {
			t.Fatalf("compile --target %s: exit %d: %s", target, code, got)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"tekton": "PipelineRun", "argo": "Workflow"}[target]
		if obj.Kind != want || obj.Metadata.Name == "" {
			t.Errorf("%s: kind %q name %q", target, obj.Kind, obj.Metadata.Name)
		}
	}
	// Stdout by default.
	if got, code := pipefn(t, "compile", examplePath("condition-loop.yaml"), "--target", "argo"); code != 0 || !strings.Contains(got, "kind: Workflow") {
		t.Errorf("compile to stdout: exit %d: %.200s", code, got)
	}
}

func TestCompileCommandReportsEveryProblem(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	ir := `pipelineInfo: {name: bad}
schemaVersion: 2.1.0
root:
  dag:
    tasks:
      a:
        componentRef: {name: comp-missing}
        taskInfo: {name: a}
      b:
        componentRef: {name: comp-missing-too}
        dependentTasks: [nowhere]
        taskInfo: {name: b}
`
	if err := os.WriteFile(bad, []byte(ir), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := pipefn(t, "compile", bad, "--target", "tekton")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, out)
	}
	for _, want := range []string{"comp-missing", "comp-missing-too", "nowhere", "root.dag.tasks['b']"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{
		{"compile", examplePath("hello-artifacts.yaml"), "--target", "airflow"},
		{"compile", examplePath("hello-artifacts.yaml"), "--param", "count=many"},
		{"compile", examplePath("hello-artifacts.yaml"), "--param", "nope=1"},
		{"compile", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		if out, code := pipefn(t, args...); code != 1 {
			t.Errorf("%v: exit %d, want 1: %s", args, code, out)
		}
	}
}

func TestRunVerbsAgainstPipefnUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := allinone.Start(ctx, allinone.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Tick: 200 * time.Millisecond,
		RedisURL: "redis://" + redistest.StartServer(t).Addr(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	s := "--server=" + srv.URL

	out, code := pipefn(t, s, "pipeline", "upload", examplePath("hello-artifacts.yaml"))
	if code != 0 || !strings.Contains(out, "hello-artifacts") {
		t.Fatalf("upload: %d %s", code, out)
	}
	out, code = pipefn(t, s, "run", "submit", "--pipeline", "hello-artifacts", "--param", "count=2", "--wait")
	if code != 0 {
		t.Fatalf("submit --wait: exit %d: %s", code, out)
	}
	for _, want := range []string{"produce", "summarise", "SUCCEEDED"} {
		if !strings.Contains(out, want) {
			t.Errorf("--wait output lacks %q:\n%s", want, out)
		}
	}
	// A failing run: per-task progress, the error, exit 1.
	out, code = pipefn(t, s, "run", "submit", examplePath("failing.yaml"), "--wait")
	if code != 1 || !strings.Contains(out, "validate") || !strings.Contains(out, "FAILED") {
		t.Errorf("failing run: exit %d:\n%s", code, out)
	}
	out, code = pipefn(t, s, "run", "list")
	if code != 0 || strings.Count(out, "\n") < 3 {
		t.Errorf("run list: %d\n%s", code, out)
	}
	out, code = pipefn(t, s, "experiment", "create", "exp-1")
	if code != 0 || !strings.Contains(out, "exp-1") {
		t.Errorf("experiment create: %d %s", code, out)
	}
	if out, code = pipefn(t, s, "experiment", "list"); code != 0 || !strings.Contains(out, "exp-1") {
		t.Errorf("experiment list: %d %s", code, out)
	}
	if out, code = pipefn(t, s, "run", "get", "no-such-run"); code != 1 || !strings.Contains(out, "not found") {
		t.Errorf("get of a missing run: %d %s", code, out)
	}
}
