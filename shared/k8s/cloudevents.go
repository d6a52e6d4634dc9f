package k8s

import (
	"encoding/json"
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
)

// FromTektonEvent reads the data of one of Tekton's own CloudEvents
// (dev.tekton.event.pipelinerun.* carries {"pipelineRun": {...}}, dev.tekton.event.taskrun.*
// carries {"taskRun": {...}}) as a status report. ok is false for objects pipefn did not
// create. A TaskRun's report carries its one task, and RUNNING for the run once the task
// has started (a run whose task runs is itself running); a PipelineRun's report carries
// the run's state and its skipped tasks (the TaskRuns report themselves).
func FromTektonEvent(data []byte) (st events.RunStatus, ok bool, err error) {
	var d struct {
		PipelineRun *tektonv1.PipelineRun `json:"pipelineRun"`
		TaskRun     *tektonv1.TaskRun     `json:"taskRun"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return st, false, fmt.Errorf("k8s: Tekton event data: %w", err)
	}
	switch {
	case d.PipelineRun != nil:
		a, ok := Owner(d.PipelineRun.ObjectMeta)
		if !ok {
			return st, false, nil
		}
		return TektonStatus(d.PipelineRun, nil), a.RunID != "", nil
	case d.TaskRun != nil:
		a, ok := Owner(d.TaskRun.ObjectMeta)
		if !ok {
			return st, false, nil
		}
		td := TektonTask(d.TaskRun)
		td.RunID = a.RunID
		st = events.RunStatus{RunID: a.RunID, Team: a.Team, Attempt: a.Attempt, Tasks: []api.TaskDetail{td}}
		if td.State != api.StatePending {
			st.State = api.StateRunning
		}
		return st, true, nil
	}
	return st, false, fmt.Errorf("k8s: Tekton event data has neither pipelineRun nor taskRun")
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
