package argo

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	apiv1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// execCall emits the template of a container or importer task and returns
// the DAG task calling it.
func (c *compiler) execCall(st *site) (wfv1.DAGTask, error) {
	s, where, irName, argoName, tmplBase, staticID, taskID, task, comp, ti := st.s, st.where, st.irName, st.argoName, st.tmplBase, st.staticID, st.taskID, st.task, st.comp, st.ti
	label := comp.GetExecutorLabel()
	compWhere := fmt.Sprintf("components['%s']", task.GetComponentRef().GetName())
	if label == "" {
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s: component has neither a DAG nor an executorLabel", compWhere)
	}
	exec, ok := c.p.Deployment.GetExecutors()[label]
	if !ok {
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s.executorLabel: executor %q not found in deploymentSpec", compWhere, label)
	}
	if task.GetIterator() != nil {
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s: an iterator on a non-DAG task is not supported (the SDK always wraps loops in a DAG)", where)
	}
	execWhere := fmt.Sprintf("deploymentSpec.executors['%s']", label)

	cfg := launch.TaskConfig{
		RunID:        c.opts.RunID,
		TaskID:       staticID,
		TaskName:     irName,
		PipelineRoot: c.opts.PipelineRoot,
		CacheEnabled: task.GetCachingOptions().GetEnableCache() && !c.opts.CachingDisabled,
	}
	if err := cfg.SetComponent(comp); err != nil {
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s: %w", where, err)
	}
	params := map[string]string{}
	for n := range ti.params {
		params[n] = "{{inputs.parameters." + launch.ParamResult(n) + "}}"
	}
	arts := map[string]string{}
	for n := range ti.arts {
		arts[n] = "{{inputs.parameters." + launch.ArtifactResult(n) + "}}"
	}
	args := argParams(ti)
	if s.dynamic {
		params[launch.TaskIDParam] = taskID
		args = append(args, wfv1.Parameter{Name: prefixParam, Value: wfv1.AnyStringPtr("{{inputs.parameters." + prefixParam + "}}")})
	}

	tmpl := wfv1.Template{
		Name:     c.templates.name(tmplBase),
		Inputs:   templateInputs(args),
		Metadata: wfv1.Metadata{Labels: map[string]string{compile.LabelTask: labelValue(irName)}},
	}
	for _, n := range slices.Sorted(maps.Keys(comp.GetOutputDefinitions().GetParameters())) {
		r := launch.ParamResult(n)
		tmpl.Outputs.Parameters = append(tmpl.Outputs.Parameters, wfv1.Parameter{Name: r, ValueFrom: &wfv1.ValueFrom{Path: ResultsDir + "/" + r}})
	}
	for _, n := range slices.Sorted(maps.Keys(comp.GetOutputDefinitions().GetArtifacts())) {
		r := launch.ArtifactResult(n)
		tmpl.Outputs.Parameters = append(tmpl.Outputs.Parameters, wfv1.Parameter{Name: r, ValueFrom: &wfv1.ValueFrom{Path: ResultsDir + "/" + r}})
	}

	switch {
	case exec.GetContainer() != nil:
		ctr := exec.GetContainer()
		if ctr.GetLifecycle() != nil {
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s.container.lifecycle: container lifecycle hooks are not supported", execWhere)
		}
		if img := ctr.GetImage(); strings.HasPrefix(img, "argostub/") {
			// kfp-kubernetes CreatePVC/DeletePVC: KFP's backends turn these
			// into Kubernetes API calls, so do we (Argo resource templates).
			res, err := pvcResource(execWhere, img, ti)
			if err != nil {
				return wfv1.DAGTask{}, err
			}
			tmpl.Resource = res
			if img == createPVCImage {
				tmpl.Outputs.Parameters = []wfv1.Parameter{{Name: launch.ParamResult("name"), ValueFrom: &wfv1.ValueFrom{JSONPath: "{.metadata.name}"}}}
			} else {
				tmpl.Outputs = wfv1.Outputs{}
			}
			if rp := task.GetRetryPolicy(); rp != nil && rp.GetMaxRetryCount() > 0 {
				tmpl.RetryStrategy = retryStrategy(rp)
			}
			tmpl.Inputs = templateInputs(args)
			c.out = append(c.out, tmpl)
			return wfv1.DAGTask{Name: argoName, Template: tmpl.Name, Arguments: wfv1.Arguments{Parameters: args}}, nil
		}
		cfg.Container = launch.ContainerFromSpec(ctr)
		main := &apiv1.Container{
			Name:         "main",
			Image:        ctr.GetImage(),
			Command:      []string{LauncherPath},
			Args:         cfg.Args(params, arts, ResultsDir),
			VolumeMounts: []apiv1.VolumeMount{{Name: binVolume, MountPath: binMount}},
		}
		tmpl.Container = main
		tmpl.InitContainers = []wfv1.UserContainer{{Container: apiv1.Container{
			Name:         "pipefn-launcher",
			Image:        c.launcher,
			Command:      []string{launcherInImage, "copy", LauncherPath},
			VolumeMounts: []apiv1.VolumeMount{{Name: binVolume, MountPath: binMount}},
		}}}
		tmpl.Volumes = []apiv1.Volume{{Name: binVolume, VolumeSource: apiv1.VolumeSource{EmptyDir: &apiv1.EmptyDirVolumeSource{}}}}
		patch := &podPatch{}
		if err := c.resources(execWhere, label, ctr, ti, main, patch); err != nil {
			return wfv1.DAGTask{}, err
		}
		if err := c.kubernetes(s, label, ti, &tmpl, &args, patch); err != nil {
			return wfv1.DAGTask{}, err
		}
		tmpl.PodSpecPatch = patch.render()
	case exec.GetImporter() != nil:
		if err := cfg.SetImporter(exec.GetImporter()); err != nil {
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s.importer: %w", execWhere, err)
		}
		if x := c.p.ExecutorExtras[label]; x != nil && x.DownloadToWorkspace {
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s.importer.downloadToWorkspace: downloading into the run workspace is not supported yet (the launcher's importer does not copy into it)", execWhere)
		}
		if len(arts) > 0 {
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s: an importer takes no input artifacts", where)
		}
		tmpl.Container = &apiv1.Container{
			Name:    "main",
			Image:   c.launcher,
			Command: []string{launcherInImage},
			Args:    cfg.ImporterArgs(params, ResultsDir),
		}
		if c.executorConfig(label) != nil {
			return wfv1.DAGTask{}, fmt.Errorf("argo: platforms.kubernetes.deploymentSpec.executors['%s']: Kubernetes settings on an importer are not supported", label)
		}
	default:
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s: only container and importer executors are supported (resolver and custom jobs are Vertex AI only)", execWhere)
	}
	c.reportEnv(tmpl.Container, cfg)

	if rp := task.GetRetryPolicy(); rp != nil && rp.GetMaxRetryCount() > 0 {
		tmpl.RetryStrategy = retryStrategy(rp)
	}
	tmpl.Inputs = templateInputs(args)
	c.out = append(c.out, tmpl)
	return wfv1.DAGTask{Name: argoName, Template: tmpl.Name, Arguments: wfv1.Arguments{Parameters: args}}, nil
}

// retryStrategy maps KFP's retry policy; KFP's defaults (factor 2, max one
// hour) apply when unset so Argo behaves like KFP's own backend.
func retryStrategy(rp *pipelinespec.PipelineTaskSpec_RetryPolicy) *wfv1.RetryStrategy {
	rs := &wfv1.RetryStrategy{Limit: ptr(intstr.FromInt32(rp.GetMaxRetryCount())), RetryPolicy: wfv1.RetryPolicyAlways}
	b := &wfv1.Backoff{}
	if d := rp.GetBackoffDuration(); d != nil && d.AsDuration() > 0 {
		b.Duration = d.AsDuration().String()
	}
	f := rp.GetBackoffFactor()
	if f == 0 {
		f = 2
	}
	b.Factor = ptr(intstr.FromString(strconv.FormatFloat(f, 'f', -1, 64)))
	if d := rp.GetBackoffMaxDuration(); d != nil && d.AsDuration() > 0 {
		b.MaxDuration = d.AsDuration().String()
	} else {
		b.MaxDuration = "1h0m0s"
	}
	if b.Duration != "" {
		rs.Backoff = b
	}
	return rs
}

// condTask emits the `launcher cond` template guarding task irName.
func (c *compiler) condTask(st *site, condName, cond string) (wfv1.DAGTask, error) {
	s, irName, tmplBase, staticID, taskID, comp, ti := st.s, st.irName, st.tmplBase, st.staticID, st.taskID, st.comp, st.ti
	cc := launch.CondConfig{RunID: c.opts.RunID, TaskID: staticID + "-cond", Condition: cond, ParamTypes: map[string]pipelinespec.ParameterType_ParameterTypeEnum{}}
	params := map[string]string{}
	var args []wfv1.Parameter
	for _, n := range slices.Sorted(maps.Keys(ti.params)) {
		params[n] = "{{inputs.parameters." + launch.ParamResult(n) + "}}"
		if d := comp.GetInputDefinitions().GetParameters()[n]; d != nil {
			cc.ParamTypes[n] = ir.InputParameterType(d)
		}
		args = append(args, wfv1.Parameter{Name: launch.ParamResult(n), Value: wfv1.AnyStringPtr(ti.params[n])})
	}
	if s.dynamic {
		params[launch.TaskIDParam] = taskID + "-cond"
		args = append(args, wfv1.Parameter{Name: prefixParam, Value: wfv1.AnyStringPtr("{{inputs.parameters." + prefixParam + "}}")})
	}
	tmpl := wfv1.Template{
		Name:     c.templates.name(tmplBase + "-cond"),
		Inputs:   templateInputs(args),
		Metadata: wfv1.Metadata{Labels: map[string]string{compile.LabelTask: labelValue(irName)}},
		Outputs: wfv1.Outputs{Parameters: []wfv1.Parameter{{
			Name: launch.CondResult, ValueFrom: &wfv1.ValueFrom{Path: ResultsDir + "/" + launch.CondResult},
		}}},
		Container: &apiv1.Container{
			Name:    "main",
			Image:   c.launcher,
			Command: []string{launcherInImage},
			Args:    cc.Args(params, ResultsDir),
		},
	}
	c.out = append(c.out, tmpl)
	return wfv1.DAGTask{Name: condName, Template: tmpl.Name, Arguments: wfv1.Arguments{Parameters: args}}, nil
}

// placeholderRe matches a whole-value KFP input placeholder, which newer
// SDKs write into resource fields set from pipeline inputs.
var placeholderRe = regexp.MustCompile(`^\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}$`)

// resources sets requests and limits. Values fixed at compile time go into
// the container; values that are KFP placeholders are only known at run time
// and go into the pod spec patch, which Argo substitutes.
func (c *compiler) resources(where, label string, ctr *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, ti *taskInputs, main *apiv1.Container, patch *podPatch) error {
	r := ctr.GetResources()
	var x struct{ cpuL, memL, cpuR, memR, accType, accCount string }
	if e := c.p.ExecutorExtras[label]; e != nil {
		x.cpuL, x.memL, x.cpuR, x.memR, x.accType, x.accCount = e.ResourceCPULimit, e.ResourceMemoryLimit, e.ResourceCPURequest, e.ResourceMemoryRequest, e.AcceleratorType, e.AcceleratorCount
	}
	num := func(f float64, unit string) string {
		if f == 0 {
			return ""
		}
		return strconv.FormatFloat(f, 'f', -1, 64) + unit
	}
	pick := func(s, fallback string) string {
		if s != "" {
			return s
		}
		return fallback
	}
	type item struct {
		field, value string
		limit        bool
		name         apiv1.ResourceName
	}
	items := []item{
		{"resources.cpuLimit", pick(x.cpuL, num(r.GetCpuLimit(), "")), true, apiv1.ResourceCPU},
		{"resources.memoryLimit", pick(x.memL, num(r.GetMemoryLimit(), "G")), true, apiv1.ResourceMemory},
		{"resources.cpuRequest", pick(x.cpuR, num(r.GetCpuRequest(), "")), false, apiv1.ResourceCPU},
		{"resources.memoryRequest", pick(x.memR, num(r.GetMemoryRequest(), "G")), false, apiv1.ResourceMemory},
	}
	accType := pick(x.accType, r.GetAccelerator().GetType())
	accCount := pick(x.accCount, "")
	if accCount == "" && r.GetAccelerator().GetCount() > 0 {
		accCount = strconv.FormatInt(r.GetAccelerator().GetCount(), 10)
	}
	if accType != "" {
		if accCount == "" {
			accCount = "1"
		}
		if m := placeholderRe.FindStringSubmatch(accType); m != nil {
			// The resource name itself comes from an input (as in KFP's own
			// driver, it must then be a Kubernetes resource name such as
			// nvidia.com/gpu): only a pod spec patch can carry it.
			if _, ok := ti.params[m[1]]; !ok {
				return fmt.Errorf("argo: %s.container.resources.accelerator.resourceType: refers to input %q, which the task does not set", where, m[1])
			}
			count := accCount
			if cm := placeholderRe.FindStringSubmatch(accCount); cm != nil {
				if _, ok := ti.params[cm[1]]; !ok {
					return fmt.Errorf("argo: %s.container.resources.accelerator.resourceCount: refers to input %q, which the task does not set", where, cm[1])
				}
				count = "{{inputs.parameters." + launch.ParamResult(cm[1]) + "}}"
			}
			patch.resource(true, "{{inputs.parameters."+launch.ParamResult(m[1])+"}}", count)
			accType = ""
		}
	}
	if accType != "" {
		items = append(items, item{"resources.accelerator", accCount, true, acceleratorResource(accType)})
	}
	for _, it := range items {
		if it.value == "" {
			continue
		}
		if m := placeholderRe.FindStringSubmatch(it.value); m != nil {
			if _, ok := ti.params[m[1]]; !ok {
				return fmt.Errorf("argo: %s.container.%s: refers to input %q, which the task does not set", where, it.field, m[1])
			}
			patch.resource(it.limit, string(it.name), "{{inputs.parameters."+launch.ParamResult(m[1])+"}}")
			continue
		}
		q, err := resource.ParseQuantity(it.value)
		if err != nil {
			return fmt.Errorf("argo: %s.container.%s: %q is not a Kubernetes quantity: %v", where, it.field, it.value, err)
		}
		if it.limit {
			if main.Resources.Limits == nil {
				main.Resources.Limits = apiv1.ResourceList{}
			}
			main.Resources.Limits[it.name] = q
		} else {
			if main.Resources.Requests == nil {
				main.Resources.Requests = apiv1.ResourceList{}
			}
			main.Resources.Requests[it.name] = q
		}
	}
	return nil
}

// acceleratorResource maps KFP accelerator types onto Kubernetes extended
// resource names. A name with a slash already is one (nvidia.com/gpu).
func acceleratorResource(t string) apiv1.ResourceName {
	l := strings.ToLower(t)
	switch {
	case strings.Contains(l, "/"):
		return apiv1.ResourceName(t)
	case strings.Contains(l, "nvidia"), l == "gpu":
		return "nvidia.com/gpu"
	case strings.Contains(l, "amd"):
		return "amd.com/gpu"
	case strings.Contains(l, "tpu"):
		return "google.com/tpu"
	}
	return apiv1.ResourceName(t)
}

// Images the KFP SDK writes for kfp-kubernetes' CreatePVC and DeletePVC.
const (
	createPVCImage = "argostub/createpvc"
	deletePVCImage = "argostub/deletepvc"
)

// pvcResource builds the Argo resource action of CreatePVC/DeletePVC. The
// manifest is JSON (valid YAML) whose values are the task's inputs,
// substituted by Argo: LIST and STRUCT inputs are compact JSON and go in
// raw, strings go in quoted.
func pvcResource(where, image string, ti *taskInputs) (*wfv1.ResourceTemplate, error) {
	in := func(name string) (string, bool) {
		_, ok := ti.params[name]
		return "{{inputs.parameters." + launch.ParamResult(name) + "}}", ok
	}
	switch image {
	case deletePVCImage:
		name, ok := in("pvc_name")
		if !ok {
			return nil, fmt.Errorf("argo: %s: DeletePVC needs pvc_name", where)
		}
		return &wfv1.ResourceTemplate{Action: "delete", Manifest: `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"` + name + `"}}`}, nil
	case createPVCImage:
	default:
		return nil, fmt.Errorf("argo: %s.container.image: %q is a KFP backend stub pipefn does not know", where, image)
	}
	for n := range ti.params {
		switch n {
		case "access_modes", "size", "pvc_name", "pvc_name_suffix", "storage_class_name", "storage_class", "default_storage_class", "annotations", "volume_name", "data_source":
		default:
			return nil, fmt.Errorf("argo: %s: CreatePVC input %q is not supported", where, n)
		}
	}
	var meta, spec []string
	switch name, hasName := in("pvc_name"); {
	case hasName:
		meta = append(meta, `"name":"`+name+`"`)
	default:
		if suffix, ok := in("pvc_name_suffix"); ok {
			meta = append(meta, `"name":"{{workflow.name}}`+suffix+`"`)
		} else {
			meta = append(meta, `"generateName":"{{workflow.name}}-"`)
		}
	}
	if a, ok := in("annotations"); ok {
		meta = append(meta, `"annotations":`+a)
	}
	modes, ok := in("access_modes")
	if !ok {
		return nil, fmt.Errorf("argo: %s: CreatePVC needs access_modes", where)
	}
	spec = append(spec, `"accessModes":`+modes)
	size, ok := in("size")
	if !ok {
		return nil, fmt.Errorf("argo: %s: CreatePVC needs size", where)
	}
	spec = append(spec, `"resources":{"requests":{"storage":"`+size+`"}}`)
	useDefault := false
	if d, ok := ti.params["default_storage_class"]; ok {
		if d != "true" && d != "false" {
			return nil, fmt.Errorf("argo: %s: default_storage_class must be a constant", where)
		}
		useDefault = d == "true"
	}
	if !useDefault {
		for _, n := range []string{"storage_class_name", "storage_class"} {
			if v, ok := in(n); ok {
				spec = append(spec, `"storageClassName":"`+v+`"`)
				break
			}
		}
	}
	if v, ok := in("volume_name"); ok {
		spec = append(spec, `"volumeName":"`+v+`"`)
	}
	if v, ok := in("data_source"); ok {
		spec = append(spec, `"dataSource":`+v)
	}
	manifest := `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{` + strings.Join(meta, ",") + `},"spec":{` + strings.Join(spec, ",") + `}}`
	return &wfv1.ResourceTemplate{Action: "create", Manifest: manifest}, nil
}
