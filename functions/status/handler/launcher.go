package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/launch"
)

// LauncherReporting is an Observer that can tell whether a run's backend object was
// compiled with launchers that report their own tasks (launch.AnnotationLauncherReports).
type LauncherReporting interface {
	LauncherReports(ctx context.Context, team string, run api.Run) (bool, error)
}

// LauncherReports reads the annotation of the run's current object. An object that is
// gone reports nothing (false): its launchers have long finished.
func (o *KubeObserver) LauncherReports(ctx context.Context, team string, run api.Run) (bool, error) {
	name := k8s.ObjectName(run.RunID, run.Attempt)
	var meta metav1.ObjectMeta
	switch o.Backend {
	case k8s.BackendTekton:
		pr, err := o.Client.Tekton.TektonV1().PipelineRuns(team).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return notFoundIsFalse(err, o.Backend, team, name)
		}
		meta = pr.ObjectMeta
	case k8s.BackendArgo:
		wf, err := o.Client.Argo.ArgoprojV1alpha1().Workflows(team).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return notFoundIsFalse(err, o.Backend, team, name)
		}
		meta = wf.ObjectMeta
	default:
		return false, fmt.Errorf("status: unknown backend %q", o.Backend)
	}
	return meta.Annotations[launch.AnnotationLauncherReports] == "true", nil
}

func notFoundIsFalse(err error, backend, ns, name string) (bool, error) {
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("status: read %s object %s/%s: %w", backend, ns, name, err)
}

// launcherReports tells from an engine event's data whether its object's launchers
// report their own tasks: Tekton's events carry {"pipelineRun": obj} or {"taskRun": obj}
// (a TaskRun carries its PipelineRun's annotations, which Tekton propagates), an
// ApiServerSource event the object itself.
func launcherReports(data []byte) bool {
	type object struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	var d struct {
		object
		PipelineRun *object `json:"pipelineRun"`
		TaskRun     *object `json:"taskRun"`
	}
	if json.Unmarshal(data, &d) != nil {
		return false
	}
	for _, o := range []*object{&d.object, d.PipelineRun, d.TaskRun} {
		if o != nil && o.Metadata.Annotations[launch.AnnotationLauncherReports] == "true" {
			return true
		}
	}
	return false
}

// TaskFinished applies a launcher's own report of its task (source launch.EventSource)
// to the task's record: its full inputs and outputs, and its state, which only the
// launcher knows to be CACHED (to the engine, a cache hit is a pod that succeeded). As
// every report, it moves the task forward only and never touches the run's state; a
// report of another attempt than the run's current one is dropped. Other senders'
// task.finished events (the local backend's, this function's own) repeat what a status
// report already said and are ignored.
//
// The launcher posts before its pod ends, so its report normally arrives before the
// engine's news of the pod's end. When the engine's SUCCEEDED is stored first, a
// CACHED report cannot replace it (terminal states never change); it still fills what
// the task lacks, cached_from among it.
func (h *Handler) TaskFinished(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	if e.Source() != launch.EventSource {
		return nil, nil
	}
	d, err := events.Decode[events.TaskFinished](e)
	if err != nil {
		return nil, err
	}
	team := events.Team(e)
	if team == "" || team != d.Team {
		return nil, events.Permanent(fmt.Errorf("event %s: team attribute %q does not match data %q", e.ID(), team, d.Team))
	}
	if d.RunID == "" || d.Task.TaskID == "" || !api.Terminal(d.Task.State) {
		return nil, events.Permanent(fmt.Errorf("event %s: want a run id, a task id and a final task state; got run %q task %q state %q",
			e.ID(), d.RunID, d.Task.TaskID, d.Task.State))
	}
	run, err := h.Store.GetRun(ctx, team, d.RunID)
	if errors.Is(err, api.ErrNotFound) {
		return nil, events.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	if d.Attempt >= 0 && d.Attempt != run.Attempt {
		h.log().InfoContext(ctx, "stale task report dropped", "run", d.RunID, "task", d.Task.TaskID, "attempt", d.Attempt, "current", run.Attempt)
		return nil, nil
	}
	td := d.Task
	td.RunID = d.RunID
	if _, err := h.Store.UpsertTask(ctx, team, d.RunID, td); err != nil {
		if api.KindOf(err) == api.KindInvalid || api.KindOf(err) == api.KindNotFound {
			return nil, events.Permanent(err)
		}
		return nil, err
	}
	return nil, nil
}
