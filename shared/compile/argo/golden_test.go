package argo

import (
	"bytes"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// corpusDir is <repo>/../shared/kfp-ir-corpus.
func corpusDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "kfp-ir-corpus")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("KFP IR corpus not found at %s: %v", dir, err)
	}
	return dir
}

func loadCorpus(tb testing.TB, name string) *ir.Pipeline {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := ir.Load(data)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return p
}

// testOptions are fixed run options; required root parameters without a
// default get a placeholder of their type.
func testOptions(p *ir.Pipeline) compile.Options {
	params := map[string]*structpb.Value{}
	for name, def := range p.Spec.GetRoot().GetInputDefinitions().GetParameters() {
		if def.GetDefaultValue() != nil {
			params[name] = def.GetDefaultValue()
		} else if !def.GetIsOptional() {
			params[name] = structpb.NewStringValue("value")
		}
	}
	for name := range p.Spec.GetRoot().GetInputDefinitions().GetArtifacts() {
		params[name] = structpb.NewStringValue("s3://bucket/inputs/" + name)
	}
	return compile.Options{
		RunID:             "Run-0001",
		Team:              "team-a",
		Namespace:         "team-a",
		PipelineRoot:      "s3://bucket/team-a",
		Params:            params,
		LauncherImage:     "ghcr.io/pipefn/launcher:v1",
		ServiceAccount:    "pipeline-runner",
		PipelineVersionID: "pv-1",
	}
}

// goldenFiles are representative corpus files, one per feature family.
var goldenFiles = map[string]string{
	"two_step":          "kfp__test_data__sdk_compiled_pipelines__valid__critical__two_step_pipeline_containerized.yaml",
	"params_artifacts":  "kfp__test_data__sdk_compiled_pipelines__valid__artifacts_complex.yaml",
	"if_elif_else":      "kfp__test_data__sdk_compiled_pipelines__valid__if_elif_else_with_oneof_parameters.yaml",
	"loops":             "kfp__test_data__sdk_compiled_pipelines__valid__parallel_and_nested__pipeline_with_loops.yaml",
	"parallelism":       "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_parallelfor_parallelism.yaml",
	"collected":         "kfp__test_data__sdk_compiled_pipelines__valid__critical__collected_parameters.yaml",
	"exit_handler":      "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_task_final_status.yaml",
	"nested_pipeline":   "kfp__test_data__sdk_compiled_pipelines__valid__parallel_and_nested__pipeline_in_pipeline_complex.yaml",
	"importer":          "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_importer.yaml",
	"retry":             "kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_retry.yaml",
	"resources_gpu":     "kfp__test_data__sdk_compiled_pipelines__valid__gpu-scheduling__nvidia_gpu_scheduling_check.yaml",
	"string_resources":  "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_string_machine_fields_task_output.yaml",
	"k8s_secret_volume": "kfp__kubernetes_platform__python__test__snapshot__data__secret_as_vol.yaml",
	"k8s_node_selector": "kfp__kubernetes_platform__python__test__snapshot__data__node_selector.yaml",
	"k8s_toleration":    "kfp__kubernetes_platform__python__test__snapshot__data__toleration.yaml",
	"workspace":         "kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_workspace.yaml",
	"k8s_pvc":           "kfp__kubernetes_platform__python__test__snapshot__data__create_mount_delete_dynamic_pvc.yaml",
	"k8s_pvc_parallel":  "kfp__test_data__sdk_compiled_pipelines__valid__parallel_and_nested__parallel_for_mount_pvc.yaml",
}

// TestGolden compiles representative files, validates them with Argo's
// validator and compares the YAML with testdata/golden (-update rewrites).
func TestGolden(t *testing.T) {
	for name, file := range goldenFiles {
		t.Run(name, func(t *testing.T) {
			p := loadCorpus(t, file)
			wf, err := Compile(p, testOptions(p))
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if err := validateWorkflow(wf); err != nil {
				t.Fatalf("Argo validation: %v", err)
			}
			got := marshalWorkflow(t, wf)
			path := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./shared/compile/argo -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from golden (-want +got):\n%s", path, diff)
			}
		})
	}
}

// marshalWorkflow renders wf as YAML without the (empty) status, with a
// header naming the source so reviewers can read goldens side by side.
//
// The launcher's --config-b64 value is shown decoded (as "json:<config>") so
// golden diffs are reviewable; base64 of that JSON is the real argument.
func marshalWorkflow(t testing.TB, wf *wfv1.Workflow) []byte {
	t.Helper()
	wf = wf.DeepCopy()
	for i := range wf.Spec.Templates {
		c := wf.Spec.Templates[i].Container
		if c == nil {
			continue
		}
		for j := 1; j < len(c.Args); j++ {
			if c.Args[j-1] != "--config-b64" {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(c.Args[j])
			if err != nil {
				t.Fatalf("template %s: --config-b64 is not base64: %v", wf.Spec.Templates[i].Name, err)
			}
			c.Args[j] = "json:" + string(raw)
		}
	}
	b, err := yaml.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(b, []byte("\nstatus:")); i >= 0 {
		b = append(b[:i+1:i+1], []byte{}...)
	}
	return b
}

// TestDeterministic compiles the same input twice and expects equal objects.
func TestDeterministic(t *testing.T) {
	for name, file := range goldenFiles {
		p := loadCorpus(t, file)
		a, err := Compile(p, testOptions(p))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Compile(p, testOptions(p))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(marshalWorkflow(t, a)), string(marshalWorkflow(t, b))); diff != "" {
			t.Errorf("%s: two compilations differ:\n%s", name, diff)
		}
	}
}

// BenchmarkCompile measures Compile alone per representative file, and
// load+compile over the whole corpus.
func BenchmarkCompile(b *testing.B) {
	for name, file := range goldenFiles {
		p := loadCorpus(b, file)
		opts := testOptions(p)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(p, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	dir := corpusDir(b)
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var inputs [][]byte
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		p, err := ir.Load(data)
		if err != nil {
			continue
		}
		if _, err := Compile(p, testOptions(p)); err != nil {
			continue // refused files are listed in tests/conformance
		}
		inputs = append(inputs, data)
	}
	b.Run("corpus-load+compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, data := range inputs {
				p, err := ir.Load(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Compile(p, testOptions(p)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(inputs)), "files/op")
	})
}

// FuzzCompile: whatever ir.Load accepts, Compile returns a workflow or an
// error, never a panic; a workflow it returns passes Argo's validator.
func FuzzCompile(f *testing.F) {
	for _, file := range goldenFiles {
		data, err := os.ReadFile(filepath.Join(corpusDir(f), file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ir.Load(data)
		if err != nil {
			return
		}
		wf, err := Compile(p, testOptions(p))
		if err != nil {
			return
		}
		if err := validateWorkflow(wf); err != nil {
			t.Fatalf("compiled workflow fails Argo validation: %v", err)
		}
	})
}
