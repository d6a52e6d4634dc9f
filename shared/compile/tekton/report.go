package tekton

import (
	"fmt"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/launch"
)

// reportEnv adds, to the step that runs `launcher run` or `launcher importer`, what the
// launcher needs to report its own task.finished and to use the step cache
// (compile.Options.EventsURL, CacheURL). Nothing is added when both are unset, so objects
// compiled without reporting stay as they were.
func (c *compiler) reportEnv(spec *tektonv1.TaskSpec, cfg launch.TaskConfig) {
	r := launch.Report{
		EventsURL: c.opts.EventsURL, CacheURL: c.opts.CacheURL, CacheMaxAge: c.opts.CacheMaxAge, CacheTokenSecret: c.opts.CacheTokenSecret,
		Team: c.opts.Team, Attempt: c.opts.Attempt, Pipeline: c.p.Spec.GetPipelineInfo().GetName(),
	}
	if c.opts.CachingDisabled {
		r.CacheURL = ""
	}
	lit := r.Env(cfg.CacheEnabled)
	if len(lit) == 0 || len(spec.Steps) == 0 {
		return
	}
	env := make([]corev1.EnvVar, 0, len(lit)+3)
	for _, e := range lit {
		env = append(env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if secret := r.TokenSecret(cfg.CacheEnabled); secret != "" {
		env = append(env, tokenEnv(secret))
	}
	// The engine's names of the task come from the pod's own labels, which Tekton sets:
	// the launcher derives from them the id the status function gives the task.
	for _, d := range []struct{ name, label string }{
		{launch.EnvTektonPipelineRun, launch.TektonPipelineRunLabel},
		{launch.EnvTektonPipelineTask, launch.TektonPipelineTaskLabel},
		{launch.EnvTektonTaskRun, launch.TektonTaskRunLabel},
	} {
		env = append(env, corev1.EnvVar{Name: d.name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.labels['%s']", d.label)},
		}})
	}
	// The launcher is the last step (after the init step that copies it, if any).
	step := &spec.Steps[len(spec.Steps)-1]
	step.Env = append(step.Env, env...)
}

// tokenEnv reads the cache token from its Secret; optional, so that a missing Secret
// only turns the cache lookups away, never the pod.
func tokenEnv(secret string) corev1.EnvVar {
	optional := true
	return corev1.EnvVar{Name: launch.EnvCacheToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: launch.CacheTokenKey, Optional: &optional,
	}}}
}
