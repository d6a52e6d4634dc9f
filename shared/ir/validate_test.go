package ir

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"
)

// baseDocs returns testdata/base.yaml decoded: the spec and the platform doc.
func baseDocs(t testing.TB) (spec, platform map[string]any) {
	t.Helper()
	data, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitDocuments(data)
	if err != nil || len(docs) != 2 {
		t.Fatalf("base.yaml: %v (%d docs)", err, len(docs))
	}
	return docs[0], docs[1]
}

// encodeDocs writes documents as a JSON stream (one object per document),
// which Parse accepts like multi-document YAML.
func encodeDocs(t testing.TB, docs ...map[string]any) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, d := range docs {
		if err := json.NewEncoder(&b).Encode(d); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// at walks a dotted key path (keys never contain dots in these tests) and
// returns the parent map and the last key. List elements are reached with
// a numeric key.
func at(t testing.TB, doc map[string]any, path string) (any, string) {
	t.Helper()
	keys := strings.Split(path, ".")
	var cur any = doc
	for _, k := range keys[:len(keys)-1] {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			var i int
			if err := json.Unmarshal([]byte(k), &i); err != nil || i >= len(c) {
				t.Fatalf("bad index %q in %s", k, path)
			}
			cur = c[i]
		default:
			t.Fatalf("path %s: %q is not a container", path, k)
		}
	}
	return cur, keys[len(keys)-1]
}

func set(t testing.TB, doc map[string]any, path string, v any) {
	t.Helper()
	parent, k := at(t, doc, path)
	switch c := parent.(type) {
	case map[string]any:
		c[k] = v
	case []any:
		var i int
		if err := json.Unmarshal([]byte(k), &i); err != nil || i >= len(c) {
			t.Fatalf("set %s: bad index", path)
		}
		c[i] = v
	default:
		t.Fatalf("set %s: parent is not a container", path)
	}
}

func del(t testing.TB, doc map[string]any, path string) {
	t.Helper()
	parent, k := at(t, doc, path)
	m, ok := parent.(map[string]any)
	if !ok {
		t.Fatalf("del %s: parent is not a map", path)
	}
	if _, ok := m[k]; !ok {
		t.Fatalf("del %s: no such key", path)
	}
	delete(m, k)
}

func appendTo(t testing.TB, doc map[string]any, path string, v any) {
	t.Helper()
	parent, k := at(t, doc, path)
	m := parent.(map[string]any)
	l, _ := m[k].([]any)
	m[k] = append(l, v)
}

// want is an expected problem: the exact path and a fragment of the message.
type want struct {
	Path, Contains string
}

// problemsOf loads data and returns its problems as wants whose Contains
// is replaced by the matching expected fragment when it matches, so
// cmp.Diff shows real messages for mismatches.
func problemsOf(t *testing.T, data []byte, expected []want) []want {
	t.Helper()
	_, err := Load(data)
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return []want{{Path: "<not a ValidationError>", Contains: err.Error()}}
	}
	var got []want
	for i, p := range ve.Problems {
		msg := p.Message
		if i < len(expected) && expected[i].Path == p.Path && strings.Contains(p.Message, expected[i].Contains) {
			msg = expected[i].Contains
		}
		got = append(got, want{Path: p.Path, Contains: msg})
	}
	return got
}

func TestBaseIsValid(t *testing.T) {
	data, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(data)
	if err != nil {
		t.Fatalf("Load(base.yaml): %v", err)
	}
	if got := p.ExecutorExtras["exec-train"]; got == nil || got.ResourceCPULimit != "2" || got.ResourceMemoryLimit != "4Gi" {
		t.Errorf("ExecutorExtras[exec-train] = %+v, want the string machine fields", got)
	}
	if got := len(p.InputLiterals[""]["mode"]); got != 2 {
		t.Errorf("InputLiterals[\"\"][mode] has %d values, want 2", got)
	}
	if p.Kubernetes == nil || len(p.Kubernetes.Executors["exec-train"].SecretAsEnv) != 1 {
		t.Errorf("Kubernetes = %+v, want exec-train with one secretAsEnv", p.Kubernetes)
	}
	// The JSON stream form of the same documents loads too.
	spec, plat := baseDocs(t)
	if _, err := Load(encodeDocs(t, spec, plat)); err != nil {
		t.Errorf("Load(JSON stream of base): %v", err)
	}
}

func TestValidateRules(t *testing.T) {
	const exitTask = "root.dag.tasks.cleanup"
	tests := []struct {
		name   string
		mutate func(t testing.TB, spec, plat map[string]any)
		want   []want
	}{{
		name:   "schema version",
		mutate: func(t testing.TB, s, _ map[string]any) { set(t, s, "schemaVersion", "3.0.0") },
		want:   []want{{"schemaVersion", `unsupported schemaVersion "3.0.0"`}},
	}, {
		name:   "empty pipeline name",
		mutate: func(t testing.TB, s, _ map[string]any) { set(t, s, "pipelineInfo.name", "") },
		want:   []want{{"pipelineInfo.name", "pipelineInfo.name is empty"}},
	}, {
		name:   "root missing",
		mutate: func(t testing.TB, s, _ map[string]any) { del(t, s, "root") },
		want:   []want{{"root", "root component is missing"}},
	}, {
		name: "componentRef to a missing component",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.cleanup.componentRef.name", "comp-nope")
		},
		want: []want{{"root.dag.tasks['cleanup'].componentRef.name", `component "comp-nope" is not defined`}},
	}, {
		name: "executorLabel not in deploymentSpec",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-gen.executorLabel", "exec-nope")
		},
		want: []want{{"components['comp-gen'].executorLabel", `executor "exec-nope" is not in deploymentSpec.executors`}},
	}, {
		name: "dependent task missing",
		mutate: func(t testing.TB, s, _ map[string]any) {
			appendTo(t, s, "root.dag.tasks.condition-1.dependentTasks", "nope")
		},
		want: []want{{"root.dag.tasks['condition-1'].dependentTasks[1]", `dependent task "nope" is not in this DAG`}},
	}, {
		name: "exit handler depends on an unknown task",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, exitTask+".dependentTasks", []any{"exit-handler-9"})
		},
		want: []want{{"root.dag.tasks['cleanup'].dependentTasks[0]", `dependent task "exit-handler-9" is not in this DAG (tasks: cleanup, condition-1, for-loop-2, gen)`}},
	}, {
		name: "producer task missing",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.condition-1.inputs.parameters.pipelinechannel--gen-Output.taskOutputParameter.producerTask", "gone")
		},
		want: []want{{"root.dag.tasks['condition-1'].inputs.parameters['pipelinechannel--gen-Output'].taskOutputParameter.producerTask", `producer task "gone" is not in this DAG`}},
	}, {
		name: "output parameter key not declared by producer",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.condition-1.inputs.parameters.pipelinechannel--gen-Output.taskOutputParameter.outputParameterKey", "Out")
		},
		want: []want{{"root.dag.tasks['condition-1'].inputs.parameters['pipelinechannel--gen-Output'].taskOutputParameter.outputParameterKey", `task "gen" (component "comp-gen") has no output parameter "Out" (declared: Output)`}},
	}, {
		name: "output artifact key not declared by producer",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.for-loop-2.inputs.artifacts.pipelinechannel--gen-data.taskOutputArtifact.outputArtifactKey", "dataset")
		},
		want: []want{{"root.dag.tasks['for-loop-2'].inputs.artifacts['pipelinechannel--gen-data'].taskOutputArtifact.outputArtifactKey", `has no output artifact "dataset" (declared: data)`}},
	}, {
		name: "componentInputParameter not declared by the enclosing DAG",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-condition-1.dag.tasks.train.inputs.parameters.lr.componentInputParameter", "pipelinechannel--rate")
		},
		want: []want{{"components['comp-condition-1'].dag.tasks['train'].inputs.parameters['lr'].componentInputParameter", `components['comp-condition-1'] declares no input parameter "pipelinechannel--rate"`}},
	}, {
		name: "componentInputArtifact not declared by the enclosing DAG",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-condition-1.dag.tasks.train.inputs.artifacts.data.componentInputArtifact", "raw")
		},
		want: []want{{"components['comp-condition-1'].dag.tasks['train'].inputs.artifacts['data'].componentInputArtifact", `declares no input artifact "raw"`}},
	}, {
		name: "task input not declared by the callee",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-condition-1.dag.tasks.train.inputs.parameters.rate", map[string]any{"runtimeValue": map[string]any{"constant": 1}})
		},
		want: []want{{"components['comp-condition-1'].dag.tasks['train'].inputs.parameters['rate']", `component "comp-train" declares no input parameter "rate" (declared: epochs, lr, name)`}},
	}, {
		name: "required callee inputs missing",
		mutate: func(t testing.TB, s, _ map[string]any) {
			del(t, s, "components.comp-condition-1.dag.tasks.train.inputs.parameters.lr")
			del(t, s, "components.comp-condition-1.dag.tasks.train.inputs.artifacts.data")
		},
		want: []want{
			{"components['comp-condition-1'].dag.tasks['train'].inputs.artifacts['data']", `required input artifact "data" of component "comp-train" is not passed`},
			{"components['comp-condition-1'].dag.tasks['train'].inputs.parameters['lr']", `required input parameter "lr" of component "comp-train" is not passed`},
		},
	}, {
		name: "parameter type mismatch from a component input",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.condition-1.inputs.parameters.pipelinechannel--gen-Output", map[string]any{"componentInputParameter": "lr"})
		},
		want: []want{{"root.dag.tasks['condition-1'].inputs.parameters['pipelinechannel--gen-Output']", "type mismatch: source is NUMBER_DOUBLE, component \"comp-condition-1\" expects NUMBER_INTEGER"}},
	}, {
		name: "parameter type mismatch from a task output",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-gen.outputDefinitions.parameters.Output.parameterType", "STRING")
		},
		want: []want{{"root.dag.tasks['condition-1'].inputs.parameters['pipelinechannel--gen-Output']", "type mismatch: source is STRING, component \"comp-condition-1\" expects NUMBER_INTEGER"}},
	}, {
		name: "constant of the wrong type",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-condition-1.dag.tasks.train.inputs.parameters.lr", map[string]any{"runtimeValue": map[string]any{"constant": "fast"}})
		},
		want: []want{{"components['comp-condition-1'].dag.tasks['train'].inputs.parameters['lr'].runtimeValue.constant", `constant "fast" does not match the input's type NUMBER_DOUBLE`}},
	}, {
		name: "default of the wrong type",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.inputDefinitions.parameters.lr.defaultValue", "high")
		},
		want: []want{{"root.inputDefinitions.parameters['lr'].defaultValue", `default "high" does not match parameterType NUMBER_DOUBLE`}},
	}, {
		name: "constant reads a parameter the task lacks",
		mutate: func(t testing.TB, s, _ map[string]any) {
			del(t, s, "components.comp-for-loop-2.dag.tasks.train-2.inputs.parameters.pipelinechannel--loop-item-param-1")
		},
		want: []want{{"components['comp-for-loop-2'].dag.tasks['train-2'].inputs.parameters['name'].runtimeValue.constant", `constant reads {{$.inputs.parameters['pipelinechannel--loop-item-param-1']}}, which is not an input of the task`}},
	}, {
		name: "dependency cycle",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.gen.dependentTasks", []any{"cleanup"})
		},
		want: []want{{"root.dag.tasks", "dependency cycle: cleanup -> condition-1 -> gen -> cleanup"}},
	}, {
		name: "self dependency",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.gen.dependentTasks", []any{"gen"})
		},
		want: []want{{"root.dag.tasks['gen'].dependentTasks[0]", "task depends on itself"}},
	}, {
		name: "component calls itself",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-for-loop-2.dag.tasks.train-2.componentRef.name", "comp-for-loop-2")
		},
		want: []want{
			{"components['comp-for-loop-2']", "component calls itself: comp-for-loop-2 -> comp-for-loop-2"},
			// The recursive task's inputs no longer fit its new callee either.
			{"components['comp-for-loop-2'].dag.tasks['train-2'].inputs.artifacts['data']", `component "comp-for-loop-2" declares no input artifact "data"`},
			{"components['comp-for-loop-2'].dag.tasks['train-2'].inputs.artifacts['pipelinechannel--gen-data']", `required input artifact "pipelinechannel--gen-data" of component "comp-for-loop-2" is not passed`},
			{"components['comp-for-loop-2'].dag.tasks['train-2'].inputs.parameters['lr']", `component "comp-for-loop-2" declares no input parameter "lr"`},
			{"components['comp-for-loop-2'].dag.tasks['train-2'].inputs.parameters['name']", `component "comp-for-loop-2" declares no input parameter "name"`},
		},
	}, {
		name: "placeholder names an undeclared input",
		mutate: func(t testing.TB, s, _ map[string]any) {
			appendTo(t, s, "deploymentSpec.executors.exec-train.container.args", "{{$.inputs.parameters['rate']}}")
		},
		want: []want{{"deploymentSpec.executors['exec-train'].container.args[6]", `placeholder {{$.inputs.parameters['rate']}} names input parameter "rate", which component "comp-train" does not declare`}},
	}, {
		name: "placeholder names an undeclared output artifact",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "deploymentSpec.executors.exec-gen.container.command.2", "echo > {{$.outputs.artifacts['dataset'].path}}")
		},
		want: []want{{"deploymentSpec.executors['exec-gen'].container.command[2]", `names output artifact "dataset"`}},
	}, {
		name: "malformed placeholder",
		mutate: func(t testing.TB, s, _ map[string]any) {
			appendTo(t, s, "deploymentSpec.executors.exec-train.container.args", "{{$.inputs.parameter['lr']}}")
			appendTo(t, s, "deploymentSpec.executors.exec-train.container.args", "--x={{$.inputs.parameters['lr']")
		},
		want: []want{
			{"deploymentSpec.executors['exec-train'].container.args[6]", `malformed placeholder "{{$.inputs.parameter['lr']}}": unknown placeholder`},
			{"deploymentSpec.executors['exec-train'].container.args[7]", "unterminated placeholder"},
		},
	}, {
		name: "IfPresent names an undeclared input",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "deploymentSpec.executors.exec-train.container.args.4", `{"IfPresent": {"InputName": "nick", "Then": ["--nick"]}}`)
		},
		want: []want{{"deploymentSpec.executors['exec-train'].container.args[4]", `IfPresent names input "nick", which component "comp-train" does not declare`}},
	}, {
		name: "condition does not parse",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.condition-1.triggerPolicy.condition", "int(inputs.parameter_values['pipelinechannel--gen-Output']) >")
		},
		want: []want{{"root.dag.tasks['condition-1'].triggerPolicy.condition", "Syntax error"}},
	}, {
		name: "condition reads an unknown inputs field",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.condition-1.triggerPolicy.condition", "inputs.parameter_value['pipelinechannel--gen-Output'] == 1")
		},
		want: []want{{"root.dag.tasks['condition-1'].triggerPolicy.condition", "unknown field inputs.parameter_value"}},
	}, {
		name: "condition reads a parameter the task lacks",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.condition-1.triggerPolicy.condition", "inputs.parameter_values['pipelinechannel--flip-Output'] == 'heads'")
		},
		want: []want{{"root.dag.tasks['condition-1'].triggerPolicy.condition", `condition reads parameter "pipelinechannel--flip-Output", which is not an input of the task`}},
	}, {
		name: "iterator items not a JSON list",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.for-loop-2.parameterIterator.items.raw", `{"a": 1}`)
		},
		want: []want{{"root.dag.tasks['for-loop-2'].parameterIterator.items.raw", `items must be a JSON list, got "{\"a\": 1}"`}},
	}, {
		name: "iterator over a parameter the task lacks",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.for-loop-2.parameterIterator.items", map[string]any{"inputParameter": "pipelinechannel--list"})
		},
		want: []want{{"root.dag.tasks['for-loop-2'].parameterIterator.items.inputParameter", `"pipelinechannel--list" is not an input parameter of the task`}},
	}, {
		name: "negative parallelism and retries",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.for-loop-2.iteratorPolicy.parallelismLimit", -1)
			set(t, s, "root.dag.tasks.gen.retryPolicy", map[string]any{"maxRetryCount": -2})
		},
		want: []want{
			{"root.dag.tasks['for-loop-2'].iteratorPolicy.parallelismLimit", "parallelismLimit -1 is negative"},
			{"root.dag.tasks['gen'].retryPolicy.maxRetryCount", "maxRetryCount -2 is negative"},
		},
	}, {
		name: "platform config for an unknown executor",
		mutate: func(t testing.TB, _, p map[string]any) {
			set(t, p, "platforms.kubernetes.deploymentSpec.executors.exec-nope", map[string]any{})
		},
		want: []want{{"platforms.kubernetes.deploymentSpec.executors['exec-nope']", `executor "exec-nope" is not in deploymentSpec.executors`}},
	}, {
		name: "platform entries without a name or mount path",
		mutate: func(t testing.TB, _, p map[string]any) {
			del(t, p, "platforms.kubernetes.deploymentSpec.executors.exec-train.secretAsEnv.0.secretNameParameter")
			set(t, p, "platforms.kubernetes.deploymentSpec.executors.exec-train.pvcMount", []any{map[string]any{"constant": "pvc-1"}})
		},
		want: []want{
			{"platforms.kubernetes.deploymentSpec.executors['exec-train'].pvcMount[0].mountPath", "mountPath is empty"},
			{"platforms.kubernetes.deploymentSpec.executors['exec-train'].secretAsEnv[0]", "secret has no name"},
		},
	}, {
		name: "several problems at once",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "pipelineInfo.name", "")
			set(t, s, "schemaVersion", "2.2.0")
			set(t, s, "root.dag.tasks.cleanup.componentRef.name", "comp-nope")
		},
		want: []want{
			{"pipelineInfo.name", "pipelineInfo.name is empty"},
			{"root.dag.tasks['cleanup'].componentRef.name", `component "comp-nope" is not defined in components`},
			{"schemaVersion", `unsupported schemaVersion "2.2.0" (want 2.0.0 or 2.1.0)`},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, plat := baseDocs(t)
			tc.mutate(t, spec, plat)
			got := problemsOf(t, encodeDocs(t, spec, plat), tc.want)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t testing.TB, spec, plat map[string]any)
		want   []want
	}{{
		name:   "top level",
		mutate: func(t testing.TB, s, _ map[string]any) { set(t, s, "components_1", map[string]any{}) },
		want:   []want{{"components_1", `unknown field "components_1" at top level of the pipeline spec`}},
	}, {
		name:   "nested in a task",
		mutate: func(t testing.TB, s, _ map[string]any) { set(t, s, "root.dag.tasks.gen.retryPolicyX", 3) },
		want:   []want{{"root.dag.tasks['gen'].retryPolicyX", `unknown field "retryPolicyX"`}},
	}, {
		name: "unknown enum value",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.inputDefinitions.parameters.steps.parameterType", "TASK_CONFIG")
		},
		want: []want{{"root.inputDefinitions.parameters['steps'].parameterType", `unknown enum value TASK_CONFIG`}},
	}, {
		name: "in an executor",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "deploymentSpec.executors.exec-gen.container.gpus", 1)
		},
		want: []want{{"deploymentSpec.executors['exec-gen'].container.gpus", `unknown field "gpus"`}},
	}, {
		name: "rejected newer-SDK field",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "components.comp-train.taskConfigPassthroughs", []any{map[string]any{"field": "RESOURCES"}})
		},
		want: []want{{"components['comp-train'].taskConfigPassthroughs", "dsl.TaskConfig passthroughs are not supported"}},
	}, {
		name: "in the platform document",
		mutate: func(t testing.TB, _, p map[string]any) {
			set(t, p, "platforms.kubernetes.deploymentSpec.executors.exec-train.tolerations.0.tolerance", "x")
		},
		want: []want{{"platforms.kubernetes.deploymentSpec.executors['exec-train'].tolerations[0].tolerance", `unknown field "tolerance"`}},
	}, {
		name: "ignored descriptive field",
		mutate: func(t testing.TB, s, _ map[string]any) {
			set(t, s, "root.dag.tasks.gen.description", "makes data")
		},
		want: nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, plat := baseDocs(t)
			tc.mutate(t, spec, plat)
			got := problemsOf(t, encodeDocs(t, spec, plat), tc.want)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// A Pipeline assembled in code (as the Go DSL does) has no Deployment;
// Validate decodes it from Spec.DeploymentSpec with the same policy.
func TestValidateBuiltInCode(t *testing.T) {
	loaded := loadBase(t)
	p := &Pipeline{Spec: loaded.Spec}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := p.ExecutorExtras["exec-train"]; got == nil || got.ResourceCPULimit != "2" {
		t.Errorf("ExecutorExtras[exec-train] = %+v, want resourceCpuLimit 2 lifted", got)
	}
	if len(p.Deployment.GetExecutors()) != 2 {
		t.Errorf("Deployment has %d executors, want 2", len(p.Deployment.GetExecutors()))
	}
	bad := &Pipeline{Spec: loaded.Spec}
	bad.Spec.DeploymentSpec.Fields["executors"].GetStructValue().Fields["exec-gen"].GetStructValue().Fields["gpus"] = structpb.NewNumberValue(1)
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), `deploymentSpec.executors['exec-gen'].gpus: unknown field "gpus"`) {
		t.Errorf("Validate with an unknown executor field = %v, want it named with its path", err)
	}
}
