package handler

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/k8s/k8sfake"
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
	c := k8sfake.New(k8s.Options{})
	backends := KubeBackends(c.Client, "", nil)
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
	prs, _ := c.Tekton.TektonV1().PipelineRuns("team-a").List(ctx, metav1.ListOptions{})
	wfs, _ := c.Argo.ArgoprojV1alpha1().Workflows("team-a").List(ctx, metav1.ListOptions{})
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
		c := k8sfake.New(k8s.Options{})
		c.FailCreates("pipelineruns", tt.createErr)
		_, err := KubeBackends(c.Client, "", nil)["tekton"].Dispatch(ctx, helloJob(t, 0))
		if err == nil || events.IsPermanent(err) != tt.permanent {
			t.Errorf("%s: err %v, permanent %v; want an error, permanent %v", tt.name, err, events.IsPermanent(err), tt.permanent)
		}
	}
	// A pipeline the compiler cannot take fails the run.
	job := helloJob(t, 0)
	job.Run.RunID = ""
	if _, err := KubeBackends(k8sfake.New(k8s.Options{}).Client, "", nil)["tekton"].Dispatch(ctx, job); !events.IsPermanent(err) {
		t.Errorf("compile error: %v, want a permanent error", err)
	}
}
