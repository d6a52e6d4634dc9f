// Package podenv builds the environment both compilers (shared/compile/tekton,
// shared/compile/argo) give the container that runs `launcher run` or `launcher
// importer`: where the launcher reports its task.finished and asks the step cache
// (compile.Options), and the engine's names of the task, which the pod's own metadata
// carries (the downward API) and from which the launcher derives the id the status
// function gives the task (launch.ClusterTaskID).
package podenv

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/launch"
)

// Field is an env var that the pod's metadata fills, e.g. "metadata.labels['x']".
type Field struct{ Name, Path string }

// Launcher is the launcher's environment for a task of pipeline (its pipelineInfo name)
// whose caching is cacheEnabled (the task's cachingOptions and the run's
// opts.CachingDisabled, as the compilers fold them into launch.TaskConfig), compiled with
// opts; names are the engine's fields. It is
// nil when opts ask for no reporting and no cache, so objects compiled without them stay
// as they were.
func Launcher(opts compile.Options, pipeline string, cacheEnabled bool, names []Field) []corev1.EnvVar {
	r := launch.Report{
		EventsURL: opts.EventsURL, CacheURL: opts.CacheURL, CacheMaxAge: opts.CacheMaxAge, CacheTokenSecret: opts.CacheTokenSecret,
		Team: opts.Team, Attempt: opts.Attempt, Pipeline: pipeline,
	}
	lit := r.Env(cacheEnabled)
	if len(lit) == 0 {
		return nil
	}
	env := make([]corev1.EnvVar, 0, len(lit)+len(names)+1)
	for _, e := range lit {
		env = append(env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if secret := r.TokenSecret(cacheEnabled); secret != "" {
		// Optional, so that a missing Secret only turns the cache lookups away, never
		// the pod.
		optional := true
		env = append(env, corev1.EnvVar{Name: launch.EnvCacheToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: launch.CacheTokenKey, Optional: &optional,
		}}})
	}
	for _, f := range names {
		env = append(env, corev1.EnvVar{Name: f.Name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: f.Path}}})
	}
	return env
}
