package tekton

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// corpusPath finds a file of the KFP IR corpus beside the repository.
func corpusPath(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join("..", "..", "..", "..", "shared", "kfp-ir-corpus", name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("KFP IR corpus file missing (the corpus must sit beside the repository as shared/kfp-ir-corpus): %v", err)
	}
	return p
}

const validPrefix = "kfp__test_data__sdk_compiled_pipelines__valid__"

// goldenFiles are representative corpus files, one feature each.
var goldenFiles = []struct {
	golden, file string
	params       map[string]any // run parameters beyond the defaults
}{
	{"two-step", validPrefix + "critical__two_step_pipeline_containerized.yaml", nil},
	{"params-artifacts", validPrefix + "essential__lightweight_python_functions_with_outputs.yaml",
		map[string]any{"first_number": 3, "second_number": 4, "first_message": "hello", "second_message": "world"}},
	{"if-elif-else-oneof", validPrefix + "if_elif_else_with_oneof_parameters.yaml", nil},
	{"nested-conditions", validPrefix + "essential__pipeline_with_nested_conditions.yaml", nil},
	{"loops-static-dynamic", validPrefix + "parallel_and_nested__pipeline_with_loops.yaml", nil},
	{"loop-parallelism-secret", validPrefix + "parallel_and_nested__parallel_for_secret.yaml", nil},
	{"loop-consume-upstream", validPrefix + "parallel_and_nested__loop_consume_upstream.yaml", nil},
	{"loop-over-artifacts", validPrefix + "pipeline_with_parallelfor_list_artifacts_GH-12033.yaml", nil},
	{"collected", validPrefix + "critical__collected_parameters.yaml", nil},
	{"exit-handler", validPrefix + "failing__pipeline_with_exit_handler.yaml", nil},
	{"pipeline-in-pipeline", validPrefix + "parallel_and_nested__pipeline_in_pipeline.yaml", nil},
	{"importer", validPrefix + "pipeline_with_importer.yaml", nil},
	{"retry", validPrefix + "critical__pipeline_with_retry.yaml", nil},
	{"gpu-resources", validPrefix + "gpu-scheduling__nvidia_gpu_scheduling_check.yaml", nil},
	{"k8s-dynamic-pvc", "kfp__kubernetes_platform__python__test__snapshot__data__create_mount_delete_dynamic_pvc.yaml", nil},
	{"k8s-workspace", validPrefix + "critical__pipeline_with_workspace.yaml", nil},
	{"k8s-toleration", "kfp__kubernetes_platform__python__test__snapshot__data__toleration.yaml", nil},
}

// goldenOptions are the fixed run options of the golden files.
func goldenOptions() compile.Options {
	return compile.Options{
		RunID: "run-0001", Team: "ml", Namespace: "team-ml", PipelineRoot: "s3://artifacts/ml",
		LauncherImage: "ghcr.io/pipefn/launcher:v0", ServiceAccount: "pipeline-runner", PipelineVersionID: "v1",
	}
}

func paramsOf(t *testing.T, in map[string]any) map[string]*structpb.Value {
	t.Helper()
	out := map[string]*structpb.Value{}
	for k, v := range in {
		sv, err := structpb.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = sv
	}
	return out
}

func loadCorpus(tb testing.TB, name string) *ir.Pipeline {
	tb.Helper()
	data, err := os.ReadFile(corpusPath(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := ir.Load(data)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return p
}

func TestGolden(t *testing.T) {
	for _, g := range goldenFiles {
		t.Run(g.golden, func(t *testing.T) {
			p := loadCorpus(t, g.file)
			opts := goldenOptions()
			opts.Params = paramsOf(t, g.params)
			pr, err := Compile(p, opts)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			for _, flags := range []map[string]string{nil, RequiredFeatureFlags} {
				if err := Validate(context.Background(), pr, flags); err != nil {
					t.Fatalf("Tekton validation (flags %v): %v", flags, err)
				}
			}
			got, err := yaml.Marshal(pr)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", g.golden+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./shared/compile/tekton -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from golden (-want +got); if intended, run with -update:\n%s", g.file, diff)
			}
		})
	}
}
