package tekton

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// Components shared by the inline test pipelines: "comp-echo" takes a
// string and returns one, "comp-num" takes an integer.
const testComponents = `
components:
  comp-echo:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: STRING}
    outputDefinitions:
      parameters:
        Output: {parameterType: STRING}
  comp-gen:
    executorLabel: exec-gen
    outputDefinitions:
      parameters:
        Output: {parameterType: LIST}
  comp-num:
    executorLabel: exec-num
    inputDefinitions:
      parameters:
        count: {parameterType: NUMBER_INTEGER}
deploymentSpec:
  executors:
    exec-echo:
      container: {image: "alpine:3", command: [echo], args: ["{{$.inputs.parameters['msg']}}"]}
    exec-gen:
      container: {image: "alpine:3", command: [echo]}
    exec-notify:
      container: {image: "alpine:3", command: [echo], args: ["{{$.inputs.parameters['status']}}"]}
    exec-num:
      container:
        image: "alpine:3"
        command: [echo]
        resources: {cpuLimit: 0.5, memoryLimit: 2.0, accelerator: {type: NVIDIA_TESLA_T4, count: '2'}}
pipelineInfo: {name: test}
schemaVersion: 2.1.0
sdkVersion: kfp-2.7.0
`

// mustLoad loads testComponents plus doc (a root, maybe more components,
// maybe a second platform document).
func mustLoad(t *testing.T, doc string) *ir.Pipeline {
	t.Helper()
	first, platform, _ := strings.Cut(doc, "\n---\n")
	var base, extra map[string]any
	if err := yaml.Unmarshal([]byte(testComponents), &base); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(first), &extra); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		if k == "components" {
			for name, c := range v.(map[string]any) {
				base["components"].(map[string]any)[name] = c
			}
			continue
		}
		base[k] = v
	}
	b, err := yaml.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	if platform != "" {
		b = append(append(b, "---\n"...), platform...)
	}
	p, err := ir.Load(b)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func testOptions() compile.Options {
	return compile.Options{RunID: "R1", Team: "t", Namespace: "ns", PipelineRoot: "s3://b/r", LauncherImage: "launcher:v1"}
}

// mustCompile compiles and runs Tekton's validation with both flag sets.
func mustCompile(t *testing.T, p *ir.Pipeline, opts compile.Options) *tektonv1.PipelineRun {
	t.Helper()
	pr, err := Compile(p, opts)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, flags := range []map[string]string{nil, RequiredFeatureFlags} {
		if err := Validate(context.Background(), pr, flags); err != nil {
			t.Fatalf("validate (flags %v): %v", flags, err)
		}
	}
	return pr
}

func task(t *testing.T, pr *tektonv1.PipelineRun, name string) tektonv1.PipelineTask {
	t.Helper()
	for _, pt := range append(append([]tektonv1.PipelineTask(nil), pr.Spec.PipelineSpec.Tasks...), pr.Spec.PipelineSpec.Finally...) {
		if pt.Name == name {
			return pt
		}
	}
	var names []string
	for _, pt := range pr.Spec.PipelineSpec.Tasks {
		names = append(names, pt.Name)
	}
	t.Fatalf("no task %q in %v", name, names)
	return tektonv1.PipelineTask{}
}

// mainArgs returns the launcher arguments of a task's last step with the
// base64 config decoded into cfg.
func mainArgs(t *testing.T, pt tektonv1.PipelineTask, cfg any) []string {
	t.Helper()
	steps := pt.TaskSpec.Steps
	args := append([]string(nil), steps[len(steps)-1].Args...)
	for i, a := range args {
		if a == "--config-b64" && cfg != nil {
			b, err := base64.StdEncoding.DecodeString(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, cfg); err != nil {
				t.Fatal(err)
			}
			args[i+1] = "B64"
		}
	}
	return args
}

func paramMap(ps tektonv1.Params) map[string]string {
	out := map[string]string{}
	for _, p := range ps {
		if p.Value.Type == tektonv1.ParamTypeArray {
			out[p.Name] = "[" + strings.Join(p.Value.ArrayVal, ",") + "]"
			continue
		}
		out[p.Name] = p.Value.StringVal
	}
	return out
}

func TestTwoTasksPassParameters(t *testing.T) {
	p := mustLoad(t, `
root:
  inputDefinitions:
    parameters:
      greeting: {parameterType: STRING, defaultValue: hi}
      count: {parameterType: NUMBER_INTEGER}
  dag:
    tasks:
      first:
        taskInfo: {name: first}
        componentRef: {name: comp-echo}
        inputs: {parameters: {msg: {componentInputParameter: greeting}}}
      second:
        taskInfo: {name: second}
        componentRef: {name: comp-echo}
        dependentTasks: [first]
        cachingOptions: {enableCache: true}
        inputs: {parameters: {msg: {taskOutputParameter: {producerTask: first, outputParameterKey: Output}}}}
      third:
        taskInfo: {name: third}
        componentRef: {name: comp-num}
        inputs: {parameters: {count: {componentInputParameter: count}}}
`)
	opts := testOptions()
	opts.Params = map[string]*structpb.Value{"count": structpb.NewNumberValue(3)}
	pr := mustCompile(t, p, opts)

	if diff := cmp.Diff(map[string]string{"count": "3", "greeting": "hi"}, paramMap(pr.Spec.Params)); diff != "" {
		t.Errorf("run params (-want +got):\n%s", diff)
	}
	second := task(t, pr, "second")
	if diff := cmp.Diff([]string{"first"}, second.RunAfter); diff != "" {
		t.Errorf("runAfter (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"p-msg": "$(tasks.first.results.p-Output)"}, paramMap(second.Params)); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	var cfg launch.TaskConfig
	got := mainArgs(t, second, &cfg)
	want := []string{"run", "--config-b64", "B64", "--param", "msg=$(params.p-msg)", "--results-dir", "/tekton/results"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("launcher args (-want +got):\n%s", diff)
	}
	wantCfg := launch.TaskConfig{RunID: "R1", TaskID: "second", TaskName: "second", PipelineRoot: "s3://b/r", CacheEnabled: true,
		Container: &launch.Container{Image: "alpine:3", Command: []string{"echo"}, Args: []string{"{{$.inputs.parameters['msg']}}"}}}
	cfg.Component = nil
	if diff := cmp.Diff(wantCfg, cfg); diff != "" {
		t.Errorf("task config (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]tektonv1.TaskResult{{Name: "p-Output", Type: tektonv1.ResultsTypeString}}, second.TaskSpec.Results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := second.TaskSpec.Metadata.Labels[compile.LabelTask]; got != "second" {
		t.Errorf("task label: %q", got)
	}
	steps := second.TaskSpec.Steps
	if steps[0].Image != "launcher:v1" || steps[1].Image != "alpine:3" || steps[1].Command[0] != "/pipefn/launcher" {
		t.Errorf("steps: want launcher copy then user image running /pipefn/launcher, got %+v", steps)
	}
	if pr.Name != "pf-r1" || pr.Namespace != "ns" || pr.Labels[compile.LabelRunID] != "R1" || pr.Labels[compile.LabelTeam] != "t" {
		t.Errorf("metadata: %+v", pr.ObjectMeta)
	}

	// Caching disabled for the run wins over the task's option.
	opts.CachingDisabled = true
	pr = mustCompile(t, p, opts)
	cfg = launch.TaskConfig{}
	mainArgs(t, task(t, pr, "second"), &cfg)
	if cfg.CacheEnabled {
		t.Error("CachingDisabled: task config still has caching on")
	}
}

func TestResourcesAndAccelerator(t *testing.T) {
	p := mustLoad(t, `
root:
  dag:
    tasks:
      num:
        taskInfo: {name: num}
        componentRef: {name: comp-num}
        inputs: {parameters: {count: {runtimeValue: {constant: 7}}}}
        retryPolicy: {maxRetryCount: 2, backoffDuration: 5s}
`)
	pr := mustCompile(t, p, testOptions())
	n := task(t, pr, "num")
	want := corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("500m"),
		corev1.ResourceMemory: resource.MustParse("2G"),
		"nvidia.com/gpu":      resource.MustParse("2"),
	}}
	got := n.TaskSpec.Steps[1].ComputeResources
	if diff := cmp.Diff(want.Limits.Cpu().String(), got.Limits.Cpu().String()); diff != "" {
		t.Errorf("cpu: %s", diff)
	}
	for name, q := range want.Limits {
		g := got.Limits[name]
		if q.Cmp(g) != 0 {
			t.Errorf("limit %s: want %s, got %s", name, q.String(), g.String())
		}
	}
	if n.Retries != 2 {
		t.Errorf("retries: want 2, got %d", n.Retries)
	}
	if pr.Annotations[AnnotationRetryBackoffIgnored] != "num" {
		t.Errorf("backoff annotation: %v", pr.Annotations)
	}
	if got := mainArgs(t, n, nil); !contains(got, "count=7") {
		t.Errorf("constant integer not passed as JSON: %v", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestConditionAndExitHandler(t *testing.T) {
	p := mustLoad(t, `
components:
  comp-condition-1:
    dag:
      tasks:
        inner:
          taskInfo: {name: inner}
          componentRef: {name: comp-echo}
          inputs: {parameters: {msg: {componentInputParameter: pipelinechannel--flag}}}
    inputDefinitions:
      parameters:
        pipelinechannel--flag: {parameterType: STRING}
  comp-exit-handler-1:
    dag:
      tasks:
        condition-1:
          taskInfo: {name: condition-1}
          componentRef: {name: comp-condition-1}
          inputs: {parameters: {pipelinechannel--flag: {componentInputParameter: pipelinechannel--flag}}}
          triggerPolicy: {condition: "inputs.parameter_values['pipelinechannel--flag'] == 'yes'"}
    inputDefinitions:
      parameters:
        pipelinechannel--flag: {parameterType: STRING}
  comp-notify:
    executorLabel: exec-notify
    inputDefinitions:
      parameters:
        status: {parameterType: TASK_FINAL_STATUS}
root:
  inputDefinitions:
    parameters:
      flag: {parameterType: STRING, defaultValue: "yes"}
  dag:
    tasks:
      exit-handler-1:
        taskInfo: {name: exit-handler-1}
        componentRef: {name: comp-exit-handler-1}
        inputs: {parameters: {pipelinechannel--flag: {componentInputParameter: flag}}}
      notify:
        taskInfo: {name: notify}
        componentRef: {name: comp-notify}
        dependentTasks: [exit-handler-1]
        inputs: {parameters: {status: {taskFinalStatus: {producerTask: exit-handler-1}}}}
        triggerPolicy: {strategy: ALL_UPSTREAM_TASKS_COMPLETED}
`)
	pr := mustCompile(t, p, testOptions())
	cond := task(t, pr, "exit-handler-1-condition-1-cond")
	var cc launch.CondConfig
	mainArgs(t, cond, &cc)
	if cc.Condition != "inputs.parameter_values['pipelinechannel--flag'] == 'yes'" {
		t.Errorf("cond config: %+v", cc)
	}
	inner := task(t, pr, "exit-handler-1-condition-1-inner")
	want := tektonv1.WhenExpressions{{Input: "$(tasks.exit-handler-1-condition-1-cond.results.ok)", Operator: "in", Values: []string{"true"}}}
	if diff := cmp.Diff(want, inner.When); diff != "" {
		t.Errorf("when (-want +got):\n%s", diff)
	}
	if len(pr.Spec.PipelineSpec.Finally) != 1 {
		t.Fatalf("want 1 finally task, got %d", len(pr.Spec.PipelineSpec.Finally))
	}
	notify := pr.Spec.PipelineSpec.Finally[0]
	if diff := cmp.Diff(map[string]string{"p-status": "$(tasks.exit-handler-1-condition-1-inner.status)"}, paramMap(notify.Params)); diff != "" {
		t.Errorf("final status param (-want +got):\n%s", diff)
	}
	wantStatus := map[string]launch.FinalStatusSource{"status": {Task: "exit-handler-1", Run: testOptions().RunID, Leaves: []string{"exit-handler-1-condition-1-inner"}}}
	if diff := cmp.Diff(wantStatus, decodeExtra(t, mainArgs(t, notify, nil)).FinalStatus); diff != "" {
		t.Errorf("final status extension (-want +got):\n%s", diff)
	}
	if len(notify.RunAfter) != 0 {
		t.Errorf("finally task has runAfter %v", notify.RunAfter)
	}
}

const loopComponents = `
components:
  comp-for-loop-1:
    dag:
      outputs:
        parameters:
          pipelinechannel--second-Output:
            valueFromParameter: {producerSubtask: second, outputParameterKey: Output}
      tasks:
        first:
          taskInfo: {name: first}
          componentRef: {name: comp-echo}
          inputs:
            parameters:
              msg: {componentInputParameter: pipelinechannel--loop-item-param-1, parameterExpressionSelector: "parseJson(string_value)[\"a\"]"}
        second:
          taskInfo: {name: second}
          componentRef: {name: comp-echo}
          inputs:
            parameters:
              msg: {taskOutputParameter: {producerTask: first, outputParameterKey: Output}}
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item-param-1: {parameterType: STRUCT}
    outputDefinitions:
      parameters:
        pipelinechannel--second-Output: {parameterType: LIST}
  comp-collect:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: LIST}
`

func TestStaticLoopPerIterationAndCollected(t *testing.T) {
	p := mustLoad(t, loopComponents+`
root:
  outputDefinitions:
    parameters:
      all: {parameterType: LIST}
  dag:
    outputs:
      parameters:
        all: {valueFromParameter: {producerSubtask: for-loop-1, outputParameterKey: pipelinechannel--second-Output}}
    tasks:
      for-loop-1:
        taskInfo: {name: for-loop-1}
        componentRef: {name: comp-for-loop-1}
        parameterIterator:
          itemInput: pipelinechannel--loop-item-param-1
          items: {raw: '[{"a": "x"}, {"a": "y"}]'}
        iteratorPolicy: {parallelismLimit: 1}
      collect:
        taskInfo: {name: collect}
        componentRef: {name: comp-collect}
        dependentTasks: [for-loop-1]
        inputs:
          parameters:
            msg: {taskOutputParameter: {producerTask: for-loop-1, outputParameterKey: pipelinechannel--second-Output}}
`)
	pr := mustCompile(t, p, testOptions())
	first := task(t, pr, "for-loop-1-first")
	want := &tektonv1.Matrix{Params: tektonv1.Params{{Name: "pf-iteration",
		Value: *tektonv1.NewStructuredValues(`{"index":0,"item":{"a":"x"}}`, `{"index":1,"item":{"a":"y"}}`)}}}
	if diff := cmp.Diff(want, first.Matrix); diff != "" {
		t.Errorf("matrix (-want +got):\n%s", diff)
	}
	var ext launch.Extra
	args := mainArgs(t, first, nil)
	ext = decodeExtra(t, args)
	if diff := cmp.Diff(map[string]string{"msg": `parseJson(string_value)["a"]`}, ext.IterationInputs); diff != "" {
		t.Errorf("iteration inputs (-want +got):\n%s", diff)
	}

	second := task(t, pr, "for-loop-1-second")
	if diff := cmp.Diff(map[string]string{
		"lp-msg": "$(tasks.for-loop-1-first.results.p-Output[*])",
		"np-msg": "$(tasks.for-loop-1-first.matrix.p-Output.length)",
	}, paramMap(second.Params)); diff != "" {
		t.Errorf("per-iteration params (-want +got):\n%s", diff)
	}
	args = mainArgs(t, second, nil)
	ext = decodeExtra(t, args)
	if diff := cmp.Diff(map[string]launch.ListInput{"msg": {Enveloped: true, PerIteration: true, ElementType: "STRING"}}, ext.ListInputs); diff != "" {
		t.Errorf("list inputs (-want +got):\n%s", diff)
	}
	tail := args[len(args)-6:]
	if diff := cmp.Diff([]string{"--iteration", "$(params.pf-iteration)", "--list-param", "msg", "$(params.np-msg)", "$(params.lp-msg[*])"}, tail); diff != "" {
		t.Errorf("list args (-want +got):\n%s", diff)
	}

	collect := task(t, pr, "collect")
	if collect.Matrix != nil {
		t.Error("fan-in task must not be matrixed")
	}
	ext = decodeExtra(t, mainArgs(t, collect, nil))
	if diff := cmp.Diff(map[string]launch.ListInput{"msg": {Enveloped: true, ElementType: "STRING"}}, ext.ListInputs); diff != "" {
		t.Errorf("collected list input (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"for-loop-1-first", "for-loop-1-second"}, collect.RunAfter); diff != "" {
		t.Errorf("fan-in runAfter (-want +got):\n%s", diff)
	}
	wantResults := []tektonv1.PipelineResult{{Name: "p-all", Type: tektonv1.ResultsTypeArray,
		Value: *tektonv1.NewStructuredValues("$(tasks.for-loop-1-second.results.p-Output[*])")}}
	if diff := cmp.Diff(wantResults, pr.Spec.PipelineSpec.Results); diff != "" {
		t.Errorf("pipeline results (-want +got):\n%s", diff)
	}
	if pr.Annotations[AnnotationUnboundedParallelism] != "for-loop-1" {
		t.Errorf("parallelismLimit must be reported, annotations: %v", pr.Annotations)
	}
}

func decodeExtra(t *testing.T, args []string) launch.Extra {
	t.Helper()
	var ext launch.Extra
	for i, a := range args {
		if a == "--extra-b64" {
			b, err := base64.StdEncoding.DecodeString(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ext); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ext
}

func TestDynamicLoopAndIterationCondition(t *testing.T) {
	p := mustLoad(t, `
components:
  comp-condition-2:
    dag:
      tasks:
        guarded:
          taskInfo: {name: guarded}
          componentRef: {name: comp-echo}
          inputs: {parameters: {msg: {componentInputParameter: pipelinechannel--loop-item-param-1}}}
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item-param-1: {parameterType: STRING}
  comp-for-loop-1:
    dag:
      tasks:
        condition-2:
          taskInfo: {name: condition-2}
          componentRef: {name: comp-condition-2}
          inputs: {parameters: {pipelinechannel--loop-item-param-1: {componentInputParameter: pipelinechannel--loop-item-param-1}}}
          triggerPolicy: {condition: "inputs.parameter_values['pipelinechannel--loop-item-param-1'] == 'b'"}
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item-param-1: {parameterType: STRING}
        pipelinechannel--items: {parameterType: LIST}
root:
  inputDefinitions:
    parameters:
      items: {parameterType: LIST, defaultValue: [a, b]}
  dag:
    tasks:
      gen:
        taskInfo: {name: gen}
        componentRef: {name: comp-gen}
      for-loop-1:
        taskInfo: {name: for-loop-1}
        componentRef: {name: comp-for-loop-1}
        dependentTasks: [gen]
        inputs: {parameters: {pipelinechannel--items: {taskOutputParameter: {producerTask: gen, outputParameterKey: Output}}}}
        parameterIterator:
          itemInput: pipelinechannel--loop-item-param-1
          items: {inputParameter: pipelinechannel--items}
      for-loop-3:
        taskInfo: {name: for-loop-3}
        componentRef: {name: comp-for-loop-1}
        inputs: {parameters: {pipelinechannel--items: {componentInputParameter: items}}}
        parameterIterator:
          itemInput: pipelinechannel--loop-item-param-1
          items: {inputParameter: pipelinechannel--items}
`)
	pr := mustCompile(t, p, testOptions())
	if diff := cmp.Diff(map[string]string{"items": `["a","b"]`}, paramMap(pr.Spec.Params)); diff != "" {
		t.Errorf("list param encoding (-want +got):\n%s", diff)
	}
	items := task(t, pr, "for-loop-1-items")
	if diff := cmp.Diff([]tektonv1.TaskResult{{Name: "iterations", Type: tektonv1.ResultsTypeArray}}, items.TaskSpec.Results); diff != "" {
		t.Errorf("items results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"p-list": "$(tasks.gen.results.p-Output)"}, paramMap(items.Params)); diff != "" {
		t.Errorf("items params (-want +got):\n%s", diff)
	}
	// A loop over a root parameter is expanded when compiling.
	if got := task(t, pr, "for-loop-3-condition-2-guarded").Matrix.Params[0].Value.ArrayVal; len(got) != 2 || got[1] != `{"index":1,"item":"b"}` {
		t.Errorf("loop over a bound root parameter not inlined: %v", got)
	}
	args := mainArgs(t, items, nil)
	if args[0] != "items" || !contains(args, "list=$(params.p-list)") {
		t.Errorf("items args: %v", args)
	}
	if got := decodeExtra(t, args).Levels; got != nil {
		t.Errorf("a single loop over a list needs no levels, got %v", got)
	}
	cond := task(t, pr, "for-loop-1-condition-2-cond")
	if cond.Matrix == nil {
		t.Error("a condition on the loop item must run per iteration (matrixed)")
	}
	guarded := task(t, pr, "for-loop-1-condition-2-guarded")
	if len(guarded.When) != 0 {
		t.Errorf("per-iteration condition must not become a when expression: %v", guarded.When)
	}
	ext := decodeExtra(t, mainArgs(t, guarded, nil))
	if diff := cmp.Diff([]string{"pf-guard-0"}, ext.Guards); diff != "" {
		t.Errorf("guards (-want +got):\n%s", diff)
	}
	if got := paramMap(guarded.Params)["lp-pf-guard-0"]; got != "$(tasks.for-loop-1-condition-2-cond.results.ok[*])" {
		t.Errorf("guard list param: %q", got)
	}
	want := tektonv1.Param{Name: "pf-iteration", Value: *tektonv1.NewStructuredValues("$(tasks.for-loop-1-items.results.iterations[*])")}
	if diff := cmp.Diff(want, guarded.Matrix.Params[0]); diff != "" {
		t.Errorf("matrix (-want +got):\n%s", diff)
	}
}

func TestOneOf(t *testing.T) {
	p := mustLoad(t, `
components:
  comp-condition-2:
    dag:
      outputs:
        parameters:
          pipelinechannel--a-Output: {valueFromParameter: {producerSubtask: a, outputParameterKey: Output}}
      tasks:
        a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: "heads"}}}}}
    inputDefinitions: {parameters: {pipelinechannel--flip: {parameterType: STRING}}}
    outputDefinitions: {parameters: {pipelinechannel--a-Output: {parameterType: STRING}}}
  comp-condition-3:
    dag:
      outputs:
        parameters:
          pipelinechannel--b-Output: {valueFromParameter: {producerSubtask: b, outputParameterKey: Output}}
      tasks:
        b: {taskInfo: {name: b}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: "tails"}}}}}
    inputDefinitions: {parameters: {pipelinechannel--flip: {parameterType: STRING}}}
    outputDefinitions: {parameters: {pipelinechannel--b-Output: {parameterType: STRING}}}
  comp-condition-branches-1:
    dag:
      outputs:
        parameters:
          pipelinechannel--condition-branches-1-oneof-1:
            valueFromOneof:
              parameterSelectors:
              - {producerSubtask: condition-2, outputParameterKey: pipelinechannel--a-Output}
              - {producerSubtask: condition-3, outputParameterKey: pipelinechannel--b-Output}
      tasks:
        condition-2:
          taskInfo: {name: condition-2}
          componentRef: {name: comp-condition-2}
          inputs: {parameters: {pipelinechannel--flip: {componentInputParameter: pipelinechannel--flip}}}
          triggerPolicy: {condition: "inputs.parameter_values['pipelinechannel--flip'] == 'heads'"}
        condition-3:
          taskInfo: {name: condition-3}
          componentRef: {name: comp-condition-3}
          inputs: {parameters: {pipelinechannel--flip: {componentInputParameter: pipelinechannel--flip}}}
          triggerPolicy: {condition: "!(inputs.parameter_values['pipelinechannel--flip'] == 'heads')"}
    inputDefinitions: {parameters: {pipelinechannel--flip: {parameterType: STRING}}}
    outputDefinitions: {parameters: {pipelinechannel--condition-branches-1-oneof-1: {parameterType: STRING}}}
root:
  inputDefinitions: {parameters: {flip: {parameterType: STRING, defaultValue: heads}}}
  dag:
    tasks:
      condition-branches-1:
        taskInfo: {name: condition-branches-1}
        componentRef: {name: comp-condition-branches-1}
        inputs: {parameters: {pipelinechannel--flip: {componentInputParameter: flip}}}
      use:
        taskInfo: {name: use}
        componentRef: {name: comp-echo}
        dependentTasks: [condition-branches-1]
        inputs: {parameters: {msg: {taskOutputParameter: {producerTask: condition-branches-1, outputParameterKey: pipelinechannel--condition-branches-1-oneof-1}}}}
`)
	pr := mustCompile(t, p, testOptions())
	// The branches must not be Tekton-skipped, or "use" would be skipped too.
	a := task(t, pr, "condition-branches-1-condition-2-a")
	if len(a.When) != 0 {
		t.Errorf("OneOf candidate guarded by a when expression: %v", a.When)
	}
	if diff := cmp.Diff([]string{"pf-guard-0"}, decodeExtra(t, mainArgs(t, a, nil)).Guards); diff != "" {
		t.Errorf("candidate guards (-want +got):\n%s", diff)
	}
	use := task(t, pr, "use")
	want := map[string]string{
		"p-pf-oneof-0-msg":   "$(tasks.condition-branches-1-condition-2-a.results.p-Output)",
		"p-pf-oneof-0-0-msg": "$(tasks.condition-branches-1-condition-2-cond.results.ok)",
		"p-pf-oneof-1-msg":   "$(tasks.condition-branches-1-condition-3-b.results.p-Output)",
		"p-pf-oneof-1-0-msg": "$(tasks.condition-branches-1-condition-3-cond.results.ok)",
	}
	if diff := cmp.Diff(want, paramMap(use.Params)); diff != "" {
		t.Errorf("OneOf consumer params (-want +got):\n%s", diff)
	}
	wantExt := map[string][]launch.OneOfCandidate{"msg": {
		{Input: "pf-oneof-0-msg", Guards: []string{"pf-oneof-0-0-msg"}},
		{Input: "pf-oneof-1-msg", Guards: []string{"pf-oneof-1-0-msg"}},
	}}
	if diff := cmp.Diff(wantExt, decodeExtra(t, mainArgs(t, use, nil)).OneOf); diff != "" {
		t.Errorf("OneOf config (-want +got):\n%s", diff)
	}
}

func TestNestedLoops(t *testing.T) {
	p := mustLoad(t, `
components:
  comp-for-loop-2:
    dag:
      outputs:
        parameters:
          pipelinechannel--inner-Output: {valueFromParameter: {producerSubtask: inner, outputParameterKey: Output}}
      tasks:
        inner:
          taskInfo: {name: inner}
          componentRef: {name: comp-echo}
          inputs:
            parameters:
              msg: {componentInputParameter: pipelinechannel--loop-item-param-2}
        outer-use:
          taskInfo: {name: outer-use}
          componentRef: {name: comp-echo}
          inputs:
            parameters:
              msg: {taskOutputParameter: {producerTask: inner, outputParameterKey: Output}}
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item-param-1: {parameterType: STRING}
        pipelinechannel--loop-item-param-2: {parameterType: STRING}
    outputDefinitions:
      parameters:
        pipelinechannel--inner-Output: {parameterType: LIST}
  comp-for-loop-1:
    dag:
      outputs:
        parameters:
          pipelinechannel--inner-Output: {valueFromParameter: {producerSubtask: for-loop-2, outputParameterKey: pipelinechannel--inner-Output}}
      tasks:
        outer:
          taskInfo: {name: outer}
          componentRef: {name: comp-echo}
          inputs: {parameters: {msg: {componentInputParameter: pipelinechannel--loop-item-param-1}}}
        for-loop-2:
          taskInfo: {name: for-loop-2}
          componentRef: {name: comp-for-loop-2}
          inputs: {parameters: {pipelinechannel--loop-item-param-1: {componentInputParameter: pipelinechannel--loop-item-param-1}}}
          parameterIterator:
            itemInput: pipelinechannel--loop-item-param-2
            items: {raw: '["x", "y", "z"]'}
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item-param-1: {parameterType: STRING}
    outputDefinitions:
      parameters:
        pipelinechannel--inner-Output: {parameterType: LIST}
  comp-collect:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: LIST}
root:
  dag:
    tasks:
      collect:
        taskInfo: {name: collect}
        componentRef: {name: comp-collect}
        dependentTasks: [for-loop-1]
        inputs:
          parameters:
            msg: {taskOutputParameter: {producerTask: for-loop-1, outputParameterKey: pipelinechannel--inner-Output}}
      for-loop-1:
        taskInfo: {name: for-loop-1}
        componentRef: {name: comp-for-loop-1}
        parameterIterator:
          itemInput: pipelinechannel--loop-item-param-1
          items: {raw: '["a", "b"]'}
`)
	pr := mustCompile(t, p, testOptions())
	inner := task(t, pr, "for-loop-1-for-loop-2-inner")
	vals := inner.Matrix.Params[0].Value.ArrayVal
	if len(vals) != 6 || vals[5] != `{"index":2,"item":"z","path":[1,2],"items":["b","z"]}` {
		t.Errorf("product iterations: %v", vals)
	}
	ext0 := decodeExtra(t, mainArgs(t, inner, nil))
	if diff := cmp.Diff(map[string]int{"msg": 1}, ext0.IterationLevels); diff != "" {
		t.Errorf("iteration levels (-want +got):\n%s", diff)
	}
	outer := task(t, pr, "for-loop-1-outer")
	if n := len(outer.Matrix.Params[0].Value.ArrayVal); n != 2 {
		t.Errorf("outer level matrix has %d values, want 2", n)
	}
	use := decodeExtra(t, mainArgs(t, task(t, pr, "for-loop-1-for-loop-2-outer-use"), nil))
	if diff := cmp.Diff(map[string]launch.ListInput{"msg": {Enveloped: true, PerIteration: true, Level: 1, ElementType: "STRING"}}, use.ListInputs); diff != "" {
		t.Errorf("per-iteration pick in nested loop (-want +got):\n%s", diff)
	}
	collect := task(t, pr, "collect")
	ext := decodeExtra(t, mainArgs(t, collect, nil))
	if diff := cmp.Diff(map[string]launch.ListInput{"msg": {Enveloped: true, ElementType: "STRING"}}, ext.ListInputs); diff != "" {
		t.Errorf("nested collected (-want +got):\n%s", diff)
	}
	if !decodeExtra(t, mainArgs(t, inner, nil)).ResultEnvelope {
		t.Error("a matrixed task must write result envelopes")
	}
	if decodeExtra(t, mainArgs(t, collect, nil)).ResultEnvelope {
		t.Error("a task outside loops must not write result envelopes")
	}
}

func TestKubernetesPlatform(t *testing.T) {
	p := mustLoad(t, `
root:
  inputDefinitions:
    parameters:
      secret: {parameterType: STRING, defaultValue: s3-creds}
  dag:
    tasks:
      first:
        taskInfo: {name: first}
        componentRef: {name: comp-echo}
        inputs: {parameters: {msg: {runtimeValue: {constant: pvc-a}}}}
      second:
        taskInfo: {name: second}
        componentRef: {name: comp-num}
        inputs: {parameters: {count: {runtimeValue: {constant: 1}}, pipelinechannel--secret: {componentInputParameter: secret}, pipelinechannel--first-Output: {taskOutputParameter: {producerTask: first, outputParameterKey: Output}}}}
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-num:
          secretAsEnv:
          - secretNameParameter: {componentInputParameter: pipelinechannel--secret}
            keyToEnv: [{secretKey: key, envVar: KEY}]
          pvcMount:
          - mountPath: /data
            taskOutputParameter: {producerTask: first, outputParameterKey: Output}
          nodeSelector: {labels: {pool: gpu}}
          tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
          podMetadata: {labels: {team: a}, annotations: {note: x}}
          imagePullSecret: [{secretName: regcred}]
          fieldPathAsEnv: [{name: POD, fieldPath: metadata.name}]
          activeDeadlineSeconds: 60
`)
	pr := mustCompile(t, p, testOptions())
	second := task(t, pr, "second")
	main := second.TaskSpec.Steps[len(second.TaskSpec.Steps)-1]
	wantEnv := []corev1.EnvVar{
		{Name: "KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s3-creds"}, Key: "key"}}},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	if diff := cmp.Diff(wantEnv, main.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	var claim string
	for _, v := range second.TaskSpec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != "$(params.k-pvcmount-0-pvcnameparameter)" || paramMap(second.Params)["k-pvcmount-0-pvcnameparameter"] != "$(tasks.first.results.p-Output)" {
		t.Errorf("PVC from task output: claim %q, params %v", claim, paramMap(second.Params))
	}
	if second.Timeout == nil || second.Timeout.Duration.Seconds() != 60 {
		t.Errorf("timeout: %v", second.Timeout)
	}
	if len(pr.Spec.TaskRunSpecs) != 1 {
		t.Fatalf("taskRunSpecs: %+v", pr.Spec.TaskRunSpecs)
	}
	rs := pr.Spec.TaskRunSpecs[0]
	if rs.PipelineTaskName != "second" || rs.PodTemplate.NodeSelector["pool"] != "gpu" || len(rs.PodTemplate.Tolerations) != 1 ||
		rs.PodTemplate.ImagePullSecrets[0].Name != "regcred" || rs.Metadata.Labels["team"] != "a" || rs.Metadata.Annotations["note"] != "x" {
		t.Errorf("taskRunSpec: %+v", rs)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, root, want string
		opts             func(*compile.Options)
	}{
		{
			name: "required parameter without value",
			root: `
root:
  inputDefinitions: {parameters: {x: {parameterType: STRING}}}
  dag:
    tasks:
      a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {componentInputParameter: x}}}}
`,
			want: `root.dag.tasks['a'].inputs.parameters['msg']: root parameter "x" is required and has no value`,
		},
		{
			name: "constant with a Tekton reference",
			root: `
root:
  dag:
    tasks:
      a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: "$(params.x)"}}}}}
`,
			want: "contains a Tekton variable reference",
		},
		{
			name: "run id",
			root: `
root:
  dag:
    tasks:
      a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: x}}}}}
`,
			opts: func(o *compile.Options) { o.RunID = "" },
			want: "RunID is empty",
		},
		{
			name: "kubernetes setting tekton cannot apply",
			root: `
root:
  dag:
    tasks:
      a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: x}}}}}
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-echo:
          podResourceClaims: [{resourceClaimTemplateName: gpu}]
`,
			want: "podResourceClaims: Dynamic Resource Allocation claims cannot be set",
		},
		{
			name: "pod template value known only at run time",
			root: `
components:
  comp-read:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: STRING}
        pipelinechannel--a-Output: {parameterType: STRING}
root:
  dag:
    tasks:
      a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: x}}}}}
      b:
        taskInfo: {name: b}
        componentRef: {name: comp-read}
        inputs:
          parameters:
            msg: {runtimeValue: {constant: x}}
            pipelinechannel--a-Output: {taskOutputParameter: {producerTask: a, outputParameterKey: Output}}
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-echo:
          nodeSelector: {nodeSelectorJson: {componentInputParameter: pipelinechannel--a-Output}}
`,
			want: "nodeSelector.nodeSelectorJson: only known at run time",
		},
		{
			name: "retry on a sub-pipeline",
			root: `
components:
  comp-sub:
    dag:
      tasks:
        a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: x}}}}}
root:
  dag:
    tasks:
      sub: {taskInfo: {name: sub}, componentRef: {name: comp-sub}, retryPolicy: {maxRetryCount: 2}}
`,
			want: "root.dag.tasks['sub'].retryPolicy: retrying a whole sub-pipeline is not supported",
		},
		{
			name: "required root artifact",
			root: `
components:
  comp-read:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: STRING}
      artifacts:
        data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}
root:
  inputDefinitions:
    artifacts:
      data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}
  dag:
    tasks:
      a:
        taskInfo: {name: a}
        componentRef: {name: comp-read}
        inputs:
          parameters: {msg: {runtimeValue: {constant: x}}}
          artifacts: {data: {componentInputArtifact: data}}
`,
			want: `root.dag.tasks['a'].inputs.artifacts['data']: root input artifact "data" is required`,
		},
		{
			name: "oneof",
			root: `
components:
  comp-branches:
    dag:
      outputs:
        parameters:
          out:
            valueFromOneof:
              parameterSelectors:
              - {producerSubtask: a, outputParameterKey: Output}
              - {producerSubtask: b, outputParameterKey: Output}
      tasks:
        a: {taskInfo: {name: a}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: x}}}}}
        b: {taskInfo: {name: b}, componentRef: {name: comp-echo}, inputs: {parameters: {msg: {runtimeValue: {constant: "z"}}}}}
    outputDefinitions:
      parameters:
        out: {parameterType: STRING}
root:
  dag:
    tasks:
      br: {taskInfo: {name: br}, componentRef: {name: comp-branches}}
`,
			want: "root.dag.tasks['br'] > components['comp-branches'].dag.outputs.parameters['out']: OneOf candidate is not produced under a condition",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.root)
			opts := testOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			_, err := Compile(p, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// TestMatrixNeedsBeta proves RequiredFeatureFlags is needed: with the API
// fields limited to "stable", Tekton rejects the matrix of a loop.
func TestMatrixNeedsBeta(t *testing.T) {
	p := mustLoad(t, loopComponents+`
root:
  dag:
    tasks:
      for-loop-1:
        taskInfo: {name: for-loop-1}
        componentRef: {name: comp-for-loop-1}
        parameterIterator:
          itemInput: pipelinechannel--loop-item-param-1
          items: {raw: '[{"a": "x"}]'}
`)
	pr := mustCompile(t, p, testOptions())
	err := Validate(context.Background(), pr, map[string]string{"enable-api-fields": "stable"})
	if err == nil || !strings.Contains(err.Error(), "matrix") {
		t.Fatalf("want a matrix feature-gate error with enable-api-fields=stable, got %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	for _, g := range goldenFiles {
		p := loadCorpus(t, g.file)
		opts := goldenOptions()
		opts.Params = paramsOf(t, g.params)
		a, err := Compile(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			b, err := Compile(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, b); diff != "" {
				t.Fatalf("%s: compile %d differs (-first +now):\n%s", g.golden, i, diff)
			}
		}
	}
}

func TestNames(t *testing.T) {
	n := newNamer()
	long := strings.Repeat("very-long-component-name-", 4)
	got := []string{
		n.name([]string{"Train_Model"}, ""),
		n.name([]string{"for-loop-2", "train"}, "cond"),
		n.name([]string{"a", "b-c"}, ""),
		n.name([]string{"a-b", "c"}, ""), // joins to the same text: must differ
		n.name([]string{long, long}, ""),
		n.name([]string{long, long}, ""), // same path again: same name
		n.name([]string{"loop"}, "items"),
		n.name([]string{"loop", "items"}, ""), // a user task named like a generated one
	}
	for _, s := range got {
		if len(s) > 63 || compile.DNSLabel(s) != s {
			t.Errorf("%q is not a DNS-1123 label", s)
		}
	}
	if got[0] != "train-model" || got[1] != "for-loop-2-train-cond" || got[2] != "a-b-c" {
		t.Errorf("names: %v", got)
	}
	if got[3] == got[2] {
		t.Errorf("collision not resolved: %v", got)
	}
	if got[6] == got[7] {
		t.Errorf("generated and user task share a name: %v", got)
	}
	if got[4] != got[5] {
		t.Errorf("same path, different names: %q %q", got[4], got[5])
	}
	if diff := cmp.Diff("pf-abc-def", objectName("ABC_def")); diff != "" {
		t.Error(diff)
	}
}
