package k8s

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argofake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonfake "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/pipefn/pipefn/shared/api"
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

// TestCreateRateLimit: creations beyond the burst wait for tokens, so a burst of
// submissions reaches the API server at the configured rate.
func TestCreateRateLimit(t *testing.T) {
	c := NewForClients(kubefake.NewSimpleClientset(), tektonfake.NewSimpleClientset(), argofake.NewSimpleClientset(),
		Options{CreatesPerSecond: 20, CreateBurst: 2})
	ctx := context.Background()
	start := time.Now()
	for i := range 8 {
		pr := &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "t"}}
		if _, _, err := c.CreatePipelineRun(ctx, pr, Attempt{RunID: fmt.Sprintf("r%d", i), Team: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	// 2 at once, then 6 more at 20/s: at least 300ms.
	if d := time.Since(start); d < 280*time.Millisecond {
		t.Errorf("8 creates took %v; the limiter let them through faster than 20/s after a burst of 2", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for range 3 {
		_, _, err := c.CreatePipelineRun(cctx, &tektonv1.PipelineRun{}, Attempt{RunID: "x", Team: "t"})
		if err == nil {
			// The limiter may still hold a token; once empty, a cancelled context fails.
			continue
		}
		if !strings.Contains(err.Error(), "rate limit") {
			t.Errorf("cancelled wait: %v, want a rate limit error", err)
		}
		return
	}
	t.Error("creates with a cancelled context never failed")
}

// TestTaskLogs: a task's log is its pod's step containers, in order (the fake
// clientset answers every log request with "fake logs").
func TestTaskLogs(t *testing.T) {
	kube := kubefake.NewSimpleClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pf-r1-a0-train-pod", Namespace: "t"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "step-copy"}, {Name: "step-main"}, {Name: "sidecar"}}},
	})
	c := NewForClients(kube, tektonfake.NewSimpleClientset(), argofake.NewSimpleClientset(), Options{})
	ctx := context.Background()
	lbl := map[string]string{compile.LabelRunID: "r1", LabelAttempt: "0"}
	if _, err := c.Tekton.TektonV1().PipelineRuns("t").Create(ctx, &tektonv1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "pf-r1-a0", Namespace: "t", Labels: lbl}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	trl := map[string]string{tektonPipelineRunLabel: "pf-r1-a0", tektonPipelineTaskLabel: "train"}
	tr := &tektonv1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "pf-r1-a0-train", Namespace: "t", Labels: trl}}
	tr.Status.PodName = "pf-r1-a0-train-pod"
	if _, err := c.Tekton.TektonV1().TaskRuns("t").Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run := api.Run{RunID: "r1"}
	rc, err := c.TaskLogs(ctx, BackendTekton, "t", run, "train")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(b) != "fake logsfake logs" {
		t.Errorf("log = %q, want the two step containers' logs", b)
	}
	for _, task := range []string{"nope"} {
		if _, err := c.TaskLogs(ctx, BackendTekton, "t", run, task); api.KindOf(err) != api.KindNotFound {
			t.Errorf("task %q: %v, want not found", task, err)
		}
	}
	if _, err := c.TaskLogs(ctx, BackendTekton, "t", api.Run{RunID: "r2"}, "train"); api.KindOf(err) != api.KindNotFound {
		t.Errorf("run without an object: %v, want not found", err)
	}
}
