package k8s_test

import (
	"fmt"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/k8s"
)

func (f *fixture) workflow(runID string, attempt int) *wfv1.Workflow {
	f.t.Helper()
	var wf *wfv1.Workflow
	eventually(f.t, "Workflow of "+runID, func() error {
		var err error
		wf, err = f.kube.Argo.ArgoprojV1alpha1().Workflows(f.ns).Get(f.ctx, k8s.ObjectName(runID, attempt), metav1.GetOptions{})
		return err
	})
	return wf
}

// setWF changes a Workflow's status as the Argo controller would (the CRD has no status
// subresource: the controller updates the whole object).
func (f *fixture) setWF(name string, fn func(*wfv1.Workflow)) *wfv1.Workflow {
	f.t.Helper()
	var out *wfv1.Workflow
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		wf, err := f.kube.Argo.ArgoprojV1alpha1().Workflows(f.ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		fn(wf)
		out, err = f.kube.Argo.ArgoprojV1alpha1().Workflows(f.ns).Update(f.ctx, wf, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("update Workflow %s: %v", name, err)
	}
	// What an ApiServerSource in Resource mode sends: the object with its type.
	out.TypeMeta = metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"}
	return out
}

// templateOf finds the template the compiler labelled with an IR task.
func templateOf(t *testing.T, wf *wfv1.Workflow, irTask string) string {
	t.Helper()
	for _, tm := range wf.Spec.Templates {
		if tm.Metadata.Labels[compile.LabelTask] == irTask && tm.Container != nil {
			return tm.Name
		}
	}
	t.Fatalf("workflow %s: no container template labelled %s=%s", wf.Name, compile.LabelTask, irTask)
	return ""
}

func podNode(wf *wfv1.Workflow, task, template string, phase wfv1.NodePhase) wfv1.NodeStatus {
	n := wfv1.NodeStatus{
		ID: wf.Name + "-" + task, Name: wf.Name + "." + task, DisplayName: task, Type: wfv1.NodeTypePod,
		TemplateName: template, Phase: phase, StartedAt: metav1.NewTime(time.Now().Truncate(time.Second)),
	}
	if phase != wfv1.NodeRunning && phase != wfv1.NodePending {
		n.FinishedAt = metav1.NewTime(time.Now().Truncate(time.Second))
	}
	return n
}

func TestArgoRunLifecycle(t *testing.T) {
	f := start(t, "argo")
	run := f.submit("hello")
	wf := f.workflow(run.RunID, 0)
	if diff := cmp.Diff(map[string]string{
		compile.LabelRunID: run.RunID, compile.LabelTeam: f.ns, k8s.LabelAttempt: "0",
	}, wf.Labels, cmpSubset()); diff != "" {
		t.Errorf("Workflow labels (-want +got):\n%s", diff)
	}
	if wf.Spec.Entrypoint == "" || len(wf.Spec.Templates) < 3 {
		t.Errorf("Workflow spec: entrypoint %q, %d templates; want a DAG and two tasks", wf.Spec.Entrypoint, len(wf.Spec.Templates))
	}
	produceTmpl := templateOf(t, wf, "produce")
	summariseTmpl := templateOf(t, wf, "summarise")

	// The controller starts the workflow and the first pod; ApiServerSource reports it.
	wf = f.setWF(wf.Name, func(wf *wfv1.Workflow) {
		wf.Status.Phase = wfv1.WorkflowRunning
		wf.Status.StartedAt = metav1.Now()
		wf.Status.Nodes = wfv1.Nodes{
			wf.Name:              {ID: wf.Name, Name: wf.Name, Type: wfv1.NodeTypeDAG, Phase: wfv1.NodeRunning},
			wf.Name + "-produce": podNode(wf, "produce", produceTmpl, wfv1.NodeRunning),
		}
	})
	running := wf.DeepCopy()
	f.send("dev.knative.apiserver.resource.update", running, "")
	// Tasks are applied before the run's state: wait for both.
	f.waitRun(run.RunID, "RUNNING", stateIs(api.StateRunning))
	r := f.waitRun(run.RunID, "produce RUNNING", taskState("produce", api.StateRunning))
	if td, _ := task(r, "produce"); td.PodName != k8s.ArgoPodName(wf.Name, wf.Name+".produce", produceTmpl) || td.DisplayName != "produce" {
		t.Errorf("produce: pod %q display %q", td.PodName, td.DisplayName)
	}

	// The rest with every event lost, then the stale "running" update again.
	f.setWF(wf.Name, func(wf *wfv1.Workflow) {
		p := podNode(wf, "produce", produceTmpl, wfv1.NodeSucceeded)
		p.Outputs = &wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: "p-lines", Value: wfv1.AnyStringPtr("3")}}}
		wf.Status.Nodes[wf.Name+"-produce"] = p
		wf.Status.Nodes[wf.Name+"-summarise"] = podNode(wf, "summarise", summariseTmpl, wfv1.NodeSucceeded)
		root := wf.Status.Nodes[wf.Name]
		root.Phase = wfv1.NodeSucceeded
		wf.Status.Nodes[wf.Name] = root
		wf.Status.Phase = wfv1.WorkflowSucceeded
		wf.Status.FinishedAt = metav1.Now()
	})
	f.send("dev.knative.apiserver.resource.update", running, "")
	f.stays(run.RunID, api.StateRunning)
	f.tick()
	r = f.waitRun(run.RunID, "SUCCEEDED after the resync", stateIs(api.StateSucceeded))
	r = f.waitRun(run.RunID, "summarise SUCCEEDED", taskState("summarise", api.StateSucceeded))
	produce, _ := task(r, "produce")
	if diff := cmp.Diff(map[string]any{"lines": float64(3)}, produce.OutputParameters); diff != "" || produce.EndTime == nil {
		t.Errorf("produce outputs (-want +got):\n%s end %v", diff, produce.EndTime)
	}
	f.send("dev.knative.apiserver.resource.update", running, "")
	f.stays(run.RunID, api.StateSucceeded)
	if diff := cmp.Diff([]string{api.StatePending, api.StateRunning, api.StateSucceeded}, history(r)); diff != "" {
		t.Errorf("state history (-want +got):\n%s", diff)
	}
}

func TestArgoTerminate(t *testing.T) {
	f := start(t, "argo")
	run := f.submit("stopped")
	wf := f.workflow(run.RunID, 0)
	produceTmpl := templateOf(t, wf, "produce")
	wf = f.setWF(wf.Name, func(wf *wfv1.Workflow) {
		wf.Status.Phase = wfv1.WorkflowRunning
		wf.Status.Nodes = wfv1.Nodes{wf.Name + "-produce": podNode(wf, "produce", produceTmpl, wfv1.NodeRunning)}
	})
	f.send("dev.knative.apiserver.resource.add", wf, "")
	f.waitRun(run.RunID, "RUNNING", stateIs(api.StateRunning))

	if err := f.api.TerminateRun(f.ctx, run.RunID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "spec.shutdown Terminate", func() error {
		got, err := f.kube.Argo.ArgoprojV1alpha1().Workflows(f.ns).Get(f.ctx, wf.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
			return fmt.Errorf("spec.shutdown = %q", got.Spec.Shutdown)
		}
		return nil
	})
	f.waitRun(run.RunID, "CANCELING", stateIs(api.StateCanceling))
	// Argo ends a terminated workflow Failed; pipefn reports CANCELED, its task too.
	wf = f.setWF(wf.Name, func(wf *wfv1.Workflow) {
		wf.Status.Phase = wfv1.WorkflowFailed
		wf.Status.Message = "Stopped with strategy 'Terminate'"
		n := wf.Status.Nodes[wf.Name+"-produce"]
		n.Phase, n.FinishedAt, n.Message = wfv1.NodeFailed, metav1.Now(), "terminated"
		wf.Status.Nodes[wf.Name+"-produce"] = n
	})
	f.send("dev.knative.apiserver.resource.update", wf, "")
	r := f.waitRun(run.RunID, "CANCELED", stateIs(api.StateCanceled))
	r = f.waitRun(run.RunID, "produce CANCELED", taskState("produce", api.StateCanceled))
	if diff := cmp.Diff([]string{api.StatePending, api.StateRunning, api.StateCanceling, api.StateCanceled}, history(r)); diff != "" {
		t.Errorf("state history (-want +got):\n%s", diff)
	}
}
