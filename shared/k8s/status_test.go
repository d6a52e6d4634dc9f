package k8s

import (
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/events"
)

func TestObjectName(t *testing.T) {
	long := strings.Repeat("x", 80)
	tests := []struct {
		runID   string
		attempt int
		want    string
	}{
		{"0b6f3c1e-9a2d-4f7e-8c11-2d3e4f5a6b7c", 0, "pf-0b6f3c1e-9a2d-4f7e-8c11-2d3e4f5a6b7c-a0"},
		{"Run_ID.With Spaces", 3, "pf-run-id-with-spaces-a3"},
		{"---", 1, "pf-" + fnvHex("---") + "-a1"},
		{long, 12, "pf-" + strings.Repeat("x", 63-3-4-9) + "-" + fnvHex(long) + "-a12"},
	}
	for _, tt := range tests {
		got := ObjectName(tt.runID, tt.attempt)
		if got != tt.want {
			t.Errorf("ObjectName(%q, %d) = %q, want %q", tt.runID, tt.attempt, got, tt.want)
		}
		if len(got) > 63 {
			t.Errorf("ObjectName(%q) is %d characters", tt.runID, len(got))
		}
	}
	if ObjectName(long, 0) == ObjectName(long+"y", 0) {
		t.Error("two long ids share an object name")
	}
}

func fnvHex(s string) string {
	const hex = "0123456789abcdef"
	h := fnv32a(s)
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = hex[h&0xf]
		h >>= 4
	}
	return string(b)
}

func cond(status corev1.ConditionStatus, reason, msg string) duckv1.Conditions {
	return duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: status, Reason: reason, Message: msg}}
}

func meta(name string, attempt string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "team-a",
		Labels:      map[string]string{compile.LabelRunID: "r1", compile.LabelTeam: "team-a", LabelAttempt: attempt},
		Annotations: map[string]string{AnnotationRunID: "r1"}}
}

func TestTektonRunState(t *testing.T) {
	start := metav1.Now()
	tests := []struct {
		name      string
		spec      tektonv1.PipelineRunSpecStatus
		start     *metav1.Time
		conds     duckv1.Conditions
		want, msg string
	}{
		{name: "created, not seen", want: api.StatePending},
		{name: "started, no condition yet", start: &start, want: api.StateRunning},
		{name: "pending by request", conds: cond(corev1.ConditionUnknown, "PipelineRunPending", ""), want: api.StatePending},
		{name: "running", conds: cond(corev1.ConditionUnknown, "Running", ""), want: api.StateRunning},
		{name: "cancel asked", spec: tektonv1.PipelineRunSpecStatusCancelled, conds: cond(corev1.ConditionUnknown, "Running", ""), want: api.StateCanceling},
		{name: "running finally after cancel", conds: cond(corev1.ConditionUnknown, "CancelledRunningFinally", ""), want: api.StateCanceling},
		{name: "succeeded", conds: cond(corev1.ConditionTrue, "Succeeded", ""), want: api.StateSucceeded},
		{name: "completed with skips", conds: cond(corev1.ConditionTrue, "Completed", ""), want: api.StateSucceeded},
		{name: "failed", conds: cond(corev1.ConditionFalse, "Failed", "Tasks Completed: 1 (Failed: 1)"), want: api.StateFailed, msg: "Failed: Tasks Completed: 1 (Failed: 1)"},
		{name: "cancelled", conds: cond(corev1.ConditionFalse, "Cancelled", "PipelineRun cancelled"), want: api.StateCanceled},
		{name: "timeout", conds: cond(corev1.ConditionFalse, "PipelineRunTimeout", "timed out after 1h"), want: api.StateFailed, msg: "timed out: timed out after 1h"},
	}
	for _, tt := range tests {
		pr := &tektonv1.PipelineRun{Spec: tektonv1.PipelineRunSpec{Status: tt.spec}}
		pr.Status.StartTime = tt.start
		pr.Status.Conditions = tt.conds
		state, msg := TektonRunState(pr)
		if state != tt.want || msg != tt.msg {
			t.Errorf("%s: got %s %q, want %s %q", tt.name, state, msg, tt.want, tt.msg)
		}
	}
}

func TestTektonStatus(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	pr := &tektonv1.PipelineRun{ObjectMeta: meta("pf-r1-a2", "2")}
	pr.Status.Conditions = cond(corev1.ConditionFalse, "Failed", "boom")
	pr.Status.SkippedTasks = []tektonv1.SkippedTask{{Name: "report"}}
	tr := func(name, pt string, c duckv1.Conditions, results ...tektonv1.TaskRunResult) tektonv1.TaskRun {
		m := meta(name, "2")
		m.Labels[tektonPipelineRunLabel] = "pf-r1-a2"
		m.Labels[tektonPipelineTaskLabel] = pt
		x := tektonv1.TaskRun{ObjectMeta: m}
		x.Status.PodName = name + "-pod"
		x.Status.StartTime = &t0
		x.Status.Conditions = c
		if c[0].Status != corev1.ConditionUnknown {
			x.Status.CompletionTime = &t1
		}
		x.Status.Results = results
		return x
	}
	other := tr("pf-other-a0-x", "x", cond(corev1.ConditionTrue, "Succeeded", ""))
	other.Labels[tektonPipelineRunLabel] = "pf-other-a0"
	train := tr("pf-r1-a2-train-1", "train", cond(corev1.ConditionFalse, "Failed", `"step-main" exited with code 1`))
	// A loop body's TaskRun: its iteration names it.
	train.Spec.Params = tektonv1.Params{{Name: "pf-iteration", Value: *tektonv1.NewStructuredValues(`{"index":1,"item":"b"}`)}}
	trs := []tektonv1.TaskRun{
		train,
		tr("pf-r1-a2-prep", "prep", cond(corev1.ConditionTrue, "Succeeded", ""),
			tektonv1.TaskRunResult{Name: "p-n", Value: *tektonv1.NewStructuredValues("7")},
			tektonv1.TaskRunResult{Name: "p-name", Value: *tektonv1.NewStructuredValues("hello")},
			tektonv1.TaskRunResult{Name: "a-data", Value: *tektonv1.NewStructuredValues(`["s3://b/1","s3://b/2"]`)}),
		tr("pf-r1-a2-eval", "eval", cond(corev1.ConditionUnknown, "Running", "")),
		other,
	}
	got := TektonStatus(pr, trs)
	start, end := t0.Time, t1.Time
	want := events.RunStatus{RunID: "r1", Team: "team-a", Attempt: 2, State: api.StateFailed, Error: "Failed: boom", Tasks: []api.TaskDetail{
		// The run ended FAILED: a task still shown running is ended CANCELED.
		{RunID: "r1", TaskID: "eval", DisplayName: "eval", PodName: "pf-r1-a2-eval-pod", State: api.StateCanceled, StartTime: &start},
		{RunID: "r1", TaskID: "prep", DisplayName: "prep", PodName: "pf-r1-a2-prep-pod", State: api.StateSucceeded, StartTime: &start, EndTime: &end,
			OutputParameters: map[string]any{"n": float64(7), "name": "hello"},
			Outputs:          map[string]api.ArtifactList{"data": {URIs: []string{"s3://b/1", "s3://b/2"}}}},
		{RunID: "r1", TaskID: "report", DisplayName: "report", State: api.StateSkipped},
		{RunID: "r1", TaskID: "train.1", DisplayName: "train", PodName: "pf-r1-a2-train-1-pod", State: api.StateFailed, StartTime: &start, EndTime: &end,
			Error: &api.Status{Code: 2, Message: `Failed: "step-main" exited with code 1`}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TektonStatus (-want +got):\n%s", diff)
	}
}

func TestArgoStatus(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	wf := &wfv1.Workflow{ObjectMeta: meta("pf-r1-a0", "0")}
	wf.Spec.Templates = []wfv1.Template{
		{Name: "train-t", Metadata: wfv1.Metadata{Labels: map[string]string{compile.LabelTask: "train"}}},
		{Name: "prep-t", Metadata: wfv1.Metadata{Labels: map[string]string{compile.LabelTask: "prep"}}},
	}
	wf.Spec.Shutdown = wfv1.ShutdownStrategyTerminate
	wf.Status.Phase = wfv1.WorkflowFailed
	wf.Status.Nodes = wfv1.Nodes{
		"root": {ID: "root", Name: "pf-r1-a0", Type: wfv1.NodeTypeDAG, Phase: wfv1.NodeFailed},
		"prep": {ID: "prep", Name: "pf-r1-a0.prep", DisplayName: "prep", Type: wfv1.NodeTypePod, TemplateName: "prep-t",
			Phase: wfv1.NodeSucceeded, StartedAt: t0, FinishedAt: t1,
			Outputs: &wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: "p-n", Value: wfv1.AnyStringPtr("7")}, {Name: "a-m", Value: wfv1.AnyStringPtr("s3://b/m")}}}},
		"train": {ID: "train", Name: "pf-r1-a0.train", DisplayName: "train", Type: wfv1.NodeTypeRetry, TemplateName: "train-t",
			Phase: wfv1.NodeFailed, StartedAt: t0, FinishedAt: t1, Children: []string{"train-0", "train-1"}},
		"train-0": {ID: "train-0", Name: "pf-r1-a0.train(0)", Type: wfv1.NodeTypePod, TemplateName: "train-t", Phase: wfv1.NodeFailed},
		"train-1": {ID: "train-1", Name: "pf-r1-a0.train(1)", Type: wfv1.NodeTypePod, TemplateName: "train-t", Phase: wfv1.NodeFailed},
		"skip":    {ID: "skip", Name: "pf-r1-a0.report", DisplayName: "report", Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped},
	}
	got := ArgoStatus(wf)
	start, end := t0.Time, t1.Time
	want := events.RunStatus{RunID: "r1", Team: "team-a", Attempt: 0, State: api.StateCanceled, Tasks: []api.TaskDetail{
		{RunID: "r1", TaskID: "prep", DisplayName: "prep", State: api.StateSucceeded, StartTime: &start, EndTime: &end,
			PodName: ArgoPodName("pf-r1-a0", "pf-r1-a0.prep", "prep-t"), OutputParameters: map[string]any{"n": float64(7)},
			Outputs: map[string]api.ArtifactList{"m": {URIs: []string{"s3://b/m"}}}},
		{RunID: "r1", TaskID: "report", DisplayName: "report", State: api.StateSkipped},
		{RunID: "r1", TaskID: "train", DisplayName: "train", State: api.StateCanceled, StartTime: &start, EndTime: &end,
			PodName: ArgoPodName("pf-r1-a0", "pf-r1-a0.train(1)", "train-t")},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ArgoStatus (-want +got):\n%s", diff)
	}
}

// TestArgoExitHandlerFailureFailsTheRun: the exit task depends on every end state of
// the guarded task, so Argo ends the Workflow Succeeded after the guarded task failed;
// the run is FAILED, as KFP and the other backends say.
func TestArgoExitHandlerFailureFailsTheRun(t *testing.T) {
	wf := &wfv1.Workflow{ObjectMeta: meta("pf-r1-a0", "0")}
	wf.Status.Phase = wfv1.WorkflowSucceeded
	wf.Status.Nodes = wfv1.Nodes{
		"root": {ID: "root", Name: "pf-r1-a0", Type: wfv1.NodeTypeDAG, Phase: wfv1.NodeSucceeded},
		"op":   {ID: "op", Name: "pf-r1-a0.exit-handler-1.fail-op", Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed},
		"exit": {ID: "exit", Name: "pf-r1-a0.print-op", Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded},
	}
	got := ArgoStatus(wf)
	if got.State != api.StateFailed || got.Error != "task exit-handler-1.fail-op failed" {
		t.Errorf("state %s error %q; want FAILED naming exit-handler-1.fail-op", got.State, got.Error)
	}
	wf.Status.Nodes["op"] = wfv1.NodeStatus{ID: "op", Name: "pf-r1-a0.exit-handler-1.fail-op", Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded}
	if got := ArgoStatus(wf); got.State != api.StateSucceeded {
		t.Errorf("all tasks succeeded: state %s, want SUCCEEDED", got.State)
	}
}

func TestArgoRunState(t *testing.T) {
	tests := []struct {
		phase    wfv1.WorkflowPhase
		shutdown wfv1.ShutdownStrategy
		want     string
	}{
		{"", "", api.StatePending},
		{wfv1.WorkflowPending, "", api.StatePending},
		{wfv1.WorkflowRunning, "", api.StateRunning},
		{wfv1.WorkflowRunning, wfv1.ShutdownStrategyTerminate, api.StateCanceling},
		{wfv1.WorkflowSucceeded, "", api.StateSucceeded},
		{wfv1.WorkflowFailed, "", api.StateFailed},
		{wfv1.WorkflowError, "", api.StateFailed},
		{wfv1.WorkflowFailed, wfv1.ShutdownStrategyTerminate, api.StateCanceled},
		{wfv1.WorkflowSucceeded, wfv1.ShutdownStrategyStop, api.StateSucceeded},
	}
	for _, tt := range tests {
		wf := &wfv1.Workflow{Spec: wfv1.WorkflowSpec{Shutdown: tt.shutdown}, Status: wfv1.WorkflowStatus{Phase: tt.phase}}
		if got, _ := ArgoRunState(wf); got != tt.want {
			t.Errorf("phase %q shutdown %q: %s, want %s", tt.phase, tt.shutdown, got, tt.want)
		}
	}
}

// Pod names follow Argo's v2 rule; the expected values were computed by Argo's own
// GeneratePodName for these inputs.
func TestArgoPodName(t *testing.T) {
	if got := ArgoPodName("wf", "wf", "main"); got != "wf" {
		t.Errorf("root node pod = %q, want the workflow name", got)
	}
	got := ArgoPodName("hello", "hello.produce", "produce")
	if !strings.HasPrefix(got, "hello-produce-") || len(got) <= len("hello-produce-") {
		t.Errorf("pod name %q, want hello-produce-<fnv32a>", got)
	}
}

func TestFromTektonEvent(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		ok     bool
		want   events.RunStatus
		errSub string
	}{
		{name: "not ours", data: `{"pipelineRun":{"metadata":{"name":"x","namespace":"n"}}}`},
		{name: "pipeline run", ok: true,
			data: `{"pipelineRun":{"metadata":{"name":"pf-r1-a1","namespace":"team-a","labels":{"pipefn.dev/run-id":"r1","pipefn.dev/attempt":"1"}},"status":{"conditions":[{"type":"Succeeded","status":"True","reason":"Succeeded"}]}}}`,
			want: events.RunStatus{RunID: "r1", Team: "team-a", Attempt: 1, State: api.StateSucceeded}},
		{name: "task run started", ok: true,
			data: `{"taskRun":{"metadata":{"name":"pf-r1-a1-a","namespace":"team-a","labels":{"pipefn.dev/run-id":"r1","pipefn.dev/attempt":"1","tekton.dev/pipelineTask":"a","tekton.dev/pipelineRun":"pf-r1-a1"}},"status":{"podName":"p","conditions":[{"type":"Succeeded","status":"Unknown","reason":"Running"}]}}}`,
			want: events.RunStatus{RunID: "r1", Team: "team-a", Attempt: 1, State: api.StateRunning,
				Tasks: []api.TaskDetail{{RunID: "r1", TaskID: "a", DisplayName: "a", PodName: "p", State: api.StateRunning}}}},
		{name: "v1beta1 task run with results (what Tekton sends)", ok: true,
			data: `{"taskRun":{"apiVersion":"tekton.dev/v1beta1","kind":"TaskRun","metadata":{"name":"pf-r1-a0-a","namespace":"team-a","labels":{"pipefn.dev/run-id":"r1","pipefn.dev/attempt":"0","tekton.dev/pipelineTask":"a"}},"status":{"podName":"p","taskResults":[{"name":"p-n","type":"string","value":"7"}],"conditions":[{"type":"Succeeded","status":"True","reason":"Succeeded"}]}}}`,
			want: events.RunStatus{RunID: "r1", Team: "team-a", Attempt: 0, State: api.StateRunning,
				Tasks: []api.TaskDetail{{RunID: "r1", TaskID: "a", DisplayName: "a", PodName: "p", State: api.StateSucceeded, OutputParameters: map[string]any{"n": float64(7)}}}}},
		{name: "v1 task run (an ApiServerSource)", ok: true,
			data: `{"taskRun":{"apiVersion":"tekton.dev/v1","kind":"TaskRun","metadata":{"name":"pf-r1-a0-a","namespace":"team-a","labels":{"pipefn.dev/run-id":"r1","pipefn.dev/attempt":"0","tekton.dev/pipelineTask":"a"}},"status":{"results":[{"name":"p-n","type":"string","value":"7"}],"conditions":[{"type":"Succeeded","status":"False","reason":"TaskRunCancelled"}]}}}`,
			want: events.RunStatus{RunID: "r1", Team: "team-a", Attempt: 0, State: api.StateRunning,
				Tasks: []api.TaskDetail{{RunID: "r1", TaskID: "a", DisplayName: "a", State: api.StateCanceled, OutputParameters: map[string]any{"n": float64(7)},
					Error: &api.Status{Code: 2, Message: "TaskRunCancelled"}}}}},
		{name: "garbage", data: `[`, errSub: "Tekton event data"},
		{name: "empty", data: `{}`, errSub: "neither pipelineRun nor taskRun"},
	}
	for _, tt := range tests {
		got, ok, err := FromTektonEvent([]byte(tt.data))
		if tt.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errSub) {
				t.Errorf("%s: err %v, want one containing %q", tt.name, err, tt.errSub)
			}
			continue
		}
		if err != nil || ok != tt.ok {
			t.Errorf("%s: ok %v err %v, want ok %v", tt.name, ok, err, tt.ok)
			continue
		}
		if diff := cmp.Diff(tt.want, got); ok && diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestTektonLoopTask: a loop body's TaskRun is one task per iteration (its id from the
// iteration param, whatever Tekton named the TaskRun) and its outputs are the values
// inside its result envelopes.
func TestTektonLoopTask(t *testing.T) {
	tr := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "3f9a2c0d1e-1", Labels: map[string]string{
		tektonPipelineRunLabel: "pf-r1-a0", tektonPipelineTaskLabel: "for-loop-1-train"}}}
	tr.Spec.Params = tektonv1.Params{{Name: "pf-iteration", Value: *tektonv1.NewStructuredValues(`{"index":3,"item":2,"path":[1,0]}`)}}
	tr.Status.Results = []tektonv1.TaskRunResult{
		{Name: "p-acc", Value: *tektonv1.NewStructuredValues(`{"path":[1,0],"value":"0.93"}`)},
		{Name: "p-name", Value: *tektonv1.NewStructuredValues(`{"path":[1,0],"value":"m-1"}`)},
		{Name: "a-model", Value: *tektonv1.NewStructuredValues(`{"path":[1,0],"value":"s3://b/m"}`)},
	}
	got := TektonTask(tr)
	want := api.TaskDetail{TaskID: "for-loop-1-train.1.0", DisplayName: "for-loop-1-train", State: api.StatePending,
		OutputParameters: map[string]any{"acc": 0.93, "name": "m-1"},
		Outputs:          map[string]api.ArtifactList{"model": {URIs: []string{"s3://b/m"}}}}
	got.CreateTime = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TektonTask (-want +got):\n%s", diff)
	}
}
