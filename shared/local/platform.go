package local

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pipefn/pipefn/shared/ir"
	"google.golang.org/protobuf/types/known/structpb"
)

// warnPlatform lists, once per feature, the settings that have no local
// meaning and are therefore ignored, with the executors that use them.
func (r *runner) warnPlatform() {
	if r.opts.Warn == nil {
		return
	}
	uses := map[string][]string{}
	add := func(feature, label string, used bool) {
		if used {
			uses[feature] = append(uses[feature], label)
		}
	}
	for _, label := range slices.Sorted(maps.Keys(r.executors)) {
		e := r.executors[label]
		if c := e.spec.GetContainer(); c != nil {
			add("container image (commands run on the host, no image is pulled)", label, c.GetImage() != "")
			res := c.GetResources()
			x := r.p.ExecutorExtras[label]
			add("resources and accelerators", label, (res != nil && (res.GetCpuLimit() > 0 || res.GetMemoryLimit() > 0 ||
				res.GetCpuRequest() > 0 || res.GetMemoryRequest() > 0 || res.GetAccelerator() != nil)) ||
				(x != nil && (x.ResourceCPULimit != "" || x.ResourceMemoryLimit != "" || x.ResourceCPURequest != "" ||
					x.ResourceMemoryRequest != "" || x.AcceleratorType != "")))
		}
		k := e.k8s
		if k == nil {
			continue
		}
		add("secretAsVolume", label, len(k.SecretAsVolume) > 0)
		add("pvcMount", label, len(k.PvcMount) > 0)
		add("nodeSelector", label, k.NodeSelector != nil)
		add("podMetadata", label, k.PodMetadata != nil)
		add("imagePullSecret", label, len(k.ImagePullSecret) > 0)
		add("imagePullPolicy", label, k.ImagePullPolicy != "")
		add("configMapAsVolume", label, len(k.ConfigMapAsVolume) > 0)
		add("fieldPathAsEnv", label, len(k.FieldPathAsEnv) > 0)
		add("tolerations", label, len(k.Tolerations) > 0)
		add("genericEphemeralVolume", label, len(k.GenericEphemeralVolume) > 0)
		add("nodeAffinity", label, len(k.NodeAffinity) > 0)
		add("podAffinity", label, len(k.PodAffinity) > 0)
		add("enabledSharedMemory", label, k.EnabledSharedMemory != nil)
		add("emptyDirMounts", label, len(k.EmptyDirMounts) > 0)
		add("securityContext", label, k.SecurityContext != nil)
		add("initContainers", label, len(k.InitContainers) > 0)
		add("podResourceClaims", label, len(k.PodResourceClaims) > 0)
	}
	if k := r.p.Kubernetes; k != nil && k.PipelineConfig != nil && k.PipelineConfig.Workspace != nil {
		r.warn("local run has no shared workspace volume (pipelineConfig.workspace): tasks using {{$.workspace_path}} may fail")
	}
	for _, f := range slices.Sorted(maps.Keys(uses)) {
		r.warn(fmt.Sprintf("local run ignores %s (executors %s)", f, strings.Join(uses[f], ", ")))
	}
}

// SecretEnvName is the host environment variable a local run reads for key
// of Kubernetes Secret secret: PIPEFN_SECRET_<SECRET>_<KEY>, upper-cased,
// with every character other than A-Z and 0-9 replaced by '_'.
func SecretEnvName(secret, key string) string {
	return "PIPEFN_SECRET_" + envSafe(secret) + "_" + envSafe(key)
}

// ConfigMapEnvName is SecretEnvName for ConfigMaps: PIPEFN_CONFIGMAP_<NAME>_<KEY>.
func ConfigMapEnvName(configMap, key string) string {
	return "PIPEFN_CONFIGMAP_" + envSafe(configMap) + "_" + envSafe(key)
}

func envSafe(s string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z':
			return c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			return c
		}
		return '_'
	}, s)
}

// secretEnv builds the KEY=VALUE environment that secretAsEnv and
// configMapAsEnv ask for, reading values from the host environment.
func (r *runner) secretEnv(sc *scope, e *executor) ([]string, error) {
	if e.k8s == nil {
		return nil, nil
	}
	var env []string
	for i, s := range e.k8s.SecretAsEnv {
		name, err := r.platformName(sc, s.SecretName, s.SecretNameParameter)
		if err != nil {
			return nil, fmt.Errorf("executor %s secretAsEnv[%d]: %w", e.label, i, err)
		}
		if name == "" {
			continue
		}
		for _, kv := range s.KeyToEnv {
			host := SecretEnvName(name, kv.SecretKey)
			v, ok := r.opts.Getenv(host)
			if !ok {
				if s.Optional != nil && *s.Optional {
					continue
				}
				return nil, fmt.Errorf("executor %s: secret %q key %q: set %s in the environment (local runs read secrets from it)", e.label, name, kv.SecretKey, host)
			}
			env = append(env, kv.EnvVar+"="+v)
		}
	}
	for i, c := range e.k8s.ConfigMapAsEnv {
		name, err := r.platformName(sc, c.ConfigMapName, c.ConfigMapNameParameter)
		if err != nil {
			return nil, fmt.Errorf("executor %s configMapAsEnv[%d]: %w", e.label, i, err)
		}
		if name == "" {
			continue
		}
		for _, kv := range c.KeyToEnv {
			host := ConfigMapEnvName(name, kv.ConfigMapKey)
			v, ok := r.opts.Getenv(host)
			if !ok {
				if c.Optional != nil && *c.Optional {
					continue
				}
				return nil, fmt.Errorf("executor %s: config map %q key %q: set %s in the environment (local runs read config maps from it)", e.label, name, kv.ConfigMapKey, host)
			}
			env = append(env, kv.EnvVar+"="+v)
		}
	}
	return env, nil
}

// platformName resolves a Secret or ConfigMap name given literally or as a
// parameter reference in the task's DAG. A reference to an input that has no
// value (an optional pipeline input left out) yields "": as in KFP, the
// setting is then dropped.
func (r *runner) platformName(sc *scope, literal string, ref *ir.ParamRef) (string, error) {
	if ref == nil {
		if literal == "" {
			return "", fmt.Errorf("no name given")
		}
		return literal, nil
	}
	ps, err := ref.Proto()
	if err != nil {
		return "", fmt.Errorf("name parameter: %w", err)
	}
	if x := ps.GetTaskOutputParameter(); x != nil {
		producer := sc.nodes[x.GetProducerTask()]
		if producer == nil {
			return "", fmt.Errorf("name parameter: task %q is not in the same DAG", x.GetProducerTask())
		}
		// The producer need not be among the task's dependentTasks.
		<-producer.done
	}
	v, _, err := r.resolveParam(sc, ps)
	if err != nil {
		return "", fmt.Errorf("name parameter: %w", err)
	}
	if v == nil {
		return "", nil
	}
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return s.StringValue, nil
	}
	return "", fmt.Errorf("name parameter is not a string")
}
