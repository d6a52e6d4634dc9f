package tekton

import (
	"fmt"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/pipefn/pipefn/shared/compile/podenv"
	"github.com/pipefn/pipefn/shared/launch"
)

// tektonNames are the pod labels Tekton sets that name the task.
var tektonNames = []podenv.Field{
	{Name: launch.EnvTektonPipelineRun, Path: fmt.Sprintf("metadata.labels['%s']", launch.TektonPipelineRunLabel)},
	{Name: launch.EnvTektonPipelineTask, Path: fmt.Sprintf("metadata.labels['%s']", launch.TektonPipelineTaskLabel)},
	{Name: launch.EnvTektonTaskRun, Path: fmt.Sprintf("metadata.labels['%s']", launch.TektonTaskRunLabel)},
}

// reportEnv adds the launcher's reporting and step-cache environment (podenv.Launcher)
// to the step that runs `launcher run` or `launcher importer`: the last step, after the
// init step that copies the launcher, if any.
func (c *compiler) reportEnv(spec *tektonv1.TaskSpec, cfg launch.TaskConfig) {
	if len(spec.Steps) == 0 {
		return
	}
	step := &spec.Steps[len(spec.Steps)-1]
	step.Env = append(step.Env, podenv.Launcher(c.opts, c.p.Spec.GetPipelineInfo().GetName(), cfg.CacheEnabled, tektonNames)...)
}
