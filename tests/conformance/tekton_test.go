package conformance

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// tektonExpectedErrors are the corpus files the Tekton compiler rejects on
// purpose, each with a fragment of the error it must give and why. A file
// listed here that starts compiling, or that fails differently, fails the
// test, so the list cannot go stale.
var tektonExpectedErrors = map[string]struct{ contains, why string }{
	"kfp-tekton__sdk__python__test_data__pipelines__pipeline_as_exit_task.yaml":                           {"exit task that is itself a pipeline", "a pipeline as exit task: Tekton finally tasks cannot depend on each other"},
	"kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_importer_workspace.yaml":      {"downloadToWorkspace", "importer downloadToWorkspace: the launcher importer does not copy into the workspace yet"},
	"kfp__test_data__sdk_compiled_pipelines__valid__pipeline_as_exit_task.yaml":                           {"exit task that is itself a pipeline", "a pipeline as exit task: Tekton finally tasks cannot depend on each other"},
	"kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_string_machine_fields_task_output.yaml": {"only known at run time", "resources from an upstream task output: Tekton cannot set step resources from results"},
}

var (
	tektonArrayRef = regexp.MustCompile(`^\$\(params\.[^)\[]+\[\*\]\)$`)
	tektonCountRef = regexp.MustCompile(`^\$\(params\.n[^)]*\)$`)
)

// tektonCorpusDir finds <repo>/../shared/kfp-ir-corpus.
func tektonCorpusDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "kfp-ir-corpus")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		tb.Fatalf("KFP IR corpus not found at %s (it must sit beside the repository as shared/kfp-ir-corpus): %v", dir, err)
	}
	return dir
}

// tektonCorpus returns the loadable pipelines of the corpus by file name.
// Files ir.Load rejects must be the corpus's known non-pipelines (the
// invalid/ negative tests and platform-only documents).
func tektonCorpus(tb testing.TB) (map[string]*ir.Pipeline, map[string][]byte) {
	dir := tektonCorpusDir(tb)
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	pipelines := map[string]*ir.Pipeline{}
	raw := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "SOURCE.md" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		p, err := ir.Load(data)
		if err != nil {
			if strings.Contains(e.Name(), "__invalid__") {
				continue
			}
			if _, perr := ir.ParsePlatform(data); perr == nil {
				continue
			}
			tb.Errorf("%s: does not load: %v", e.Name(), err)
			continue
		}
		pipelines[e.Name()] = p
		raw[e.Name()] = data
	}
	if len(pipelines) < 270 {
		tb.Fatalf("only %d loadable pipelines in %s: incomplete corpus?", len(pipelines), dir)
	}
	return pipelines, raw
}

// requiredParams gives every required root parameter without a default a
// value of its type, and every required root input artifact a URI, as a
// caller binding the run would.
func requiredParams(p *ir.Pipeline) map[string]*structpb.Value {
	out := map[string]*structpb.Value{}
	for name, spec := range p.Spec.GetRoot().GetInputDefinitions().GetParameters() {
		if spec.GetDefaultValue() != nil || spec.GetIsOptional() {
			continue
		}
		if p.RuntimeConfig != nil && p.RuntimeConfig.ParameterValues[name] != nil {
			continue
		}
		switch spec.GetParameterType() {
		case pipelinespec.ParameterType_NUMBER_INTEGER, pipelinespec.ParameterType_NUMBER_DOUBLE:
			out[name] = structpb.NewNumberValue(1)
		case pipelinespec.ParameterType_BOOLEAN:
			out[name] = structpb.NewBoolValue(true)
		case pipelinespec.ParameterType_LIST:
			l, _ := structpb.NewList([]any{"a", "b"})
			out[name] = structpb.NewListValue(l)
		case pipelinespec.ParameterType_STRUCT:
			st, _ := structpb.NewStruct(map[string]any{"a": "b"})
			out[name] = structpb.NewStructValue(st)
		default:
			out[name] = structpb.NewStringValue("value")
		}
	}
	// A required root input artifact is bound by its URI.
	for name, spec := range p.Spec.GetRoot().GetInputDefinitions().GetArtifacts() {
		if !spec.GetIsOptional() {
			out[name] = structpb.NewStringValue("s3://bucket/inputs/" + name)
		}
	}
	return out
}

func TestTektonCompilesCorpus(t *testing.T) {
	pipelines, _ := tektonCorpus(t)
	names := make([]string, 0, len(pipelines))
	for n := range pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	ok := 0
	for _, name := range names {
		p := pipelines[name]
		t.Run(name, func(t *testing.T) {
			pr, err := tekton.Compile(p, compile.Options{
				RunID: "Run-1234", Team: "team-a", Namespace: "team-a",
				PipelineRoot: "s3://bucket/team-a", LauncherImage: "ghcr.io/pipefn/launcher:test",
				Params: requiredParams(p),
			})
			exp, expected := tektonExpectedErrors[name]
			if expected {
				if err == nil {
					t.Fatalf("compiled, but is listed as an expected failure (%s): remove it from tektonExpectedErrors", exp.why)
				}
				if !strings.Contains(err.Error(), exp.contains) {
					t.Fatalf("error %q does not contain %q", err, exp.contains)
				}
				return
			}
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, flags := range []map[string]string{nil, tekton.RequiredFeatureFlags} {
				if err := tekton.Validate(context.Background(), pr, flags); err != nil {
					t.Fatalf("Tekton validation (flags %v): %v", flags, err)
				}
			}
			// Every launcher command line must parse with the launcher's own
			// parser once Tekton has expanded array parameters.
			for _, pt := range append(pr.Spec.PipelineSpec.Tasks, pr.Spec.PipelineSpec.Finally...) {
				steps := pt.TaskSpec.Steps
				var args []string
				for _, a := range steps[len(steps)-1].Args {
					switch {
					case tektonArrayRef.MatchString(a):
						args = append(args, "e1", "e2")
					case tektonCountRef.MatchString(a):
						args = append(args, "2")
					default:
						args = append(args, a)
					}
				}
				if _, err := launch.ParseInvocation(args); err != nil {
					t.Errorf("task %s: the launcher rejects its arguments: %v", pt.Name, err)
				}
			}
			ok++
		})
	}
	t.Logf("%d of %d loadable corpus pipelines compile and validate; %d expected failures", ok, len(names), len(tektonExpectedErrors))
}
