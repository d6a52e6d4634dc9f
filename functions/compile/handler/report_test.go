package handler

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/k8s/k8sfake"
	"github.com/pipefn/pipefn/shared/launch"
)

// TestKubeBackendLauncherReport: with a launcher report configured, the dispatched
// objects are annotated and their launchers get the events URL, the cache URL and the
// run attempt; without one they get nothing.
func TestKubeBackendLauncherReport(t *testing.T) {
	ctx := context.Background()
	r := LauncherReport{EventsURL: "http://broker/team-a/default", CacheURL: "http://lineage", CacheMaxAge: 2 * time.Hour}
	for _, tc := range []struct {
		name   string
		report LauncherReport
		want   map[string]string
	}{
		{name: "off", want: map[string]string{}},
		{name: "on", report: r, want: map[string]string{
			"annotation": "true", launch.EnvEventsURL: r.EventsURL, launch.EnvAttempt: "2", launch.EnvTeam: "team-a",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := k8sfake.New(k8s.Options{})
			backends := WithLauncherReport(KubeBackends(c.Client, "", nil), tc.report)
			for _, target := range []string{"tekton", "argo"} {
				if _, err := backends[target].Dispatch(ctx, helloJob(t, 2)); err != nil {
					t.Fatalf("%s: %v", target, err)
				}
			}
			name := k8s.ObjectName("r-1", 2)
			pr, err := c.Tekton.TektonV1().PipelineRuns("team-a").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wf, err := c.Argo.ArgoprojV1alpha1().Workflows("team-a").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			seen := func(ann map[string]string, envs map[string]string) map[string]string {
				out := map[string]string{}
				if v, ok := ann[launch.AnnotationLauncherReports]; ok {
					out["annotation"] = v
				}
				for _, k := range []string{launch.EnvEventsURL, launch.EnvAttempt, launch.EnvTeam} {
					if v, ok := envs[k]; ok {
						out[k] = v
					}
				}
				return out
			}
			tkEnv := map[string]string{}
			for _, pt := range pr.Spec.PipelineSpec.Tasks {
				for _, s := range pt.TaskSpec.Steps {
					for _, e := range s.Env {
						tkEnv[e.Name] = e.Value
					}
				}
			}
			arEnv := map[string]string{}
			for _, tm := range wf.Spec.Templates {
				if tm.Container != nil {
					for _, e := range tm.Container.Env {
						arEnv[e.Name] = e.Value
					}
				}
			}
			if diff := cmp.Diff(tc.want, seen(pr.Annotations, tkEnv)); diff != "" {
				t.Errorf("tekton (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, seen(wf.Annotations, arEnv)); diff != "" {
				t.Errorf("argo (-want +got):\n%s", diff)
			}
		})
	}
}
