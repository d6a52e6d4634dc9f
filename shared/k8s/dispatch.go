package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/pipefn/pipefn/shared/compile"
)

// Attempt identifies the run attempt an object executes.
type Attempt struct {
	RunID   string
	Team    string
	Attempt int
}

// stamp names an object after its attempt and adds the labels that tie it to the run.
func stamp(meta *metav1.ObjectMeta, a Attempt) {
	meta.Name = ObjectName(a.RunID, a.Attempt)
	meta.GenerateName = ""
	if meta.Namespace == "" {
		meta.Namespace = a.Team
	}
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	meta.Labels[LabelAttempt] = strconv.Itoa(a.Attempt)
	if meta.Labels[compile.LabelTeam] == "" && a.Team != "" {
		meta.Labels[compile.LabelTeam] = a.Team
	}
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[AnnotationRunID] = a.RunID
}

// CreatePipelineRun creates the PipelineRun of a run attempt in its namespace (the
// compiled object's, else the team's). A redelivered submission finds the object there
// already: that is success, created is false.
func (c *Client) CreatePipelineRun(ctx context.Context, pr *tektonv1.PipelineRun, a Attempt) (name string, created bool, err error) {
	pr = pr.DeepCopy()
	stamp(&pr.ObjectMeta, a)
	if err := c.waitCreate(ctx); err != nil {
		return "", false, err
	}
	_, err = c.Tekton.TektonV1().PipelineRuns(pr.Namespace).Create(ctx, pr, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return pr.Name, false, nil
	case err != nil:
		return "", false, fmt.Errorf("k8s: create PipelineRun %s/%s for run %s: %w", pr.Namespace, pr.Name, a.RunID, err)
	}
	return pr.Name, true, nil
}

// CreateWorkflow creates the Workflow of a run attempt, like CreatePipelineRun.
func (c *Client) CreateWorkflow(ctx context.Context, wf *wfv1.Workflow, a Attempt) (name string, created bool, err error) {
	wf = wf.DeepCopy()
	stamp(&wf.ObjectMeta, a)
	if err := c.waitCreate(ctx); err != nil {
		return "", false, err
	}
	_, err = c.Argo.ArgoprojV1alpha1().Workflows(wf.Namespace).Create(ctx, wf, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return wf.Name, false, nil
	case err != nil:
		return "", false, fmt.Errorf("k8s: create Workflow %s/%s for run %s: %w", wf.Namespace, wf.Name, a.RunID, err)
	}
	return wf.Name, true, nil
}

// IsPermanent reports whether a create error can never succeed on retry (the API server
// rejected the object itself, or the namespace or resource type does not exist).
func IsPermanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err)
}

// runSelector selects every object of a run (all attempts).
func runSelector(runID string) string {
	return compile.LabelRunID + "=" + labelValue(runID)
}

// Cancel stops every unfinished object of a run in namespace: Tekton PipelineRuns get
// spec.status Cancelled, Argo Workflows spec.shutdown Terminate. Objects already finished
// are left alone; a run with no object is not an error (it may not have been created yet,
// or it was pruned).
func (c *Client) Cancel(ctx context.Context, backend, namespace, runID string) error {
	sel := metav1.ListOptions{LabelSelector: runSelector(runID)}
	switch backend {
	case BackendTekton:
		prs, err := c.Tekton.TektonV1().PipelineRuns(namespace).List(ctx, sel)
		if err != nil {
			return fmt.Errorf("k8s: list PipelineRuns of run %s in %s: %w", runID, namespace, err)
		}
		patch := []byte(`{"spec":{"status":"` + string(tektonv1.PipelineRunSpecStatusCancelled) + `"}}`)
		for _, pr := range prs.Items {
			if pr.Status.GetCondition(apis.ConditionSucceeded).IsTrue() || pr.Status.GetCondition(apis.ConditionSucceeded).IsFalse() ||
				pr.Spec.Status == tektonv1.PipelineRunSpecStatusCancelled {
				continue
			}
			_, err := c.Tekton.TektonV1().PipelineRuns(namespace).Patch(ctx, pr.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("k8s: cancel PipelineRun %s/%s: %w", namespace, pr.Name, err)
			}
		}
		return nil
	case BackendArgo:
		wfs, err := c.Argo.ArgoprojV1alpha1().Workflows(namespace).List(ctx, sel)
		if err != nil {
			return fmt.Errorf("k8s: list Workflows of run %s in %s: %w", runID, namespace, err)
		}
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"shutdown": wfv1.ShutdownStrategyTerminate}})
		for _, wf := range wfs.Items {
			if wf.Status.Phase.Completed() || wf.Spec.Shutdown != "" {
				continue
			}
			_, err := c.Argo.ArgoprojV1alpha1().Workflows(namespace).Patch(ctx, wf.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("k8s: terminate Workflow %s/%s: %w", namespace, wf.Name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("k8s: cancel run %s: unknown backend %q", runID, backend)
}

// Prune deletes the pipefn objects of backend in namespace that finished more than the
// retention time ago, and returns how many it deleted. The run's record is in Redis; the
// cluster keeps only what is still useful for logs and debugging.
func (c *Client) Prune(ctx context.Context, backend, namespace string) (int, error) {
	if c.retention < 0 {
		return 0, nil
	}
	cutoff := c.now().Add(-c.retention)
	sel := metav1.ListOptions{LabelSelector: compile.LabelRunID}
	n := 0
	switch backend {
	case BackendTekton:
		prs, err := c.Tekton.TektonV1().PipelineRuns(namespace).List(ctx, sel)
		if err != nil {
			return 0, fmt.Errorf("k8s: prune: list PipelineRuns in %s: %w", namespace, err)
		}
		for _, pr := range prs.Items {
			if pr.Status.CompletionTime == nil || pr.Status.CompletionTime.Time.After(cutoff) {
				continue
			}
			if err := c.Tekton.TektonV1().PipelineRuns(namespace).Delete(ctx, pr.Name, deleteOpts()); err != nil && !apierrors.IsNotFound(err) {
				return n, fmt.Errorf("k8s: prune PipelineRun %s/%s: %w", namespace, pr.Name, err)
			}
			n++
		}
	case BackendArgo:
		wfs, err := c.Argo.ArgoprojV1alpha1().Workflows(namespace).List(ctx, sel)
		if err != nil {
			return 0, fmt.Errorf("k8s: prune: list Workflows in %s: %w", namespace, err)
		}
		for _, wf := range wfs.Items {
			if !wf.Status.Phase.Completed() || wf.Status.FinishedAt.IsZero() || wf.Status.FinishedAt.Time.After(cutoff) {
				continue
			}
			if err := c.Argo.ArgoprojV1alpha1().Workflows(namespace).Delete(ctx, wf.Name, deleteOpts()); err != nil && !apierrors.IsNotFound(err) {
				return n, fmt.Errorf("k8s: prune Workflow %s/%s: %w", namespace, wf.Name, err)
			}
			n++
		}
	default:
		return 0, fmt.Errorf("k8s: prune: unknown backend %q", backend)
	}
	return n, nil
}

// deleteOpts deletes in the background so that TaskRuns and pods (owned by the object)
// go with it without this call waiting for them.
func deleteOpts() metav1.DeleteOptions {
	p := metav1.DeletePropagationBackground
	return metav1.DeleteOptions{PropagationPolicy: &p}
}

// labelValue is how the compilers put a run id into a label: characters outside
// [A-Za-z0-9-_.] become '-', cut to 63, trimmed of non-alphanumeric ends.
func labelValue(s string) string {
	b := []byte(s)
	for i, r := range b {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			b[i] = '-'
		}
	}
	out := string(b)
	if len(out) > 63 {
		out = out[:63]
	}
	return strings.Trim(out, "-_.")
}
