package argo

import (
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
)

// noTemplates satisfies Argo's template getters: compiled workflows never
// reference WorkflowTemplates, so any lookup is itself a defect.
type noTemplates struct{}

func (noTemplates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	return nil, fmt.Errorf("unexpected WorkflowTemplate lookup %q", name)
}

type noClusterTemplates struct{}

func (noClusterTemplates) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	return nil, fmt.Errorf("unexpected ClusterWorkflowTemplate lookup %q", name)
}

// validateWorkflow runs Argo's own validator, as the controller does on
// submission.
func validateWorkflow(wf *wfv1.Workflow) error {
	return validate.ValidateWorkflow(noTemplates{}, noClusterTemplates{}, wf, nil, validate.ValidateOpts{})
}
