// Package standin replaces the executors of KFP IR pipelines with a shell stand-in, so
// that corpus pipelines (whose real executors need Python and the KFP SDK in an image)
// run anywhere a POSIX shell does, and every backend must hand the same values to the
// same tasks: the stand-in prints each input and derives each output from them. The
// Tekton simulator's suite and the real-controller suite both use it.
package standin

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/ir"
)

// Script is the stand-in executor. Arguments come in triples:
// (i NAME VALUE) an input parameter, (s NAME VALUE) a status input (printed only: its
// details differ by backend), (f NAME PATH) an input artifact, (p TYPE FILE) an output
// parameter, (a - FILE) an output artifact. PF_STRING fixes STRING outputs ("!fail"
// makes the task fail); PF_LIST is every LIST output.
const Script = `if [ "${PF_STRING-}" = "!fail" ]; then echo "failing on purpose: $*" >&2; exit 1; fi
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

// List is the LIST a stand-in returns for the pipeline whose IR is data: three dicts
// with every key the pipeline's selectors read (loops pick fields), else three strings.
func List(data []byte) string {
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

// ErrNotReplaceable says a pipeline has an executor the stand-in cannot play.
type ErrNotReplaceable struct{ Executor, Why string }

func (e *ErrNotReplaceable) Error() string {
	return fmt.Sprintf("executor %s %s", e.Executor, e.Why)
}

// Apply replaces every container executor of p with Script; list is the LIST outputs'
// value, fixed gives the STRING outputs of some executors (by label), e.g. a coin
// flip's side. It returns *ErrNotReplaceable for pipelines it cannot stand in for.
func Apply(p *ir.Pipeline, list string, fixed map[string]string) error {
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
			return &ErrNotReplaceable{label, "is not a container"}
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
				return &ErrNotReplaceable{label, "outputs an artifact list"}
			}
			args = append(args, "a", "-", "{{$.outputs.artifacts['"+name+"'].path}}")
		}
		c.Command = []string{"sh", "-c", Script}
		c.Args = args
		c.Env = append(c.Env, &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: "PF_LIST", Value: list})
		if v, ok := fixed[label]; ok {
			c.Env = append(c.Env, &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_EnvVar{Name: "PF_STRING", Value: v})
		}
	}
	return SyncDeployment(p)
}

// SyncDeployment writes p.Deployment back into p.Spec.DeploymentSpec: the local
// executor reads the typed form, the compilers and the JSON form the generic one.
func SyncDeployment(p *ir.Pipeline) error {
	b, err := protojson.Marshal(p.Deployment)
	if err != nil {
		return err
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(b, st); err != nil {
		return err
	}
	p.Spec.DeploymentSpec = st
	return nil
}

// Case is a corpus pipeline run with stand-ins, and the state it must end in on
// every backend.
type Case struct {
	File   string         // a file of shared/kfp-ir-corpus
	Params map[string]any // run parameters
	Fixed  map[string]string
	List   string // the LIST outputs, when List(file) does not fit
	State  string // SUCCEEDED or FAILED
}

const valid = "kfp__test_data__sdk_compiled_pipelines__valid__"

// Cases are KFP's own DAGs, loops, conditions, OneOf, nested pipelines and exit
// handlers from the corpus, which every backend must run alike.
var Cases = []Case{
	{File: valid + "critical__collected_parameters.yaml", State: "SUCCEEDED"},
	{File: valid + "parallel_and_nested__pipeline_with_loops.yaml", Params: map[string]any{"loop_parameter": []any{"a", "b", "c"}}, State: "SUCCEEDED"},
	{File: valid + "parallel_and_nested__loop_consume_upstream.yaml", State: "SUCCEEDED"},
	{File: valid + "pipeline_with_parallelfor_list_artifacts_GH-12033.yaml", State: "SUCCEEDED"},
	{File: valid + "if_elif_else_with_oneof_parameters.yaml", Fixed: map[string]string{"exec-flip-three-sided-die": "heads"}, State: "SUCCEEDED"},
	{File: valid + "if_elif_else_with_oneof_parameters.yaml", Fixed: map[string]string{"exec-flip-three-sided-die": "tails"}, State: "SUCCEEDED"},
	{File: valid + "if_elif_else_with_oneof_parameters.yaml", Fixed: map[string]string{"exec-flip-three-sided-die": "draw"}, State: "SUCCEEDED"},
	{File: valid + "essential__pipeline_with_nested_conditions.yaml", State: "SUCCEEDED"},
	{File: valid + "if_elif_else_complex.yaml", State: "SUCCEEDED"},
	{File: valid + "critical__parameter_oneof.yaml", State: "SUCCEEDED"},
	{File: valid + "if_else_with_oneof_artifacts.yaml", State: "SUCCEEDED"},
	{File: valid + "cross_loop_after_topology.yaml", State: "SUCCEEDED"},
	{File: "kfp-tekton__sdk__python__test_data__pipelines__parallelfor_fan_in__artifacts_complex.yaml", State: "SUCCEEDED"},
	{File: "kfp-tekton__sdk__python__test_data__pipelines__parallelfor_fan_in__nested_with_parameters.yaml", State: "SUCCEEDED"},
	{File: valid + "failing__pipeline_with_multiple_exit_handlers.yaml", State: "SUCCEEDED"},
	// Schema 2.0 (legacy primitive "type"): STRING parameters stay raw.
	{File: "kfp-tekton__backend__src__v2__compiler__testdata__producer_consumer_param.json", Params: map[string]any{"text": "1"}, State: "SUCCEEDED"},
	{File: "kfp__frontend__mock-backend__data__v2__pipeline__lightweight_python_functions_v2_pipeline.json", Params: map[string]any{"message": "1", "input_dict": "1"}, State: "SUCCEEDED"},
	{File: valid + "failing__pipeline_with_exit_handler.yaml", Fixed: map[string]string{"exec-fail-op": "!fail"}, State: "FAILED"},
	{File: valid + "pipeline_with_task_final_status.yaml", Fixed: map[string]string{"exec-fail-op": "!fail"}, State: "FAILED"},
	{File: valid + "parallel_and_nested__pipeline_in_pipeline.yaml", State: "SUCCEEDED"},
	{File: valid + "nested_with_parameters.yaml", State: "SUCCEEDED"},
	{File: "kfp-tekton__sdk__python__test_data__pipelines__pipeline_with_nested_loops.yaml", State: "SUCCEEDED"},
	{File: "kfp-tekton__sdk__python__test_data__pipelines__pipeline_with_loops_and_conditions.yaml",
		Fixed: map[string]string{"exec-flip-coin-op": "heads"}, List: `[{"A_a":"1","B_b":["2","20"]},{"A_a":"10","B_b":["22","222"]}]`, State: "SUCCEEDED"},
}

// Name is a short name for a case, for subtests.
func (c Case) Name() string {
	n := c.File
	for _, side := range c.Fixed {
		n += "/" + side
	}
	return n
}
