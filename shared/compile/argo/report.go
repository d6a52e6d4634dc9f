package argo

import (
	"fmt"

	apiv1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/launch"
)

// reportEnv adds, to the container that runs `launcher run` or `launcher importer`, what
// the launcher needs to report its own task.finished and to use the step cache
// (compile.Options.EventsURL, CacheURL). Nothing is added when both are unset, so objects
// compiled without reporting stay as they were.
func (c *compiler) reportEnv(ctr *apiv1.Container, cfg launch.TaskConfig) {
	r := launch.Report{
		EventsURL: c.opts.EventsURL, CacheURL: c.opts.CacheURL, CacheMaxAge: c.opts.CacheMaxAge, CacheTokenSecret: c.opts.CacheTokenSecret,
		Team: c.opts.Team, Attempt: c.opts.Attempt, Pipeline: c.p.Spec.GetPipelineInfo().GetName(),
	}
	if c.opts.CachingDisabled {
		r.CacheURL = ""
	}
	lit := r.Env(cfg.CacheEnabled)
	if len(lit) == 0 || ctr == nil {
		return
	}
	for _, e := range lit {
		ctr.Env = append(ctr.Env, apiv1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if secret := r.TokenSecret(cfg.CacheEnabled); secret != "" {
		// Optional, so that a missing Secret only turns the cache lookups away.
		optional := true
		ctr.Env = append(ctr.Env, apiv1.EnvVar{Name: launch.EnvCacheToken, ValueFrom: &apiv1.EnvVarSource{SecretKeyRef: &apiv1.SecretKeySelector{
			LocalObjectReference: apiv1.LocalObjectReference{Name: secret}, Key: launch.CacheTokenKey, Optional: &optional,
		}}})
	}
	// The engine's names of the task come from the pod's own metadata, which Argo sets:
	// the launcher derives from them the id the status function gives the task.
	for _, d := range []struct{ name, path string }{
		{launch.EnvArgoWorkflow, fmt.Sprintf("metadata.labels['%s']", launch.ArgoWorkflowLabel)},
		{launch.EnvArgoNodeName, fmt.Sprintf("metadata.annotations['%s']", launch.ArgoNodeNameAnnotation)},
	} {
		ctr.Env = append(ctr.Env, apiv1.EnvVar{Name: d.name, ValueFrom: &apiv1.EnvVarSource{
			FieldRef: &apiv1.ObjectFieldSelector{FieldPath: d.path},
		}})
	}
}
