package k8s

import (
	"context"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argofake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonfake "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/pipefn/pipefn/shared/compile"
)

func fakeClient() *Client {
	return NewForClients(kubefake.NewSimpleClientset(), tektonfake.NewSimpleClientset(), argofake.NewSimpleClientset(), Options{})
}

func TestCreateStampsAndIsIdempotent(t *testing.T) {
	c := fakeClient()
	ctx := context.Background()
	pr := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "pf-r1", Namespace: "team-a",
		Labels: map[string]string{compile.LabelRunID: "r1", "extra": "x"}}}
	a := Attempt{RunID: "r1", Team: "team-a", Attempt: 2}
	name, created, err := c.CreatePipelineRun(ctx, pr, a)
	if err != nil || !created || name != "pf-r1-a2" {
		t.Fatalf("first create: %q %v %v", name, created, err)
	}
	if pr.Name != "pf-r1" {
		t.Error("CreatePipelineRun changed its argument")
	}
	name, created, err = c.CreatePipelineRun(ctx, pr, a)
	if err != nil || created || name != "pf-r1-a2" {
		t.Fatalf("redelivered create: %q %v %v, want the same name, not created, no error", name, created, err)
	}
	got, err := c.Tekton.TektonV1().PipelineRuns("team-a").Get(ctx, "pf-r1-a2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := metav1.ObjectMeta{Name: "pf-r1-a2", Namespace: "team-a",
		Labels:      map[string]string{compile.LabelRunID: "r1", compile.LabelTeam: "team-a", LabelAttempt: "2", "extra": "x"},
		Annotations: map[string]string{AnnotationRunID: "r1"}}
	if diff := cmp.Diff(want, got.ObjectMeta); diff != "" {
		t.Errorf("stored metadata (-want +got):\n%s", diff)
	}
}

func TestCancel(t *testing.T) {
	c := fakeClient()
	ctx := context.Background()
	lbl := map[string]string{compile.LabelRunID: "r1"}
	done := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "pf-r1-a0", Namespace: "t", Labels: lbl}}
	done.Status.Conditions = cond(corev1.ConditionFalse, "Failed", "")
	live := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "pf-r1-a1", Namespace: "t", Labels: lbl}}
	otherRun := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "pf-r2-a0", Namespace: "t", Labels: map[string]string{compile.LabelRunID: "r2"}}}
	for _, pr := range []*tektonv1.PipelineRun{done, live, otherRun} {
		if _, err := c.Tekton.TektonV1().PipelineRuns("t").Create(ctx, pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	wf := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: "pf-r1-a0", Namespace: "t", Labels: lbl}}
	wf.Status.Phase = wfv1.WorkflowRunning
	if _, err := c.Argo.ArgoprojV1alpha1().Workflows("t").Create(ctx, wf, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, BackendTekton, "t", "r1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, BackendArgo, "t", "r1"); err != nil {
		t.Fatal(err)
	}
	got := map[string]tektonv1.PipelineRunSpecStatus{}
	list, _ := c.Tekton.TektonV1().PipelineRuns("t").List(ctx, metav1.ListOptions{})
	for _, pr := range list.Items {
		got[pr.Name] = pr.Spec.Status
	}
	want := map[string]tektonv1.PipelineRunSpecStatus{"pf-r1-a0": "", "pf-r1-a1": tektonv1.PipelineRunSpecStatusCancelled, "pf-r2-a0": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec.status after cancel (-want +got):\n%s", diff)
	}
	w, _ := c.Argo.ArgoprojV1alpha1().Workflows("t").Get(ctx, "pf-r1-a0", metav1.GetOptions{})
	if w.Spec.Shutdown != wfv1.ShutdownStrategyTerminate {
		t.Errorf("workflow shutdown = %q, want Terminate", w.Spec.Shutdown)
	}
	if err := c.Cancel(ctx, "local", "t", "r1"); err == nil {
		t.Error("cancel on an unknown backend: no error")
	}
}
