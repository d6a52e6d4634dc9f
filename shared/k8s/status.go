package k8s

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/launch"
)

// Tekton labels the controller puts on TaskRuns (with the PipelineRun's own labels and
// annotations, which it propagates).
const (
	tektonPipelineRunLabel  = "tekton.dev/pipelineRun"
	tektonPipelineTaskLabel = "tekton.dev/pipelineTask"
)

// Owner tells which run attempt an object (PipelineRun, TaskRun, Workflow) belongs to, from
// the labels and annotations shared/k8s put on it. ok is false for objects pipefn did not
// create.
func Owner(meta metav1.ObjectMeta) (a Attempt, ok bool) {
	a.RunID = meta.Annotations[AnnotationRunID]
	if a.RunID == "" {
		a.RunID = meta.Labels[compile.LabelRunID]
	}
	if a.RunID == "" {
		return Attempt{}, false
	}
	a.Team = meta.Labels[compile.LabelTeam]
	if a.Team == "" {
		a.Team = meta.Namespace
	}
	n, err := strconv.Atoi(meta.Labels[LabelAttempt])
	if err != nil {
		// Not stamped with an attempt: report it as attempt-less (-1 applies to any).
		n = -1
	}
	a.Attempt = n
	return a, true
}

// TektonRunState maps a PipelineRun's Succeeded condition onto a pipefn run state and the
// error message of a failed run.
func TektonRunState(pr *tektonv1.PipelineRun) (state, msg string) {
	c := pr.Status.GetCondition(apis.ConditionSucceeded)
	if c == nil {
		if pr.Spec.Status == tektonv1.PipelineRunSpecStatusCancelled {
			return api.StateCanceling, ""
		}
		if pr.Status.StartTime != nil {
			return api.StateRunning, ""
		}
		return api.StatePending, ""
	}
	switch c.Status {
	case corev1.ConditionTrue:
		return api.StateSucceeded, ""
	case corev1.ConditionFalse:
		switch tektonv1.PipelineRunReason(c.Reason) {
		case tektonv1.PipelineRunReasonCancelled, tektonv1.PipelineRunReasonCancelledRunningFinally,
			tektonv1.PipelineRunReasonStoppedRunningFinally:
			return api.StateCanceled, ""
		case tektonv1.PipelineRunReasonTimedOut:
			return api.StateFailed, "timed out: " + c.Message
		}
		return api.StateFailed, reasonMessage(c.Reason, c.Message)
	}
	switch tektonv1.PipelineRunReason(c.Reason) {
	case tektonv1.PipelineRunReasonPending:
		return api.StatePending, ""
	case tektonv1.PipelineRunReasonCancelledRunningFinally, tektonv1.PipelineRunReasonStoppedRunningFinally,
		tektonv1.PipelineRunReasonStopping:
		return api.StateCanceling, ""
	}
	if pr.Spec.Status == tektonv1.PipelineRunSpecStatusCancelled {
		return api.StateCanceling, ""
	}
	return api.StateRunning, ""
}

func reasonMessage(reason, msg string) string {
	switch {
	case msg == "":
		return reason
	case reason == "":
		return msg
	}
	return reason + ": " + msg
}

// TektonTask maps a TaskRun onto a task detail. The task id is the pipeline task's name;
// a loop body's TaskRun adds its iteration's index per loop level ("train.2"), and its
// outputs are the values inside its result envelopes.
func TektonTask(tr *tektonv1.TaskRun) api.TaskDetail {
	pt := tr.Labels[tektonPipelineTaskLabel]
	if pt == "" {
		pt = tr.Name
	}
	// A loop body's TaskRun (one of a matrix fan-out) is told its iteration in a param;
	// the id names it, as the launcher in its pod does (launch.ClusterTaskID).
	iteration := ""
	for _, p := range tr.Spec.Params {
		if p.Name == launch.TektonIterationParam {
			iteration = p.Value.StringVal
		}
	}
	id := launch.TektonTaskID(pt, iteration)
	td := api.TaskDetail{TaskID: id, DisplayName: pt, PodName: tr.Status.PodName, State: api.StatePending}
	if a, ok := Owner(tr.ObjectMeta); ok {
		td.RunID = a.RunID
	}
	td.CreateTime = timePtr(tr.CreationTimestamp)
	if tr.Status.StartTime != nil {
		td.StartTime = timePtr(*tr.Status.StartTime)
	}
	if tr.Status.CompletionTime != nil {
		td.EndTime = timePtr(*tr.Status.CompletionTime)
	}
	c := tr.Status.GetCondition(apis.ConditionSucceeded)
	switch {
	case c == nil:
		if tr.Status.StartTime != nil {
			td.State = api.StateRunning
		}
	case c.Status == corev1.ConditionTrue:
		td.State = api.StateSucceeded
	case c.Status == corev1.ConditionFalse:
		td.State = api.StateFailed
		if c.Reason == tektonv1.TaskRunReasonCancelled.String() {
			td.State = api.StateCanceled
		}
		td.Error = &api.Status{Code: 2, Message: reasonMessage(c.Reason, c.Message)}
	default:
		if c.Reason == tektonv1.TaskRunReasonRunning.String() || tr.Status.StartTime != nil {
			td.State = api.StateRunning
		}
	}
	results := map[string]string{}
	for _, r := range tr.Status.Results {
		results[r.Name] = r.Value.StringVal
		if iteration != "" {
			// A loop body task writes each result in an envelope naming its iteration
			// (launch.Extra.ResultEnvelope); the task's output is the value inside.
			var env launch.Envelope
			if json.Unmarshal([]byte(r.Value.StringVal), &env) == nil && env.Path != nil {
				results[r.Name] = env.Value
			}
		}
	}
	fillOutputs(&td, results)
	return td
}

// TektonStatus maps a PipelineRun and the TaskRuns it owns (any order; TaskRuns of
// other PipelineRuns are ignored) onto one status report. Tasks the controller skipped
// are reported SKIPPED.
func TektonStatus(pr *tektonv1.PipelineRun, taskRuns []tektonv1.TaskRun) events.RunStatus {
	a, _ := Owner(pr.ObjectMeta)
	st := events.RunStatus{RunID: a.RunID, Team: a.Team, Attempt: a.Attempt}
	st.State, st.Error = TektonRunState(pr)
	for i := range taskRuns {
		if taskRuns[i].Labels[tektonPipelineRunLabel] != pr.Name {
			continue
		}
		td := TektonTask(&taskRuns[i])
		td.RunID = a.RunID
		st.Tasks = append(st.Tasks, td)
	}
	for _, s := range pr.Status.SkippedTasks {
		st.Tasks = append(st.Tasks, api.TaskDetail{RunID: a.RunID, TaskID: s.Name, DisplayName: s.Name, State: api.StateSkipped})
	}
	finishTasks(&st)
	return st
}

// ArgoRunState maps a Workflow's phase onto a pipefn run state. A workflow that ends
// after spec.shutdown was set is CANCELED, not FAILED.
func ArgoRunState(wf *wfv1.Workflow) (state, msg string) {
	shut := wf.Spec.Shutdown != ""
	switch wf.Status.Phase {
	case wfv1.WorkflowSucceeded:
		return api.StateSucceeded, ""
	case wfv1.WorkflowFailed, wfv1.WorkflowError:
		if shut {
			return api.StateCanceled, ""
		}
		m := wf.Status.Message
		if m == "" {
			m = string(wf.Status.Phase)
		}
		return api.StateFailed, m
	case wfv1.WorkflowRunning:
		if shut {
			return api.StateCanceling, ""
		}
		return api.StateRunning, ""
	}
	if shut {
		return api.StateCanceling, ""
	}
	return api.StatePending, ""
}

// ArgoStatus maps a Workflow and its node tree onto one status report. Each pod (or
// retried pod group, or skipped task) is one task; its id is the node name under the
// workflow ("root.train", "root.loop(0:a).train"), its display name the IR task name the
// compiler labelled the template with.
func ArgoStatus(wf *wfv1.Workflow) events.RunStatus {
	a, _ := Owner(wf.ObjectMeta)
	st := events.RunStatus{RunID: a.RunID, Team: a.Team, Attempt: a.Attempt}
	st.State, st.Error = ArgoRunState(wf)
	irName := map[string]string{}
	for _, t := range wf.Spec.Templates {
		if n := t.Metadata.Labels[compile.LabelTask]; n != "" {
			irName[t.Name] = n
		}
	}
	retried := map[string]string{} // pod node id -> its Retry parent id
	for id, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypeRetry {
			for _, c := range n.Children {
				retried[c] = id
			}
		}
	}
	shut := wf.Spec.Shutdown != ""
	for id, n := range wf.Status.Nodes {
		switch n.Type {
		case wfv1.NodeTypePod, wfv1.NodeTypeSkipped, wfv1.NodeTypeRetry:
		default:
			continue
		}
		if _, ok := retried[id]; ok {
			continue
		}
		td := api.TaskDetail{RunID: a.RunID, TaskID: strings.TrimPrefix(n.Name, wf.Name+"."), DisplayName: irName[n.TemplateName]}
		if td.DisplayName == "" {
			td.DisplayName = n.DisplayName
		}
		td.State = argoNodeState(n.Phase, shut)
		if !n.StartedAt.IsZero() {
			td.StartTime = timePtr(n.StartedAt)
		}
		if !n.FinishedAt.IsZero() {
			td.EndTime = timePtr(n.FinishedAt)
		}
		if td.State == api.StateFailed && n.Message != "" {
			td.Error = &api.Status{Code: 2, Message: n.Message}
		}
		pod := n
		if n.Type == wfv1.NodeTypeRetry && len(n.Children) > 0 {
			if last, ok := wf.Status.Nodes[n.Children[len(n.Children)-1]]; ok {
				pod = last
			}
		}
		if pod.Type == wfv1.NodeTypePod {
			td.PodName = ArgoPodName(wf.Name, pod.Name, pod.TemplateName)
		}
		if n.Outputs != nil {
			results := map[string]string{}
			for _, p := range n.Outputs.Parameters {
				if p.Value != nil {
					results[p.Name] = p.Value.String()
				}
			}
			fillOutputs(&td, results)
		}
		st.Tasks = append(st.Tasks, td)
	}
	// An exit handler's task depends on every end state of the tasks it guards, so Argo
	// calls the Workflow Succeeded when the handler succeeds even though a guarded task
	// failed (a DAG's phase follows its leaves). In KFP the run has failed.
	if st.State == api.StateSucceeded {
		var failed []string
		for _, td := range st.Tasks {
			if td.State == api.StateFailed {
				failed = append(failed, td.TaskID)
			}
		}
		if len(failed) > 0 {
			slices.Sort(failed)
			st.State, st.Error = api.StateFailed, "task "+strings.Join(failed, ", ")+" failed"
		}
	}
	finishTasks(&st)
	return st
}

func argoNodeState(p wfv1.NodePhase, shut bool) string {
	switch p {
	case wfv1.NodeRunning:
		return api.StateRunning
	case wfv1.NodeSucceeded:
		return api.StateSucceeded
	case wfv1.NodeSkipped, wfv1.NodeOmitted:
		return api.StateSkipped
	case wfv1.NodeFailed, wfv1.NodeError:
		if shut {
			return api.StateCanceled
		}
		return api.StateFailed
	}
	return api.StatePending
}

// ArgoPodName is the name Argo (pod names v2, its default) gives a node's pod:
// <workflow>-<template>-<fnv32a(node name)>, the prefix cut to fit 253 characters.
func ArgoPodName(workflow, nodeName, template string) string {
	if workflow == nodeName {
		return workflow
	}
	prefix := workflow
	if template != "" {
		prefix += "-" + template
	}
	if max := 253 - 10 - 1; len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix + "-" + strconv.FormatUint(uint64(fnv32a(nodeName)), 10)
}

func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// fillOutputs decodes the launcher's results ("p-<name>" parameters, "a-<name>"
// artifact URIs, "ok" of a condition) into the task's outputs. A parameter's type is not
// known here: a value that parses as a JSON number, boolean, list or object is shown as
// that value, anything else as text.
func fillOutputs(td *api.TaskDetail, results map[string]string) {
	for name, v := range results {
		switch {
		case strings.HasPrefix(name, "p-"):
			if td.OutputParameters == nil {
				td.OutputParameters = map[string]any{}
			}
			td.OutputParameters[strings.TrimPrefix(name, "p-")] = decodeParam(v)
		case name == "ok":
			if td.OutputParameters == nil {
				td.OutputParameters = map[string]any{}
			}
			td.OutputParameters[name] = decodeParam(v)
		case strings.HasPrefix(name, "a-"):
			if td.Outputs == nil {
				td.Outputs = map[string]api.ArtifactList{}
			}
			var uris []string
			if json.Unmarshal([]byte(v), &uris) != nil {
				uris = []string{v}
			}
			td.Outputs[strings.TrimPrefix(name, "a-")] = api.ArtifactList{URIs: uris}
		}
	}
}

func decodeParam(s string) any {
	var v any
	if json.Unmarshal([]byte(s), &v) == nil {
		if _, isString := v.(string); !isString && v != nil {
			return v
		}
	}
	return s
}

// finishTasks sorts tasks by id, and, once the run has ended, ends the tasks the report
// still shows unfinished (a cancelled run's pods are gone, a failed run's pending tasks
// never start), so no task stays RUNNING under a finished run.
func finishTasks(st *events.RunStatus) {
	sort.Slice(st.Tasks, func(i, j int) bool { return st.Tasks[i].TaskID < st.Tasks[j].TaskID })
	if !api.Terminal(st.State) {
		return
	}
	end := api.StateCanceled
	if st.State == api.StateSucceeded {
		// A succeeded run whose task looks unfinished is a stale TaskRun read; say nothing.
		return
	}
	for i := range st.Tasks {
		if !api.Terminal(st.Tasks[i].State) {
			st.Tasks[i].State = end
		}
	}
}

func timePtr(t metav1.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.Time.UTC()
	return &u
}
