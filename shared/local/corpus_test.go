package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/ir"
)

// corpusDir holds real KFP IR files compiled by the KFP SDK: shared/kfp-ir-corpus
// beside the repository (CI clones the repository next to a copy of shared/).
var corpusDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "kfp-ir-corpus")
}()

func loadCorpus(t *testing.T, name string) *ir.Pipeline {
	t.Helper()
	path := filepath.Join(corpusDir, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("KFP IR corpus file missing (it must sit beside the repository as shared/kfp-ir-corpus): %v", err)
	}
	return loadFile(t, path)
}

// The corpus pipelines below use plain shell commands (image alpine), so they
// run on the host unchanged.
func TestCorpusPipelines(t *testing.T) {
	// container_io runs `my_program`; provide one that behaves as the
	// component expects: my_program TEXT --output_path FILE.
	bin := t.TempDir()
	prog := "#!/bin/sh\nmkdir -p \"$(dirname \"$3\")\" && printf %s \"$1\" > \"$3\"\n"
	if err := os.WriteFile(filepath.Join(bin, "my_program"), []byte(prog), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	for _, tc := range []struct {
		file   string
		params map[string]any
		edit   func(p *ir.Pipeline)
		want   map[string]string
		check  func(t *testing.T, o outcome)
	}{
		{
			file: "kfp__test_data__sdk_compiled_pipelines__valid__critical__two_step_pipeline_containerized.yaml",
			want: map[string]string{"component1": StateSucceeded, "component2": StateSucceeded},
			check: func(t *testing.T, o outcome) {
				if got := o.logs.text("component2"); got != "Hello KFP Containerized!\n" {
					t.Errorf("component2 printed %q", got)
				}
			},
		},
		{
			file:   "kfp__test_data__sdk_compiled_pipelines__valid__container_io.yaml",
			params: map[string]any{"text": "some text"},
			want:   map[string]string{"container-io": StateSucceeded},
			check: func(t *testing.T, o outcome) {
				if d := cmp.Diff(map[string]any{"output_path": "some text"}, plain(o.rec.last(t, "container-io").Outputs.Params)); d != "" {
					t.Errorf("outputs (-want +got):\n%s", d)
				}
			},
		},
		{
			file: "kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_env.yaml",
			// print-env-op is a Python component that pip-installs kfp;
			// only the shell one runs here.
			edit: func(p *ir.Pipeline) { delete(p.Spec.GetRoot().GetDag().GetTasks(), "print-env-op") },
			want: map[string]string{"print-env": StateSucceeded},
			check: func(t *testing.T, o outcome) {
				// stdout and stderr (set -x) interleave; look for whole lines.
				got := o.logs.text("print-env")
				lines := strings.Split(got, "\n")
				for _, v := range []string{"val0", "val2", "val3"} {
					if !slices.Contains(lines, v) {
						t.Errorf("print-env output %q lacks the line %q", got, v)
					}
				}
			},
		},
		{
			file: "kfp__test_data__sdk_compiled_pipelines__argo_compatibility__fast_artifact.yaml",
			want: map[string]string{"write-artifact": StateSucceeded},
			check: func(t *testing.T, o outcome) {
				arts := o.rec.last(t, "write-artifact").Outputs.Artifacts["output"]
				if len(arts) != 1 {
					t.Fatalf("got %d output artifacts, want 1", len(arts))
				}
				rc, err := artifacts.NewLocal().Get(context.Background(), arts[0].GetUri())
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				b, _ := io.ReadAll(rc)
				if string(b) != "foo" {
					t.Errorf("artifact holds %q, want foo", b)
				}
			},
		},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			p := loadCorpus(t, tc.file)
			if tc.edit != nil {
				tc.edit(p)
			}
			o := runPipeline(context.Background(), t, p, tc.params, nil)
			if o.state != StateSucceeded {
				t.Fatalf("Run = %s, %v", o.state, o.err)
			}
			if d := cmp.Diff(tc.want, o.rec.final()); d != "" {
				t.Errorf("final states (-want +got):\n%s", d)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

// markedProcesses lists processes whose environment holds mark.
func markedProcesses(mark string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !strings.Contains(string(env), mark) {
			continue
		}
		if d == fmt.Sprintf("/proc/%d", os.Getpid()) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(d, "stat"))
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		out = append(out, filepath.Base(d))
	}
	return out
}

// long-running sleeps 5 minutes in two sequential tasks; canceling must end
// the first one's process tree and never start the second. Every child inherits a marker variable, so any survivor
// shows up in /proc.
func TestCorpusLongRunningCancel(t *testing.T) {
	p := loadCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__long-running.yaml")
	mark := fmt.Sprintf("PIPEFN_LOCAL_TEST_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	k, v, _ := strings.Cut(mark, "=")
	t.Setenv(k, v)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	seen := make(chan int, 1)
	rec.onState = func(u TaskUpdate) {
		if u.TaskID == "wait-op" && u.State == StateRunning {
			go func() {
				// Cancel once the shell and its sleep exist.
				n := 0
				for end := time.Now().Add(10 * time.Second); n < 2 && time.Now().Before(end); n = len(markedProcesses(mark)) {
					time.Sleep(20 * time.Millisecond)
				}
				seen <- n
				cancel()
			}()
		}
	}
	done := make(chan outcome, 1)
	go func() {
		done <- runPipeline(ctx, t, p, nil, func(o *Options) { o.Report = rec.report })
	}()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if o.state != StateCanceled {
		t.Fatalf("Run = %s, %v; want CANCELED", o.state, o.err)
	}
	if n := <-seen; n < 2 {
		t.Fatalf("saw %d task processes before canceling, want the shell and its sleep", n)
	}
	final := rec.final()
	if d := cmp.Diff(map[string]string{"wait-op": StateCanceled, "wait-op-2": StateCanceled}, final); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	var left []string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if left = markedProcesses(mark); len(left) == 0 {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("processes left after cancel: %v", left)
	}
}

// shellExecutor replaces a (Python) executor of a corpus pipeline with a
// shell command, so the pipeline's control flow runs here unchanged while
// the component's work is done by sh.
func shellExecutor(t *testing.T, p *ir.Pipeline, label, script string, args ...string) {
	t.Helper()
	e := p.Deployment.GetExecutors()[label]
	if e.GetContainer() == nil {
		t.Fatalf("executor %s has no container", label)
	}
	e.GetContainer().Command = []string{"sh", "-c", script}
	e.GetContainer().Args = args
}

// Python-component corpus pipelines whose executors are swapped for shell
// commands doing the same work: the IR's DAGs, loops, conditions and exit
// handlers are KFP's own.
func TestCorpusControlFlowWithShellExecutors(t *testing.T) {
	const out = "{{$.outputs.parameters['Output'].output_file}}"
	sum := `mkdir -p "$(dirname "$1")"; s=$(printf %s "$0" | tr -d '[] ' | tr , +); echo $((${s:-0})) > "$1"`
	t.Run("conditional_producer_and_consumers", func(t *testing.T) {
		for _, tc := range []struct {
			threshold int
			want      map[string]string
			sum       any
		}{
			// Items 1, 2, 3: the inner condition keeps those >= threshold;
			// the outer one runs add only when threshold == 2.
			{2, map[string]string{
				"for-loop-2.0.condition-3": StateSkipped, "for-loop-2.1.condition-3": StateSucceeded,
				"for-loop-2.2.condition-3": StateSucceeded, "condition-4.add": StateSucceeded,
			}, 10.0},
			{5, map[string]string{
				"for-loop-2.0.condition-3": StateSkipped, "for-loop-2.1.condition-3": StateSkipped,
				"for-loop-2.2.condition-3": StateSkipped, "condition-4.add": StateSkipped,
			}, nil},
		} {
			t.Run(strconv.Itoa(tc.threshold), func(t *testing.T) {
				p := loadCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__conditional_producer_and_consumers.yaml")
				shellExecutor(t, p, "exec-double", `mkdir -p "$(dirname "$1")"; echo $((2 * $0)) > "$1"`,
					"{{$.inputs.parameters['num']}}", out)
				shellExecutor(t, p, "exec-add", sum, "{{$.inputs.parameters['nums']}}", out)
				o := runPipeline(context.Background(), t, p, map[string]any{"threshold": tc.threshold}, nil)
				if o.state != StateSucceeded {
					t.Fatalf("Run = %s, %v", o.state, o.err)
				}
				final := o.rec.final()
				got := map[string]string{}
				for id := range tc.want {
					got[id] = final[id]
				}
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("states (-want +got):\n%s", d)
				}
				var gotSum any
				if v, ok := o.rec.last(t, "condition-4.add").Outputs.Params["Output"]; ok {
					gotSum = v.AsInterface()
				}
				if d := cmp.Diff(tc.sum, gotSum); d != "" {
					t.Errorf("add output (-want +got):\n%s", d)
				}
			})
		}
	})
	t.Run("pipeline_with_task_final_status", func(t *testing.T) {
		p := loadCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_task_final_status.yaml")
		shellExecutor(t, p, "exec-print-op", `echo "$0"`, "{{$.inputs.parameters['message']}}")
		shellExecutor(t, p, "exec-fail-op", `echo "$0" >&2; exit 1`, "{{$.inputs.parameters['message']}}")
		shellExecutor(t, p, "exec-exit-op", `printf '%s\n%s\n' "$1" "$0"`, "{{$.inputs.parameters['user_input']}}", "{{$.inputs.parameters['status']}}")
		o := runPipeline(context.Background(), t, p, nil, nil)
		if o.state != StateFailed {
			t.Fatalf("Run = %s, want FAILED", o.state)
		}
		want := map[string]string{
			"exit-handler-1": StateFailed, "exit-handler-1.fail-op": StateFailed,
			"exit-handler-1.print-op": StateSucceeded, "exit-op": StateSucceeded,
		}
		if d := cmp.Diff(want, o.rec.final()); d != "" {
			t.Errorf("final states (-want +got):\n%s", d)
		}
		status, msg, _ := strings.Cut(strings.TrimSpace(o.logs.text("exit-op")), "\n")
		var st map[string]any
		if err := json.Unmarshal([]byte(status), &st); err != nil {
			t.Fatalf("exit-op printed %q: %v", status, err)
		}
		if msg != "Hello World!" || st["state"] != "FAILED" || st["pipelineTaskName"] != "exit-handler-1" {
			t.Errorf("exit-op saw message %q and status %v", msg, st)
		}
	})
}
