package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/events"
)

// listThreshold is the number of runs from which Observe lists the namespace once
// instead of reading each run's object: two requests however many runs are active.
const listThreshold = 8

// pageSize bounds one List response.
const pageSize = 500

// Observe reads the live object of each run's current attempt in namespace and returns
// its status by run id. Runs whose object does not exist (not created yet, or pruned)
// are absent from the result.
func (c *Client) Observe(ctx context.Context, backend, namespace string, runs []api.Run) (map[string]events.RunStatus, error) {
	out := map[string]events.RunStatus{}
	if len(runs) == 0 {
		return out, nil
	}
	want := map[string]api.Run{} // object name -> run
	for _, r := range runs {
		want[ObjectName(r.RunID, r.Attempt)] = r
	}
	switch backend {
	case BackendTekton:
		prs, trs, err := c.tektonObjects(ctx, namespace, want)
		if err != nil {
			return nil, err
		}
		byPR := map[string][]tektonv1.TaskRun{}
		for _, tr := range trs {
			byPR[tr.Labels[tektonPipelineRunLabel]] = append(byPR[tr.Labels[tektonPipelineRunLabel]], tr)
		}
		for i := range prs {
			r, ok := want[prs[i].Name]
			if !ok {
				continue
			}
			out[r.RunID] = withRun(TektonStatus(&prs[i], byPR[prs[i].Name]), r, namespace)
		}
	case BackendArgo:
		wfs, err := c.argoObjects(ctx, namespace, want)
		if err != nil {
			return nil, err
		}
		for i := range wfs {
			r, ok := want[wfs[i].Name]
			if !ok {
				continue
			}
			out[r.RunID] = withRun(ArgoStatus(&wfs[i]), r, namespace)
		}
	default:
		return nil, fmt.Errorf("k8s: observe: unknown backend %q", backend)
	}
	return out, nil
}

// withRun fills what the object did not say (an object created by hand, without our
// annotations) from the run it was found for.
func withRun(st events.RunStatus, r api.Run, namespace string) events.RunStatus {
	if st.RunID == "" {
		st.RunID = r.RunID
	}
	if st.Team == "" {
		st.Team = namespace
	}
	if st.Attempt < 0 {
		st.Attempt = r.Attempt
	}
	for i := range st.Tasks {
		st.Tasks[i].RunID = st.RunID
	}
	return st
}

func (c *Client) tektonObjects(ctx context.Context, ns string, want map[string]api.Run) ([]tektonv1.PipelineRun, []tektonv1.TaskRun, error) {
	prc := c.Tekton.TektonV1().PipelineRuns(ns)
	trc := c.Tekton.TektonV1().TaskRuns(ns)
	if len(want) < listThreshold {
		var prs []tektonv1.PipelineRun
		var trs []tektonv1.TaskRun
		for name := range want {
			pr, err := prc.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("k8s: get PipelineRun %s/%s: %w", ns, name, err)
			}
			prs = append(prs, *pr)
			list, err := trc.List(ctx, metav1.ListOptions{LabelSelector: tektonPipelineRunLabel + "=" + name})
			if err != nil {
				return nil, nil, fmt.Errorf("k8s: list TaskRuns of %s/%s: %w", ns, name, err)
			}
			trs = append(trs, list.Items...)
		}
		return prs, trs, nil
	}
	var prs []tektonv1.PipelineRun
	opts := metav1.ListOptions{LabelSelector: compile.LabelRunID, Limit: pageSize}
	for {
		list, err := prc.List(ctx, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("k8s: list PipelineRuns in %s: %w", ns, err)
		}
		prs = append(prs, list.Items...)
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	var trs []tektonv1.TaskRun
	// TaskRuns carry the PipelineRun's labels (Tekton propagates them), so one selector
	// finds every TaskRun of every pipefn run.
	opts = metav1.ListOptions{LabelSelector: compile.LabelRunID, Limit: pageSize}
	for {
		list, err := trc.List(ctx, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("k8s: list TaskRuns in %s: %w", ns, err)
		}
		trs = append(trs, list.Items...)
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	return prs, trs, nil
}

func (c *Client) argoObjects(ctx context.Context, ns string, want map[string]api.Run) ([]wfv1.Workflow, error) {
	wc := c.Argo.ArgoprojV1alpha1().Workflows(ns)
	if len(want) < listThreshold {
		var wfs []wfv1.Workflow
		for name := range want {
			wf, err := wc.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("k8s: get Workflow %s/%s: %w", ns, name, err)
			}
			wfs = append(wfs, *wf)
		}
		return wfs, nil
	}
	var wfs []wfv1.Workflow
	opts := metav1.ListOptions{LabelSelector: compile.LabelRunID, Limit: pageSize}
	for {
		list, err := wc.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("k8s: list Workflows in %s: %w", ns, err)
		}
		wfs = append(wfs, list.Items...)
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	return wfs, nil
}

// TaskLogs streams the log of one task of a run's current attempt: its pod's user
// containers one after the other (Argo's "main"; Tekton's step-* containers).
func (c *Client) TaskLogs(ctx context.Context, backend, namespace string, run api.Run, taskID string) (io.ReadCloser, error) {
	sts, err := c.Observe(ctx, backend, namespace, []api.Run{run})
	if err != nil {
		return nil, err
	}
	st, ok := sts[run.RunID]
	if !ok {
		return nil, api.Errorf(api.KindNotFound, "run %q has no %s object in namespace %s (pruned, or never created)", run.RunID, backend, namespace)
	}
	pod := ""
	for _, t := range st.Tasks {
		if t.TaskID == taskID || (pod == "" && t.DisplayName == taskID) {
			pod = t.PodName
		}
	}
	if pod == "" {
		return nil, api.Errorf(api.KindNotFound, "run %q has no pod for task %q", run.RunID, taskID)
	}
	p, err := c.Kube.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, api.Errorf(api.KindNotFound, "pod %s/%s of task %q is gone", namespace, pod, taskID)
	}
	if err != nil {
		return nil, fmt.Errorf("k8s: get pod %s/%s: %w", namespace, pod, err)
	}
	containers := logContainers(p)
	var readers []io.Reader
	var closers []io.Closer
	for _, name := range containers {
		rc, err := c.Kube.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: name}).Stream(ctx)
		if err != nil {
			for _, cl := range closers {
				_ = cl.Close()
			}
			return nil, fmt.Errorf("k8s: logs of pod %s/%s container %s: %w", namespace, pod, name, err)
		}
		readers = append(readers, rc)
		closers = append(closers, rc)
	}
	return &multiReadCloser{Reader: io.MultiReader(readers...), closers: closers}, nil
}

// logContainers picks the containers that run the user's command.
func logContainers(p *corev1.Pod) []string {
	var steps []string
	for _, c := range p.Spec.Containers {
		if c.Name == "main" {
			return []string{"main"}
		}
		if strings.HasPrefix(c.Name, "step-") {
			steps = append(steps, c.Name)
		}
	}
	if len(steps) > 0 {
		return steps
	}
	if len(p.Spec.Containers) > 0 {
		return []string{p.Spec.Containers[0].Name}
	}
	return nil
}

type multiReadCloser struct {
	io.Reader
	closers []io.Closer
}

func (m *multiReadCloser) Close() error {
	var errs []error
	for _, c := range m.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
