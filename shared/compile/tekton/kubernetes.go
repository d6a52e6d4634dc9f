package tekton

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

func unmarshalLenient(b []byte, m proto.Message) error {
	// Members the compiled-in types lack were classified by shared/ir
	// (Pipeline.Extras) and are handled by checkExtras and resources.
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
}

// extraRe matches the Extras keys the compiler understands.
var (
	extraResource = regexp.MustCompile(`^deploymentSpec\.executors\['([^']+)'\]\.container\.resources\.(resourceCpuLimit|resourceMemoryLimit|resourceCpuRequest|resourceMemoryRequest|accelerator\.resourceType|accelerator\.resourceCount)$`)
	extraImporter = regexp.MustCompile(`^deploymentSpec\.executors\['([^']+)'\]\.importer\.downloadToWorkspace$`)
	// Enum literals of root parameters only restrict the values a caller
	// may bind (shared/ir checks them); they do not change execution.
	extraLiterals = regexp.MustCompile(`^root\.inputDefinitions\.parameters\['[^']+'\]\.literals$`)
)

// checkExtras rejects every IR field unknown to the protobuf types that the
// compiler does not honour.
func (c *compiler) checkExtras() error {
	var bad []string
	for _, k := range sortedKeys(c.p.Extras) {
		if extraResource.MatchString(k) || extraImporter.MatchString(k) || extraLiterals.MatchString(k) {
			continue
		}
		bad = append(bad, k)
	}
	if len(bad) > 0 {
		return fmt.Errorf("tekton: IR fields not supported by this compiler: %s", strings.Join(bad, ", "))
	}
	return nil
}

func (c *compiler) extraString(label, field string) (string, bool) {
	raw, ok := c.p.Extras["deploymentSpec.executors['"+label+"'].container.resources."+field]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return strings.Trim(string(raw), `"`), true
	}
	return s, true
}

var inputPlaceholder = regexp.MustCompile(`^\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}$`)

// compileTime resolves a resource field that may be a placeholder naming a
// task input; only values known when compiling can be used, because Tekton
// does not substitute parameters into resource quantities.
func (b *binding) compileTime(field, v string) (string, error) {
	m := inputPlaceholder.FindStringSubmatch(v)
	if m == nil {
		if strings.Contains(v, "{{$") {
			return "", fmt.Errorf("%s %q: only a whole {{$.inputs.parameters[...]}} placeholder is supported", field, v)
		}
		return v, nil
	}
	src := b.srcs[m[1]]
	if src == nil {
		return "", nil
	}
	s, ok := b.c.constant(src)
	if !ok {
		return "", fmt.Errorf("%s comes from input %q, which is only known at run time; Tekton cannot set resources from run-time values", field, m[1])
	}
	return s, nil
}

// constant is the compile-time value of src, if it has one.
func (c *compiler) constant(src *source) (string, bool) {
	if src == nil || src.selector != "" {
		return "", false
	}
	var v = src.val
	switch src.kind {
	case srcConst:
	case srcRoot:
		v = c.rootVals[src.root]
	default:
		return "", false
	}
	if v == nil {
		return "", false
	}
	if sv, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return sv.StringValue, true
	}
	return launch.EncodeParam(v, pipelinespec.ParameterType_NUMBER_DOUBLE), true
}

// resources maps the KFP resource spec to the main step's requests and
// limits. Accelerators become a limit on their extended resource.
func (c *compiler) resources(ctr *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, label string, b *binding) (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	r := ctr.GetResources()
	set := func(list *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
	}
	num := func(f float64, mem bool) resource.Quantity {
		if mem { // KFP gives memory in GB (10^9 bytes)
			return *resource.NewQuantity(int64(f*1e9), resource.DecimalSI)
		}
		return *resource.NewMilliQuantity(int64(f*1000+0.5), resource.DecimalSI)
	}
	str := func(field string) (resource.Quantity, bool, error) {
		v, ok := c.extraString(label, field)
		if !ok {
			return resource.Quantity{}, false, nil
		}
		v, err := b.compileTime(field, v)
		if err != nil || v == "" {
			return resource.Quantity{}, false, err
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return resource.Quantity{}, false, fmt.Errorf("%s %q: %v", field, v, err)
		}
		return q, true, nil
	}
	for _, f := range []struct {
		field string
		list  *corev1.ResourceList
		name  corev1.ResourceName
		num   float64
		mem   bool
	}{
		{"resourceCpuLimit", &rr.Limits, corev1.ResourceCPU, r.GetCpuLimit(), false},
		{"resourceMemoryLimit", &rr.Limits, corev1.ResourceMemory, r.GetMemoryLimit(), true},
		{"resourceCpuRequest", &rr.Requests, corev1.ResourceCPU, r.GetCpuRequest(), false},
		{"resourceMemoryRequest", &rr.Requests, corev1.ResourceMemory, r.GetMemoryRequest(), true},
	} {
		q, ok, err := str(f.field)
		if err != nil {
			return rr, err
		}
		switch {
		case ok:
			set(f.list, f.name, q)
		case f.num > 0:
			set(f.list, f.name, num(f.num, f.mem))
		}
	}
	acc := r.GetAccelerator()
	typ, count := acc.GetType(), strconv.FormatInt(acc.GetCount(), 10)
	if s, ok := c.extraString(label, "accelerator.resourceType"); ok {
		v, err := b.compileTime("accelerator.resourceType", s)
		if err != nil {
			return rr, err
		}
		typ = v
	}
	if s, ok := c.extraString(label, "accelerator.resourceCount"); ok {
		v, err := b.compileTime("accelerator.resourceCount", s)
		if err != nil {
			return rr, err
		}
		count = v
	}
	if typ != "" && count != "" && count != "0" {
		name, err := acceleratorResource(typ)
		if err != nil {
			return rr, err
		}
		q, err := resource.ParseQuantity(count)
		if err != nil {
			return rr, fmt.Errorf("accelerator count %q: %v", count, err)
		}
		set(&rr.Limits, corev1.ResourceName(name), q)
	}
	return rr, nil
}

// acceleratorResource maps a KFP accelerator type to its Kubernetes
// extended resource: a resource name is kept, the Vertex AI names are
// translated by vendor.
func acceleratorResource(t string) (string, error) {
	switch {
	case strings.Contains(t, "/"):
		return t, nil
	case strings.HasPrefix(strings.ToUpper(t), "NVIDIA"):
		return "nvidia.com/gpu", nil
	case strings.HasPrefix(strings.ToUpper(t), "TPU"):
		return "google.com/tpu", nil
	case strings.HasPrefix(strings.ToUpper(t), "AMD"):
		return "amd.com/gpu", nil
	}
	return "", fmt.Errorf("accelerator type %q: unknown; use a Kubernetes resource name such as nvidia.com/gpu", t)
}

// applyKubernetes applies the executor's kfp-kubernetes settings to the
// task: step env and mounts, task volumes, timeout, and a taskRunSpec for
// pod-level settings.
func (c *compiler) applyKubernetes(pt *tektonv1.PipelineTask, label string, s *scope, b *binding, where string) error {
	if c.p.Kubernetes == nil {
		return nil
	}
	k := c.p.Kubernetes.Executors[label]
	if k == nil {
		return nil
	}
	where = where + " (platforms.kubernetes.deploymentSpec.executors['" + label + "'])"
	spec := &pt.TaskSpec.TaskSpec
	main := &spec.Steps[len(spec.Steps)-1]
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	// resolve finds the value a kfp-kubernetes reference names. A
	// componentInputParameter names one of the task's own inputs (the
	// "pipelinechannel--" inputs the SDK adds) or, in older SDKs, an input
	// of the enclosing DAG.
	resolve := func(field string, ref *ir.ParamRef) (*source, bool) {
		if name := ref.ComponentInputParameter; name != "" {
			if src, ok := b.srcs[name]; ok {
				return src, true
			}
		}
		spec, err := ref.Proto()
		if err != nil {
			fail("%s: %v", field, err)
			return nil, false
		}
		n := len(c.errs)
		src := c.paramSource(s, spec, where+"."+field)
		return src, len(c.errs) == n
	}
	// value resolves a kfp-kubernetes parameter reference to a literal or a
	// task parameter reference (for fields Tekton substitutes).
	value := func(field string, ref *ir.ParamRef, literal string) (string, bool) {
		if ref == nil {
			if literal == "" {
				fail("%s: no name given", field)
				return "", false
			}
			return literal, true
		}
		src, ok := resolve(field, ref)
		if !ok {
			return "", false
		}
		if src == nil {
			// An optional input left unbound drops the setting, as the KFP
			// driver does.
			return "", false
		}
		if v, ok := c.constant(src); ok {
			return v, true
		}
		if src.kind == srcResult && src.loop != nil {
			fail("%s: a per-iteration value from a ParallelFor cannot name a Kubernetes object", field)
			return "", false
		}
		pname := "k-" + compile.DNSLabel(field)
		switch src.kind {
		case srcRoot:
			return b.taskParam(pname, "$(params."+src.root+")"), true
		case srcResult:
			return b.taskParam(pname, "$(tasks."+src.task+".results."+src.result+")"), true
		}
		fail("%s: unsupported value source", field)
		return "", false
	}
	// podValue resolves a reference used in the pod template, which Tekton
	// does not substitute: it must be known when compiling.
	podValue := func(field string, ref *ir.ParamRef) (string, bool) {
		src, ok := resolve(field, ref)
		if !ok || src == nil {
			return "", false // optional and unbound: the setting is dropped
		}
		v, ok := c.constant(src)
		if !ok {
			fail("%s: only known at run time; Tekton does not substitute parameters into pod templates", field)
		}
		return v, ok
	}
	addVolume := func(name string, vs corev1.VolumeSource, mountPath, subPath string) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: name, VolumeSource: vs})
		main.VolumeMounts = append(main.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: mountPath, SubPath: subPath})
	}

	for i, sv := range k.SecretAsVolume {
		f := fmt.Sprintf("secretAsVolume[%d]", i)
		if name, ok := value(f+".secretNameParameter", sv.SecretNameParameter, sv.SecretName); ok {
			addVolume(fmt.Sprintf("secret-%d", i), corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name, Optional: sv.Optional}}, sv.MountPath, "")
		}
	}
	for i, se := range k.SecretAsEnv {
		f := fmt.Sprintf("secretAsEnv[%d]", i)
		if name, ok := value(f+".secretNameParameter", se.SecretNameParameter, se.SecretName); ok {
			for _, ke := range se.KeyToEnv {
				main.Env = append(main.Env, corev1.EnvVar{Name: ke.EnvVar, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: ke.SecretKey, Optional: se.Optional}}})
			}
		}
	}
	for i, cv := range k.ConfigMapAsVolume {
		f := fmt.Sprintf("configMapAsVolume[%d]", i)
		if name, ok := value(f+".configMapNameParameter", cv.ConfigMapNameParameter, cv.ConfigMapName); ok {
			addVolume(fmt.Sprintf("configmap-%d", i), corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: cv.Optional}}, cv.MountPath, "")
		}
	}
	for i, ce := range k.ConfigMapAsEnv {
		f := fmt.Sprintf("configMapAsEnv[%d]", i)
		if name, ok := value(f+".configMapNameParameter", ce.ConfigMapNameParameter, ce.ConfigMapName); ok {
			for _, ke := range ce.KeyToEnv {
				main.Env = append(main.Env, corev1.EnvVar{Name: ke.EnvVar, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: ke.ConfigMapKey, Optional: ce.Optional}}})
			}
		}
	}
	for i, pm := range k.PvcMount {
		f := fmt.Sprintf("pvcMount[%d]", i)
		if name, ok := value(f+".pvcNameParameter", pm.NameRef(), ""); ok {
			addVolume(fmt.Sprintf("pvc-%d", i), corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}, pm.MountPath, pm.SubPath)
		}
	}
	for _, fp := range k.FieldPathAsEnv {
		main.Env = append(main.Env, corev1.EnvVar{Name: fp.Name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: fp.FieldPath}}})
	}
	for i, ed := range k.EmptyDirMounts {
		src := &corev1.EmptyDirVolumeSource{}
		if ed.Medium != nil {
			src.Medium = corev1.StorageMedium(*ed.Medium)
		}
		if ed.SizeLimit != nil {
			q, err := resource.ParseQuantity(*ed.SizeLimit)
			if err != nil {
				fail("emptyDirMounts[%d].sizeLimit: %v", i, err)
				continue
			}
			src.SizeLimit = &q
		}
		addVolume(ed.VolumeName, corev1.VolumeSource{EmptyDir: src}, ed.MountPath, "")
	}
	if sm := k.EnabledSharedMemory; sm != nil {
		src := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
		if sm.Size != "" {
			q, err := resource.ParseQuantity(sm.Size)
			if err != nil {
				fail("enabledSharedMemory.size: %v", err)
			} else {
				src.SizeLimit = &q
			}
		}
		name := sm.VolumeName
		if name == "" {
			name = "shm"
		}
		addVolume(name, corev1.VolumeSource{EmptyDir: src}, "/dev/shm", "")
	}
	for i, ev := range k.GenericEphemeralVolume {
		tmpl := corev1.PersistentVolumeClaimTemplate{}
		for _, m := range ev.AccessModes {
			tmpl.Spec.AccessModes = append(tmpl.Spec.AccessModes, corev1.PersistentVolumeAccessMode(m))
		}
		if ev.Size != "" {
			q, err := resource.ParseQuantity(ev.Size)
			if err != nil {
				fail("genericEphemeralVolume[%d].size: %v", i, err)
				continue
			}
			tmpl.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: q}
		}
		if !ev.DefaultStorageClass && ev.StorageClassName != "" {
			sc := ev.StorageClassName
			tmpl.Spec.StorageClassName = &sc
		}
		if ev.Metadata != nil {
			tmpl.ObjectMeta = metav1.ObjectMeta{Labels: ev.Metadata.Labels, Annotations: ev.Metadata.Annotations}
		}
		addVolume(ev.VolumeName, corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &tmpl}}, ev.MountPath, "")
	}
	if k.ImagePullPolicy != "" {
		main.ImagePullPolicy = corev1.PullPolicy(k.ImagePullPolicy)
	}
	if sc := k.SecurityContext; sc != nil {
		main.SecurityContext = &corev1.SecurityContext{RunAsNonRoot: sc.RunAsNonRoot}
		if sc.RunAsUser != nil {
			v := int64(*sc.RunAsUser)
			main.SecurityContext.RunAsUser = &v
		}
		if sc.RunAsGroup != nil {
			v := int64(*sc.RunAsGroup)
			main.SecurityContext.RunAsGroup = &v
		}
	}
	if k.ActiveDeadlineSeconds > 0 {
		pt.Timeout = &metav1.Duration{Duration: time.Duration(k.ActiveDeadlineSeconds) * time.Second}
	}
	// Init containers run before the main container: as steps before "main"
	// (after the launcher copy); restartPolicy Always makes them sidecars.
	var pre []tektonv1.Step
	for i, ic := range k.InitContainers {
		st := tektonv1.Step{Name: "init-" + compile.DNSLabel(ic.Name), Image: ic.Image, Command: ic.Command, Args: ic.Args}
		for _, e := range ic.Env {
			st.Env = append(st.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
		for _, m := range ic.VolumeMounts {
			st.VolumeMounts = append(st.VolumeMounts, corev1.VolumeMount{Name: m.VolumeName, MountPath: m.MountPath})
		}
		if ic.Resources != nil {
			for n, v := range ic.Resources.Requests {
				q, err := resource.ParseQuantity(v)
				if err != nil {
					fail("initContainers[%d].resources.requests[%s]: %v", i, n, err)
					continue
				}
				if st.ComputeResources.Requests == nil {
					st.ComputeResources.Requests = corev1.ResourceList{}
				}
				st.ComputeResources.Requests[corev1.ResourceName(n)] = q
			}
			for n, v := range ic.Resources.Limits {
				q, err := resource.ParseQuantity(v)
				if err != nil {
					fail("initContainers[%d].resources.limits[%s]: %v", i, n, err)
					continue
				}
				if st.ComputeResources.Limits == nil {
					st.ComputeResources.Limits = corev1.ResourceList{}
				}
				st.ComputeResources.Limits[corev1.ResourceName(n)] = q
			}
		}
		if ic.RestartPolicy != nil && *ic.RestartPolicy == "Always" {
			spec.Sidecars = append(spec.Sidecars, tektonv1.Sidecar{Name: st.Name, Image: st.Image, Command: st.Command, Args: st.Args,
				Env: st.Env, VolumeMounts: st.VolumeMounts, ComputeResources: st.ComputeResources})
			continue
		}
		pre = append(pre, st)
	}
	if len(pre) > 0 {
		steps := append([]tektonv1.Step{}, spec.Steps[:len(spec.Steps)-1]...)
		steps = append(steps, pre...)
		spec.Steps = append(steps, *main)
		main = &spec.Steps[len(spec.Steps)-1]
	}
	if len(k.PodResourceClaims) > 0 {
		fail("podResourceClaims: Dynamic Resource Allocation claims cannot be set on Tekton task pods")
	}

	// Pod-level settings go to the run's taskRunSpecs.
	var tmpl pod.Template
	podSet := false
	if ns := k.NodeSelector; ns != nil {
		labels := map[string]string{}
		for key, v := range ns.Labels {
			labels[key] = v
		}
		if ns.NodeSelectorJSON != nil {
			if v, ok := podValue("nodeSelector.nodeSelectorJson", ns.NodeSelectorJSON); ok {
				labels = map[string]string{}
				if err := json.Unmarshal([]byte(v), &labels); err != nil {
					fail("nodeSelector.nodeSelectorJson: %v", err)
				}
			}
		}
		if len(labels) > 0 {
			tmpl.NodeSelector, podSet = labels, true
		}
	}
	for i, t := range k.Tolerations {
		tol := corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value, Effect: corev1.TaintEffect(t.Effect)}
		if t.TolerationSeconds != nil {
			v := int64(*t.TolerationSeconds)
			tol.TolerationSeconds = &v
		}
		if t.TolerationJSON != nil {
			v, ok := podValue(fmt.Sprintf("tolerations[%d].tolerationJson", i), t.TolerationJSON)
			if !ok {
				continue
			}
			tol = corev1.Toleration{}
			if err := json.Unmarshal([]byte(v), &tol); err != nil {
				// A list of tolerations is also accepted.
				var list []corev1.Toleration
				if err2 := json.Unmarshal([]byte(v), &list); err2 != nil {
					fail("tolerations[%d].tolerationJson: %v", i, err)
					continue
				}
				tmpl.Tolerations = append(tmpl.Tolerations, list...)
				podSet = true
				continue
			}
		}
		tmpl.Tolerations, podSet = append(tmpl.Tolerations, tol), true
	}
	for i, na := range k.NodeAffinity {
		if tmpl.Affinity == nil {
			tmpl.Affinity = &corev1.Affinity{}
		}
		if tmpl.Affinity.NodeAffinity == nil {
			tmpl.Affinity.NodeAffinity = &corev1.NodeAffinity{}
		}
		podSet = true
		nodeAff := tmpl.Affinity.NodeAffinity
		if na.NodeAffinityJSON != nil {
			v, ok := podValue(fmt.Sprintf("nodeAffinity[%d].nodeAffinityJson", i), na.NodeAffinityJSON)
			if !ok {
				continue
			}
			var x corev1.NodeAffinity
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				fail("nodeAffinity[%d].nodeAffinityJson: %v", i, err)
				continue
			}
			if x.RequiredDuringSchedulingIgnoredDuringExecution != nil {
				if nodeAff.RequiredDuringSchedulingIgnoredDuringExecution == nil {
					nodeAff.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
				}
				nodeAff.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(nodeAff.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms,
					x.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms...)
			}
			nodeAff.PreferredDuringSchedulingIgnoredDuringExecution = append(nodeAff.PreferredDuringSchedulingIgnoredDuringExecution, x.PreferredDuringSchedulingIgnoredDuringExecution...)
			continue
		}
		term := corev1.NodeSelectorTerm{MatchExpressions: nodeReqs(na.MatchExpressions), MatchFields: nodeReqs(na.MatchFields)}
		if na.Weight != nil {
			nodeAff.PreferredDuringSchedulingIgnoredDuringExecution = append(nodeAff.PreferredDuringSchedulingIgnoredDuringExecution,
				corev1.PreferredSchedulingTerm{Weight: *na.Weight, Preference: term})
			continue
		}
		if nodeAff.RequiredDuringSchedulingIgnoredDuringExecution == nil {
			nodeAff.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
		}
		nodeAff.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(nodeAff.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, term)
	}
	for _, pa := range k.PodAffinity {
		if tmpl.Affinity == nil {
			tmpl.Affinity = &corev1.Affinity{}
		}
		podSet = true
		term := corev1.PodAffinityTerm{
			LabelSelector: labelSelector(pa.MatchPodLabels, pa.MatchPodExpressions),
			TopologyKey:   pa.TopologyKey, Namespaces: pa.Namespaces,
		}
		if len(pa.MatchNamespaceLabels) > 0 || len(pa.MatchNamespaceExpressions) > 0 {
			term.NamespaceSelector = labelSelector(pa.MatchNamespaceLabels, pa.MatchNamespaceExpressions)
		}
		anti := pa.Anti != nil && *pa.Anti
		var req *[]corev1.PodAffinityTerm
		var pref *[]corev1.WeightedPodAffinityTerm
		if anti {
			if tmpl.Affinity.PodAntiAffinity == nil {
				tmpl.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{}
			}
			req, pref = &tmpl.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, &tmpl.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		} else {
			if tmpl.Affinity.PodAffinity == nil {
				tmpl.Affinity.PodAffinity = &corev1.PodAffinity{}
			}
			req, pref = &tmpl.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, &tmpl.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
		if pa.Weight != nil {
			*pref = append(*pref, corev1.WeightedPodAffinityTerm{Weight: *pa.Weight, PodAffinityTerm: term})
		} else {
			*req = append(*req, term)
		}
	}
	for i, ips := range k.ImagePullSecret {
		name := ips.SecretName
		if ips.SecretNameParameter != nil {
			v, ok := podValue(fmt.Sprintf("imagePullSecret[%d].secretNameParameter", i), ips.SecretNameParameter)
			if !ok {
				continue
			}
			name = v
		}
		tmpl.ImagePullSecrets, podSet = append(tmpl.ImagePullSecrets, corev1.LocalObjectReference{Name: name}), true
	}
	var meta *tektonv1.PipelineTaskMetadata
	if pm := k.PodMetadata; pm != nil && (len(pm.Labels) > 0 || len(pm.Annotations) > 0) {
		meta = &tektonv1.PipelineTaskMetadata{Labels: pm.Labels, Annotations: pm.Annotations}
	}
	if podSet || meta != nil {
		rs := tektonv1.PipelineTaskRunSpec{PipelineTaskName: pt.Name, Metadata: meta}
		if podSet {
			t := tmpl
			rs.PodTemplate = &t
		}
		c.runSpecs = append(c.runSpecs, rs)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", where, strings.Join(errs, "; "))
	}
	return nil
}

func nodeReqs(rs []ir.SelectorRequirement) []corev1.NodeSelectorRequirement {
	var out []corev1.NodeSelectorRequirement
	for _, r := range rs {
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOperator(r.Operator), Values: r.Values})
	}
	return out
}

func labelSelector(labels map[string]string, exprs []ir.SelectorRequirement) *metav1.LabelSelector {
	ls := &metav1.LabelSelector{MatchLabels: labels}
	for _, e := range exprs {
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	return ls
}
