package argo

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	"github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/expr-lang/expr"
	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	apiv1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
)

func compileCorpus(t *testing.T, file string) *wfv1.Workflow {
	t.Helper()
	p := loadCorpus(t, file)
	wf, err := Compile(p, testOptions(p))
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	if err := validateWorkflow(wf); err != nil {
		t.Fatalf("Argo validation: %v", err)
	}
	return wf
}

func template_(t *testing.T, wf *wfv1.Workflow, name string) *wfv1.Template {
	t.Helper()
	for i := range wf.Spec.Templates {
		if wf.Spec.Templates[i].Name == name {
			return &wf.Spec.Templates[i]
		}
	}
	var names []string
	for _, tm := range wf.Spec.Templates {
		names = append(names, tm.Name)
	}
	t.Fatalf("no template %q (have %v)", name, names)
	return nil
}

func dagTask(t *testing.T, tmpl *wfv1.Template, name string) *wfv1.DAGTask {
	t.Helper()
	for i := range tmpl.DAG.Tasks {
		if tmpl.DAG.Tasks[i].Name == name {
			return &tmpl.DAG.Tasks[i]
		}
	}
	t.Fatalf("template %s has no task %q", tmpl.Name, name)
	return nil
}

func TestFieldName(t *testing.T) {
	long := strings.Repeat("a", 140)
	for _, tc := range []struct{ in, want string }{
		{"train", "train"},
		{"Train-Model-2", "Train-Model-2"},
		{"for-loop-1", "for-loop-1"},
		{"a.b", "a-b-" + shortHash("a.b")},
		{"2nd", "t-2nd-" + shortHash("2nd")},
		{"_x_", "x-" + shortHash("_x_")},
		{long, strings.Repeat("a", 128-9) + "-" + shortHash(long)},
	} {
		if diff := cmp.Diff(tc.want, fieldName(tc.in, maxFieldName)); diff != "" {
			t.Errorf("fieldName(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	n := newNamer(maxFieldName)
	got := []string{n.name("a"), n.name("a"), n.name("a")}
	if got[0] != "a" || got[1] == "a" || got[2] == got[1] {
		t.Errorf("namer does not keep names unique: %v", got)
	}
}

func TestObjectName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"run-1", "pf-run-1"},
		{"Run_ABC.1", "pf-run-abc-1"},
		{"--x--", "pf-x"},
		{strings.Repeat("z", 80), "pf-" + strings.Repeat("z", 60)},
	} {
		if diff := cmp.Diff(tc.want, objectName(tc.in)); diff != "" {
			t.Errorf("objectName(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestSelectorExpr(t *testing.T) {
	got, err := selectorExpr("inputs.parameters['p-x']", `parseJson(string_value)["A_a"]`)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{{=fromJSON(inputs.parameters['p-x'])['A_a']}}`, got); diff != "" {
		t.Error(diff)
	}
	for _, bad := range []string{`string_value`, `parseJson(string_value)["a"]["b"]`, `parseJson(string_value)["a'b"]`} {
		if _, err := selectorExpr("x", bad); err == nil {
			t.Errorf("selector %q: want an error", bad)
		}
	}
}

// TestLoopFanOutAtRunTime runs Argo's own argument processing on a compiled
// loop wrapper: the withParam expression must turn the runtime list into
// indexed items, with strings, objects and numbers intact.
func TestLoopFanOutAtRunTime(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["collected"])
	wrap := template_(t, wf, "collecting-parameters-for-loop-1")
	args := wfv1.Arguments{Parameters: []wfv1.Parameter{{Name: "p-pipelinechannel--split-ids-Output", Value: wfv1.AnyStringPtr(`["s1",{"k":1},3]`)}}}
	out, err := common.ProcessArgs(wrap, &args, common.Parameters{}, common.Parameters{}, false, "ns", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal([]byte(out.DAG.Tasks[0].WithParam), &got); err != nil {
		t.Fatalf("withParam after substitution is not JSON: %q: %v", out.DAG.Tasks[0].WithParam, err)
	}
	want := []any{
		map[string]any{"i": "0", "v": "s1"},
		map[string]any{"i": "1", "v": map[string]any{"k": 1.0}},
		map[string]any{"i": "2", "v": 3.0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("indexed items (-want +got):\n%s", diff)
	}
	iter := out.DAG.Tasks[0]
	if diff := cmp.Diff("{{item.v}}", iter.Arguments.GetParameterByName("p-pipelinechannel--split-ids-Output-loop-item").Value.String()); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff("collecting-parameters.for-loop-1.{{item.i}}", iter.Arguments.GetParameterByName(prefixParam).Value.String()); diff != "" {
		t.Error(diff)
	}
	// The wrapper re-exports the aggregated output, "[]" when nothing ran.
	o := wrap.Outputs.Parameters[0]
	if diff := cmp.Diff(wfv1.Parameter{Name: "p-pipelinechannel--prepend-id-Output", ValueFrom: &wfv1.ValueFrom{
		Expression: "toJson(map(fromJSON(tasks['iteration'].outputs.parameters['p-pipelinechannel--prepend-id-Output']), #.v))",
		Default:    wfv1.AnyStringPtr("[]"),
	}}, o); diff != "" {
		t.Errorf("wrapper output (-want +got):\n%s", diff)
	}
}

// evalOutput evaluates a DAG output expression the way Argo's controller
// does (flattened scope expanded into nested maps).
func evalOutput(t *testing.T, expression string, scope map[string]any) any {
	t.Helper()
	e := env.GetFuncMap(scope)
	prog, err := expr.Compile(expression, expr.Env(e))
	if err != nil {
		t.Fatalf("compile %q: %v", expression, err)
	}
	v, err := expr.Run(prog, e)
	if err != nil {
		t.Fatalf("run %q: %v", expression, err)
	}
	return v
}

// TestCollectedStringsStayStrings: a loop body's output is wrapped as {"v": value},
// so that every iteration's value is a JSON object and Argo's aggregation (v3.7
// aggregatedJSONValueList: values are embedded only when all are objects or lists,
// otherwise listed as raw strings) keeps them; the wrapper unwraps. A STRING "1" stays
// the string "1", a NUMBER 1 the number 1. The end-to-end suite (tests/controllers)
// checks the same against the real workflow-controller.
func TestCollectedStringsStayStrings(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["collected"])
	body := template_(t, wf, "collecting-parameters-for-loop-1-body")
	e := body.Outputs.Parameters[0].ValueFrom.Expression
	got := evalOutput(t, e, map[string]any{"tasks.prepend-id.outputs.parameters.p-Output": "1"})
	if diff := cmp.Diff(`{"v":"1"}`, got); diff != "" {
		t.Errorf("loop body output (-want +got):\n%s", diff)
	}
	wrap := template_(t, wf, "collecting-parameters-for-loop-1")
	aggregated := `[{"v":"1"},{"v":"x y"},{"v":"\"q\""}]`
	got = evalOutput(t, wrap.Outputs.Parameters[0].ValueFrom.Expression,
		map[string]any{"tasks.iteration.outputs.parameters." + body.Outputs.Parameters[0].Name: aggregated})
	if diff := cmp.Diff(`["1","x y","\"q\""]`, got); diff != "" {
		t.Errorf("collected (-want +got):\n%s", diff)
	}
}

// TestOneOfPicksTheBranchThatRan evaluates the OneOf expression with each
// branch of an if/elif/else being the one that succeeded.
func TestOneOfPicksTheBranchThatRan(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["if_elif_else"])
	tmpl := template_(t, wf, "roll-die-pipeline-condition-branches-1")
	var e string
	for _, p := range tmpl.Outputs.Parameters {
		if p.Name == "p-pipelinechannel--condition-branches-1-oneof-1" {
			e = p.ValueFrom.Expression
		}
	}
	if e == "" {
		t.Fatalf("no OneOf output expression in %+v", tmpl.Outputs)
	}
	branches := []struct{ task, key, value string }{
		{"condition-2", "p-pipelinechannel--print-and-return-Output", "heads"},
		{"condition-3", "p-pipelinechannel--print-and-return-2-Output", "tails"},
		{"condition-4", "p-pipelinechannel--special-print-and-return-output_key", "draw"},
	}
	for ran, b := range branches {
		scope := map[string]any{}
		for i, o := range branches {
			if i == ran {
				scope["tasks."+o.task+".status"] = "Succeeded"
				scope["tasks."+o.task+".outputs.parameters."+o.key] = o.value
			} else {
				scope["tasks."+o.task+".status"] = "Skipped"
			}
		}
		if diff := cmp.Diff(b.value, evalOutput(t, e, scope)); diff != "" {
			t.Errorf("branch %s ran (-want +got):\n%s", b.task, diff)
		}
	}
}

// TestFinalStatusAtRunTime substitutes the PipelineTaskFinalStatus argument
// of an exit task the way Argo resolves DAG task references.
func TestFinalStatusAtRunTime(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["exit_handler"])
	exit := dagTask(t, template_(t, wf, "root"), "exit-op")
	raw := exit.Arguments.GetParameterByName("p-status").Value.String()
	for phase, state := range map[string]string{"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Error": "FAILED"} {
		b, _ := json.Marshal(raw)
		out, err := template.Replace(string(b), map[string]string{"tasks.exit-handler-1.status": phase}, false)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		_ = json.Unmarshal([]byte(out), &s)
		var got map[string]any
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("final status is not JSON: %q", s)
		}
		want := map[string]any{"error": map[string]any{}, "pipelineJobResourceName": "pf-run-0001", "pipelineTaskName": "exit-handler-1", "state": state}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("phase %s (-want +got):\n%s", phase, diff)
		}
	}
	if diff := cmp.Diff("(exit-handler-1.Succeeded || exit-handler-1.Skipped || exit-handler-1.Failed || exit-handler-1.Errored || exit-handler-1.Omitted)", exit.Depends); diff != "" {
		t.Errorf("exit task depends (-want +got):\n%s", diff)
	}
	if f := template_(t, wf, "root").DAG.FailFast; f == nil || *f {
		t.Error("a DAG with an exit task must not fail fast")
	}
}

// TestConditionGuards checks the cond task and the guarded task's `when`.
func TestConditionGuards(t *testing.T) {
	wf := compileCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__critical__flip_coin.yaml")
	var guarded *wfv1.DAGTask
	var dag *wfv1.Template
	for i := range wf.Spec.Templates {
		tm := &wf.Spec.Templates[i]
		if tm.DAG == nil {
			continue
		}
		for j := range tm.DAG.Tasks {
			if tm.DAG.Tasks[j].When != "" {
				guarded, dag = &tm.DAG.Tasks[j], tm
			}
		}
	}
	if guarded == nil {
		t.Fatal("no guarded task")
	}
	cond := dagTask(t, dag, guarded.Depends)
	if diff := cmp.Diff("{{tasks."+cond.Name+".outputs.parameters.ok}} == true", guarded.When); diff != "" {
		t.Errorf("when (-want +got):\n%s", diff)
	}
	ct := template_(t, wf, cond.Template)
	if diff := cmp.Diff([]string{"/launcher"}, ct.Container.Command); diff != "" {
		t.Error(diff)
	}
	if ct.Container.Args[0] != "cond" || ct.Container.Image != "ghcr.io/pipefn/launcher:v1" {
		t.Errorf("cond task runs %v in %s", ct.Container.Args[:1], ct.Container.Image)
	}
}

func TestRetryStrategy(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *pipelinespec.PipelineTaskSpec_RetryPolicy
		want *wfv1.RetryStrategy
	}{
		{"limit only", &pipelinespec.PipelineTaskSpec_RetryPolicy{MaxRetryCount: 3},
			&wfv1.RetryStrategy{Limit: ptr(intstr.FromInt32(3)), RetryPolicy: wfv1.RetryPolicyAlways}},
		{"backoff", &pipelinespec.PipelineTaskSpec_RetryPolicy{MaxRetryCount: 2, BackoffDuration: durationpb.New(5 * time.Second), BackoffFactor: 1.5, BackoffMaxDuration: durationpb.New(time.Minute)},
			&wfv1.RetryStrategy{Limit: ptr(intstr.FromInt32(2)), RetryPolicy: wfv1.RetryPolicyAlways,
				Backoff: &wfv1.Backoff{Duration: "5s", Factor: ptr(intstr.FromString("1.5")), MaxDuration: "1m0s"}}},
		{"default factor and cap", &pipelinespec.PipelineTaskSpec_RetryPolicy{MaxRetryCount: 1, BackoffDuration: durationpb.New(time.Second)},
			&wfv1.RetryStrategy{Limit: ptr(intstr.FromInt32(1)), RetryPolicy: wfv1.RetryPolicyAlways,
				Backoff: &wfv1.Backoff{Duration: "1s", Factor: ptr(intstr.FromString("2")), MaxDuration: "1h0m0s"}}},
	} {
		if diff := cmp.Diff(tc.want, retryStrategy(tc.in)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestAcceleratorResource(t *testing.T) {
	for in, want := range map[string]apiv1.ResourceName{
		"nvidia.com/gpu": "nvidia.com/gpu", "NVIDIA_TESLA_T4": "nvidia.com/gpu", "tpu-v3": "google.com/tpu",
		"amd.com/gpu": "amd.com/gpu", "AMD_MI300": "amd.com/gpu",
	} {
		if diff := cmp.Diff(want, acceleratorResource(in)); diff != "" {
			t.Errorf("%s: %s", in, diff)
		}
	}
}

func TestResources(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["resources_gpu"])
	var got *apiv1.Container
	for _, tm := range wf.Spec.Templates {
		if tm.Container != nil && len(tm.Container.Resources.Limits) > 0 {
			got = tm.Container
		}
	}
	if got == nil {
		t.Fatal("no container with limits")
	}
	if q, ok := got.Resources.Limits["nvidia.com/gpu"]; !ok || q.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("gpu limit: %v", got.Resources.Limits)
	}

	wf = compileCorpus(t, goldenFiles["string_resources"])
	var patch string
	for _, tm := range wf.Spec.Templates {
		if tm.PodSpecPatch != "" {
			patch = tm.PodSpecPatch
		}
	}
	want := `{"containers":[{"name":"main","resources":{"limits":{"cpu":"{{inputs.parameters.p-pipelinechannel--cpu-limit-Output}}","memory":"{{inputs.parameters.p-pipelinechannel--memory-limit-Output}}","{{inputs.parameters.p-pipelinechannel--accelerator-type-Output}}":"{{inputs.parameters.p-pipelinechannel--accelerator-limit-Output}}"}}}]}`
	if diff := cmp.Diff(want, patch); diff != "" {
		t.Errorf("podSpecPatch (-want +got):\n%s", diff)
	}
	var v any
	if err := json.Unmarshal([]byte(patch), &v); err != nil {
		t.Errorf("podSpecPatch is not JSON: %v", err)
	}
}

func TestKubernetesSettings(t *testing.T) {
	for _, tc := range []struct {
		file  string
		check func(t *testing.T, tm *wfv1.Template)
	}{
		{"kfp__kubernetes_platform__python__test__snapshot__data__node_selector.yaml", func(t *testing.T, tm *wfv1.Template) {
			if diff := cmp.Diff(map[string]string{"cloud.google.com/gke-accelerator": "nvidia-tesla-p4"}, tm.NodeSelector); diff != "" {
				t.Error(diff)
			}
		}},
		{"kfp__kubernetes_platform__python__test__snapshot__data__toleration.yaml", func(t *testing.T, tm *wfv1.Template) {
			want := []apiv1.Toleration{{Key: "key1", Operator: "Equal", Value: "value1", Effect: "NoExecute", TolerationSeconds: ptr(int64(10))}}
			if diff := cmp.Diff(want, tm.Tolerations); diff != "" {
				t.Error(diff)
			}
		}},
		{"kfp__kubernetes_platform__python__test__snapshot__data__timeout.yaml", func(t *testing.T, tm *wfv1.Template) {
			if diff := cmp.Diff(ptr(intstr.FromInt32(20)), tm.ActiveDeadlineSeconds); diff != "" {
				t.Error(diff)
			}
		}},
		{"kfp__kubernetes_platform__python__test__snapshot__data__field_path_as_env.yaml", func(t *testing.T, tm *wfv1.Template) {
			want := []apiv1.EnvVar{{Name: "KFP_RUN_NAME", ValueFrom: &apiv1.EnvVarSource{FieldRef: &apiv1.ObjectFieldSelector{FieldPath: "metadata.annotations['pipelines.kubeflow.org/run_name']"}}}}
			if diff := cmp.Diff(want, tm.Container.Env); diff != "" {
				t.Error(diff)
			}
		}},
		{"kfp__kubernetes_platform__python__test__snapshot__data__secret_as_vol.yaml", func(t *testing.T, tm *wfv1.Template) {
			want := apiv1.Volume{Name: "secret-0", VolumeSource: apiv1.VolumeSource{Secret: &apiv1.SecretVolumeSource{SecretName: "my-secret", Optional: ptr(false)}}}
			if diff := cmp.Diff(want, tm.Volumes[1]); diff != "" {
				t.Error(diff)
			}
			if diff := cmp.Diff(apiv1.VolumeMount{Name: "secret-0", MountPath: "/mnt/my_vol"}, tm.Container.VolumeMounts[1]); diff != "" {
				t.Error(diff)
			}
		}},
		{"kfp__kubernetes_platform__python__test__snapshot__data__image_pull_secrets.yaml", func(t *testing.T, tm *wfv1.Template) {
			if diff := cmp.Diff(`{"imagePullSecrets":[{"name":"my-secret"}]}`, tm.PodSpecPatch); diff != "" {
				t.Error(diff)
			}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			wf := compileCorpus(t, tc.file)
			var tm *wfv1.Template
			for i := range wf.Spec.Templates {
				if wf.Spec.Templates[i].Container != nil && wf.Spec.Templates[i].Container.Command[0] == LauncherPath {
					tm = &wf.Spec.Templates[i]
				}
			}
			if tm == nil {
				t.Fatal("no launcher container template")
			}
			tc.check(t, tm)
		})
	}
}

// TestRefusals: what the compiler cannot honour is an error naming it.
func TestRefusals(t *testing.T) {
	p := loadCorpus(t, goldenFiles["two_step"])
	if _, err := Compile(p, compile.Options{}); err == nil || !strings.Contains(err.Error(), "RunID") {
		t.Errorf("empty RunID: %v", err)
	}
	if _, err := Compile(&ir.Pipeline{}, testOptions(p)); err == nil {
		t.Error("nil spec: want an error")
	}
	for _, tc := range []struct{ file, want string }{
		{"kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_importer_workspace.yaml", "downloadToWorkspace"},
		{"kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_metadata_fields.yaml", `root input artifact "in_dataset" is required`},
	} {
		p := loadCorpus(t, tc.file)
		opts := testOptions(p)
		delete(opts.Params, "in_dataset") // the run does not bind the required artifact
		_, err := Compile(p, opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error containing %q, got %v", tc.file, tc.want, err)
		}
	}
	// A container lifecycle hook cannot be honoured.
	p = loadCorpus(t, goldenFiles["two_step"])
	for _, e := range p.Deployment.GetExecutors() {
		if c := e.GetContainer(); c != nil {
			c.Lifecycle = &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_Lifecycle{}
		}
	}
	if _, err := Compile(p, testOptions(p)); err == nil || !strings.Contains(err.Error(), "lifecycle") {
		t.Errorf("lifecycle: %v", err)
	}
}

// TestWorkflowMeta checks naming, labels and arguments.
func TestWorkflowMeta(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["two_step"])
	if diff := cmp.Diff("pf-run-0001", wf.Name); diff != "" {
		t.Error(diff)
	}
	wantLabels := map[string]string{compile.LabelRunID: "Run-0001", compile.LabelTeam: "team-a", compile.LabelPipelineVersion: "pv-1"}
	if diff := cmp.Diff(wantLabels, wf.Labels); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff("pipeline-runner", wf.Spec.ServiceAccountName); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff(entrypoint, wf.Spec.Templates[0].Name); diff != "" {
		t.Error(diff)
	}
}

// TestCreatePVCAtRunTime substitutes the CreatePVC manifest with the
// task's inputs as Argo does and checks it is the PVC KFP would create.
func TestCreatePVCAtRunTime(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["k8s_pvc"])
	create := template_(t, wf, "createpvc")
	if create.Resource == nil || create.Resource.Action != "create" {
		t.Fatalf("createpvc is not a create resource action: %+v", create.Resource)
	}
	args := wfv1.Arguments{Parameters: []wfv1.Parameter{
		{Name: "p-access_modes", Value: wfv1.AnyStringPtr(`["ReadWriteOnce"]`)},
		{Name: "p-data_source", Value: wfv1.AnyStringPtr(`{"apiGroup":"snapshot.storage.k8s.io","kind":"VolumeSnapshot","name":"my-snap"}`)},
		{Name: "p-pvc_name_suffix", Value: wfv1.AnyStringPtr("-my-pvc")},
		{Name: "p-size", Value: wfv1.AnyStringPtr("5Mi")},
		{Name: "p-storage_class_name", Value: wfv1.AnyStringPtr("standard")},
	}}
	out, err := common.ProcessArgs(create, &args, common.Parameters{"workflow.name": "pf-run-0001"}, common.Parameters{}, false, "ns", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out.Resource.Manifest), &got); err != nil {
		t.Fatalf("manifest is not JSON: %q: %v", out.Resource.Manifest, err)
	}
	want := map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": "pf-run-0001-my-pvc"},
		"spec": map[string]any{
			"accessModes":      []any{"ReadWriteOnce"},
			"dataSource":       map[string]any{"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "my-snap"},
			"resources":        map[string]any{"requests": map[string]any{"storage": "5Mi"}},
			"storageClassName": "standard",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PVC manifest (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("{.metadata.name}", create.Outputs.Parameters[0].ValueFrom.JSONPath); diff != "" {
		t.Error(diff)
	}
	del := template_(t, wf, "deletepvc")
	if del.Resource == nil || del.Resource.Action != "delete" {
		t.Fatalf("deletepvc is not a delete resource action: %+v", del.Resource)
	}
	// The consumer mounts the PVC named by createpvc's output.
	consumer := dagTask(t, template_(t, wf, "root"), "consumer")
	if diff := cmp.Diff("{{tasks.createpvc.outputs.parameters.p-name}}", consumer.Arguments.GetParameterByName("k-0").Value.String()); diff != "" {
		t.Error(diff)
	}
}

// TestNestedDefaults: a nested pipeline's input default applies when the
// caller passes nothing (no launcher ever sees a DAG component).
func TestNestedDefaults(t *testing.T) {
	wf := compileCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_parallelfor_list_artifacts_GH-12033.yaml")
	call := dagTask(t, template_(t, wf, "root"), "make-artifacts")
	if diff := cmp.Diff(`["Hello",","," ","world!"]`, call.Arguments.GetParameterByName("p-texts").Value.String()); diff != "" {
		t.Errorf("default of texts (-want +got):\n%s", diff)
	}
}

// TestSelectorAtRunTime runs Argo's argument processing on a loop body
// whose tasks read fields of a dict loop item.
func TestSelectorAtRunTime(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["loops"])
	body := template_(t, wf, "for-loop-2-body")
	args := wfv1.Arguments{Parameters: []wfv1.Parameter{
		{Name: "p-pipelinechannel--args-generator-op-Output", Value: wfv1.AnyStringPtr(`[{"A_a":"1","B_b":"2"}]`)},
		{Name: "p-pipelinechannel--args-generator-op-Output-loop-item", Value: wfv1.AnyStringPtr(`{"A_a":"1","B_b":2}`)},
		{Name: prefixParam, Value: wfv1.AnyStringPtr("for-loop-2.0")},
	}}
	out, err := common.ProcessArgs(body, &args, common.Parameters{}, common.Parameters{}, false, "ns", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, task := range out.DAG.Tasks {
		if p := task.Arguments.GetParameterByName("p-msg"); p != nil {
			got[task.Name] = p.Value.String()
		}
	}
	// A string field arrives raw, a number as JSON text: KFP's encoding.
	if diff := cmp.Diff(map[string]string{"print-text-2": "1", "print-text-3": "2"}, got); diff != "" {
		t.Errorf("selected fields (-want +got):\n%s", diff)
	}
}

// TestIgnoreUpstreamFailure: a task that runs after its producer failed
// gets its input's default, evaluated by Argo's own substitution.
func TestIgnoreUpstreamFailure(t *testing.T) {
	wf := compileCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_task_using_ignore_upstream_failure.yaml")
	task := dagTask(t, template_(t, wf, "root"), "print-op")
	raw := task.Arguments.GetParameterByName("p-message").Value.String()
	for _, tc := range []struct {
		scope map[string]string
		want  string
	}{
		{map[string]string{"tasks.fail-op.status": "Failed"}, "default"},
		{map[string]string{"tasks.fail-op.status": "Succeeded", "tasks.fail-op.outputs.parameters.p-Output": "hello"}, "hello"},
	} {
		b, _ := json.Marshal(raw)
		out, err := template.Replace(string(b), tc.scope, false)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		_ = json.Unmarshal([]byte(out), &got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.scope, diff)
		}
	}
}

// TestCollectedFromConditionalProducer: iterations whose producer was
// skipped contribute nothing to the collected list, as in KFP.
func TestCollectedFromConditionalProducer(t *testing.T) {
	wf := compileCorpus(t, goldenFiles["params_artifacts"])
	const out = "a-pipelinechannel--double-2-out_dataset"
	var body, wrap *wfv1.Template
	for i := range wf.Spec.Templates {
		tm := &wf.Spec.Templates[i]
		for _, p := range tm.Outputs.Parameters {
			if p.Name == out && p.ValueFrom != nil && strings.Contains(p.ValueFrom.Expression, ": nil") {
				body = tm
			}
			if p.Name == out && p.ValueFrom != nil && strings.Contains(p.ValueFrom.Expression, "filter(") {
				wrap = tm
			}
		}
	}
	if body == nil || wrap == nil {
		t.Fatal("no conditional collected output")
	}
	bodyExpr := body.Outputs.Parameters[0].ValueFrom.Expression
	if diff := cmp.Diff(`{"v":null}`, evalOutput(t, bodyExpr, map[string]any{"tasks.condition-5.status": "Skipped"})); diff != "" {
		t.Errorf("skipped iteration (-want +got):\n%s", diff)
	}
	ran := evalOutput(t, bodyExpr, map[string]any{"tasks.condition-5.status": "Succeeded", "tasks.condition-5.outputs.parameters." + out: "s3://b/x"})
	if diff := cmp.Diff(`{"v":"s3://b/x"}`, ran); diff != "" {
		t.Errorf("iteration that ran (-want +got):\n%s", diff)
	}
	var wrapExpr string
	for _, p := range wrap.Outputs.Parameters {
		if p.Name == out {
			wrapExpr = p.ValueFrom.Expression
		}
	}
	got := evalOutput(t, wrapExpr, map[string]any{"tasks.iteration.outputs.parameters." + out: `[{"v":"s3://b/x"},{"v":null},{"v":"s3://b/y"}]`})
	if diff := cmp.Diff(`["s3://b/x","s3://b/y"]`, got); diff != "" {
		t.Errorf("collected (-want +got):\n%s", diff)
	}
}

// TestOutputOfSkippedBranch: outside loops, a DAG output whose producer is
// a condition that did not run resolves to "" instead of failing the DAG.
func TestOutputOfSkippedBranch(t *testing.T) {
	wf := compileCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__conditional_producer_and_consumers.yaml")
	root := template_(t, wf, "root")
	want := []wfv1.Parameter{{Name: "p-Output", ValueFrom: &wfv1.ValueFrom{
		Parameter: "{{tasks.condition-4.outputs.parameters.p-pipelinechannel--add-Output}}", Default: wfv1.AnyStringPtr(""),
	}}}
	if diff := cmp.Diff(want, root.Outputs.Parameters); diff != "" {
		t.Errorf("root outputs (-want +got):\n%s", diff)
	}
}

// TestRootArtifactBinding: a root input artifact is bound by its URI given
// as a string parameter, and reaches the task as --artifact.
func TestRootArtifactBinding(t *testing.T) {
	p := loadCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__pipeline_with_metadata_fields.yaml")
	opts := testOptions(p)
	opts.Params["in_dataset"] = structpb.NewStringValue("s3://bucket/in/data.csv")
	wf, err := Compile(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateWorkflow(wf); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("s3://bucket/in/data.csv", wf.Spec.Arguments.GetParameterByName("a-in_dataset").Value.String()); diff != "" {
		t.Error(diff)
	}
	task := dagTask(t, template_(t, wf, "root"), "dataset-joiner")
	if diff := cmp.Diff("{{inputs.parameters.a-in_dataset}}", task.Arguments.GetParameterByName("a-dataset_b").Value.String()); diff != "" {
		t.Error(diff)
	}
}

// TestWorkspace: the run's workspace is a volume claim template mounted in
// every launcher task at /kfp-workspace.
func TestWorkspace(t *testing.T) {
	wf := compileCorpus(t, "kfp__test_data__sdk_compiled_pipelines__valid__critical__pipeline_with_workspace.yaml")
	if len(wf.Spec.VolumeClaimTemplates) != 1 || wf.Spec.VolumeClaimTemplates[0].Name != workspaceVolume {
		t.Fatalf("volume claim templates: %+v", wf.Spec.VolumeClaimTemplates)
	}
	mounted := 0
	for _, tm := range wf.Spec.Templates {
		if tm.Container == nil || tm.Container.Command[0] != LauncherPath {
			continue
		}
		want := apiv1.VolumeMount{Name: workspaceVolume, MountPath: WorkspaceMountPath}
		if diff := cmp.Diff(want, tm.Container.VolumeMounts[len(tm.Container.VolumeMounts)-1]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tm.Name, diff)
		}
		mounted++
	}
	if mounted == 0 {
		t.Error("no launcher task")
	}
}

// TestMissingOptionalKubernetesInputs: a kfp-kubernetes setting whose value
// comes from an optional pipeline input left unset is left out, as in KFP.
func TestMissingOptionalKubernetesInputs(t *testing.T) {
	const file = "kfp__test_data__sdk_compiled_pipelines__valid__critical__missing_kubernetes_optional_inputs.yaml"
	wf := compileCorpus(t, file)
	tm := template_(t, wf, "log-message")
	if diff := cmp.Diff([]apiv1.Volume{{Name: binVolume, VolumeSource: apiv1.VolumeSource{EmptyDir: &apiv1.EmptyDirVolumeSource{}}}}, tm.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if tm.Container.Env != nil || tm.Affinity != nil || tm.NodeSelector != nil || tm.Tolerations != nil || tm.PodSpecPatch != "" {
		t.Errorf("settings from unset inputs were kept: env=%v affinity=%v nodeSelector=%v tolerations=%v patch=%q",
			tm.Container.Env, tm.Affinity, tm.NodeSelector, tm.Tolerations, tm.PodSpecPatch)
	}
	// Bound, the same inputs take effect.
	p := loadCorpus(t, file)
	opts := testOptions(p)
	opts.Params["optional_secret_name"] = structpb.NewStringValue("s1")
	wf, err := Compile(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	tm = template_(t, wf, "log-message")
	var secret *apiv1.SecretVolumeSource
	for _, v := range tm.Volumes {
		if v.Secret != nil {
			secret = v.Secret
		}
	}
	if secret == nil || !strings.HasPrefix(secret.SecretName, "{{inputs.parameters.k-") {
		t.Errorf("bound secret name does not reach the volume: %+v", tm.Volumes)
	}
}
