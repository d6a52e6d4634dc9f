package handler

import (
	"context"
	"errors"
	"os"
	"testing"

	argofake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/google/go-cmp/cmp"
	tektonfake "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/k8s"
)

func helloJob(t *testing.T, attempt int) Job {
	t.Helper()
	data, err := os.ReadFile("../../../examples/hello-artifacts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ir.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	params, err := p.BindParameters(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Job{Team: "team-a", Run: api.Run{RunID: "r-1"}, Attempt: attempt, Pipeline: p, Params: params,
		PipelineRoot: "s3://b/team-a", Caching: true}
}

// The real API server suite is tests/k8s; these use the clientsets' fakes for speed.
func TestKubeBackendDispatch(t *testing.T) {
	tk, ar := tektonfake.NewSimpleClientset(), argofake.NewSimpleClientset()
	c := k8s.NewForClients(kubefake.NewSimpleClientset(), tk, ar, k8s.Options{})
	backends := KubeBackends(c, "", nil)
	ctx := context.Background()
	for _, target := range []string{"tekton", "argo"} {
		for _, attempt := range []int{0, 0, 1} { // the second is a redelivery
			d, err := backends[target].Dispatch(ctx, helloJob(t, attempt))
			if err != nil {
				t.Fatalf("%s attempt %d: %v", target, attempt, err)
			}
			want := events.RunDispatched{RunID: "r-1", Team: "team-a", Backend: target, Attempt: attempt,
				Namespace: "team-a", Object: k8s.ObjectName("r-1", attempt)}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("%s attempt %d (-want +got):\n%s", target, attempt, diff)
			}
		}
	}
	prs, _ := tk.TektonV1().PipelineRuns("team-a").List(ctx, metav1.ListOptions{})
	wfs, _ := ar.ArgoprojV1alpha1().Workflows("team-a").List(ctx, metav1.ListOptions{})
	if len(prs.Items) != 2 || len(wfs.Items) != 2 {
		t.Errorf("%d PipelineRuns and %d Workflows, want 2 each (attempts 0 and 1)", len(prs.Items), len(wfs.Items))
	}
}

func TestKubeBackendErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		createErr error
		permanent bool
	}{
		{"invalid object", apierrors.NewInvalid(schema.GroupKind{Group: "tekton.dev", Kind: "PipelineRun"}, "x", nil), true},
		{"namespace missing", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "team-a"), true},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), false},
		{"unreachable", errors.New("dial tcp: connection refused"), false},
	}
	for _, tt := range tests {
		tk := tektonfake.NewSimpleClientset()
		tk.PrependReactor("create", "pipelineruns", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, tt.createErr
		})
		c := k8s.NewForClients(kubefake.NewSimpleClientset(), tk, argofake.NewSimpleClientset(), k8s.Options{})
		_, err := KubeBackends(c, "", nil)["tekton"].Dispatch(ctx, helloJob(t, 0))
		if err == nil || events.IsPermanent(err) != tt.permanent {
			t.Errorf("%s: err %v, permanent %v; want an error, permanent %v", tt.name, err, events.IsPermanent(err), tt.permanent)
		}
	}
	// A pipeline the compiler cannot take fails the run.
	job := helloJob(t, 0)
	job.Run.RunID = ""
	c := k8s.NewForClients(kubefake.NewSimpleClientset(), tektonfake.NewSimpleClientset(), argofake.NewSimpleClientset(), k8s.Options{})
	if _, err := KubeBackends(c, "", nil)["tekton"].Dispatch(ctx, job); !events.IsPermanent(err) {
		t.Errorf("compile error: %v, want a permanent error", err)
	}
}
