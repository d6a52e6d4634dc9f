package k8s_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonv1beta1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/state"
)

func (f *fixture) pipelineRun(runID string, attempt int) *tektonv1.PipelineRun {
	f.t.Helper()
	var pr *tektonv1.PipelineRun
	eventually(f.t, "PipelineRun of "+runID, func() error {
		var err error
		pr, err = f.kube.Tekton.TektonV1().PipelineRuns(f.ns).Get(f.ctx, k8s.ObjectName(runID, attempt), metav1.GetOptions{})
		return err
	})
	return pr
}

// setPR changes a PipelineRun's status as the Tekton controller would.
func (f *fixture) setPR(name string, fn func(*tektonv1.PipelineRun)) *tektonv1.PipelineRun {
	f.t.Helper()
	var out *tektonv1.PipelineRun
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pr, err := f.kube.Tekton.TektonV1().PipelineRuns(f.ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		fn(pr)
		out, err = f.kube.Tekton.TektonV1().PipelineRuns(f.ns).UpdateStatus(f.ctx, pr, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("update PipelineRun %s status: %v", name, err)
	}
	return out
}

// taskRun creates (or updates) the TaskRun of a pipeline task as the controller would:
// the PipelineRun's labels and annotations propagated, Tekton's own labels added, and
// then its status set.
func (f *fixture) taskRun(pr *tektonv1.PipelineRun, pipelineTask string, fn func(*tektonv1.TaskRun)) *tektonv1.TaskRun {
	f.t.Helper()
	name := pr.Name + "-" + pipelineTask
	trc := f.kube.Tekton.TektonV1().TaskRuns(f.ns)
	tr, err := trc.Get(f.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		labels := map[string]string{"tekton.dev/pipelineRun": pr.Name, "tekton.dev/pipelineTask": pipelineTask}
		for k, v := range pr.Labels {
			labels[k] = v
		}
		tr = &tektonv1.TaskRun{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: labels, Annotations: pr.Annotations},
			Spec:       tektonv1.TaskRunSpec{TaskSpec: &tektonv1.TaskSpec{Steps: []tektonv1.Step{{Name: "main", Image: "busybox"}}}},
		}
		tr, err = trc.Create(f.ctx, tr, metav1.CreateOptions{})
	}
	if err != nil {
		f.t.Fatalf("TaskRun %s: %v", name, err)
	}
	fn(tr)
	tr, err = trc.UpdateStatus(f.ctx, tr, metav1.UpdateOptions{})
	if err != nil {
		f.t.Fatalf("update TaskRun %s status: %v", name, err)
	}
	return tr
}

func succeeded(status corev1.ConditionStatus, reason, msg string) duckv1.Conditions {
	return duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: apis.VolatileTime{Inner: metav1.Now()}}}
}

func now() *metav1.Time { t := metav1.NewTime(time.Now().Truncate(time.Second)); return &t }

func TestTektonRunLifecycle(t *testing.T) {
	f := start(t, "tekton")
	run := f.submit("hello")
	pr := f.pipelineRun(run.RunID, 0)

	// The object: named after run and attempt, in the team's namespace, tied to the run.
	if diff := cmp.Diff(map[string]string{
		compile.LabelRunID: run.RunID, compile.LabelTeam: f.ns, k8s.LabelAttempt: "0",
	}, pr.Labels, cmpSubset()); diff != "" {
		t.Errorf("PipelineRun labels (-want +got):\n%s", diff)
	}
	if got := pr.Annotations[k8s.AnnotationRunID]; got != run.RunID {
		t.Errorf("annotation %s = %q, want %q", k8s.AnnotationRunID, got, run.RunID)
	}
	var tasks []string
	if pr.Spec.PipelineSpec != nil {
		for _, pt := range pr.Spec.PipelineSpec.Tasks {
			tasks = append(tasks, pt.Name)
		}
	}
	if diff := cmp.Diff([]string{"produce", "summarise"}, tasks); diff != "" {
		t.Errorf("pipeline tasks (-want +got):\n%s", diff)
	}
	f.stays(run.RunID, api.StatePending)

	// A redelivered submission (new event id, so no dedupe) creates nothing twice.
	f.send(events.TypeRunSubmitted, events.RunSubmitted{RunID: run.RunID, Team: f.ns, Backend: "tekton"}, f.ns)
	time.Sleep(300 * time.Millisecond)
	list, err := f.kube.Tekton.TektonV1().PipelineRuns(f.ns).List(f.ctx, metav1.ListOptions{LabelSelector: compile.LabelRunID + "=" + run.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("after a redelivered submission: %d PipelineRuns, want 1", len(list.Items))
	}

	// The controller starts the run: Tekton's CloudEvent says so.
	pr = f.setPR(pr.Name, func(pr *tektonv1.PipelineRun) {
		pr.Status.StartTime = now()
		pr.Status.Conditions = succeeded(corev1.ConditionUnknown, "Running", "Tasks Completed: 0")
	})
	started := f.prEvent(pr)
	f.send("dev.tekton.event.pipelinerun.running.v1", started, "")
	f.waitRun(run.RunID, "RUNNING after pipelinerun.running", stateIs(api.StateRunning))

	// A task starts; its event carries the pod name and start time.
	tr := f.taskRun(pr, "produce", func(tr *tektonv1.TaskRun) {
		tr.Status.PodName = tr.Name + "-pod"
		tr.Status.StartTime = now()
		tr.Status.Conditions = succeeded(corev1.ConditionUnknown, "Running", "")
	})
	f.send("dev.tekton.event.taskrun.running.v1", f.trEvent(tr), "")
	r := f.waitRun(run.RunID, "produce RUNNING", taskState("produce", api.StateRunning))
	if td, _ := task(r, "produce"); td.PodName != tr.Name+"-pod" || td.StartTime == nil {
		t.Errorf("produce: pod %q start %v, want pod %q and a start time", td.PodName, td.StartTime, tr.Name+"-pod")
	}

	// Everything else happens with every event lost: both tasks end, the run succeeds.
	f.taskRun(pr, "produce", func(tr *tektonv1.TaskRun) {
		tr.Status.CompletionTime = now()
		tr.Status.Conditions = succeeded(corev1.ConditionTrue, "Succeeded", "")
		tr.Status.Results = []tektonv1.TaskRunResult{
			{Name: "p-lines", Type: tektonv1.ResultsTypeString, Value: *tektonv1.NewStructuredValues("3")},
			{Name: "a-dataset", Type: tektonv1.ResultsTypeString, Value: *tektonv1.NewStructuredValues("s3://b/r/produce/dataset")},
		}
	})
	f.taskRun(pr, "summarise", func(tr *tektonv1.TaskRun) {
		tr.Status.PodName = tr.Name + "-pod"
		tr.Status.StartTime = now()
		tr.Status.CompletionTime = now()
		tr.Status.Conditions = succeeded(corev1.ConditionTrue, "Succeeded", "")
	})
	f.setPR(pr.Name, func(pr *tektonv1.PipelineRun) {
		pr.Status.CompletionTime = now()
		pr.Status.Conditions = succeeded(corev1.ConditionTrue, "Succeeded", "Tasks Completed: 2")
	})
	// ... and a stale event arrives late, out of order: it must not move anything back.
	f.send("dev.tekton.event.pipelinerun.running.v1", started, "")
	f.stays(run.RunID, api.StateRunning)

	// The resync on the tick reads the live objects and heals the lost events.
	f.tick()
	f.waitRun(run.RunID, "SUCCEEDED after the resync", stateIs(api.StateSucceeded))
	f.waitRun(run.RunID, "summarise SUCCEEDED", taskState("summarise", api.StateSucceeded))
	rp, _ := f.api.GetRun(f.ctx, run.RunID)
	produce, _ := task(*rp, "produce")
	if produce.State != api.StateSucceeded || produce.EndTime == nil {
		t.Errorf("produce: state %s end %v, want SUCCEEDED with an end time", produce.State, produce.EndTime)
	}
	if diff := cmp.Diff(map[string]any{"lines": float64(3)}, produce.OutputParameters); diff != "" {
		t.Errorf("produce outputs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]api.ArtifactList{"dataset": {URIs: []string{"s3://b/r/produce/dataset"}}}, produce.Outputs); diff != "" {
		t.Errorf("produce artifacts (-want +got):\n%s", diff)
	}

	// The ended tasks were announced to lineage: the run's output artifact is recorded.
	eventually(t, "lineage records produce's artifact", func() error {
		var out json.RawMessage
		if err := f.api.Get(f.ctx, "/runs/"+run.RunID+"/artifacts", nil, &out); err != nil {
			return err
		}
		if !strings.Contains(string(out), "s3://b/r/produce/dataset") {
			return fmt.Errorf("artifacts: %s", out)
		}
		return nil
	})

	// Duplicates of every event after the end change nothing.
	f.send("dev.tekton.event.pipelinerun.running.v1", started, "")
	f.send("dev.tekton.event.taskrun.running.v1", f.trEvent(tr), "")
	f.tick()
	f.stays(run.RunID, api.StateSucceeded)
	rp, _ = f.api.GetRun(f.ctx, run.RunID)
	if diff := cmp.Diff([]string{api.StatePending, api.StateRunning, api.StateSucceeded}, history(*rp)); diff != "" {
		t.Errorf("state history (-want +got):\n%s", diff)
	}
	if td, _ := task(*rp, "produce"); td.State != api.StateSucceeded {
		t.Errorf("produce went back to %s after duplicate events", td.State)
	}
}

func TestTektonFailRetryCancel(t *testing.T) {
	f := start(t, "tekton")
	run := f.submit("fails")
	pr := f.pipelineRun(run.RunID, 0)

	// The first attempt fails; the event carries the reason.
	f.taskRun(pr, "produce", func(tr *tektonv1.TaskRun) {
		tr.Status.StartTime, tr.Status.CompletionTime = now(), now()
		tr.Status.Conditions = succeeded(corev1.ConditionFalse, "Failed", `"step-main" exited with code 1`)
	})
	pr = f.setPR(pr.Name, func(pr *tektonv1.PipelineRun) {
		pr.Status.StartTime, pr.Status.CompletionTime = now(), now()
		pr.Status.Conditions = succeeded(corev1.ConditionFalse, "Failed", "Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 1")
		pr.Status.SkippedTasks = []tektonv1.SkippedTask{{Name: "summarise", Reason: tektonv1.StoppingSkip}}
	})
	failed := f.prEvent(pr)
	f.send("dev.tekton.event.pipelinerun.failed.v1", failed, "")
	r := f.waitRun(run.RunID, "FAILED", stateIs(api.StateFailed))
	if r.Error == nil || !strings.Contains(r.Error.Message, "Failed: 1") {
		t.Errorf("run error = %+v, want the PipelineRun's message", r.Error)
	}
	f.waitRun(run.RunID, "summarise SKIPPED", taskState("summarise", api.StateSkipped))

	// Retry: a new attempt, a new object; the old one stays as it was.
	if err := f.api.RetryRun(f.ctx, run.RunID); err != nil {
		t.Fatal(err)
	}
	pr1 := f.pipelineRun(run.RunID, 1)
	if pr1.Labels[k8s.LabelAttempt] != "1" || pr1.Name != k8s.ObjectName(run.RunID, 1) {
		t.Errorf("retry object %s attempt label %q, want %s and 1", pr1.Name, pr1.Labels[k8s.LabelAttempt], k8s.ObjectName(run.RunID, 1))
	}
	f.waitRun(run.RunID, "PENDING attempt 1", func(r api.Run) bool { return r.State == api.StatePending && r.Attempt == 1 })
	// The first attempt's failure, delivered again late, is not the new attempt's.
	f.send("dev.tekton.event.pipelinerun.failed.v1", failed, "")
	f.stays(run.RunID, api.StatePending)

	pr1 = f.setPR(pr1.Name, func(pr *tektonv1.PipelineRun) {
		pr.Status.StartTime = now()
		pr.Status.Conditions = succeeded(corev1.ConditionUnknown, "Running", "")
	})
	f.send("dev.tekton.event.pipelinerun.started.v1", f.prEvent(pr1), "")
	f.waitRun(run.RunID, "RUNNING attempt 1", stateIs(api.StateRunning))

	// Terminate: pipefn asks Tekton to cancel; the controller's answer is lost, the tick
	// finds it.
	if err := f.api.TerminateRun(f.ctx, run.RunID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "spec.status Cancelled", func() error {
		got, err := f.kube.Tekton.TektonV1().PipelineRuns(f.ns).Get(f.ctx, pr1.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Spec.Status != tektonv1.PipelineRunSpecStatusCancelled {
			return fmt.Errorf("spec.status = %q", got.Spec.Status)
		}
		return nil
	})
	if old, _ := f.kube.Tekton.TektonV1().PipelineRuns(f.ns).Get(f.ctx, pr.Name, metav1.GetOptions{}); old.Spec.Status != "" {
		t.Errorf("finished attempt 0 was patched too: spec.status %q", old.Spec.Status)
	}
	f.setPR(pr1.Name, func(pr *tektonv1.PipelineRun) {
		pr.Status.CompletionTime = now()
		pr.Status.Conditions = succeeded(corev1.ConditionFalse, "Cancelled", "PipelineRun cancelled")
	})
	f.tick()
	r = f.waitRun(run.RunID, "CANCELED", stateIs(api.StateCanceled))
	if diff := cmp.Diff([]string{api.StateRunning, api.StateCanceling, api.StateCanceled}, history(r)[len(history(r))-3:]); diff != "" {
		t.Errorf("last transitions (-want +got):\n%s", diff)
	}
}

// prEvent is the data of Tekton's pipelinerun events: the controller converts the
// object to v1beta1 before sending it.
func (f *fixture) prEvent(pr *tektonv1.PipelineRun) map[string]any {
	f.t.Helper()
	var b tektonv1beta1.PipelineRun
	if err := b.ConvertFrom(f.ctx, pr); err != nil {
		f.t.Fatal(err)
	}
	return map[string]any{"pipelineRun": &b}
}

// trEvent is the data of Tekton's taskrun events (v1beta1, as prEvent).
func (f *fixture) trEvent(tr *tektonv1.TaskRun) map[string]any {
	f.t.Helper()
	var b tektonv1beta1.TaskRun
	if err := b.ConvertFrom(f.ctx, tr); err != nil {
		f.t.Fatal(err)
	}
	return map[string]any{"taskRun": &b}
}

// cmpSubset compares only the keys the expected map names.
func cmpSubset() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		mi, ok := p.Last().(cmp.MapIndex)
		if !ok {
			return false
		}
		vx, _ := mi.Values()
		return !vx.IsValid()
	}, cmp.Ignore())
}

// TestCancelRaceHealed: a run pipefn is cancelling whose object still runs (its cancel
// went out before the object existed) is cancelled again by the resync.
func TestCancelRaceHealed(t *testing.T) {
	for _, backend := range []string{"tekton", "argo"} {
		t.Run(backend, func(t *testing.T) {
			f := start(t, backend)
			run := f.submit("race")
			name := k8s.ObjectName(run.RunID, 0)
			if backend == "tekton" {
				f.pipelineRun(run.RunID, 0)
			} else {
				f.workflow(run.RunID, 0)
			}
			// CANCELING in the store, but no cancel reached the cluster.
			if _, err := f.srv.Store.Transition(f.ctx, f.ns, run.RunID, state.StateUpdate{State: api.StateCanceling}); err != nil {
				t.Fatal(err)
			}
			f.tick()
			eventually(t, "object cancelled by the resync", func() error {
				if backend == "tekton" {
					pr, err := f.kube.Tekton.TektonV1().PipelineRuns(f.ns).Get(f.ctx, name, metav1.GetOptions{})
					if err == nil && pr.Spec.Status != tektonv1.PipelineRunSpecStatusCancelled {
						err = fmt.Errorf("spec.status %q", pr.Spec.Status)
					}
					return err
				}
				wf, err := f.kube.Argo.ArgoprojV1alpha1().Workflows(f.ns).Get(f.ctx, name, metav1.GetOptions{})
				if err == nil && wf.Spec.Shutdown == "" {
					err = fmt.Errorf("spec.shutdown empty")
				}
				return err
			})
		})
	}
}
