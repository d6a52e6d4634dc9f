package conformance

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/argo"
	"github.com/pipefn/pipefn/shared/ir"
)

// argoCorpusDir is <repo>/../shared/kfp-ir-corpus.
func argoCorpusDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "kfp-ir-corpus")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("KFP IR corpus not found at %s: %v", dir, err)
	}
	return dir
}

// argoNotPipelines are corpus files that are not compilable pipelines at
// all: ir.Load rejects them (invalid inputs, platform-only documents).
var argoNotPipelines = map[string]string{
	"kfp__test_data__sdk_compiled_pipelines__invalid__empty_file.yaml":                                "negative test: empty file",
	"kfp__test_data__sdk_compiled_pipelines__invalid__invalid_yaml.yaml":                              "negative test: unknown top-level key",
	"kfp__test_data__sdk_compiled_pipelines__invalid__no_name.yaml":                                   "negative test: empty pipelineInfo.name",
	"kfp-tekton__backend__src__v2__compiler__testdata__create_mount_delete_dynamic_pvc_platform.json": "platform spec only",
	"kfp-tekton__backend__src__v2__compiler__testdata__create_pod_metadata.json":                      "platform spec only",
}

// argoCannotCompile lists valid pipelines the Argo compiler refuses, with the
// error text it must give. Asserted, so a fix or a regression shows up.
var argoCannotCompile = map[string]struct{ contains, why string }{
	"kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_importer_workspace.yaml": {"downloadToWorkspace", "importer download into the workspace: the launcher's importer does not copy into it"},
}

type noWT struct{}

func (noWT) Get(name string) (*wfv1.WorkflowTemplate, error) {
	return nil, fmt.Errorf("unexpected WorkflowTemplate lookup %q", name)
}

type noCWT struct{}

func (noCWT) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	return nil, fmt.Errorf("unexpected ClusterWorkflowTemplate lookup %q", name)
}

func argoCompile(data []byte) (*wfv1.Workflow, error) {
	p, err := ir.Load(data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	params := argoParams(p)
	return argo.Compile(p, compile.Options{
		RunID: "run-1", Team: "team-a", Namespace: "team-a", PipelineRoot: "s3://bucket/team-a",
		Params: params, LauncherImage: "ghcr.io/pipefn/launcher:test",
	})
}

// argoParams binds every root parameter: the PipelineJob's value, else the
// default, else a placeholder of the declared type (the corpus files are
// compiled, not run, so any well-typed value will do).
func argoParams(p *ir.Pipeline) map[string]*structpb.Value {
	out := map[string]*structpb.Value{}
	for name, spec := range p.Spec.GetRoot().GetInputDefinitions().GetParameters() {
		if p.RuntimeConfig != nil && p.RuntimeConfig.ParameterValues[name] != nil {
			out[name] = p.RuntimeConfig.ParameterValues[name]
			continue
		}
		if spec.GetDefaultValue() != nil {
			out[name] = spec.GetDefaultValue()
			continue
		}
		t := spec.GetParameterType()
		switch {
		case t == pipelinespec.ParameterType_NUMBER_INTEGER || t == pipelinespec.ParameterType_NUMBER_DOUBLE ||
			spec.GetType() == pipelinespec.PrimitiveType_INT || spec.GetType() == pipelinespec.PrimitiveType_DOUBLE:
			out[name] = structpb.NewNumberValue(1)
		case t == pipelinespec.ParameterType_BOOLEAN:
			out[name] = structpb.NewBoolValue(true)
		case t == pipelinespec.ParameterType_LIST:
			l, _ := structpb.NewList([]any{"a", "b"})
			out[name] = structpb.NewListValue(l)
		case t == pipelinespec.ParameterType_STRUCT:
			st, _ := structpb.NewStruct(map[string]any{"a": "b"})
			out[name] = structpb.NewStructValue(st)
		default:
			out[name] = structpb.NewStringValue("value")
		}
	}
	// Root input artifacts are bound by URI, as a string parameter.
	for name := range p.Spec.GetRoot().GetInputDefinitions().GetArtifacts() {
		out[name] = structpb.NewStringValue("s3://bucket/inputs/" + name)
	}
	return out
}

// TestArgoCorpus compiles every valid corpus file and runs Argo's validator
// on the result.
func TestArgoCorpus(t *testing.T) {
	dir := argoCorpusDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	compiled, refused := 0, 0
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "SOURCE.md" {
			continue
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if reason, ok := argoNotPipelines[name]; ok {
				if _, err := ir.Load(data); err == nil {
					t.Fatalf("listed as not a pipeline (%s) but ir.Load accepts it", reason)
				}
				return
			}
			wf, err := argoCompile(data)
			if want, ok := argoCannotCompile[name]; ok {
				if err == nil || !strings.Contains(err.Error(), want.contains) {
					t.Fatalf("listed as refused (%s): want a compile error containing %q, got %v", want.why, want.contains, err)
				}
				refused++
				return
			}
			if err != nil {
				var ve *ir.ValidationError
				if errors.As(err, &ve) {
					t.Fatalf("ir rejects a valid corpus file: %v", err)
				}
				t.Fatalf("compile: %v", err)
			}
			if err := validate.ValidateWorkflow(noWT{}, noCWT{}, wf, nil, validate.ValidateOpts{}); err != nil {
				t.Fatalf("Argo validation: %v", err)
			}
			compiled++
		})
	}
	for _, k := range slices.Sorted(maps.Keys(argoNotPipelines)) {
		if !seen[k] {
			t.Errorf("listed file %s is not in the corpus", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(argoCannotCompile)) {
		if !seen[k] {
			t.Errorf("listed file %s is not in the corpus", k)
		}
	}
	t.Logf("compiled and validated %d files, %d refused as listed", compiled, refused)
}
