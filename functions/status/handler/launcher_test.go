package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/k8s/k8sfake"
	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/state"
)

// launcherEvent is a launcher's task.finished as cmd/launcher builds it.
func launcherEvent(t *testing.T, source, runID string, attempt int, td api.TaskDetail) cloudevents.Event {
	t.Helper()
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	td.RunID = runID
	e, err := events.NewTaskFinished(source, at, events.TaskFinished{RunID: runID, Team: "t1", Attempt: attempt, Task: td})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// taskRunEvent is Tekton's event of a finished TaskRun of run runID's attempt 0, from a
// PipelineRun annotated as launcher-reporting or not.
func taskRunEvent(t *testing.T, runID, task string, reports bool) cloudevents.Event {
	t.Helper()
	ann := map[string]string{}
	if reports {
		ann[launch.AnnotationLauncherReports] = "true"
	}
	tr := map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
		"metadata": map[string]any{"name": "pf-x-a0-" + task, "namespace": "t1", "annotations": ann, "labels": map[string]string{
			"pipefn.dev/run-id": runID, "pipefn.dev/team": "t1", k8s.LabelAttempt: "0",
			launch.TektonPipelineRunLabel: "pf-x-a0", launch.TektonPipelineTaskLabel: task,
		}},
		"status": map[string]any{
			"startTime": "2026-11-28T11:59:00Z", "completionTime": "2026-11-28T11:59:30Z",
			"conditions": []map[string]string{{"type": "Succeeded", "status": "True", "reason": "Succeeded"}},
		},
	}
	b, err := json.Marshal(map[string]any{"taskRun": tr})
	if err != nil {
		t.Fatal(err)
	}
	e := cloudevents.NewEvent()
	e.SetID(fmt.Sprintf("tekton-%s-%v", task, reports))
	e.SetType("dev.tekton.event.taskrun.successful.v1")
	e.SetSource("tekton")
	e.SetTime(time.Date(2026, 11, 28, 12, 0, 1, 0, time.UTC))
	if err := e.SetData(cloudevents.ApplicationJSON, json.RawMessage(b)); err != nil {
		t.Fatal(err)
	}
	return e
}

func findTask(t *testing.T, st *state.Store, runID, task string) api.TaskDetail {
	t.Helper()
	r, err := st.GetRun(context.Background(), "t1", runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.RunDetails != nil {
		for _, td := range r.RunDetails.TaskDetails {
			if td.TaskID == task {
				return td
			}
		}
	}
	return api.TaskDetail{}
}

func finishedIDs(c *captured) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.evs {
		if e.Type() == events.TypeTaskFinished {
			out = append(out, e.ID())
		}
	}
	sort.Strings(out)
	return out
}

// TestLauncherReports: a cluster task served from the step cache shows CACHED with
// cached_from, whichever way the launcher's and the engine's reports come (the engine's
// first leaves SUCCEEDED, with cached_from filled); the run's state never moves; reports
// of other attempts and of other senders change nothing; a launcher-reporting object's
// tasks are never announced thinly, other objects' tasks are.
func TestLauncherReports(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	from := "exe-0123456789abcdef0123456789abcdef"
	type step struct {
		e       cloudevents.Event
		wantErr bool
	}
	for _, tc := range []struct {
		name         string
		steps        func(t *testing.T, runID string) []step
		wantState    string
		wantFrom     string
		wantFinished func(runID string) []string
	}{
		{
			name: "launcher first, annotated object",
			steps: func(t *testing.T, runID string) []step {
				return []step{
					{e: launcherEvent(t, launch.EventSource, runID, 0, api.TaskDetail{TaskID: "train", State: api.StateCached, CachedFrom: from,
						OutputParameters: map[string]any{"n": 3.0}})},
					{e: taskRunEvent(t, runID, "train", true)},
				}
			},
			wantState: api.StateCached, wantFrom: from,
		},
		{
			name: "engine first, annotated object",
			steps: func(t *testing.T, runID string) []step {
				return []step{
					{e: taskRunEvent(t, runID, "train", true)},
					{e: launcherEvent(t, launch.EventSource, runID, 0, api.TaskDetail{TaskID: "train", State: api.StateCached, CachedFrom: from})},
				}
			},
			wantState: api.StateSucceeded, wantFrom: from,
		},
		{
			name: "object without reporting launchers",
			steps: func(t *testing.T, runID string) []step {
				return []step{{e: taskRunEvent(t, runID, "train", false)}}
			},
			wantState: api.StateSucceeded,
			wantFinished: func(runID string) []string {
				return []string{"task:" + runID + ":0:train:SUCCEEDED"}
			},
		},
		{
			name: "stale attempt and other senders",
			steps: func(t *testing.T, runID string) []step {
				return []step{
					{e: launcherEvent(t, launch.EventSource, runID, 3, api.TaskDetail{TaskID: "train", State: api.StateCached, CachedFrom: from})},
					{e: launcherEvent(t, "pipefn/status", runID, 0, api.TaskDetail{TaskID: "train", State: api.StateFailed})},
					{e: launcherEvent(t, launch.EventSource, runID, 0, api.TaskDetail{TaskID: "train", State: api.StateRunning}), wantErr: true},
				}
			},
			wantState: api.StateRunning,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, st, sent := newHandler(t, now)
			r := events.NewRouter(h.log())
			h.Register(r)
			run, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`), Backend: "tekton"}, state.CreateRunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The run is running, its task too.
			if _, err := h.RunStatus(ctx, status(t, run.RunID, 0, api.StateRunning, now, api.TaskDetail{TaskID: "train", State: api.StateRunning})); err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps(t, run.RunID) {
				_, err := r.Dispatch(ctx, s.e)
				if (err != nil) != s.wantErr || (err != nil && !events.IsPermanent(err)) {
					t.Errorf("step %d (%s from %s): err %v, want a permanent error: %v", i, s.e.Type(), s.e.Source(), err, s.wantErr)
				}
			}
			td := findTask(t, st, run.RunID, "train")
			if diff := cmp.Diff([]string{tc.wantState, tc.wantFrom}, []string{td.State, td.CachedFrom}); diff != "" {
				t.Errorf("task state and cached_from (-want +got):\n%s", diff)
			}
			got, _ := st.GetRun(ctx, "t1", run.RunID)
			if got.State != api.StateRunning {
				t.Errorf("run state %s; task reports must not move the run", got.State)
			}
			var want []string
			if tc.wantFinished != nil {
				want = tc.wantFinished(run.RunID)
			}
			if diff := cmp.Diff(want, finishedIDs(sent)); diff != "" {
				t.Errorf("task.finished announced by the status function (-want +got):\n%s", diff)
			}
		})
	}
}

// reportingSeen is an Observer that also says whether its objects' launchers report.
type reportingSeen struct {
	seen
	reports bool
	err     error
	asked   int
}

func (s *reportingSeen) LauncherReports(context.Context, string, api.Run) (bool, error) {
	s.asked++
	return s.reports, s.err
}

// TestResyncLauncherReports: the resync announces a newly succeeded task only when its
// object's launchers do not report (a failed one always); when that cannot be told, it
// applies nothing and tries again on the next tick.
func TestResyncLauncherReports(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		reports   bool
		err       error
		task      string // the task's state as the engine reports it (default SUCCEEDED)
		wantState string
		announced bool
	}{
		{name: "reporting launchers", reports: true, wantState: api.StateSucceeded},
		{name: "silent launchers", reports: false, wantState: api.StateSucceeded, announced: true},
		// A pod killed before its launcher could report: the engine's record is all there is.
		{name: "reporting launchers, failed task", reports: true, task: api.StateFailed, wantState: api.StateSucceeded, announced: true},
		{name: "cannot tell", err: errors.New("API server unreachable"), wantState: api.StatePending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, st, sent := newHandler(t, now)
			h.ResubmitAfter = time.Hour
			run, _, err := st.CreateRun(ctx, "t1", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`), Backend: "tekton"}, state.CreateRunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			task := tc.task
			if task == "" {
				task = api.StateSucceeded
			}
			obs := &reportingSeen{reports: tc.reports, err: tc.err, seen: seen{by: map[string]events.RunStatus{
				run.RunID: {RunID: run.RunID, Team: "t1", State: api.StateSucceeded,
					Tasks: []api.TaskDetail{{TaskID: "a", State: task}}},
			}}}
			h.Observers = map[string]Observer{"tekton": obs}
			if _, err := h.Tick(ctx, ping(now)); err != nil {
				t.Fatal(err)
			}
			got, _ := st.GetRun(ctx, "t1", run.RunID)
			if got.State != tc.wantState || obs.asked != 1 {
				t.Errorf("run %s after the tick (asked %d times); want %s, asked once", got.State, obs.asked, tc.wantState)
			}
			var want []string
			if tc.announced {
				want = []string{"task:" + run.RunID + ":0:a:" + task}
			}
			if diff := cmp.Diff(want, finishedIDs(sent)); diff != "" {
				t.Errorf("task.finished announced (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKubeObserverLauncherReports reads the annotation off the run's current object.
func TestKubeObserverLauncherReports(t *testing.T) {
	ctx := context.Background()
	c := k8sfake.New(k8s.Options{})
	run := api.Run{RunID: "run-1", Attempt: 1}
	name := k8s.ObjectName(run.RunID, run.Attempt)
	ann := map[string]string{launch.AnnotationLauncherReports: "true"}
	if _, err := c.TektonFake.TektonV1().PipelineRuns("t1").Create(ctx, &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "t1", Annotations: ann}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ArgoFake.ArgoprojV1alpha1().Workflows("t1").Create(ctx, &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "t1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, b := range []string{k8s.BackendTekton, k8s.BackendArgo} {
		o := &KubeObserver{Client: c.Client, Backend: b}
		for _, r := range []api.Run{run, {RunID: "run-2"}} {
			ok, err := o.LauncherReports(ctx, "t1", r)
			if err != nil {
				t.Fatalf("%s %s: %v", b, r.RunID, err)
			}
			got[b+"/"+r.RunID] = ok
		}
	}
	want := map[string]bool{"tekton/run-1": true, "tekton/run-2": false, "argo/run-1": false, "argo/run-2": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LauncherReports (-want +got):\n%s", diff)
	}
}

// TestClusterTaskIDAgreesWithStatus: the id a launcher derives from its pod's engine
// names (launch.ClusterTaskID) is the id shared/k8s gives the same task, for Tekton
// tasks and matrix fan-outs and for Argo tasks, loop iterations and retried pods.
func TestClusterTaskIDAgreesWithStatus(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	const pr = "pf-run-1-a0"
	for _, tr := range []struct{ task, name, iteration string }{
		{"train", pr + "-train", ""},
		{"train", pr + "-train-3", `{"index":3,"item":"c"}`},
		{"for-loop-2-train", pr + "-for-loop-2-train-0", `{"index":0,"item":1,"path":[0,0]}`},
		{"very-long-task", "3f9a2c0d1e-2", `{"index":2,"item":"x"}`}, // a name Tekton shortened
		{"print-op-2", pr + "-print-op-2", ""},
	} {
		obj := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: tr.name, Labels: map[string]string{
			launch.TektonPipelineRunLabel: pr, launch.TektonPipelineTaskLabel: tr.task, launch.TektonTaskRunLabel: tr.name}}}
		if tr.iteration != "" {
			obj.Spec.Params = tektonv1.Params{{Name: launch.TektonIterationParam, Value: *tektonv1.NewStructuredValues(tr.iteration)}}
		}
		want := k8s.TektonTask(obj).TaskID
		got, ok := launch.ClusterTaskID(env(map[string]string{launch.EnvTektonPipelineRun: pr,
			launch.EnvTektonPipelineTask: tr.task, launch.EnvTektonTaskRun: tr.name}), tr.iteration)
		if !ok || got != want {
			t.Errorf("Tekton TaskRun %s: launcher says %q, status says %q", tr.name, got, want)
		}
	}

	const wfName = "pf-run-1-a0"
	node := func(name string, typ wfv1.NodeType, children ...string) wfv1.NodeStatus {
		return wfv1.NodeStatus{ID: name, Name: name, Type: typ, Phase: wfv1.NodeSucceeded, Children: children}
	}
	nodes := []wfv1.NodeStatus{
		node(wfName, wfv1.NodeTypeDAG),
		node(wfName+".train", wfv1.NodeTypePod),
		node(wfName+".eval", wfv1.NodeTypeRetry, wfName+".eval(0)", wfName+".eval(1)"),
		node(wfName+".eval(0)", wfv1.NodeTypePod),
		node(wfName+".eval(1)", wfv1.NodeTypePod),
		node(wfName+".for-loop-1(0:a).fit", wfv1.NodeTypePod),
		node(wfName+".for-loop-1(1:b).fit", wfv1.NodeTypeRetry, wfName+".for-loop-1(1:b).fit(0)"),
		node(wfName+".for-loop-1(1:b).fit(0)", wfv1.NodeTypePod),
	}
	wf := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: wfName}, Status: wfv1.WorkflowStatus{Nodes: wfv1.Nodes{}}}
	for _, n := range nodes {
		wf.Status.Nodes[n.ID] = n
	}
	status := map[string]bool{}
	for _, td := range k8s.ArgoStatus(wf).Tasks {
		status[td.TaskID] = true
	}
	var missing []string
	for _, n := range nodes {
		if n.Type != wfv1.NodeTypePod {
			continue
		}
		id, ok := launch.ClusterTaskID(env(map[string]string{launch.EnvArgoWorkflow: wfName, launch.EnvArgoNodeName: n.Name}), "")
		if !ok || !status[id] {
			missing = append(missing, fmt.Sprintf("pod %s -> %q", n.Name, id))
		}
	}
	if len(missing) > 0 {
		t.Errorf("launcher ids the status function does not report (it reports %v):\n%s", status, strings.Join(missing, "\n"))
	}
}
