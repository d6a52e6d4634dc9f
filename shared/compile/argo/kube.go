package argo

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apiv1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// errAbsent marks a kfp-kubernetes setting whose value comes from an
// optional input that has no value in this run; the setting is left out.
var errAbsent = errors.New("the input has no value, the setting is left out")

// executorConfig returns the kfp-kubernetes settings of an executor.
func (c *compiler) executorConfig(label string) *ir.KubernetesExecutorConfig {
	if c.p.Kubernetes == nil {
		return nil
	}
	return c.p.Kubernetes.Executors[label]
}

// podPatch collects pod settings only known at run time. Argo applies
// template.podSpecPatch (a strategic merge patch) after substituting
// {{inputs.parameters...}}, so a value from an upstream task can still pick
// a PVC, a node selector or a resource limit.
type podPatch struct {
	limits, requests map[string]string
	raw              map[string]string // top-level pod spec field -> raw JSON (may hold substitutions)
	pullSecrets      []string
}

func (p *podPatch) resource(limit bool, name, value string) {
	m := &p.requests
	if limit {
		m = &p.limits
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[name] = value
}

func (p *podPatch) setRaw(field, rawJSON string) {
	if p.raw == nil {
		p.raw = map[string]string{}
	}
	p.raw[field] = rawJSON
}

// render writes the patch as JSON, or "" when empty. Substitution values
// are inserted verbatim where they stand for JSON (a STRUCT parameter is
// compact JSON) and as JSON strings where they stand for text.
func (p *podPatch) render() string {
	var fields []string
	if len(p.limits)+len(p.requests) > 0 {
		var res []string
		for _, kv := range []struct {
			k string
			m map[string]string
		}{{"limits", p.limits}, {"requests", p.requests}} {
			if len(kv.m) == 0 {
				continue
			}
			var items []string
			for _, n := range slices.Sorted(maps.Keys(kv.m)) {
				items = append(items, quote(n)+":"+quote(kv.m[n]))
			}
			res = append(res, quote(kv.k)+":{"+strings.Join(items, ",")+"}")
		}
		fields = append(fields, `"containers":[{"name":"main","resources":{`+strings.Join(res, ",")+`}}]`)
	}
	if len(p.pullSecrets) > 0 {
		var items []string
		for _, s := range p.pullSecrets {
			items = append(items, `{"name":`+quote(s)+`}`)
		}
		fields = append(fields, `"imagePullSecrets":[`+strings.Join(items, ",")+`]`)
	}
	for _, k := range slices.Sorted(maps.Keys(p.raw)) {
		fields = append(fields, quote(k)+":"+p.raw[k])
	}
	if len(fields) == 0 {
		return ""
	}
	slices.Sort(fields)
	return "{" + strings.Join(fields, ",") + "}"
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// kubernetes applies the executor's kfp-kubernetes settings to tmpl. Names
// that come from task inputs become extra template inputs (k-0, k-1, ...).
func (c *compiler) kubernetes(s *scope, label string, ti *taskInputs, tmpl *wfv1.Template, args *[]wfv1.Parameter, patch *podPatch) error {
	k := c.executorConfig(label)
	if c.workspace {
		tmpl.Container.VolumeMounts = append(tmpl.Container.VolumeMounts, apiv1.VolumeMount{Name: workspaceVolume, MountPath: WorkspaceMountPath})
	}
	if k == nil {
		return nil
	}
	where := fmt.Sprintf("platforms.kubernetes.deploymentSpec.executors['%s']", label)
	main := tmpl.Container
	extra := 0
	// value resolves a kfp-kubernetes ParamRef to a string usable in the
	// template: a literal, or a substitution of a new template input.
	value := func(path string, ref *ir.ParamRef, static string) (string, bool, error) {
		if ref == nil {
			if static == "" {
				return "", false, fmt.Errorf("argo: %s: no value", path)
			}
			return static, false, nil
		}
		switch {
		case ref.RuntimeValue != nil:
			switch v := ref.RuntimeValue.Constant.(type) {
			case string:
				return v, false, nil
			default:
				b, err := json.Marshal(v)
				if err != nil {
					return "", false, fmt.Errorf("argo: %s: %v", path, err)
				}
				return string(b), false, nil
			}
		case ref.ComponentInputParameter != "":
			// kfp-kubernetes names an input of the enclosing DAG.
			var v string
			switch {
			case s.params[ref.ComponentInputParameter]:
				v = "{{inputs.parameters." + launch.ParamResult(ref.ComponentInputParameter) + "}}"
			case ti.params[ref.ComponentInputParameter] != "":
				v = ti.params[ref.ComponentInputParameter]
			case s.comp.GetInputDefinitions().GetParameters()[ref.ComponentInputParameter] != nil:
				// A declared input without a value (optional, no default):
				// KFP leaves the setting out, and so do we.
				return "", false, fmt.Errorf("argo: %s: input %q: %w", path, ref.ComponentInputParameter, errAbsent)
			default:
				return "", false, fmt.Errorf("argo: %s: refers to input %q, which the enclosing pipeline does not declare", path, ref.ComponentInputParameter)
			}
			name := "k-" + strconv.Itoa(extra)
			extra++
			*args = append(*args, wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr(v)})
			return "{{inputs.parameters." + name + "}}", true, nil
		case ref.TaskOutputParameter != nil:
			an, ok := s.taskNames[ref.TaskOutputParameter.ProducerTask]
			if !ok {
				return "", false, fmt.Errorf("argo: %s: producer task %q is not in the same DAG", path, ref.TaskOutputParameter.ProducerTask)
			}
			ti.deps = append(ti.deps, ref.TaskOutputParameter.ProducerTask)
			name := "k-" + strconv.Itoa(extra)
			extra++
			*args = append(*args, wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr("{{tasks." + an + ".outputs.parameters." + launch.ParamResult(ref.TaskOutputParameter.OutputParameterKey) + "}}")})
			return "{{inputs.parameters." + name + "}}", true, nil
		}
		return "", false, fmt.Errorf("argo: %s: empty reference", path)
	}
	// ParamRefs of older SDKs name the producer directly; map them onto the
	// task's own inputs when the SDK also passed the value in.
	for i, m := range k.PvcMount {
		path := fmt.Sprintf("%s.pvcMount[%d]", where, i)
		name, _, err := value(path, m.NameRef(), "")
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return err
		}
		vol := "pvc-" + strconv.Itoa(i)
		tmpl.Volumes = append(tmpl.Volumes, apiv1.Volume{Name: vol, VolumeSource: apiv1.VolumeSource{PersistentVolumeClaim: &apiv1.PersistentVolumeClaimVolumeSource{ClaimName: name}}})
		main.VolumeMounts = append(main.VolumeMounts, apiv1.VolumeMount{Name: vol, MountPath: m.MountPath, SubPath: m.SubPath})
	}
	for i, s := range k.SecretAsVolume {
		path := fmt.Sprintf("%s.secretAsVolume[%d]", where, i)
		name, _, err := value(path, s.SecretNameParameter, s.SecretName)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return err
		}
		vol := "secret-" + strconv.Itoa(i)
		tmpl.Volumes = append(tmpl.Volumes, apiv1.Volume{Name: vol, VolumeSource: apiv1.VolumeSource{Secret: &apiv1.SecretVolumeSource{SecretName: name, Optional: s.Optional}}})
		main.VolumeMounts = append(main.VolumeMounts, apiv1.VolumeMount{Name: vol, MountPath: s.MountPath})
	}
	for i, s := range k.ConfigMapAsVolume {
		path := fmt.Sprintf("%s.configMapAsVolume[%d]", where, i)
		name, _, err := value(path, s.ConfigMapNameParameter, s.ConfigMapName)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return err
		}
		vol := "configmap-" + strconv.Itoa(i)
		tmpl.Volumes = append(tmpl.Volumes, apiv1.Volume{Name: vol, VolumeSource: apiv1.VolumeSource{ConfigMap: &apiv1.ConfigMapVolumeSource{LocalObjectReference: apiv1.LocalObjectReference{Name: name}, Optional: s.Optional}}})
		main.VolumeMounts = append(main.VolumeMounts, apiv1.VolumeMount{Name: vol, MountPath: s.MountPath})
	}
	for i, s := range k.SecretAsEnv {
		path := fmt.Sprintf("%s.secretAsEnv[%d]", where, i)
		name, _, err := value(path, s.SecretNameParameter, s.SecretName)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return err
		}
		for _, kv := range s.KeyToEnv {
			main.Env = append(main.Env, apiv1.EnvVar{Name: kv.EnvVar, ValueFrom: &apiv1.EnvVarSource{SecretKeyRef: &apiv1.SecretKeySelector{
				LocalObjectReference: apiv1.LocalObjectReference{Name: name}, Key: kv.SecretKey, Optional: s.Optional}}})
		}
	}
	for i, s := range k.ConfigMapAsEnv {
		path := fmt.Sprintf("%s.configMapAsEnv[%d]", where, i)
		name, _, err := value(path, s.ConfigMapNameParameter, s.ConfigMapName)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return err
		}
		for _, kv := range s.KeyToEnv {
			main.Env = append(main.Env, apiv1.EnvVar{Name: kv.EnvVar, ValueFrom: &apiv1.EnvVarSource{ConfigMapKeyRef: &apiv1.ConfigMapKeySelector{
				LocalObjectReference: apiv1.LocalObjectReference{Name: name}, Key: kv.ConfigMapKey, Optional: s.Optional}}})
		}
	}
	for _, f := range k.FieldPathAsEnv {
		main.Env = append(main.Env, apiv1.EnvVar{Name: f.Name, ValueFrom: &apiv1.EnvVarSource{FieldRef: &apiv1.ObjectFieldSelector{FieldPath: f.FieldPath}}})
	}
	if ns := k.NodeSelector; ns != nil {
		if ns.NodeSelectorJSON != nil {
			v, dyn, err := value(where+".nodeSelector.nodeSelectorJson", ns.NodeSelectorJSON, "")
			if err != nil && !errors.Is(err, errAbsent) {
				return err
			}
			if errors.Is(err, errAbsent) {
				// no node selector
			} else if dyn {
				patch.setRaw("nodeSelector", v)
			} else if err := json.Unmarshal([]byte(v), &tmpl.NodeSelector); err != nil {
				return fmt.Errorf("argo: %s.nodeSelector.nodeSelectorJson: %v", where, err)
			}
		} else if len(ns.Labels) > 0 {
			tmpl.NodeSelector = maps.Clone(ns.Labels)
		}
	}
	if pm := k.PodMetadata; pm != nil {
		if tmpl.Metadata.Labels == nil {
			tmpl.Metadata.Labels = map[string]string{}
		}
		for kk, v := range pm.Labels {
			if _, ours := tmpl.Metadata.Labels[kk]; !ours {
				tmpl.Metadata.Labels[kk] = v
			}
		}
		if len(pm.Annotations) > 0 {
			tmpl.Metadata.Annotations = maps.Clone(pm.Annotations)
		}
	}
	for i, s := range k.ImagePullSecret {
		name, _, err := value(fmt.Sprintf("%s.imagePullSecret[%d]", where, i), s.SecretNameParameter, s.SecretName)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			return err
		}
		patch.pullSecrets = append(patch.pullSecrets, name)
	}
	switch k.ImagePullPolicy {
	case "":
	case "Always", "Never", "IfNotPresent":
		main.ImagePullPolicy = apiv1.PullPolicy(k.ImagePullPolicy)
	default:
		return fmt.Errorf("argo: %s.imagePullPolicy: %q is not Always, Never or IfNotPresent", where, k.ImagePullPolicy)
	}
	if k.ActiveDeadlineSeconds > 0 {
		if k.ActiveDeadlineSeconds > math.MaxInt32 {
			return fmt.Errorf("argo: %s.activeDeadlineSeconds: %d is too large", where, k.ActiveDeadlineSeconds)
		}
		tmpl.ActiveDeadlineSeconds = ptr(intstr.FromInt32(int32(k.ActiveDeadlineSeconds)))
	}
	var dynTolerations []string
	for i, t := range k.Tolerations {
		if t.TolerationJSON != nil {
			v, dyn, err := value(fmt.Sprintf("%s.tolerations[%d].tolerationJson", where, i), t.TolerationJSON, "")
			if errors.Is(err, errAbsent) {
				continue
			}
			if err != nil {
				return err
			}
			if dyn {
				dynTolerations = append(dynTolerations, v)
				continue
			}
			var tol apiv1.Toleration
			if err := json.Unmarshal([]byte(v), &tol); err != nil {
				return fmt.Errorf("argo: %s.tolerations[%d].tolerationJson: %v", where, i, err)
			}
			tmpl.Tolerations = append(tmpl.Tolerations, tol)
			continue
		}
		tol := apiv1.Toleration{Key: t.Key, Operator: apiv1.TolerationOperator(t.Operator), Value: t.Value, Effect: apiv1.TaintEffect(t.Effect)}
		if t.TolerationSeconds != nil {
			tol.TolerationSeconds = ptr(int64(*t.TolerationSeconds))
		}
		tmpl.Tolerations = append(tmpl.Tolerations, tol)
	}
	if len(dynTolerations) > 0 {
		// A strategic merge patch replaces the list, so the static
		// tolerations travel in the patch too.
		for _, t := range tmpl.Tolerations {
			b, _ := json.Marshal(t)
			dynTolerations = append(dynTolerations, string(b))
		}
		tmpl.Tolerations = nil
		patch.setRaw("tolerations", "["+strings.Join(dynTolerations, ",")+"]")
	}
	for i, v := range k.GenericEphemeralVolume {
		path := fmt.Sprintf("%s.genericEphemeralVolume[%d]", where, i)
		spec := apiv1.PersistentVolumeClaimSpec{}
		for _, m := range v.AccessModes {
			spec.AccessModes = append(spec.AccessModes, apiv1.PersistentVolumeAccessMode(m))
		}
		if v.Size != "" {
			q, err := resource.ParseQuantity(v.Size)
			if err != nil {
				return fmt.Errorf("argo: %s.size: %v", path, err)
			}
			spec.Resources.Requests = apiv1.ResourceList{apiv1.ResourceStorage: q}
		}
		if !v.DefaultStorageClass && v.StorageClassName != "" {
			spec.StorageClassName = ptr(v.StorageClassName)
		}
		tmplMeta := metav1.ObjectMeta{}
		if v.Metadata != nil {
			tmplMeta.Labels, tmplMeta.Annotations = maps.Clone(v.Metadata.Labels), maps.Clone(v.Metadata.Annotations)
		}
		tmpl.Volumes = append(tmpl.Volumes, apiv1.Volume{Name: v.VolumeName, VolumeSource: apiv1.VolumeSource{Ephemeral: &apiv1.EphemeralVolumeSource{
			VolumeClaimTemplate: &apiv1.PersistentVolumeClaimTemplate{ObjectMeta: tmplMeta, Spec: spec}}}})
		main.VolumeMounts = append(main.VolumeMounts, apiv1.VolumeMount{Name: v.VolumeName, MountPath: v.MountPath})
	}
	if len(k.NodeAffinity) > 0 || len(k.PodAffinity) > 0 {
		aff, err := affinity(where, k, value, patch)
		if err != nil {
			return err
		}
		tmpl.Affinity = aff
	}
	if sm := k.EnabledSharedMemory; sm != nil {
		name := sm.VolumeName
		if name == "" {
			name = "shm"
		}
		ed := &apiv1.EmptyDirVolumeSource{Medium: apiv1.StorageMediumMemory}
		if sm.Size != "" {
			q, err := resource.ParseQuantity(sm.Size)
			if err != nil {
				return fmt.Errorf("argo: %s.enabledSharedMemory.size: %v", where, err)
			}
			ed.SizeLimit = &q
		}
		tmpl.Volumes = append(tmpl.Volumes, apiv1.Volume{Name: name, VolumeSource: apiv1.VolumeSource{EmptyDir: ed}})
		main.VolumeMounts = append(main.VolumeMounts, apiv1.VolumeMount{Name: name, MountPath: "/dev/shm"})
	}
	for i, e := range k.EmptyDirMounts {
		ed := &apiv1.EmptyDirVolumeSource{}
		if e.Medium != nil {
			ed.Medium = apiv1.StorageMedium(*e.Medium)
		}
		if e.SizeLimit != nil {
			q, err := resource.ParseQuantity(*e.SizeLimit)
			if err != nil {
				return fmt.Errorf("argo: %s.emptyDirMounts[%d].sizeLimit: %v", where, i, err)
			}
			ed.SizeLimit = &q
		}
		tmpl.Volumes = append(tmpl.Volumes, apiv1.Volume{Name: e.VolumeName, VolumeSource: apiv1.VolumeSource{EmptyDir: ed}})
		main.VolumeMounts = append(main.VolumeMounts, apiv1.VolumeMount{Name: e.VolumeName, MountPath: e.MountPath})
	}
	if sc := k.SecurityContext; sc != nil {
		csc := &apiv1.SecurityContext{RunAsNonRoot: sc.RunAsNonRoot}
		if sc.RunAsUser != nil {
			csc.RunAsUser = ptr(int64(*sc.RunAsUser))
		}
		if sc.RunAsGroup != nil {
			csc.RunAsGroup = ptr(int64(*sc.RunAsGroup))
		}
		main.SecurityContext = csc
	}
	for i, ic := range k.InitContainers {
		path := fmt.Sprintf("%s.initContainers[%d]", where, i)
		ctr := apiv1.Container{Name: ic.Name, Image: ic.Image, Command: ic.Command, Args: ic.Args}
		for _, e := range ic.Env {
			ctr.Env = append(ctr.Env, apiv1.EnvVar{Name: e.Name, Value: e.Value})
		}
		for _, m := range ic.VolumeMounts {
			ctr.VolumeMounts = append(ctr.VolumeMounts, apiv1.VolumeMount{Name: m.VolumeName, MountPath: m.MountPath})
		}
		if ic.RestartPolicy != nil {
			ctr.RestartPolicy = ptr(apiv1.ContainerRestartPolicy(*ic.RestartPolicy))
		}
		if r := ic.Resources; r != nil {
			for _, kv := range []struct {
				in  map[string]string
				out *apiv1.ResourceList
			}{{r.Requests, &ctr.Resources.Requests}, {r.Limits, &ctr.Resources.Limits}} {
				for n, v := range kv.in {
					q, err := resource.ParseQuantity(v)
					if err != nil {
						return fmt.Errorf("argo: %s.resources['%s']: %v", path, n, err)
					}
					if *kv.out == nil {
						*kv.out = apiv1.ResourceList{}
					}
					(*kv.out)[apiv1.ResourceName(n)] = q
				}
			}
		}
		tmpl.InitContainers = append(tmpl.InitContainers, wfv1.UserContainer{Container: ctr})
	}
	if len(k.PodResourceClaims) > 0 {
		return fmt.Errorf("argo: %s.podResourceClaims: Dynamic Resource Allocation claims are not supported", where)
	}
	return nil
}

type valueFunc func(path string, ref *ir.ParamRef, static string) (string, bool, error)

// affinity builds node and pod (anti-)affinity. Weighted terms are
// preferences, unweighted ones requirements, as in kfp-kubernetes.
func affinity(where string, k *ir.KubernetesExecutorConfig, value valueFunc, patch *podPatch) (*apiv1.Affinity, error) {
	aff := &apiv1.Affinity{}
	reqs := func(in []ir.SelectorRequirement) []apiv1.NodeSelectorRequirement {
		var out []apiv1.NodeSelectorRequirement
		for _, r := range in {
			out = append(out, apiv1.NodeSelectorRequirement{Key: r.Key, Operator: apiv1.NodeSelectorOperator(r.Operator), Values: r.Values})
		}
		return out
	}
	for i, t := range k.NodeAffinity {
		if t.NodeAffinityJSON != nil {
			v, dyn, err := value(fmt.Sprintf("%s.nodeAffinity[%d].nodeAffinityJson", where, i), t.NodeAffinityJSON, "")
			if errors.Is(err, errAbsent) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if dyn {
				if len(k.NodeAffinity) > 1 {
					return nil, fmt.Errorf("argo: %s.nodeAffinity[%d].nodeAffinityJson: a run-time node affinity cannot be combined with other node affinity terms", where, i)
				}
				patch.setRaw("affinity", `{"nodeAffinity":`+v+`}`)
				continue
			}
			var na apiv1.NodeAffinity
			if err := json.Unmarshal([]byte(v), &na); err != nil {
				return nil, fmt.Errorf("argo: %s.nodeAffinity[%d].nodeAffinityJson: %v", where, i, err)
			}
			if aff.NodeAffinity == nil {
				aff.NodeAffinity = &na
				continue
			}
			if na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
				if aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
					aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &apiv1.NodeSelector{}
				}
				aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms...)
			}
			aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution, na.PreferredDuringSchedulingIgnoredDuringExecution...)
			continue
		}
		if aff.NodeAffinity == nil {
			aff.NodeAffinity = &apiv1.NodeAffinity{}
		}
		term := apiv1.NodeSelectorTerm{MatchExpressions: reqs(t.MatchExpressions), MatchFields: reqs(t.MatchFields)}
		if t.Weight != nil {
			aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution, apiv1.PreferredSchedulingTerm{Weight: *t.Weight, Preference: term})
			continue
		}
		if aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
			aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &apiv1.NodeSelector{}
		}
		aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, term)
	}
	labelReqs := func(in []ir.SelectorRequirement, labels map[string]string) *metav1.LabelSelector {
		if len(in) == 0 && len(labels) == 0 {
			return nil
		}
		ls := &metav1.LabelSelector{MatchLabels: maps.Clone(labels)}
		for _, r := range in {
			ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator), Values: r.Values})
		}
		return ls
	}
	for _, t := range k.PodAffinity {
		term := apiv1.PodAffinityTerm{
			LabelSelector:     labelReqs(t.MatchPodExpressions, t.MatchPodLabels),
			TopologyKey:       t.TopologyKey,
			Namespaces:        t.Namespaces,
			NamespaceSelector: labelReqs(t.MatchNamespaceExpressions, t.MatchNamespaceLabels),
		}
		anti := t.Anti != nil && *t.Anti
		var req *[]apiv1.PodAffinityTerm
		var pref *[]apiv1.WeightedPodAffinityTerm
		if anti {
			if aff.PodAntiAffinity == nil {
				aff.PodAntiAffinity = &apiv1.PodAntiAffinity{}
			}
			req, pref = &aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, &aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		} else {
			if aff.PodAffinity == nil {
				aff.PodAffinity = &apiv1.PodAffinity{}
			}
			req, pref = &aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, &aff.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
		if t.Weight != nil {
			*pref = append(*pref, apiv1.WeightedPodAffinityTerm{Weight: *t.Weight, PodAffinityTerm: term})
		} else {
			*req = append(*req, term)
		}
	}
	if aff.NodeAffinity == nil && aff.PodAffinity == nil && aff.PodAntiAffinity == nil {
		return nil, nil
	}
	return aff, nil
}
