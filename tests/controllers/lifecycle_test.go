package controllers

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/google/go-cmp/cmp"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
)

// cancelBound is how long a terminated run may take to end and its engine to stop the
// task: a few controller reconciles and pipefn resync ticks (1 s), with room for the
// shared 2-core machine.
const cancelBound = 90 * time.Second

// sleeperIR is a two-task pipeline whose first task sleeps for five minutes and whose
// second depends on it (so it must never start once the run is terminated). The token
// parameter becomes the shell's $0, so the sleeping shell's own command line carries it
// and the test can find the real local process the stand-in kubelet started.
const sleeperIR = `
components:
  comp-sleep:
    executorLabel: exec-sleep
    inputDefinitions:
      parameters:
        token: {parameterType: STRING}
  comp-after:
    executorLabel: exec-after
deploymentSpec:
  executors:
    exec-sleep:
      container:
        image: alpine:3.20
        command: [sh, -c, 'echo "sleeping $0"; sleep 300 & wait; echo "woke $0"', '{{$.inputs.parameters[''token'']}}']
    exec-after:
      container:
        image: alpine:3.20
        command: [sh, -c, 'echo after']
pipelineInfo:
  name: sleeper
root:
  dag:
    tasks:
      sleeper:
        componentRef: {name: comp-sleep}
        inputs:
          parameters:
            token: {componentInputParameter: token}
        taskInfo: {name: sleeper}
      after:
        componentRef: {name: comp-after}
        dependentTasks: [sleeper]
        taskInfo: {name: after}
  inputDefinitions:
    parameters:
      token: {parameterType: STRING}
schemaVersion: 2.1.0
sdkVersion: kfp-2.13.0
`

// startSleeper submits the sleeper pipeline and waits until pipefn reports its first
// task RUNNING and the sleeping shell really runs on the stand-in node; it returns the
// run and the token that marks the shell's processes.
func startSleeper(t *testing.T, f *fixture) (api.Run, string) {
	t.Helper()
	spec, err := yaml.YAMLToJSON([]byte(sleeperIR))
	if err != nil {
		t.Fatal(err)
	}
	token := "pf-sleeper-" + strings.ToLower(rand.Text()[:10])
	run := f.submit("sleeper", spec, map[string]any{"token": token})
	f.waitRun(run.RunID, "task sleeper RUNNING", func(r api.Run) bool {
		td, ok := taskOf(r, "sleeper")
		return ok && td.State == api.StateRunning
	})
	if err := waitFor(time.Minute, func() error {
		if len(processesWith(token)) == 0 {
			return fmt.Errorf("no local process carries %s although pipefn reports task sleeper RUNNING", token)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return run, token
}

// processesWith lists the pids of this machine's processes whose command line contains
// token: the sleeping shell (and the launcher, whose --param carries it).
func processesWith(token string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(token)) {
			continue
		}
		// A zombie (exited, not yet reaped) no longer runs anything.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if _, after, ok := strings.Cut(string(st), ") "); ok && strings.HasPrefix(after, "Z") {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// terminate asks pipefn to terminate the run and waits for CANCELED; it checks the run
// passed through CANCELING and that the dependent task never ran.
func terminate(t *testing.T, f *fixture, run api.Run) api.Run {
	t.Helper()
	asked := time.Now()
	if err := f.api.TerminateRun(f.ctx, run.RunID); err != nil {
		t.Fatalf("terminate run %s: %v", run.RunID, err)
	}
	var done api.Run
	if err := waitFor(cancelBound, func() error {
		r, err := f.api.GetRun(f.ctx, run.RunID)
		if err != nil {
			return err
		}
		done = *r
		if api.Terminal(r.State) {
			return nil
		}
		return fmt.Errorf("run %s still %s %s after terminate (states %v)", run.RunID, r.State, cancelBound, runStates(*r))
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("terminate -> %s in %s", done.State, time.Since(asked).Round(100*time.Millisecond))
	if done.State != api.StateCanceled {
		t.Fatalf("terminated run ended %s, want %s (states %v, error %+v)", done.State, api.StateCanceled, runStates(done), done.Error)
	}
	if got := dedupe(runStates(done)); !slices.Contains(got, api.StateCanceling) || got[len(got)-1] != api.StateCanceled {
		t.Errorf("run states %v: want CANCELING then CANCELED last", got)
	}
	if td, ok := taskOf(done, "sleeper"); !ok || td.State != api.StateCanceled {
		t.Errorf("task sleeper = %+v (found %v); want CANCELED", td, ok)
	}
	if td, ok := taskOf(done, "after"); ok && (td.State == api.StateRunning || td.State == api.StateSucceeded || td.PodName != "") {
		t.Errorf("task after ran although its upstream was terminated: %+v", td)
	}
	return done
}

// TestTektonTerminate terminates a Tekton run while its first task sleeps: pipefn sets
// the PipelineRun's spec.status Cancelled, Tekton cancels the TaskRun and deletes its
// pod, the stand-in kubelet kills the pod's process, and the run ends CANCELED.
func TestTektonTerminate(t *testing.T) {
	f := start(t, "tekton")
	f.logs = append(f.logs, cluster.tektonLog)
	if err := setTektonEventsSink(f.ctx, f.srv.URL+"/events"); err != nil {
		t.Fatal(err)
	}
	run, token := startSleeper(t, f)
	terminate(t, f, run)

	tc, err := tektonclient.NewForConfig(cluster.cfg)
	if err != nil {
		t.Fatal(err)
	}
	sel := metav1.ListOptions{LabelSelector: compile.LabelRunID + "=" + run.RunID}
	prs, err := tc.TektonV1().PipelineRuns(f.ns).List(f.ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(prs.Items) != 1 {
		t.Fatalf("%d PipelineRuns for run %s, want 1", len(prs.Items), run.RunID)
	}
	pr := prs.Items[0]
	c := pr.Status.GetCondition(apis.ConditionSucceeded)
	got := []string{string(pr.Spec.Status), "<none>"}
	if c != nil {
		got[1] = string(c.Status) + " " + c.Reason
	}
	if diff := cmp.Diff([]string{string(tektonv1.PipelineRunSpecStatusCancelled), "False " + tektonv1.PipelineRunReasonCancelled.String()}, got); diff != "" {
		t.Errorf("PipelineRun %s spec.status and Succeeded condition (-want +got):\n%s", pr.Name, diff)
	}
	// Tekton cancels the TaskRuns after the PipelineRun, so pipefn may see the run
	// CANCELED first (and finishes the task itself); the TaskRun follows.
	var taskRuns []string
	podName := ""
	_ = waitFor(cancelBound, func() error {
		trs, err := tc.TektonV1().TaskRuns(f.ns).List(f.ctx, sel)
		if err != nil {
			return err
		}
		taskRuns, podName = nil, ""
		for _, tr := range trs.Items {
			reason := "<none>"
			if c := tr.Status.GetCondition(apis.ConditionSucceeded); c != nil {
				reason = string(c.Status) + " " + c.Reason
			}
			taskRuns = append(taskRuns, tr.Labels["tekton.dev/pipelineTask"]+": "+reason)
			if tr.Labels["tekton.dev/pipelineTask"] == "sleeper" {
				podName = tr.Status.PodName
			}
		}
		if len(taskRuns) == 1 && taskRuns[0] == "sleeper: False "+tektonv1.TaskRunReasonCancelled.String() {
			return nil
		}
		return fmt.Errorf("TaskRuns %v", taskRuns)
	})
	if diff := cmp.Diff([]string{"sleeper: False " + tektonv1.TaskRunReasonCancelled.String()}, taskRuns); diff != "" {
		t.Errorf("TaskRuns (-want +got):\n%s", diff)
	}
	if podName == "" {
		t.Fatal("the sleeper TaskRun names no pod")
	}
	// Tekton deletes a cancelled TaskRun's pod (feature flag keep-pod-on-cancel off, its
	// default): a graceful deletion, which the pod's kubelet completes once it has
	// stopped the containers.
	if err := waitFor(cancelBound, func() error {
		p, err := cluster.kube.CoreV1().Pods(f.ns).Get(f.ctx, podName, metav1.GetOptions{})
		if err == nil && p.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s of the cancelled TaskRun is not being deleted (phase %s) %s after the run was cancelled", podName, p.Status.Phase, cancelBound)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	finishDeletion(t, f, podName, token)
	checkKilled(t, token)
}

// finishDeletion checks that the pod marked for deletion goes away with its processes:
// the stand-in kubelet, as a kubelet does, stops the containers of a pod whose
// deletionTimestamp is set and then removes it (a delete with grace period 0).
func finishDeletion(t *testing.T, f *fixture, podName, token string) {
	t.Helper()
	if err := waitFor(cancelBound, func() error {
		if pids := processesWith(token); len(pids) > 0 {
			return fmt.Errorf("processes %v still run", pids)
		}
		if _, err := cluster.kube.CoreV1().Pods(f.ns).Get(f.ctx, podName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s still exists (err %v)", podName, err)
		}
		return nil
	}); err != nil {
		t.Errorf("pod %s marked for deletion: %v", podName, err)
	}
}

// checkKilled checks the sleeping shell (and its launcher) ended within the bound.
func checkKilled(t *testing.T, token string) {
	t.Helper()
	if err := waitFor(cancelBound, func() error {
		if pids := processesWith(token); len(pids) > 0 {
			return fmt.Errorf("processes %v of the terminated task (marked %s) still run %s later", pids, token, cancelBound)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestArgoTerminate terminates an Argo run while its first task sleeps: pipefn sets the
// Workflow's spec.shutdown Terminate; Argo fails the running node at once ("workflow
// shutdown with strategy: Terminate"), ends the Workflow Failed, and stops the pod's
// containers by exec'ing a kill into them (pods/exec: SIGTERM, then SIGKILL after the
// pod's grace period); it does not delete the pod.
func TestArgoTerminate(t *testing.T) {
	f := start(t, "argo")
	startArgo(t, f)
	run, token := startSleeper(t, f)
	terminate(t, f, run)

	wfs, err := cluster.argo.ArgoprojV1alpha1().Workflows(f.ns).List(f.ctx, metav1.ListOptions{LabelSelector: compile.LabelRunID + "=" + run.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if len(wfs.Items) != 1 {
		t.Fatalf("%d Workflows for run %s, want 1", len(wfs.Items), run.RunID)
	}
	wf := wfs.Items[0]
	var nodes []string
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod {
			nodes = append(nodes, n.DisplayName+": "+string(n.Phase)+": "+n.Message)
		}
	}
	got := append([]string{string(wf.Spec.Shutdown), string(wf.Status.Phase)}, sorted(nodes)...)
	want := []string{string(wfv1.ShutdownStrategyTerminate), string(wfv1.WorkflowFailed),
		"sleeper: Failed: workflow shutdown with strategy:  Terminate"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Workflow %s shutdown, phase and pod nodes (-want +got):\n%s", wf.Name, diff)
	}
	pods, err := cluster.kube.CoreV1().Pods(f.ns).List(f.ctx, metav1.ListOptions{LabelSelector: argoWorkflowLabel + "=" + wf.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods for Workflow %s, want the sleeper's only", len(pods.Items), wf.Name)
	}
	pod := pods.Items[0]
	// Argo stops a shut-down workflow's containers through pods/exec (argoexec kill 15 1
	// in each running container, then 9 after the pod's grace period), which the API
	// server proxies to the node's kubelet; it neither deletes the pod (no podGC) nor
	// waits for it: the node is already Failed.
	if pod.DeletionTimestamp != nil {
		t.Errorf("Argo deleted pod %s on shutdown; this test expects it to signal the containers instead", pod.Name)
	}
	if err := waitFor(30*time.Second, func() error {
		for _, l := range argoSignals(f, pod.Name) {
			if strings.Contains(l, "container=main") {
				return nil
			}
		}
		return fmt.Errorf("the workflow-controller never signaled pod %s's main container (pods/exec) after the shutdown; its signal lines: %q", pod.Name, argoSignals(f, pod.Name))
	}); err != nil {
		t.Error(err)
	}
	// The stand-in kubelet delivers exec'd kill signals to the container's processes (it
	// serves no exec streams, so Argo logs the upgrade as refused), so the sleeper ends
	// without the pod being deleted.
	checkKilled(t, token)
	if t.Failed() {
		logArgoKills(t, f, wf.Name)
	}
}

// argoSignals are the workflow-controller's "signaled container" lines (the result of
// one pods/exec kill) for a pod.
func argoSignals(f *fixture, pod string) []string {
	var out []string
	for _, l := range f.logs {
		if !strings.Contains(filepath.Base(l), "workflow-controller") {
			continue
		}
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "signaled container") && strings.Contains(line, "pod="+pod+" ") {
				out = append(out, line)
			}
		}
	}
	return out
}

// logArgoKills shows what Argo did to the run's pods: their deletion state and the
// controller's "signaled container" lines (pods/exec results).
func logArgoKills(t *testing.T, f *fixture, workflow string) {
	pods, err := cluster.kube.CoreV1().Pods(f.ns).List(f.ctx, metav1.ListOptions{LabelSelector: argoWorkflowLabel + "=" + workflow})
	if err != nil {
		t.Log(err)
		return
	}
	for _, p := range pods.Items {
		var cs []string
		for _, c := range p.Status.ContainerStatuses {
			cs = append(cs, c.Name+"="+containerState(c))
		}
		t.Logf("pod %s: phase %s, deletionTimestamp %v, containers %v", p.Name, p.Status.Phase, p.DeletionTimestamp, cs)
	}
	for _, l := range f.logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "signaled container") || strings.Contains(line, "cleaning up pod") || strings.Contains(line, "failed to clean-up pod") {
				t.Logf("%s: %.400s", filepath.Base(l), line)
			}
		}
	}
}

func containerState(c corev1.ContainerStatus) string {
	switch {
	case c.State.Running != nil:
		return "running"
	case c.State.Terminated != nil:
		return "terminated(" + strconv.Itoa(int(c.State.Terminated.ExitCode)) + ")"
	}
	return "waiting"
}

// TestTektonResyncWithoutEvents runs a Tekton pipeline with Tekton's CloudEvents sent
// to an address nobody listens on: pipefn still follows the run to SUCCEEDED, with its
// tasks, outputs and logs, by resyncing the PipelineRun on its one-second tick.
func TestTektonResyncWithoutEvents(t *testing.T) {
	f := start(t, "tekton")
	f.logs = append(f.logs, cluster.tektonLog)
	const nowhere = "http://127.0.0.1:1/"
	if err := setTektonEventsSink(f.ctx, nowhere); err != nil {
		t.Fatal(err)
	}
	// The sink is the cluster's: leave it pointing nowhere for the next test, which sets
	// its own (every test that wants Tekton's events does).
	logBefore, _ := os.ReadFile(cluster.tektonLog)
	run := f.submit("two-step", corpus(t, twoStep), map[string]any{"text": "hello from resync"})
	done := f.waitRun(run.RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
	if done.State != api.StateSucceeded {
		t.Fatalf("run ended %s: %+v", done.State, done.Error)
	}
	// A resync samples: the two pods run in about a second, so a one-second tick may
	// never see the run RUNNING. Every other part of the report must be there.
	if got := dedupe(runStates(done)); !slices.Equal(got, []string{api.StatePending, api.StateSucceeded}) &&
		!slices.Equal(got, []string{api.StatePending, api.StateRunning, api.StateSucceeded}) {
		t.Errorf("run states %v, want PENDING, (RUNNING,) SUCCEEDED", got)
	}
	var tasks []string
	for _, id := range []string{"component1", "component2"} {
		td, ok := taskOf(done, id)
		tasks = append(tasks, fmt.Sprintf("%s found=%v state=%s pod=%v start=%v end=%v", id, ok, td.State, td.PodName != "", td.StartTime != nil, td.EndTime != nil))
	}
	want := []string{"component1 found=true state=SUCCEEDED pod=true start=true end=true", "component2 found=true state=SUCCEEDED pod=true start=true end=true"}
	if diff := cmp.Diff(want, tasks); diff != "" {
		t.Errorf("tasks as resynced (-want +got):\n%s", diff)
	}
	c1, _ := taskOf(done, "component1")
	if uris := c1.Outputs["output_gcs"].URIs; len(uris) != 1 || !strings.HasPrefix(uris[0], "file://") {
		t.Errorf("component1's output_gcs = %q; want one file:// URI", uris)
	}
	if log, err := f.taskLog(run.RunID, "component2"); err != nil || !strings.Contains(log, "hello from resync") {
		t.Errorf("component2's log (err %v) lacks %q:\n%s", err, "hello from resync", log)
	}
	// Tekton did try to send its events, to the dead address: the run's states came
	// from the resync, not from events that reached pipefn by another way.
	if err := waitFor(30*time.Second, func() error {
		b, err := os.ReadFile(cluster.tektonLog)
		if err != nil {
			return err
		}
		if !bytes.Contains(b[min(len(logBefore), len(b)):], []byte("127.0.0.1:1")) {
			return fmt.Errorf("the Tekton controller's log never mentions sending to %s after the sink was set", nowhere)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
