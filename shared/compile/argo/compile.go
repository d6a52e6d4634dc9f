// Package argo compiles KFP v2 IR into an Argo Workflow. The compiler is a
// pure function: the same ir.Pipeline and compile.Options always give the
// same Workflow, and nothing is read from the environment.
//
// Shape of the output:
//   - every DAG component use (the root, a nested pipeline, a condition
//     branch, a loop body) becomes a DAG template; every container or
//     importer task becomes a template of its own that runs the pipefn
//     launcher. Templates are per use site, not per component, so each one
//     carries the static task id of the place it runs.
//   - parameters and artifact URIs travel as Argo parameters: output
//     parameter X is the result p-X, output artifact X is a-X holding the URI.
//   - ParallelFor becomes a wrapper DAG template (carrying `parallelism`)
//     whose single task fans out over an indexed list [{i, v}] with withItems
//     (static lists) or withParam (runtime lists); the index gives each
//     iteration its task id and Argo aggregates the outputs into JSON lists
//     (dsl.Collected).
//   - triggerPolicy.condition becomes a `launcher cond` task guarding the
//     task with `when`; OneOf outputs pick the branch that succeeded with an
//     Argo expression; ALL_UPSTREAM_TASKS_COMPLETED (exit handlers) becomes a
//     `depends` on every terminal phase.
package argo

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	apiv1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// Paths and names shared by every compiled workflow.
const (
	// ResultsDir is where the launcher writes results inside a task pod.
	ResultsDir = "/tmp/pipefn/outputs"
	// LauncherPath is the launcher binary as the user's container sees it.
	LauncherPath = "/pipefn/launcher"
	// launcherInImage is the launcher binary inside the launcher image.
	launcherInImage = "/launcher"
	binVolume       = "pipefn-bin"
	binMount        = "/pipefn"
	// prefixParam carries the run-time task-id path of a DAG inside a loop
	// down to its tasks, which pass it to the launcher as
	// launch.TaskIDParam (the static TaskConfig.TaskID cannot hold the
	// iteration index, which only Argo knows at run time).
	prefixParam = "pf-prefix"
	entrypoint  = "root"
	iterTask    = "iteration"
)

// Compile turns p into an Argo Workflow for one run.
func Compile(p *ir.Pipeline, opts compile.Options) (*wfv1.Workflow, error) {
	if p == nil || p.Spec == nil {
		return nil, fmt.Errorf("argo: no pipeline spec")
	}
	if p.Spec.GetRoot().GetDag() == nil {
		return nil, fmt.Errorf("argo: root: the pipeline has no DAG")
	}
	if strings.TrimSpace(opts.RunID) == "" {
		return nil, fmt.Errorf("argo: options: RunID is empty")
	}
	c := &compiler{
		p:         p,
		opts:      opts,
		templates: newNamer(maxFieldName),
		launcher:  opts.LauncherImage,
		wfName:    objectName(opts.RunID),
		nullable:  map[string]bool{},
	}
	if c.launcher == "" {
		c.launcher = compile.DefaultLauncherImage
	}
	c.templates.reserve(entrypoint)
	claim, err := c.workspaceClaim()
	if err != nil {
		return nil, err
	}
	c.workspace = claim != nil
	args, rootScope, err := c.rootArguments()
	if err != nil {
		return nil, err
	}
	if err := c.emitDAG(entrypoint, "root", p.Spec.GetRoot(), rootScope, false); err != nil {
		return nil, err
	}
	// The root DAG template is emitted first but every child appends
	// before it returns; put the entrypoint first for readable output.
	slices.SortStableFunc(c.out, func(a, b wfv1.Template) int {
		switch {
		case a.Name == entrypoint && b.Name != entrypoint:
			return -1
		case b.Name == entrypoint && a.Name != entrypoint:
			return 1
		}
		return 0
	})

	labels := map[string]string{}
	maps.Copy(labels, opts.Labels)
	labels[compile.LabelRunID] = labelValue(opts.RunID)
	if opts.Team != "" {
		labels[compile.LabelTeam] = labelValue(opts.Team)
	}
	if opts.PipelineVersionID != "" {
		labels[compile.LabelPipelineVersion] = labelValue(opts.PipelineVersionID)
	}
	wf := &wfv1.Workflow{
		TypeMeta: metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Workflow"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      c.wfName,
			Namespace: opts.Namespace,
			Labels:    labels,
		},
		Spec: wfv1.WorkflowSpec{
			Entrypoint:         entrypoint,
			Arguments:          wfv1.Arguments{Parameters: args},
			ServiceAccountName: opts.ServiceAccount,
			Templates:          c.out,
		},
	}
	if claim != nil {
		wf.Spec.VolumeClaimTemplates = []apiv1.PersistentVolumeClaim{*claim}
	}
	if name := p.Spec.GetPipelineInfo().GetName(); name != "" {
		wf.Annotations = map[string]string{"pipefn.dev/pipeline-name": name}
	}
	if opts.Reports() {
		if wf.Annotations == nil {
			wf.Annotations = map[string]string{}
		}
		wf.Annotations[launch.AnnotationLauncherReports] = "true"
	}
	return wf, nil
}

// labelValue trims a value to Kubernetes' label rules (63 chars,
// alphanumerics, '-', '_', '.'); ids and team names normally already fit.
func labelValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 63 {
		out = out[:63]
	}
	return strings.Trim(out, "-_.")
}

type compiler struct {
	p         *ir.Pipeline
	opts      compile.Options
	templates *namer
	out       []wfv1.Template
	launcher  string
	wfName    string
	// nullable names loop-body outputs ("template/output") that are JSON
	// null in iterations where their conditional producer was skipped.
	nullable map[string]bool
	// workspace is set when the run has a shared workspace volume.
	workspace bool
}

// scope is one DAG template being emitted: what its inputs are and where it
// sits in the run's task-id tree.
type scope struct {
	path    string // static task-id path of this DAG ("" for the root)
	dynamic bool   // inside a loop: the real path is the pf-prefix input
	params  map[string]bool
	arts    map[string]bool
	// taskNames maps IR task names to Argo DAG task names.
	taskNames map[string]string
	// comp is the component this DAG implements.
	comp *pipelinespec.ComponentSpec
	// where is the IR path of the DAG, for error messages.
	where string
	// templateName is the Argo template this scope becomes.
	templateName string
	// missing names required root input artifacts the run did not bind.
	missing map[string]bool
}

// childID is the task id of a child task named name, as a string that may
// contain Argo substitutions.
func (s *scope) childID(name string) string {
	if s.dynamic {
		return "{{inputs.parameters." + prefixParam + "}}." + name
	}
	return joinPath(s.path, name)
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// rootArguments turns the bound root parameters into workflow arguments.
func (c *compiler) rootArguments() ([]wfv1.Parameter, *scope, error) {
	root := c.p.Spec.GetRoot()
	s := &scope{params: map[string]bool{}, arts: map[string]bool{}, comp: root, where: "root"}
	var out []wfv1.Parameter
	defs := root.GetInputDefinitions()
	for _, name := range slices.Sorted(maps.Keys(defs.GetParameters())) {
		def := defs.GetParameters()[name]
		// Options.Params, then the PipelineJob's runtime config, then the
		// default (the same order as the Tekton compiler).
		v := c.opts.Params[name]
		if v == nil && c.p.RuntimeConfig != nil {
			v = c.p.RuntimeConfig.ParameterValues[name]
		}
		if v == nil {
			v = def.GetDefaultValue()
		}
		if v == nil {
			// Optional without a value: the input is simply absent, as
			// KFP treats it; tasks reading it get no --param.
			continue
		}
		out = append(out, wfv1.Parameter{Name: launch.ParamResult(name), Value: wfv1.AnyStringPtr(launch.EncodeParam(v, ir.InputParameterType(def)))})
		s.params[name] = true
	}
	// A root input artifact is bound by its URI, given as a string in
	// Options.Params under the artifact's name (shared with Tekton). A
	// required one left unbound is an error where a task reads it.
	for _, name := range slices.Sorted(maps.Keys(defs.GetArtifacts())) {
		uri := c.opts.Params[name].GetStringValue()
		switch {
		case uri != "":
			out = append(out, wfv1.Parameter{Name: launch.ArtifactResult(name), Value: wfv1.AnyStringPtr(uri)})
			s.arts[name] = true
		case !defs.GetArtifacts()[name].GetIsOptional():
			if s.missing == nil {
				s.missing = map[string]bool{}
			}
			s.missing[name] = true
		}
	}
	return out, s, nil
}

// templateInputs declares the inputs of a template called with args.
func templateInputs(args []wfv1.Parameter) wfv1.Inputs {
	in := wfv1.Inputs{}
	for _, a := range args {
		in.Parameters = append(in.Parameters, wfv1.Parameter{Name: a.Name})
	}
	return in
}

// emitDAG appends the DAG template name implementing comp.
func (c *compiler) emitDAG(name, where string, comp *pipelinespec.ComponentSpec, s *scope, loopBody bool) error {
	dag := comp.GetDag()
	if len(dag.GetTasks()) == 0 {
		return fmt.Errorf("argo: %s: DAG has no tasks (Argo requires at least one)", where)
	}
	s.comp = comp
	s.where = where
	s.templateName = name
	tn := newNamer(maxFieldName)
	s.taskNames = map[string]string{}
	taskOrder := slices.Sorted(maps.Keys(dag.GetTasks()))
	for _, t := range taskOrder {
		s.taskNames[t] = tn.name(t)
	}
	tmpl := wfv1.Template{Name: name, DAG: &wfv1.DAGTemplate{}}
	tmpl.Inputs = s.inputs()
	for _, t := range taskOrder {
		tasks, failFastOff, err := c.emitTask(s, tn, t, dag.GetTasks()[t])
		if err != nil {
			return err
		}
		tmpl.DAG.Tasks = append(tmpl.DAG.Tasks, tasks...)
		if failFastOff {
			// A task that runs after failures (exit handler) must still be
			// scheduled once a sibling failed.
			tmpl.DAG.FailFast = ptr(false)
		}
	}
	outs, err := c.dagOutputs(s, comp, loopBody)
	if err != nil {
		return err
	}
	tmpl.Outputs = outs
	c.out = append(c.out, tmpl)
	return nil
}

// inputs declares the template inputs a scope was given.
func (s *scope) inputs() wfv1.Inputs {
	var in wfv1.Inputs
	for _, n := range slices.Sorted(maps.Keys(s.params)) {
		in.Parameters = append(in.Parameters, wfv1.Parameter{Name: launch.ParamResult(n)})
	}
	for _, n := range slices.Sorted(maps.Keys(s.arts)) {
		in.Parameters = append(in.Parameters, wfv1.Parameter{Name: launch.ArtifactResult(n)})
	}
	if s.dynamic {
		in.Parameters = append(in.Parameters, wfv1.Parameter{Name: prefixParam})
	}
	return in
}

// site is one IR task being compiled: where it sits and what it reads.
type site struct {
	s        *scope
	where    string // IR path of the task, for errors
	irName   string
	argoName string // its DAG task name
	tmplBase string // base for the names of templates it needs
	staticID string // task id without loop indices
	taskID   string // task id, with Argo substitutions inside loops
	task     *pipelinespec.PipelineTaskSpec
	comp     *pipelinespec.ComponentSpec
	ti       *taskInputs
}

// taskInputs are the resolved inputs of one IR task inside a scope.
type taskInputs struct {
	params map[string]string // input name -> value (Argo substitution or literal)
	arts   map[string]string
	deps   []string // IR names of producer tasks
}

// resolveInputs computes the value of every input the task gives its
// component.
func (c *compiler) resolveInputs(s *scope, where string, task *pipelinespec.PipelineTaskSpec, comp *pipelinespec.ComponentSpec) (*taskInputs, error) {
	ti := &taskInputs{params: map[string]string{}, arts: map[string]string{}}
	defs := comp.GetInputDefinitions()
	for _, name := range slices.Sorted(maps.Keys(task.GetInputs().GetParameters())) {
		in := task.GetInputs().GetParameters()[name]
		path := fmt.Sprintf("%s.inputs.parameters['%s']", where, name)
		ptype := ir.InputParameterType(defs.GetParameters()[name])
		var val string
		present := true
		switch k := in.GetKind().(type) {
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_ComponentInputParameter:
			if !s.params[k.ComponentInputParameter] {
				present = false
				break
			}
			val = "{{inputs.parameters." + launch.ParamResult(k.ComponentInputParameter) + "}}"
			if sel := in.GetParameterExpressionSelector(); sel != "" {
				e, err := selectorExpr("inputs.parameters['"+launch.ParamResult(k.ComponentInputParameter)+"']", sel)
				if err != nil {
					return nil, fmt.Errorf("argo: %s.parameterExpressionSelector: %w", path, err)
				}
				val = e
			}
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameter:
			prod := k.TaskOutputParameter.GetProducerTask()
			an, ok := s.taskNames[prod]
			if !ok {
				return nil, fmt.Errorf("argo: %s: producer task %q is not in the same DAG", path, prod)
			}
			key := launch.ParamResult(k.TaskOutputParameter.GetOutputParameterKey())
			val = "{{tasks." + an + ".outputs.parameters." + key + "}}"
			if def := defs.GetParameters()[name].GetDefaultValue(); def != nil && allCompleted(task) && in.GetParameterExpressionSelector() == "" {
				// The task also runs after its producer failed (KFP's
				// ignore_upstream_failure); the input then takes its default,
				// as in KFP, instead of an output that does not exist.
				val = "{{=tasks['" + an + "'].status == 'Succeeded' ? tasks['" + an + "'].outputs.parameters['" + key + "'] : " +
					strconv.Quote(launch.EncodeParam(def, ptype)) + "}}"
			}
			if sel := in.GetParameterExpressionSelector(); sel != "" {
				e, err := selectorExpr("tasks['"+an+"'].outputs.parameters['"+key+"']", sel)
				if err != nil {
					return nil, fmt.Errorf("argo: %s.parameterExpressionSelector: %w", path, err)
				}
				val = e
			}
			ti.deps = append(ti.deps, prod)
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_RuntimeValue:
			v := k.RuntimeValue.GetConstant()
			if v == nil {
				return nil, fmt.Errorf("argo: %s.runtimeValue: only constants are supported", path)
			}
			if in.GetParameterExpressionSelector() != "" {
				return nil, fmt.Errorf("argo: %s.parameterExpressionSelector: not supported on a constant", path)
			}
			val = launch.EncodeParam(v, ptype)
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_TaskFinalStatus_:
			prod := k.TaskFinalStatus.GetProducerTask()
			an, ok := s.taskNames[prod]
			if !ok {
				return nil, fmt.Errorf("argo: %s.taskFinalStatus: producer task %q is not in the same DAG", path, prod)
			}
			val = c.finalStatus(prod, an)
			ti.deps = append(ti.deps, prod)
		default:
			return nil, fmt.Errorf("argo: %s: input has no value source", path)
		}
		if present {
			ti.params[name] = val
		}
	}
	for _, name := range slices.Sorted(maps.Keys(task.GetInputs().GetArtifacts())) {
		in := task.GetInputs().GetArtifacts()[name]
		path := fmt.Sprintf("%s.inputs.artifacts['%s']", where, name)
		switch k := in.GetKind().(type) {
		case *pipelinespec.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact:
			if s.missing[k.ComponentInputArtifact] {
				return nil, fmt.Errorf("argo: %s: root input artifact %q is required: bind its URI as a string in the run parameters", path, k.ComponentInputArtifact)
			}
			if s.arts[k.ComponentInputArtifact] {
				ti.arts[name] = "{{inputs.parameters." + launch.ArtifactResult(k.ComponentInputArtifact) + "}}"
			}
		case *pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact:
			prod := k.TaskOutputArtifact.GetProducerTask()
			an, ok := s.taskNames[prod]
			if !ok {
				return nil, fmt.Errorf("argo: %s: producer task %q is not in the same DAG", path, prod)
			}
			ti.arts[name] = "{{tasks." + an + ".outputs.parameters." + launch.ArtifactResult(k.TaskOutputArtifact.GetOutputArtifactKey()) + "}}"
			ti.deps = append(ti.deps, prod)
		default:
			return nil, fmt.Errorf("argo: %s: input artifact has no source", path)
		}
	}
	return ti, nil
}

// finalStatus renders KFP's PipelineTaskFinalStatus for a task that ran
// before an exit task, as the JSON STRUCT the launcher decodes. The state is
// mapped from Argo's phase at run time by an expression.
func (c *compiler) finalStatus(irName, argoName string) string {
	return `{"error":{},"pipelineJobResourceName":"` + c.wfName + `","pipelineTaskName":"` + irName +
		`","state":"{{=tasks['` + argoName + `'].status == 'Succeeded' ? 'SUCCEEDED' : 'FAILED'}}"}`
}

// selectorExpr turns KFP's parameterExpressionSelector into an Argo
// expression over ref. The SDK only writes parseJson(string_value)["key"]
// (a field of a dict loop item); anything else is refused.
func selectorExpr(ref, sel string) (string, error) {
	const pre, post = `parseJson(string_value)["`, `"]`
	if !strings.HasPrefix(sel, pre) || !strings.HasSuffix(sel, post) {
		return "", fmt.Errorf("unsupported selector %q (pipefn supports parseJson(string_value)[\"key\"])", sel)
	}
	key := strings.TrimSuffix(strings.TrimPrefix(sel, pre), post)
	if strings.ContainsAny(key, `"\'`) {
		return "", fmt.Errorf("unsupported selector key in %q", sel)
	}
	return "{{=fromJSON(" + ref + ")['" + key + "']}}", nil
}

// allCompleted reports whether task runs once its upstream tasks finished,
// whatever their outcome (exit handlers, ignore_upstream_failure).
func allCompleted(task *pipelinespec.PipelineTaskSpec) bool {
	return task.GetTriggerPolicy().GetStrategy() == pipelinespec.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED
}

// dependsOn renders an Argo `depends` expression.
func dependsOn(argoNames []string, allCompleted bool) string {
	var parts []string
	for _, n := range argoNames {
		if allCompleted {
			parts = append(parts, "("+n+".Succeeded || "+n+".Skipped || "+n+".Failed || "+n+".Errored || "+n+".Omitted)")
		} else {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, " && ")
}

// emitTask emits the Argo DAG task(s) for one IR task and the templates they
// call. It reports whether the DAG must keep scheduling after a failure.
func (c *compiler) emitTask(s *scope, tn *namer, irName string, task *pipelinespec.PipelineTaskSpec) ([]wfv1.DAGTask, bool, error) {
	where := fmt.Sprintf("%s.dag.tasks['%s']", s.where, irName)
	compName := task.GetComponentRef().GetName()
	comp, ok := c.p.Spec.GetComponents()[compName]
	if !ok {
		return nil, false, fmt.Errorf("argo: %s.componentRef: component %q not found", where, compName)
	}
	ti, err := c.resolveInputs(s, where, task, comp)
	if err != nil {
		return nil, false, err
	}
	allCompleted := false
	switch st := task.GetTriggerPolicy().GetStrategy(); st {
	case pipelinespec.PipelineTaskSpec_TriggerPolicy_TRIGGER_STRATEGY_UNSPECIFIED, pipelinespec.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_SUCCEEDED:
	case pipelinespec.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED:
		allCompleted = true
	default:
		return nil, false, fmt.Errorf("argo: %s.triggerPolicy.strategy: %s is not supported", where, st)
	}

	argoName := s.taskNames[irName]
	taskID := s.childID(irName)
	staticID := joinPath(s.path, irName)
	// Template names follow the task path with '-' (Argo forbids dots).
	tmplBase := strings.ReplaceAll(joinPath(s.path, irName), ".", "-")

	st := &site{s: s, where: where, irName: irName, argoName: argoName, tmplBase: tmplBase, staticID: staticID, taskID: taskID, task: task, comp: comp, ti: ti}
	var call wfv1.DAGTask
	if comp.GetDag() != nil {
		call, err = c.dagCall(st)
	} else {
		call, err = c.execCall(st)
	}
	if err != nil {
		return nil, false, err
	}
	// Dependencies: explicit plus every producer, deduplicated, sorted.
	depSet := map[string]bool{}
	for _, d := range append(slices.Clone(task.GetDependentTasks()), ti.deps...) {
		if _, ok := s.taskNames[d]; !ok {
			return nil, false, fmt.Errorf("argo: %s.dependentTasks: task %q is not in the same DAG", where, d)
		}
		depSet[d] = true
	}
	var deps []string
	for _, d := range slices.Sorted(maps.Keys(depSet)) {
		deps = append(deps, s.taskNames[d])
	}

	out := []wfv1.DAGTask{}
	if cond := task.GetTriggerPolicy().GetCondition(); cond != "" {
		if err := ir.CheckCondition(cond); err != nil {
			return nil, false, fmt.Errorf("argo: %s.triggerPolicy.condition: %w", where, err)
		}
		condName := tn.name(irName + "-cond")
		condTask, err := c.condTask(st, condName, cond)
		if err != nil {
			return nil, false, err
		}
		condTask.Depends = dependsOn(deps, allCompleted)
		out = append(out, condTask)
		call.Depends = condName
		call.When = "{{tasks." + condName + ".outputs.parameters." + launch.CondResult + "}} == true"
	} else {
		call.Depends = dependsOn(deps, allCompleted)
	}
	out = append(out, call)
	return out, allCompleted, nil
}

// argParams turns resolved inputs into task arguments (p-/a- prefixed).
func argParams(ti *taskInputs) []wfv1.Parameter {
	var out []wfv1.Parameter
	for _, n := range slices.Sorted(maps.Keys(ti.params)) {
		out = append(out, wfv1.Parameter{Name: launch.ParamResult(n), Value: wfv1.AnyStringPtr(ti.params[n])})
	}
	for _, n := range slices.Sorted(maps.Keys(ti.arts)) {
		out = append(out, wfv1.Parameter{Name: launch.ArtifactResult(n), Value: wfv1.AnyStringPtr(ti.arts[n])})
	}
	return out
}

// dagCall emits the templates for a task whose component is a DAG (nested
// pipeline, condition branch, loop) and returns the calling DAG task.
func (c *compiler) dagCall(st *site) (wfv1.DAGTask, error) {
	s, where, irName, argoName, tmplBase, task, comp, ti := st.s, st.where, st.irName, st.argoName, st.tmplBase, st.task, st.comp, st.ti
	// Defaults of a nested pipeline's inputs apply when the caller passes
	// nothing; no launcher sees a DAG component, so the compiler binds them.
	for name, def := range comp.GetInputDefinitions().GetParameters() {
		if _, ok := ti.params[name]; !ok && def.GetDefaultValue() != nil {
			ti.params[name] = launch.EncodeParam(def.GetDefaultValue(), ir.InputParameterType(def))
		}
	}
	child := &scope{path: joinPath(s.path, irName), dynamic: s.dynamic, params: map[string]bool{}, arts: map[string]bool{}}
	for n := range ti.params {
		child.params[n] = true
	}
	for n := range ti.arts {
		child.arts[n] = true
	}
	args := argParams(ti)
	if s.dynamic {
		args = append(args, wfv1.Parameter{Name: prefixParam, Value: wfv1.AnyStringPtr(s.childID(irName))})
	}
	compWhere := fmt.Sprintf("components['%s']", task.GetComponentRef().GetName())
	if task.GetIterator() == nil {
		if task.GetIteratorPolicy().GetParallelismLimit() != 0 {
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s.iteratorPolicy: set on a task without an iterator", where)
		}
		name := c.templates.name(tmplBase)
		if err := c.emitDAG(name, compWhere, comp, child, false); err != nil {
			return wfv1.DAGTask{}, err
		}
		return wfv1.DAGTask{Name: argoName, Template: name, Arguments: wfv1.Arguments{Parameters: args}}, nil
	}
	return c.loopCall(st, compWhere, args)
}

// loopCall compiles a ParallelFor: a wrapper DAG template (which carries
// the parallelism limit and re-exports the aggregated outputs) with one task
// fanning out over [{i: index, v: item}] into the loop body DAG template.
func (c *compiler) loopCall(st *site, compWhere string, args []wfv1.Parameter) (wfv1.DAGTask, error) {
	s, where, irName, argoName, tmplBase, task, comp, ti := st.s, st.where, st.irName, st.argoName, st.tmplBase, st.task, st.comp, st.ti
	wrapName := c.templates.name(tmplBase)
	bodyName := c.templates.name(tmplBase + "-body")

	var itemInput string
	var itemIsArtifact bool
	iter := wfv1.DAGTask{Name: iterTask, Template: bodyName}
	switch it := task.GetIterator().(type) {
	case *pipelinespec.PipelineTaskSpec_ParameterIterator:
		itemInput = it.ParameterIterator.GetItemInput()
		switch items := it.ParameterIterator.GetItems().GetKind().(type) {
		case *pipelinespec.ParameterIteratorSpec_ItemsSpec_Raw:
			list, err := staticItems(items.Raw)
			if err != nil {
				return wfv1.DAGTask{}, fmt.Errorf("argo: %s.parameterIterator.items.raw: %w", where, err)
			}
			if len(list) == 0 {
				return wfv1.DAGTask{}, fmt.Errorf("argo: %s.parameterIterator.items.raw: empty list (Argo cannot fan out over nothing)", where)
			}
			iter.WithItems = list
		case *pipelinespec.ParameterIteratorSpec_ItemsSpec_InputParameter:
			src := items.InputParameter
			if _, ok := ti.params[src]; !ok {
				return wfv1.DAGTask{}, fmt.Errorf("argo: %s.parameterIterator.items.inputParameter: input %q has no value", where, src)
			}
			iter.WithParam = indexedList("inputs.parameters['" + launch.ParamResult(src) + "']")
		default:
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s.parameterIterator.items: neither raw nor inputParameter", where)
		}
	case *pipelinespec.PipelineTaskSpec_ArtifactIterator:
		itemInput = it.ArtifactIterator.GetItemInput()
		itemIsArtifact = true
		src := it.ArtifactIterator.GetItems().GetInputArtifact()
		if _, ok := ti.arts[src]; !ok {
			return wfv1.DAGTask{}, fmt.Errorf("argo: %s.artifactIterator.items.inputArtifact: input %q has no value", where, src)
		}
		iter.WithParam = indexedList("inputs.parameters['" + launch.ArtifactResult(src) + "']")
	}
	if itemInput == "" {
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s: iterator has no itemInput", where)
	}

	// The body receives the wrapper's inputs plus the item and an
	// iteration-specific task-id prefix.
	body := &scope{path: joinPath(s.path, irName), dynamic: true, params: map[string]bool{}, arts: map[string]bool{}}
	var iterArgs []wfv1.Parameter
	for _, a := range args {
		if a.Name == prefixParam {
			continue
		}
		iterArgs = append(iterArgs, wfv1.Parameter{Name: a.Name, Value: wfv1.AnyStringPtr("{{inputs.parameters." + a.Name + "}}")})
	}
	for n := range ti.params {
		body.params[n] = true
	}
	for n := range ti.arts {
		body.arts[n] = true
	}
	itemArg := launch.ParamResult(itemInput)
	if itemIsArtifact {
		itemArg = launch.ArtifactResult(itemInput)
		body.arts[itemInput] = true
	} else {
		body.params[itemInput] = true
	}
	iterArgs = slices.DeleteFunc(iterArgs, func(p wfv1.Parameter) bool { return p.Name == itemArg })
	iterArgs = append(iterArgs, wfv1.Parameter{Name: itemArg, Value: wfv1.AnyStringPtr("{{item.v}}")})
	prefix := joinPath(s.path, irName) + ".{{item.i}}"
	if s.dynamic {
		prefix = "{{inputs.parameters." + prefixParam + "}}.{{item.i}}"
	}
	iterArgs = append(iterArgs, wfv1.Parameter{Name: prefixParam, Value: wfv1.AnyStringPtr(prefix)})
	slices.SortStableFunc(iterArgs, func(a, b wfv1.Parameter) int { return strings.Compare(a.Name, b.Name) })
	iter.Arguments = wfv1.Arguments{Parameters: iterArgs}

	if err := c.emitDAG(bodyName, compWhere, comp, body, true); err != nil {
		return wfv1.DAGTask{}, err
	}

	wrap := wfv1.Template{Name: wrapName, Inputs: templateInputs(args), DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{iter}}}
	if n := task.GetIteratorPolicy().GetParallelismLimit(); n > 0 {
		wrap.Parallelism = ptr(int64(n))
	} else if n < 0 {
		return wfv1.DAGTask{}, fmt.Errorf("argo: %s.iteratorPolicy.parallelismLimit: %d is negative", where, n)
	}
	// Re-export the body's outputs, aggregated over iterations by Argo.
	for _, o := range c.findTemplate(bodyName).Outputs.Parameters {
		wrap.Outputs.Parameters = append(wrap.Outputs.Parameters, wfv1.Parameter{Name: o.Name, ValueFrom: loopOutput(iterTask, o.Name, c.nullable[bodyName+"/"+o.Name])})
	}
	c.out = append(c.out, wrap)
	return wfv1.DAGTask{Name: argoName, Template: wrapName, Arguments: wfv1.Arguments{Parameters: args}}, nil
}

func (c *compiler) findTemplate(name string) *wfv1.Template {
	for i := range c.out {
		if c.out[i].Name == name {
			return &c.out[i]
		}
	}
	return &wfv1.Template{}
}

// indexedList is a withParam expression that pairs every element of the JSON
// list ref with its index, so each iteration knows its number.
func indexedList(ref string) string {
	// The map literal is parenthesised: a bare { after map( opens a
	// predicate in expr, and "}}" would end Argo's tag early.
	return "{{=toJson(map(fromJSON(" + ref + `), ({"i": string(#index), "v": #})))}}`
}

// staticItems parses items.raw (a JSON list) into indexed withItems.
func staticItems(raw string) ([]wfv1.Item, error) {
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, fmt.Errorf("not a JSON list: %w", err)
	}
	out := make([]wfv1.Item, 0, len(list))
	for i, e := range list {
		b, err := json.Marshal(map[string]json.RawMessage{"i": json.RawMessage(strconv.Quote(strconv.Itoa(i))), "v": e})
		if err != nil {
			return nil, err
		}
		item, err := wfv1.ParseItem(string(b))
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, item)
	}
	return out, nil
}

// dagOutputs maps a DAG component's outputs onto its subtasks' results.
func (c *compiler) dagOutputs(s *scope, comp *pipelinespec.ComponentSpec, loopBody bool) (wfv1.Outputs, error) {
	var out wfv1.Outputs
	dagOut := comp.GetDag().GetOutputs()
	for _, name := range slices.Sorted(maps.Keys(dagOut.GetParameters())) {
		spec := dagOut.GetParameters()[name]
		path := fmt.Sprintf("%s.dag.outputs.parameters['%s']", s.where, name)
		var sels []selector
		switch k := spec.GetKind().(type) {
		case *pipelinespec.DagOutputsSpec_DagOutputParameterSpec_ValueFromParameter:
			sels = []selector{{task: k.ValueFromParameter.GetProducerSubtask(), key: k.ValueFromParameter.GetOutputParameterKey()}}
		case *pipelinespec.DagOutputsSpec_DagOutputParameterSpec_ValueFromOneof:
			for _, p := range k.ValueFromOneof.GetParameterSelectors() {
				sels = append(sels, selector{task: p.GetProducerSubtask(), key: p.GetOutputParameterKey()})
			}
		default:
			return out, fmt.Errorf("argo: %s: no value source", path)
		}
		p, err := c.outputParam(s, path, launch.ParamResult(name), sels, false, loopBody)
		if err != nil {
			return out, err
		}
		out.Parameters = append(out.Parameters, p)
	}
	for _, name := range slices.Sorted(maps.Keys(dagOut.GetArtifacts())) {
		spec := dagOut.GetArtifacts()[name]
		path := fmt.Sprintf("%s.dag.outputs.artifacts['%s']", s.where, name)
		var sels []selector
		for _, a := range spec.GetArtifactSelectors() {
			sels = append(sels, selector{task: a.GetProducerSubtask(), key: a.GetOutputArtifactKey()})
		}
		if len(sels) == 0 {
			return out, fmt.Errorf("argo: %s: no artifact selectors", path)
		}
		p, err := c.outputParam(s, path, launch.ArtifactResult(name), sels, true, loopBody)
		if err != nil {
			return out, err
		}
		out.Parameters = append(out.Parameters, p)
	}
	return out, nil
}

type selector struct{ task, key string }

// outputParam builds one DAG output. One selector is a plain reference;
// several (OneOf) choose, by an expression, the first producer that
// succeeded: exactly one branch of an if/elif/else runs.
//
// Inside a loop body every output is wrapped as the JSON object {"v": value}:
// Argo (v3.7, aggregatedJSONValueList) aggregates an output over iterations
// by embedding the values only when every one is a JSON object or list, and
// otherwise makes a list of their raw strings, so scalars would come back
// re-quoted ("\"x\"") or untyped ("1" for 1). The loop wrapper unwraps the
// aggregated list (loopOutput).
func (c *compiler) outputParam(s *scope, path, outName string, sels []selector, artifact, loopBody bool) (wfv1.Parameter, error) {
	type resolved struct {
		task, result string
		raw          bool // written as raw text, not JSON
	}
	var rs []resolved
	for _, sel := range sels {
		an, ok := s.taskNames[sel.task]
		if !ok {
			return wfv1.Parameter{}, fmt.Errorf("argo: %s: producer subtask %q is not in this DAG", path, sel.task)
		}
		result := launch.ParamResult(sel.key)
		if artifact {
			result = launch.ArtifactResult(sel.key)
		}
		rs = append(rs, resolved{an, result, loopBody && c.isRawText(s, sel, artifact)})
	}
	// In a loop body, a single producer behind a condition may not run in
	// some iterations; KFP then collects nothing for them. The body yields
	// null and the loop wrapper filters the nulls out.
	conditional := len(sels) == 1 && s.comp.GetDag().GetTasks()[sels[0].task].GetTriggerPolicy().GetCondition() != ""
	skippable := loopBody && conditional
	if len(rs) == 1 && !loopBody {
		vf := &wfv1.ValueFrom{Parameter: "{{tasks." + rs[0].task + ".outputs.parameters." + rs[0].result + "}}"}
		if conditional {
			// Outside loops an output of a branch that did not run is
			// absent in KFP; Argo would fail the DAG, so it becomes "".
			vf.Default = wfv1.AnyStringPtr("")
		}
		return wfv1.Parameter{Name: outName, ValueFrom: vf}, nil
	}
	ref := func(r resolved) string {
		e := "tasks['" + r.task + "'].outputs.parameters['" + r.result + "']"
		if loopBody && !r.raw {
			e = "fromJSON(" + e + ")"
		}
		return e
	}
	expr := ref(rs[len(rs)-1])
	if skippable {
		c.nullable[s.templateName+"/"+outName] = true
		expr = "tasks['" + rs[0].task + "'].status == 'Succeeded' ? " + expr + " : nil"
	}
	for i := len(rs) - 2; i >= 0; i-- {
		expr = "tasks['" + rs[i].task + "'].status == 'Succeeded' ? " + ref(rs[i]) + " : (" + expr + ")"
	}
	if loopBody {
		expr = `toJson({"v": ` + expr + `})`
	}
	return wfv1.Parameter{Name: outName, ValueFrom: &wfv1.ValueFrom{Expression: expr}}, nil
}

// loopOutput re-exports a loop body's output from the loop wrapper: Argo's
// aggregation over the iterations, a JSON list of {"v": value} objects
// (outputParam), unwrapped to the list of values; iterations whose producer
// was skipped (null) are left out, as KFP collects nothing for them. An
// empty loop aggregates nothing; "[]" is then the honest value.
func loopOutput(iterTask, name string, nullable bool) *wfv1.ValueFrom {
	list := "fromJSON(tasks['" + iterTask + "'].outputs.parameters['" + name + "'])"
	if nullable {
		list = "filter(" + list + ", #.v != nil)"
	}
	return &wfv1.ValueFrom{Expression: "toJson(map(" + list + ", #.v))", Default: wfv1.AnyStringPtr("[]")}
}

// isRawText reports whether the value behind a DAG output selector is
// written as raw text (not JSON): a STRING parameter or a single artifact's
// URI. Declared DAG output types describe the collected value, not one
// iteration's, so the chain is followed down to the executor that writes it.
func (c *compiler) isRawText(s *scope, sel selector, artifact bool) bool {
	return c.rawText(s.comp, sel, artifact, 0)
}

func (c *compiler) rawText(dagComp *pipelinespec.ComponentSpec, sel selector, artifact bool, depth int) bool {
	task := dagComp.GetDag().GetTasks()[sel.task]
	comp := c.p.Spec.GetComponents()[task.GetComponentRef().GetName()]
	if comp == nil || task.GetIterator() != nil || depth > 64 {
		return false // a loop's outputs are JSON lists
	}
	if comp.GetDag() == nil {
		if artifact {
			a := comp.GetOutputDefinitions().GetArtifacts()[sel.key]
			return a != nil && !a.GetIsArtifactList()
		}
		p := comp.GetOutputDefinitions().GetParameters()[sel.key]
		return p != nil && ir.OutputParameterType(p) == pipelinespec.ParameterType_STRING
	}
	outs := comp.GetDag().GetOutputs()
	if artifact {
		if a := outs.GetArtifacts()[sel.key]; a != nil && len(a.GetArtifactSelectors()) > 0 {
			f := a.GetArtifactSelectors()[0]
			return c.rawText(comp, selector{task: f.GetProducerSubtask(), key: f.GetOutputArtifactKey()}, true, depth+1)
		}
		return false
	}
	p := outs.GetParameters()[sel.key]
	switch k := p.GetKind().(type) {
	case *pipelinespec.DagOutputsSpec_DagOutputParameterSpec_ValueFromParameter:
		return c.rawText(comp, selector{task: k.ValueFromParameter.GetProducerSubtask(), key: k.ValueFromParameter.GetOutputParameterKey()}, false, depth+1)
	case *pipelinespec.DagOutputsSpec_DagOutputParameterSpec_ValueFromOneof:
		if sels := k.ValueFromOneof.GetParameterSelectors(); len(sels) > 0 {
			return c.rawText(comp, selector{task: sels[0].GetProducerSubtask(), key: sels[0].GetOutputParameterKey()}, false, depth+1)
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
