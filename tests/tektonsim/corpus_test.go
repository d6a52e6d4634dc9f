package tektonsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/local"
)

// echoScript is the stand-in for a corpus executor: it prints every input
// and derives every output from them, so that both backends must hand the
// same values to the same iterations. Arguments come in triples:
// (i NAME VALUE) an input parameter, (s NAME VALUE) a status input (printed
// only: its details differ by backend), (f NAME PATH) an input artifact,
// (p TYPE FILE) an output parameter, (a - FILE) an output artifact.
const echoScript = `if [ "${PF_STRING-}" = "!fail" ]; then echo "failing on purpose: $*" >&2; exit 1; fi
acc=""
while [ $# -ge 3 ]; do
  case "$1" in
  i) printf 'in %s=%s\n' "$2" "$3"; acc="$acc|$2=$3" ;;
  s) printf 'status %s=%s\n' "$2" "$3" ;;
  f) if [ -f "$3" ]; then c=$(cat "$3"); else c="dir:$(ls "$3" | tr '\n' ' ')"; fi
     printf 'art %s=%s\n' "$2" "$c"; acc="$acc|$2=$c" ;;
  p) mkdir -p "$(dirname "$3")"
     case "$2" in
     STRING) printf %s "${PF_STRING-$acc}" > "$3" ;;
     NUMBER_INTEGER) printf %s "${#acc}" > "$3" ;;
     NUMBER_DOUBLE) printf %s.5 "${#acc}" > "$3" ;;
     BOOLEAN) printf true > "$3" ;;
     LIST) printf %s "$PF_LIST" > "$3" ;;
     STRUCT) printf '{"a":"1"}' > "$3" ;;
     esac ;;
  a) mkdir -p "$(dirname "$3")"; printf %s "$acc" > "$3" ;;
  esac
  shift 3
done`

var selectorKey = regexp.MustCompile(`parseJson\(string_value\)\[\\?"([^"\\]+)\\?"\]`)

// standInList is the LIST a stand-in returns: three dicts with every key
// the pipeline's selectors read (loops pick fields), else three strings.
func standInList(data []byte) string {
	keys := map[string]bool{}
	for _, m := range selectorKey.FindAllSubmatch(data, -1) {
		keys[string(m[1])] = true
	}
	if len(keys) == 0 {
		return `["x","y","z"]`
	}
	var items []any
	for i := range 3 {
		item := map[string]string{}
		for k := range keys {
			item[k] = string(rune('1' + i))
		}
		items = append(items, item)
	}
	b, _ := json.Marshal(items)
	return string(b)
}

// echoStandIns replaces every container executor of p with echoScript;
// fixed gives the STRING outputs of some executors (by label), e.g. a coin
// flip's side; "!fail" makes the executor fail.
func echoStandIns(t *testing.T, p *ir.Pipeline, fixed map[string]string) {
	t.Helper()
	byLabel := map[string]*pipelinespec.ComponentSpec{}
	for _, c := range p.Spec.GetComponents() {
		if l := c.GetExecutorLabel(); l != "" {
			byLabel[l] = c
		}
	}
	execs := p.Deployment.GetExecutors()
	for _, label := range slices.Sorted(maps.Keys(execs)) {
		c := execs[label].GetContainer()
		if c == nil {
			t.Skipf("executor %s is not a container", label)
		}
		comp := byLabel[label]
		args := []string{"echo"}
		ins := comp.GetInputDefinitions()
		for _, name := range slices.Sorted(maps.Keys(ins.GetParameters())) {
			d := ins.GetParameters()[name]
			if d.GetIsOptional() && d.GetDefaultValue() == nil {
				continue // may be left unbound
			}
			kind := "i"
			if ir.InputParameterType(d) == pipelinespec.ParameterType_TASK_FINAL_STATUS {
				kind = "s"
			}
			args = append(args, kind, name, "{{$.inputs.parameters['"+name+"']}}")
		}
		for _, name := range slices.Sorted(maps.Keys(ins.GetArtifacts())) {
			d := ins.GetArtifacts()[name]
			if d.GetIsOptional() || d.GetIsArtifactList() {
				continue
			}
			args = append(args, "f", name, "{{$.inputs.artifacts['"+name+"'].path}}")
		}
		outs := comp.GetOutputDefinitions()
		for _, name := range slices.Sorted(maps.Keys(outs.GetParameters())) {
			args = append(args, "p", ir.OutputParameterType(outs.GetParameters()[name]).String(),
				"{{$.outputs.parameters['"+name+"'].output_file}}")
		}
		for _, name := range slices.Sorted(maps.Keys(outs.GetArtifacts())) {
			if outs.GetArtifacts()[name].GetIsArtifactList() {
				t.Skipf("executor %s outputs an artifact list", label)
			}
			args = append(args, "a", "-", "{{$.outputs.artifacts['"+name+"'].path}}")
		}
		c.Command = []string{"sh", "-c", echoScript}
		c.Args = args
		c.Env = append(c.Env, &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: "PF_LIST", Value: listOf[p]})
		if v, ok := fixed[label]; ok {
			c.Env = append(c.Env, &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: "PF_STRING", Value: v})
		}
	}
	syncDeployment(t, p)
}

// syncDeployment writes p.Deployment back into p.Spec.DeploymentSpec: the
// local executor reads the typed form, the Tekton compiler the generic one.
func syncDeployment(t *testing.T, p *ir.Pipeline) {
	t.Helper()
	b, err := protojson.Marshal(p.Deployment)
	if err != nil {
		t.Fatal(err)
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(b, st); err != nil {
		t.Fatal(err)
	}
	p.Spec.DeploymentSpec = st
}

var listOf = map[*ir.Pipeline]string{}

func loadCorpus(t *testing.T, name string) *ir.Pipeline {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "kfp-ir-corpus", name))
	if err != nil {
		t.Fatalf("KFP IR corpus file (shared/kfp-ir-corpus beside the repository): %v", err)
	}
	p, err := ir.Load(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	listOf[p] = standInList(b)
	return p
}

const valid = "kfp__test_data__sdk_compiled_pipelines__valid__"

// Corpus pipelines with every executor replaced by echoScript: KFP's own
// DAGs, loops, conditions, OneOf and exit handlers, run on both backends.
func TestCorpusAgrees(t *testing.T) {
	for _, tc := range []struct {
		file   string
		params map[string]any
		fixed  map[string]string // STRING outputs by executor label
		list   string            // the LIST outputs, when the default does not fit
		state  string
	}{
		{valid + "critical__collected_parameters.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "parallel_and_nested__pipeline_with_loops.yaml", map[string]any{"loop_parameter": []any{"a", "b", "c"}}, nil, "", local.StateSucceeded},
		{valid + "parallel_and_nested__loop_consume_upstream.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "pipeline_with_parallelfor_list_artifacts_GH-12033.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "if_elif_else_with_oneof_parameters.yaml", nil, map[string]string{"exec-flip-three-sided-die": "heads"}, "", local.StateSucceeded},
		{valid + "if_elif_else_with_oneof_parameters.yaml", nil, map[string]string{"exec-flip-three-sided-die": "tails"}, "", local.StateSucceeded},
		{valid + "if_elif_else_with_oneof_parameters.yaml", nil, map[string]string{"exec-flip-three-sided-die": "draw"}, "", local.StateSucceeded},
		{valid + "essential__pipeline_with_nested_conditions.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "if_elif_else_complex.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "critical__parameter_oneof.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "if_else_with_oneof_artifacts.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "cross_loop_after_topology.yaml", nil, nil, "", local.StateSucceeded},
		{"kfp-tekton__sdk__python__test_data__pipelines__parallelfor_fan_in__artifacts_complex.yaml", nil, nil, "", local.StateSucceeded},
		{"kfp-tekton__sdk__python__test_data__pipelines__parallelfor_fan_in__nested_with_parameters.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "failing__pipeline_with_multiple_exit_handlers.yaml", nil, nil, "", local.StateSucceeded},
		// Schema 2.0 (legacy primitive "type"): STRING parameters stay raw.
		{"kfp-tekton__backend__src__v2__compiler__testdata__producer_consumer_param.json", map[string]any{"text": "1"}, nil, "", local.StateSucceeded},
		{"kfp__frontend__mock-backend__data__v2__pipeline__lightweight_python_functions_v2_pipeline.json", map[string]any{"message": "1", "input_dict": "1"}, nil, "", local.StateSucceeded},
		{valid + "failing__pipeline_with_exit_handler.yaml", nil, map[string]string{"exec-fail-op": "!fail"}, "", local.StateFailed},
		{valid + "pipeline_with_task_final_status.yaml", nil, map[string]string{"exec-fail-op": "!fail"}, "", local.StateFailed},
		{valid + "parallel_and_nested__pipeline_in_pipeline.yaml", nil, nil, "", local.StateSucceeded},
		{valid + "nested_with_parameters.yaml", nil, nil, "", local.StateSucceeded},
		{"kfp-tekton__sdk__python__test_data__pipelines__pipeline_with_nested_loops.yaml", nil, nil, "", local.StateSucceeded},
		{"kfp-tekton__sdk__python__test_data__pipelines__pipeline_with_loops_and_conditions.yaml", nil,
			map[string]string{"exec-flip-coin-op": "heads"}, `[{"A_a":"1","B_b":["2","20"]},{"A_a":"10","B_b":["22","222"]}]`, local.StateSucceeded},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := loadCorpus(t, tc.file)
			if tc.list != "" {
				listOf[p] = tc.list
			}
			echoStandIns(t, p, tc.fixed)
			agree(t, p, tc.params, tc.state)
		})
	}
}

// conditional_producer_and_consumers with the shell stand-ins of
// shared/local's corpus test: a condition on the loop item inside the loop
// (per-iteration guards), its outputs collected after the loop, and a
// condition around the fan-in.
func TestConditionInsideLoop(t *testing.T) {
	const out = "{{$.outputs.parameters['Output'].output_file}}"
	sum := `mkdir -p "$(dirname "$1")"; s=$(printf %s "$0" | tr -d '[] ' | tr , +); echo $((${s:-0})) > "$1"`
	for _, tc := range []struct {
		threshold int
		sum       any
	}{{2, 10.0}, {5, nil}} {
		t.Run(fmt.Sprint(tc.threshold), func(t *testing.T) {
			p := loadCorpus(t, valid+"conditional_producer_and_consumers.yaml")
			setShell(t, p, "exec-double", `mkdir -p "$(dirname "$1")"; echo $((2 * $0)) > "$1"`, "{{$.inputs.parameters['num']}}", out)
			setShell(t, p, "exec-add", sum, "{{$.inputs.parameters['nums']}}", out)
			syncDeployment(t, p)
			got := agree(t, p, map[string]any{"threshold": tc.threshold}, local.StateSucceeded)
			var gotSum any
			if m, ok := got.Tasks["condition-4-add"].(map[string]any); ok {
				gotSum = m["p:Output"]
			}
			if d := cmp.Diff(tc.sum, gotSum); d != "" {
				t.Errorf("add output (-want +got):\n%s", d)
			}
		})
	}
}

func setShell(t *testing.T, p *ir.Pipeline, label, script string, args ...string) {
	t.Helper()
	c := p.Deployment.GetExecutors()[label].GetContainer()
	if c == nil {
		t.Fatalf("executor %s has no container", label)
	}
	c.Command = []string{"sh", "-c", script}
	c.Args = args
}
