package k8s

import (
	"context"
	"encoding/json"
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonv1beta1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
)

// FromTektonEvent reads the data of one of Tekton's own CloudEvents
// (dev.tekton.event.pipelinerun.* carries {"pipelineRun": {...}}, dev.tekton.event.taskrun.*
// carries {"taskRun": {...}}) as a status report. Tekton's controller puts the object in
// its v1beta1 form (it converts v1 objects before sending); an object that says
// apiVersion tekton.dev/v1 is read as v1. ok is false for objects pipefn did not create.
// A TaskRun's report carries its one task, and RUNNING for the run once the task has
// started (a run whose task runs is itself running); a PipelineRun's report carries the
// run's state and its skipped tasks (the TaskRuns report themselves).
func FromTektonEvent(data []byte) (st events.RunStatus, ok bool, err error) {
	var d struct {
		PipelineRun json.RawMessage `json:"pipelineRun"`
		TaskRun     json.RawMessage `json:"taskRun"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return st, false, fmt.Errorf("k8s: Tekton event data: %w", err)
	}
	switch {
	case len(d.PipelineRun) > 0 && string(d.PipelineRun) != "null":
		pr, err := decodePipelineRun(d.PipelineRun)
		if err != nil {
			return st, false, err
		}
		if _, ok := Owner(pr.ObjectMeta); !ok {
			return st, false, nil
		}
		return TektonStatus(pr, nil), true, nil
	case len(d.TaskRun) > 0 && string(d.TaskRun) != "null":
		tr, err := decodeTaskRun(d.TaskRun)
		if err != nil {
			return st, false, err
		}
		a, ok := Owner(tr.ObjectMeta)
		if !ok {
			return st, false, nil
		}
		td := TektonTask(tr)
		td.RunID = a.RunID
		st = events.RunStatus{RunID: a.RunID, Team: a.Team, Attempt: a.Attempt, Tasks: []api.TaskDetail{td}}
		if td.State != api.StatePending {
			st.State = api.StateRunning
		}
		return st, true, nil
	}
	return st, false, fmt.Errorf("k8s: Tekton event data has neither pipelineRun nor taskRun")
}

const tektonV1 = "tekton.dev/v1"

func decodePipelineRun(raw []byte) (*tektonv1.PipelineRun, error) {
	var tm metav1.TypeMeta
	_ = json.Unmarshal(raw, &tm)
	if tm.APIVersion == tektonV1 {
		var pr tektonv1.PipelineRun
		if err := json.Unmarshal(raw, &pr); err != nil {
			return nil, fmt.Errorf("k8s: Tekton event PipelineRun: %w", err)
		}
		return &pr, nil
	}
	var b tektonv1beta1.PipelineRun
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("k8s: Tekton event PipelineRun (v1beta1): %w", err)
	}
	var pr tektonv1.PipelineRun
	if err := b.ConvertTo(context.Background(), &pr); err != nil {
		return nil, fmt.Errorf("k8s: Tekton event PipelineRun %s/%s: convert v1beta1 to v1: %w", b.Namespace, b.Name, err)
	}
	return &pr, nil
}

func decodeTaskRun(raw []byte) (*tektonv1.TaskRun, error) {
	var tm metav1.TypeMeta
	_ = json.Unmarshal(raw, &tm)
	if tm.APIVersion == tektonV1 {
		var tr tektonv1.TaskRun
		if err := json.Unmarshal(raw, &tr); err != nil {
			return nil, fmt.Errorf("k8s: Tekton event TaskRun: %w", err)
		}
		return &tr, nil
	}
	var b tektonv1beta1.TaskRun
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("k8s: Tekton event TaskRun (v1beta1): %w", err)
	}
	var tr tektonv1.TaskRun
	if err := b.ConvertTo(context.Background(), &tr); err != nil {
		return nil, fmt.Errorf("k8s: Tekton event TaskRun %s/%s: convert v1beta1 to v1: %w", b.Namespace, b.Name, err)
	}
	return &tr, nil
}

// FromAPIServerEvent reads the data of a Knative ApiServerSource event in Resource mode
// (the whole object) for an Argo Workflow, a Tekton PipelineRun or a TaskRun. ok is
// false for other kinds and for objects pipefn did not create.
func FromAPIServerEvent(data []byte) (st events.RunStatus, ok bool, err error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return st, false, fmt.Errorf("k8s: ApiServerSource event data: %w", err)
	}
	switch tm.Kind {
	case "Workflow":
		var wf wfv1.Workflow
		if err := json.Unmarshal(data, &wf); err != nil {
			return st, false, fmt.Errorf("k8s: ApiServerSource Workflow: %w", err)
		}
		if _, ok := Owner(wf.ObjectMeta); !ok {
			return st, false, nil
		}
		return ArgoStatus(&wf), true, nil
	case "PipelineRun":
		return FromTektonEvent(append(append([]byte(`{"pipelineRun":`), data...), '}'))
	case "TaskRun":
		return FromTektonEvent(append(append([]byte(`{"taskRun":`), data...), '}'))
	}
	return st, false, nil
}
