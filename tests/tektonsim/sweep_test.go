package tektonsim

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/tests/internal/standin"
)

// TestCorpusSweep (opt-in: PIPEFN_TEKTONSIM_SWEEP=1, a few minutes) runs
// every corpus pipeline that loads, stands in and compiles for Tekton on
// both backends with echo stand-ins, and lists the ones that disagree.
func TestCorpusSweep(t *testing.T) {
	if os.Getenv("PIPEFN_TEKTONSIM_SWEEP") == "" {
		t.Skip("set PIPEFN_TEKTONSIM_SWEEP=1 to run the whole corpus through the simulator")
	}
	dir := filepath.Join("..", "..", "..", "shared", "kfp-ir-corpus")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var agreed []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".json") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			p, err := ir.Load(b)
			if err != nil {
				t.Skipf("does not load: %v", err)
			}
			listOf[p] = standin.List(b)
			echoStandIns(t, p, nil)
			params := sweepParams(p)
			bound, err := p.BindParameters(params)
			if err != nil {
				t.Skipf("parameters: %v", err)
			}
			if _, err := tekton.Compile(p, compile.Options{RunID: "run-1", Namespace: "ns", PipelineRoot: "file:///tmp/x", Params: bound, LauncherImage: "l"}); err != nil {
				t.Skipf("not compiled for Tekton: %v", err)
			}
			want := runLocal(t, p, bound)
			agree(t, p, params, want.State)
			if !t.Failed() {
				agreed = append(agreed, name)
			}
		})
	}
	sort.Strings(agreed)
	t.Logf("%d pipelines agree:\n%s", len(agreed), strings.Join(agreed, "\n"))
}

// sweepParams gives every required root parameter a value of its type.
func sweepParams(p *ir.Pipeline) map[string]any {
	out := map[string]any{}
	for name, d := range p.Spec.GetRoot().GetInputDefinitions().GetParameters() {
		if d.GetDefaultValue() != nil || d.GetIsOptional() {
			continue
		}
		switch ir.InputParameterType(d) {
		case pipelinespec.ParameterType_NUMBER_INTEGER:
			out[name] = 1
		case pipelinespec.ParameterType_NUMBER_DOUBLE:
			out[name] = 1.5
		case pipelinespec.ParameterType_BOOLEAN:
			out[name] = true
		case pipelinespec.ParameterType_LIST:
			out[name] = []any{"1", "2"}
		case pipelinespec.ParameterType_STRUCT:
			out[name] = map[string]any{"a": "1"}
		default:
			out[name] = "1"
		}
	}
	return out
}
