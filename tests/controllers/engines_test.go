package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/api"
)

// twoStep is a KFP-SDK-compiled corpus pipeline: component1 writes its text parameter
// to a Dataset artifact (sh -c), component2 cats it.
const twoStep = "kfp__test_data__sdk_compiled_pipelines__valid__critical__two_step_pipeline_containerized.yaml"

// TestTektonRunsCorpusPipeline runs the corpus pipeline through the real Tekton
// controller: pipefn creates the PipelineRun, Tekton makes TaskRuns and Pods, the
// kubelet runs them, Tekton reads the results from the results sidecar's log through
// the API server, passes component1's artifact URI to component2, and reports with its
// own CloudEvents to pipefn, which also resyncs on its tick.
func TestTektonRunsCorpusPipeline(t *testing.T) {
	f := start(t, "tekton")
	f.logs = append(f.logs, cluster.tektonLog)
	if err := setTektonEventsSink(f.ctx, f.srv.URL+"/events"); err != nil {
		t.Fatal(err)
	}
	run := f.submit("two-step", corpus(t, twoStep), map[string]any{"text": "hello from tekton"})
	done := f.waitRun(run.RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
	if done.State != api.StateSucceeded {
		t.Fatalf("run ended %s: %+v", done.State, done.Error)
	}
	checkTwoStep(t, f, done, "hello from tekton")

	// Tekton's own state machine did the work: two TaskRuns, each Succeeded.
	trs, err := cluster.kube.CoreV1().Pods(f.ns).List(f.ctx, metav1.ListOptions{LabelSelector: "tekton.dev/pipelineTask"})
	if err != nil {
		t.Fatal(err)
	}
	var tasks []string
	for _, p := range trs.Items {
		tasks = append(tasks, p.Labels["tekton.dev/pipelineTask"]+":"+string(p.Status.Phase))
	}
	if diff := cmp.Diff([]string{"component1:Succeeded", "component2:Succeeded"}, sorted(tasks)); diff != "" {
		t.Errorf("Tekton's pods (-want +got):\n%s", diff)
	}
}

// TestArgoRunsCorpusPipeline runs the same pipeline through the real Argo
// workflow-controller, installed namespaced in the team's namespace: Argo makes a pod
// per step, reads outputs from the task results, resolves the artifact URI into
// component2's arguments; pipefn follows it on its resync tick.
func TestArgoRunsCorpusPipeline(t *testing.T) {
	f := start(t, "argo")
	startArgo(t, f)
	run := f.submit("two-step", corpus(t, twoStep), map[string]any{"text": "hello from argo"})
	done := f.waitRun(run.RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
	if done.State != api.StateSucceeded {
		t.Fatalf("run ended %s: %+v", done.State, done.Error)
	}
	checkTwoStep(t, f, done, "hello from argo")
}

// checkTwoStep checks what both engines must agree on: the states, the artifact passed
// from component1 to component2 (its content reached component2's log) and the pods.
func checkTwoStep(t *testing.T, f *fixture, r api.Run, text string) {
	t.Helper()
	if diff := cmp.Diff([]string{api.StatePending, api.StateRunning, api.StateSucceeded}, dedupe(runStates(r))); diff != "" {
		t.Errorf("run states (-want +got):\n%s", diff)
	}
	for _, id := range []string{"component1", "component2"} {
		td, ok := taskOf(r, id)
		if !ok {
			t.Errorf("task %s missing from run details: %+v", id, r.RunDetails)
			continue
		}
		if td.State != api.StateSucceeded || td.PodName == "" || td.StartTime == nil || td.EndTime == nil {
			t.Errorf("task %s: state %s pod %q start %v end %v; want SUCCEEDED with pod and times", id, td.State, td.PodName, td.StartTime, td.EndTime)
		}
	}
	c1, _ := taskOf(r, "component1")
	uri := ""
	for _, u := range c1.Outputs["output_gcs"].URIs {
		uri = u
	}
	if !strings.HasPrefix(uri, "file://") {
		t.Fatalf("component1's output_gcs URI = %q; want a file:// URI under the pipeline root", uri)
	}
	log, err := f.taskLog(r.RunID, "component2")
	if err != nil {
		t.Fatalf("component2's log: %v", err)
	}
	if !strings.Contains(log, text) {
		t.Errorf("component2's log (read through the API server from the kubelet) lacks %q:\n%s", text, log)
	}
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
