package k8s_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/argo"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/k8s"
)

func compiled(t testing.TB, runID, ns string) (*tektonv1.PipelineRun, *wfv1.Workflow) {
	t.Helper()
	p, err := ir.Load(helloIR(t))
	if err != nil {
		t.Fatal(err)
	}
	params, err := p.BindParameters(nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := compile.Options{RunID: runID, Team: ns, Namespace: ns, PipelineRoot: "s3://bucket/" + ns, Params: params}
	pr, err := tekton.Compile(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := argo.Compile(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return pr, wf
}

// TestCreateIdempotent: concurrent deliveries of one submission create one object.
func TestCreateIdempotent(t *testing.T) {
	needCluster(t)
	kube := newKube(t, k8s.Options{})
	ns := newNamespace(t, kube)
	pr, wf := compiled(t, "run-dup", ns)
	ctx := context.Background()
	var created atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			name, ok, err := kube.CreatePipelineRun(ctx, pr, k8s.Attempt{RunID: "run-dup", Team: ns, Attempt: 0})
			if err != nil || name != k8s.ObjectName("run-dup", 0) {
				t.Errorf("CreatePipelineRun: %q %v", name, err)
			}
			if ok {
				created.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			if _, ok, err := kube.CreateWorkflow(ctx, wf, k8s.Attempt{RunID: "run-dup", Team: ns, Attempt: 0}); err != nil {
				t.Errorf("CreateWorkflow: %v", err)
			} else if ok {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := created.Load(); got != 2 {
		t.Errorf("%d creations reported, want 2 (one PipelineRun, one Workflow)", got)
	}
	// A second attempt is a second object.
	if _, ok, err := kube.CreatePipelineRun(ctx, pr, k8s.Attempt{RunID: "run-dup", Team: ns, Attempt: 1}); err != nil || !ok {
		t.Errorf("attempt 1: created %v, %v", ok, err)
	}
	prs, err := kube.Tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(prs.Items) != 2 {
		t.Errorf("%d PipelineRuns, want 2", len(prs.Items))
	}
}

// TestPrune: finished objects older than the retention go, the rest stay.
func TestPrune(t *testing.T) {
	needCluster(t)
	clock := time.Now()
	kube := newKube(t, k8s.Options{Retention: time.Hour, Now: func() time.Time { return clock }})
	ns := newNamespace(t, kube)
	ctx := context.Background()
	for i, age := range []time.Duration{3 * time.Hour, 10 * time.Minute, -1} {
		id := []string{"old", "recent", "running"}[i]
		pr, wf := compiled(t, id, ns)
		a := k8s.Attempt{RunID: id, Team: ns}
		if _, _, err := kube.CreatePipelineRun(ctx, pr, a); err != nil {
			t.Fatal(err)
		}
		if _, _, err := kube.CreateWorkflow(ctx, wf, a); err != nil {
			t.Fatal(err)
		}
		if age < 0 {
			continue
		}
		end := metav1.NewTime(clock.Add(-age))
		got, err := kube.Tekton.TektonV1().PipelineRuns(ns).Get(ctx, k8s.ObjectName(id, 0), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Status.CompletionTime = &end
		got.Status.Conditions = succeeded(corev1.ConditionTrue, "Succeeded", "")
		if _, err := kube.Tekton.TektonV1().PipelineRuns(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		w, err := kube.Argo.ArgoprojV1alpha1().Workflows(ns).Get(ctx, k8s.ObjectName(id, 0), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Status.Phase, w.Status.FinishedAt = wfv1.WorkflowSucceeded, end
		if _, err := kube.Argo.ArgoprojV1alpha1().Workflows(ns).Update(ctx, w, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, backend := range []string{k8s.BackendTekton, k8s.BackendArgo} {
		n, err := kube.Prune(ctx, backend, ns)
		if err != nil || n != 1 {
			t.Errorf("Prune(%s) = %d, %v; want 1 deleted", backend, n, err)
		}
	}
	prs, _ := kube.Tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
	wfs, _ := kube.Argo.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{})
	var left []string
	for _, p := range prs.Items {
		left = append(left, "pr/"+p.Name)
	}
	for _, w := range wfs.Items {
		left = append(left, "wf/"+w.Name)
	}
	want := []string{"pr/pf-recent-a0", "pr/pf-running-a0", "wf/pf-recent-a0", "wf/pf-running-a0"}
	if diff := cmpDiff(want, left); diff != "" {
		t.Errorf("objects left (-want +got):\n%s", diff)
	}
}

// TestTaskLogsNamePod: the log of a task whose pod is gone is a 404 naming the pod,
// through pipefn's REST API; a task with no pod at all is a 404 too.
func TestTaskLogsNamePod(t *testing.T) {
	f := start(t, "tekton")
	run := f.submit("logs")
	pr := f.pipelineRun(run.RunID, 0)
	f.taskRun(pr, "produce", func(tr *tektonv1.TaskRun) {
		tr.Status.PodName = "gone-pod"
		tr.Status.StartTime = now()
		tr.Status.Conditions = succeeded(corev1.ConditionUnknown, "Running", "")
	})
	var buf bytes.Buffer
	err := f.api.RunLog(f.ctx, run.RunID, "produce", &buf)
	var ce *client.Error
	if !asError(err, &ce) || ce.HTTPStatus != 404 || !bytes.Contains([]byte(ce.Error()), []byte("gone-pod")) {
		t.Errorf("log of a task whose pod is gone: %v; want a 404 naming gone-pod", err)
	}
	err = f.api.RunLog(f.ctx, run.RunID, "summarise", &buf)
	if !asError(err, &ce) || ce.HTTPStatus != 404 {
		t.Errorf("log of a task with no pod: %v; want a 404", err)
	}
}

func asError(err error, target **client.Error) bool { return errors.As(err, target) }

func cmpDiff(want, got []string) string {
	slices.Sort(got)
	return cmp.Diff(want, got)
}
