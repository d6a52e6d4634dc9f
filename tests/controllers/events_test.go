package controllers

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/pipefn/pipefn/shared/api"
)

// TestTektonCloudEventsAlone: with pipefn's resync tick off, a run reaches SUCCEEDED
// (with its task details) from the real Tekton controller's own CloudEvents alone
// (config-events sink -> pipefn's /events), so their decoding is right.
func TestTektonCloudEventsAlone(t *testing.T) {
	f := startTick(t, "tekton", -1)
	f.logs = append(f.logs, cluster.tektonLog)
	if err := setTektonEventsSink(f.ctx, f.srv.URL+"/events"); err != nil {
		t.Fatal(err)
	}
	run := f.submit("two-step", corpus(t, twoStep), map[string]any{"text": "told by tekton"})
	done := f.waitRun(run.RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
	if done.State != api.StateSucceeded {
		t.Fatalf("run ended %s: %+v", done.State, done.Error)
	}
	checkTwoStep(t, f, done, "told by tekton")
}

// TestArgoAPIServerSourceAlone: with pipefn's resync tick off, a run reaches SUCCEEDED
// from ApiServerSource events about the Workflow the real Argo controller moves (a
// stand-in for Knative's adapter, Resource mode, as infra/ configures it).
func TestArgoAPIServerSourceAlone(t *testing.T) {
	f := startTick(t, "argo", -1)
	startArgo(t, f)
	dc, err := dynamic.NewForConfig(cluster.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	t.Cleanup(cancel)
	src := &APIServerSource{Client: dc, Namespace: f.ns, Sink: f.srv.URL + "/events", Log: cluster.kubelet.Log,
		Resource: schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}}
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	run := f.submit("two-step", corpus(t, twoStep), map[string]any{"text": "told by the api server"})
	done := f.waitRun(run.RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
	if done.State != api.StateSucceeded {
		t.Fatalf("run ended %s: %+v", done.State, done.Error)
	}
	checkTwoStep(t, f, done, "told by the api server")
	if n := src.Sent.Load(); n < 2 {
		t.Errorf("the stand-in ApiServerSource delivered %d events; the run cannot have been moved by them", n)
	}
}

// TestTektonFailureByEventsAlone: with the resync tick off, a run whose task fails ends
// FAILED from Tekton's events, and every task shows how it really ended (the PipelineRun
// event that ends the run carries no TaskRuns: pipefn reads the object once more).
func TestTektonFailureByEventsAlone(t *testing.T) {
	f := startTick(t, "tekton", -1)
	f.logs = append(f.logs, cluster.tektonLog)
	if err := setTektonEventsSink(f.ctx, f.srv.URL+"/events"); err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile("../../examples/failing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	run := f.submit("failing", spec, nil)
	done := f.waitRun(run.RunID, "FAILED", stateIs(api.StateSucceeded, api.StateFailed))
	if done.State != api.StateFailed {
		t.Fatalf("run ended %s, want FAILED", done.State)
	}
	got := map[string]string{}
	for _, td := range done.RunDetails.TaskDetails {
		got[td.DisplayName] = td.State
	}
	// Tekton flattens the exit handler's DAG into its pipeline tasks.
	want := map[string]string{"exit-handler-1-prepare": api.StateSucceeded, "exit-handler-1-validate": api.StateFailed, "exit-handler-1-publish": api.StateSkipped, "report": api.StateSucceeded}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks by name when the run ended (-want +got):\n%s", diff)
	}
}
