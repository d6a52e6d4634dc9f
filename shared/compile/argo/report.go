package argo

import (
	"fmt"

	apiv1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/compile/podenv"
	"github.com/pipefn/pipefn/shared/launch"
)

// argoNames are the pod fields Argo sets that name the task: its Workflow (a label) and
// its node (an annotation).
var argoNames = []podenv.Field{
	{Name: launch.EnvArgoWorkflow, Path: fmt.Sprintf("metadata.labels['%s']", launch.ArgoWorkflowLabel)},
	{Name: launch.EnvArgoNodeName, Path: fmt.Sprintf("metadata.annotations['%s']", launch.ArgoNodeNameAnnotation)},
}

// reportEnv adds the launcher's reporting and step-cache environment (podenv.Launcher)
// to the container that runs `launcher run` or `launcher importer`.
func (c *compiler) reportEnv(ctr *apiv1.Container, cfg launch.TaskConfig) {
	if ctr == nil {
		return
	}
	ctr.Env = append(ctr.Env, podenv.Launcher(c.opts, c.p.Spec.GetPipelineInfo().GetName(), cfg.CacheEnabled, argoNames)...)
}
