package ir

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"
)

// validator holds what the rules share while checking one pipeline.
type validator struct {
	p  *Pipeline
	ps *problems
}

// scope is one DAG being checked: the component that owns it and where it is.
type scope struct {
	path string // "root" or "components['comp-x']"
	comp *pipelinespec.ComponentSpec
}

func (v *validator) run() {
	s := v.p.Spec
	switch s.GetSchemaVersion() {
	case "2.0.0", "2.1.0":
	case "":
		v.ps.add("schemaVersion", "schemaVersion is missing (want 2.0.0 or 2.1.0)")
	default:
		v.ps.add("schemaVersion", "unsupported schemaVersion %q (want 2.0.0 or 2.1.0)", s.GetSchemaVersion())
	}
	if s.GetPipelineInfo().GetName() == "" {
		v.ps.add("pipelineInfo.name", "pipelineInfo.name is empty")
	}
	if s.GetRoot() == nil {
		v.ps.add("root", "root component is missing")
	} else if s.GetRoot().GetDag() == nil {
		v.ps.add("root.dag", "root component has no dag")
	}
	v.checkDefaults("root", s.GetRoot())
	for _, name := range sortedKeys(s.GetComponents()) {
		c := s.GetComponents()[name]
		path := pathKey("", "components", name)
		if c == nil {
			v.ps.add(path, "component is empty")
			continue
		}
		v.checkDefaults(path, c)
		switch {
		case c.GetExecutorLabel() != "":
			if _, ok := v.p.Deployment.GetExecutors()[c.GetExecutorLabel()]; !ok {
				v.ps.add(path+".executorLabel", "executor %q is not in deploymentSpec.executors", c.GetExecutorLabel())
			}
		case c.GetDag() == nil:
			v.ps.add(path, "component has neither a dag nor an executorLabel")
		}
	}
	if root := s.GetRoot(); root.GetDag() != nil {
		v.checkDAG(scope{path: "root", comp: root})
	}
	for _, name := range sortedKeys(s.GetComponents()) {
		if c := s.GetComponents()[name]; c.GetDag() != nil {
			v.checkDAG(scope{path: pathKey("", "components", name), comp: c})
		}
	}
	v.checkComponentCycles()
	v.checkExecutors()
	v.checkKubernetes()
}

// checkDefaults compares declared defaults with declared types.
func (v *validator) checkDefaults(path string, c *pipelinespec.ComponentSpec) {
	for _, name := range sortedKeys(c.GetInputDefinitions().GetParameters()) {
		d := c.GetInputDefinitions().GetParameters()[name]
		if d.GetDefaultValue() == nil {
			continue
		}
		t := InputParameterType(d)
		if !valueFits(d.GetDefaultValue(), t) {
			v.ps.add(pathKey(path+".inputDefinitions", "parameters", name)+".defaultValue",
				"default %s does not match parameterType %s", jsonText(d.GetDefaultValue().AsInterface()), t)
		}
	}
}

// valueFits reports whether a constant can be used where type t is
// expected. It follows what the SDK emits: integers are doubles in JSON,
// and a NUMBER_INTEGER may be written as 1.0.
func valueFits(val *structpb.Value, t ParameterType) bool {
	if t == pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
		return true
	}
	if _, isNull := val.GetKind().(*structpb.Value_NullValue); isNull {
		return true // None default for an Optional parameter
	}
	_, err := CoerceParameter(val, t)
	return err == nil
}

func (v *validator) component(name string) *pipelinespec.ComponentSpec {
	return v.p.Spec.GetComponents()[name]
}

func (v *validator) checkDAG(sc scope) {
	dag := sc.comp.GetDag()
	tasksPath := sc.path + ".dag.tasks"
	tasks := dag.GetTasks()
	for _, name := range sortedKeys(tasks) {
		v.checkTask(sc, name, tasks[name], pathKey(sc.path+".dag", "tasks", name))
	}
	v.checkCycles(tasksPath, tasks)
	v.checkDAGOutputs(sc)
}

func (v *validator) checkTask(sc scope, name string, t *pipelinespec.PipelineTaskSpec, path string) {
	tasks := sc.comp.GetDag().GetTasks()
	encIn := sc.comp.GetInputDefinitions()
	ref := t.GetComponentRef().GetName()
	var callee *pipelinespec.ComponentSpec
	switch {
	case ref == "":
		v.ps.add(path+".componentRef.name", "task has no componentRef")
	case v.component(ref) == nil:
		v.ps.add(path+".componentRef.name", "component %q is not defined in components", ref)
	default:
		callee = v.component(ref)
	}
	for i, dep := range t.GetDependentTasks() {
		if dep == name {
			v.ps.add(fmt.Sprintf("%s.dependentTasks[%d]", path, i), "task depends on itself")
		} else if _, ok := tasks[dep]; !ok {
			v.ps.add(fmt.Sprintf("%s.dependentTasks[%d]", path, i), "dependent task %q is not in this DAG (%s)", dep, taskList(tasks))
		}
	}
	calleeIn := callee.GetInputDefinitions()
	// The iterator's itemInput is an input of the callee that the task
	// does not pass: the engine fills it per iteration.
	itemInput := t.GetParameterIterator().GetItemInput()
	if itemInput == "" {
		itemInput = t.GetArtifactIterator().GetItemInput()
	}

	for _, in := range sortedKeys(t.GetInputs().GetParameters()) {
		spec := t.GetInputs().GetParameters()[in]
		ipath := pathKey(path+".inputs", "parameters", in)
		var want ParameterType
		if callee != nil {
			d, ok := calleeIn.GetParameters()[in]
			switch {
			case ok:
				want = InputParameterType(d)
			case machineFieldInputs[in] && v.hasStringResources(callee):
				// SDK 2.13+ passes the values of string machine fields
				// (set_cpu_limit etc. from a pipeline input or task
				// output) as these undeclared task inputs.
			case strings.HasPrefix(in, channelPrefix):
				// The SDK passes channels used inside another input's
				// constant (f-strings) as extra inputs; the constant
				// reads them through {{$.inputs.parameters['...']}}.
			default:
				v.ps.add(ipath, "component %q declares no input parameter %q (declared: %s)", ref, in, keyList(calleeIn.GetParameters()))
			}
		}
		var got ParameterType
		switch k := spec.GetKind().(type) {
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameter:
			got = v.checkProducerParam(tasks, name, k.TaskOutputParameter.GetProducerTask(), k.TaskOutputParameter.GetOutputParameterKey(), ipath+".taskOutputParameter")
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_ComponentInputParameter:
			d, ok := encIn.GetParameters()[k.ComponentInputParameter]
			if !ok {
				v.ps.add(ipath+".componentInputParameter", "%s declares no input parameter %q (declared: %s)", sc.path, k.ComponentInputParameter, keyList(encIn.GetParameters()))
			} else {
				got = InputParameterType(d)
			}
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_RuntimeValue:
			if c := k.RuntimeValue.GetConstant(); c != nil && want != 0 && spec.GetParameterExpressionSelector() == "" && !valueFits(c, want) {
				v.ps.add(ipath+".runtimeValue.constant", "constant %s does not match the input's type %s", jsonText(c.AsInterface()), want)
			}
			v.checkConstantPlaceholders(k.RuntimeValue.GetConstant(), t, ipath+".runtimeValue.constant")
			if rp := k.RuntimeValue.GetRuntimeParameter(); rp != "" {
				if _, ok := encIn.GetParameters()[rp]; !ok {
					v.ps.add(ipath+".runtimeValue.runtimeParameter", "%s declares no input parameter %q", sc.path, rp)
				}
			}
		case *pipelinespec.TaskInputsSpec_InputParameterSpec_TaskFinalStatus_:
			p := k.TaskFinalStatus.GetProducerTask()
			if _, ok := tasks[p]; !ok {
				v.ps.add(ipath+".taskFinalStatus.producerTask", "task %q is not in this DAG (%s)", p, taskList(tasks))
			}
			got = pipelinespec.ParameterType_TASK_FINAL_STATUS
		case nil:
			v.ps.add(ipath, "input parameter has no source (taskOutputParameter, componentInputParameter, runtimeValue or taskFinalStatus)")
		}
		if sel := spec.GetParameterExpressionSelector(); sel != "" {
			if err := CheckParameterSelector(sel); err != nil {
				v.ps.add(ipath+".parameterExpressionSelector", "%v", err)
			}
			got = 0 // the selector changes the type
		}
		if !typesCompatible(got, want) {
			v.ps.add(ipath, "type mismatch: source is %s, component %q expects %s", got, ref, want)
		}
	}

	for _, in := range sortedKeys(t.GetInputs().GetArtifacts()) {
		spec := t.GetInputs().GetArtifacts()[in]
		ipath := pathKey(path+".inputs", "artifacts", in)
		if callee != nil {
			if _, ok := calleeIn.GetArtifacts()[in]; !ok {
				v.ps.add(ipath, "component %q declares no input artifact %q (declared: %s)", ref, in, keyList(calleeIn.GetArtifacts()))
			}
		}
		switch k := spec.GetKind().(type) {
		case *pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact:
			v.checkProducerArtifact(tasks, name, k.TaskOutputArtifact.GetProducerTask(), k.TaskOutputArtifact.GetOutputArtifactKey(), ipath+".taskOutputArtifact")
		case *pipelinespec.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact:
			if _, ok := encIn.GetArtifacts()[k.ComponentInputArtifact]; !ok {
				v.ps.add(ipath+".componentInputArtifact", "%s declares no input artifact %q (declared: %s)", sc.path, k.ComponentInputArtifact, keyList(encIn.GetArtifacts()))
			}
		case nil:
			v.ps.add(ipath, "input artifact has no source (taskOutputArtifact or componentInputArtifact)")
		}
	}

	if callee != nil {
		for _, in := range sortedKeys(calleeIn.GetParameters()) {
			d := calleeIn.GetParameters()[in]
			if _, ok := t.GetInputs().GetParameters()[in]; ok || in == itemInput || d.GetIsOptional() || d.GetDefaultValue() != nil {
				continue
			}
			if InputParameterType(d) == pipelinespec.ParameterType_TASK_FINAL_STATUS {
				continue
			}
			v.ps.add(pathKey(path+".inputs", "parameters", in), "required input parameter %q of component %q is not passed", in, ref)
		}
		for _, in := range sortedKeys(calleeIn.GetArtifacts()) {
			d := calleeIn.GetArtifacts()[in]
			if _, ok := t.GetInputs().GetArtifacts()[in]; ok || in == itemInput || d.GetIsOptional() {
				continue
			}
			v.ps.add(pathKey(path+".inputs", "artifacts", in), "required input artifact %q of component %q is not passed", in, ref)
		}
	}

	if cond := t.GetTriggerPolicy().GetCondition(); cond != "" {
		cpath := path + ".triggerPolicy.condition"
		if err := CheckCondition(cond); err != nil {
			v.ps.add(cpath, "%v", err)
		} else {
			for _, key := range ConditionParameters(cond) {
				if _, ok := t.GetInputs().GetParameters()[key]; !ok {
					v.ps.add(cpath, "condition reads parameter %q, which is not an input of the task", key)
				}
			}
		}
	}

	if it := t.GetParameterIterator(); it != nil {
		ipath := path + ".parameterIterator"
		if it.GetItemInput() == "" {
			v.ps.add(ipath+".itemInput", "itemInput is empty")
		}
		switch k := it.GetItems().GetKind().(type) {
		case *pipelinespec.ParameterIteratorSpec_ItemsSpec_Raw:
			var items []any
			if err := json.Unmarshal([]byte(k.Raw), &items); err != nil || items == nil {
				v.ps.add(ipath+".items.raw", "items must be a JSON list, got %s", clip(k.Raw))
			}
		case *pipelinespec.ParameterIteratorSpec_ItemsSpec_InputParameter:
			if _, ok := t.GetInputs().GetParameters()[k.InputParameter]; !ok {
				v.ps.add(ipath+".items.inputParameter", "%q is not an input parameter of the task", k.InputParameter)
			}
		default:
			v.ps.add(ipath+".items", "items has neither raw nor inputParameter")
		}
	}
	if n := t.GetIteratorPolicy().GetParallelismLimit(); n < 0 {
		v.ps.add(path+".iteratorPolicy.parallelismLimit", "parallelismLimit %d is negative (0 means unlimited)", n)
	}
	if n := t.GetRetryPolicy().GetMaxRetryCount(); n < 0 {
		v.ps.add(path+".retryPolicy.maxRetryCount", "maxRetryCount %d is negative", n)
	}
	if it := t.GetArtifactIterator(); it != nil {
		ipath := path + ".artifactIterator"
		if it.GetItemInput() == "" {
			v.ps.add(ipath+".itemInput", "itemInput is empty")
		}
		if in := it.GetItems().GetInputArtifact(); in == "" {
			v.ps.add(ipath+".items.inputArtifact", "inputArtifact is empty")
		} else if _, ok := t.GetInputs().GetArtifacts()[in]; !ok {
			v.ps.add(ipath+".items.inputArtifact", "%q is not an input artifact of the task", in)
		}
	}
}

// checkProducerParam checks a taskOutputParameter reference and returns the
// producer's declared type (0 if unknown).
func (v *validator) checkProducerParam(tasks map[string]*pipelinespec.PipelineTaskSpec, self, producer, key, path string) ParameterType {
	pt, ok := tasks[producer]
	switch {
	case producer == self:
		v.ps.add(path+".producerTask", "task consumes its own output")
		return 0
	case !ok:
		v.ps.add(path+".producerTask", "producer task %q is not in this DAG (%s)", producer, taskList(tasks))
		return 0
	}
	pc := v.component(pt.GetComponentRef().GetName())
	if pc == nil {
		return 0 // reported on the producer task
	}
	d, ok := pc.GetOutputDefinitions().GetParameters()[key]
	if !ok {
		v.ps.add(path+".outputParameterKey", "task %q (component %q) has no output parameter %q (declared: %s)",
			producer, pt.GetComponentRef().GetName(), key, keyList(pc.GetOutputDefinitions().GetParameters()))
		return 0
	}
	return OutputParameterType(d)
}

func (v *validator) checkProducerArtifact(tasks map[string]*pipelinespec.PipelineTaskSpec, self, producer, key, path string) {
	pt, ok := tasks[producer]
	switch {
	case producer == self:
		v.ps.add(path+".producerTask", "task consumes its own output")
		return
	case !ok:
		v.ps.add(path+".producerTask", "producer task %q is not in this DAG (%s)", producer, taskList(tasks))
		return
	}
	pc := v.component(pt.GetComponentRef().GetName())
	if pc == nil {
		return
	}
	if _, ok := pc.GetOutputDefinitions().GetArtifacts()[key]; !ok {
		v.ps.add(path+".outputArtifactKey", "task %q (component %q) has no output artifact %q (declared: %s)",
			producer, pt.GetComponentRef().GetName(), key, keyList(pc.GetOutputDefinitions().GetArtifacts()))
	}
}

// typesCompatible reports whether a value of type got may feed an input of
// type want. Unknown (0) on either side is compatible; an integer may feed a
// double, as the SDK allows.
func typesCompatible(got, want ParameterType) bool {
	if got == 0 || want == 0 || got == want {
		return true
	}
	switch {
	case got == pipelinespec.ParameterType_NUMBER_INTEGER && want == pipelinespec.ParameterType_NUMBER_DOUBLE:
		return true
	case got == pipelinespec.ParameterType_TASK_FINAL_STATUS && want == pipelinespec.ParameterType_STRUCT:
		// SDKs before 2.1 declared PipelineTaskFinalStatus inputs as STRUCT.
		return true
	}
	return false
}

// machineFieldInputs are the task inputs the SDK adds for string machine
// fields.
var machineFieldInputs = map[string]bool{
	"cpu_limit": true, "memory_limit": true, "cpu_request": true, "memory_request": true,
	"accelerator_count": true, "accelerator_type": true,
}

func (v *validator) hasStringResources(c *pipelinespec.ComponentSpec) bool {
	e := v.p.ExecutorExtras[c.GetExecutorLabel()]
	return e != nil && (e.ResourceCPULimit != "" || e.ResourceMemoryLimit != "" || e.ResourceCPURequest != "" ||
		e.ResourceMemoryRequest != "" || e.AcceleratorType != "" || e.AcceleratorCount != "")
}

// channelPrefix starts the names the SDK gives pipeline channels.
const channelPrefix = "pipelinechannel--"

// checkConstantPlaceholders checks {{$.inputs.parameters['x']}} inside a
// string constant (an f-string in the pipeline) against the task's inputs.
func (v *validator) checkConstantPlaceholders(c *structpb.Value, t *pipelinespec.PipelineTaskSpec, path string) {
	s, ok := c.GetKind().(*structpb.Value_StringValue)
	if !ok || !strings.Contains(s.StringValue, "{{$") {
		return
	}
	err := scanPlaceholders(s.StringValue, func(p Placeholder) (string, error) {
		if p.Kind != InputParameter {
			return "", nil // other placeholders are not substituted in constants
		}
		if _, ok := t.GetInputs().GetParameters()[p.Name]; !ok {
			v.ps.add(path, "constant reads %s, which is not an input of the task", p.Text)
		}
		return "", nil
	}, nil)
	if err != nil {
		v.ps.add(path, "%v", err)
	}
}

func (v *validator) checkDAGOutputs(sc scope) {
	dag := sc.comp.GetDag()
	tasks := dag.GetTasks()
	outs := sc.comp.GetOutputDefinitions()
	base := sc.path + ".dag.outputs"
	for _, name := range sortedKeys(dag.GetOutputs().GetParameters()) {
		o := dag.GetOutputs().GetParameters()[name]
		path := pathKey(base, "parameters", name)
		if _, ok := outs.GetParameters()[name]; !ok {
			v.ps.add(path, "%s.outputDefinitions declares no output parameter %q", sc.path, name)
		}
		switch k := o.GetKind().(type) {
		case *pipelinespec.DagOutputsSpec_DagOutputParameterSpec_ValueFromParameter:
			v.checkSelectorParam(tasks, k.ValueFromParameter, path+".valueFromParameter")
		case *pipelinespec.DagOutputsSpec_DagOutputParameterSpec_ValueFromOneof:
			for i, s := range k.ValueFromOneof.GetParameterSelectors() {
				v.checkSelectorParam(tasks, s, fmt.Sprintf("%s.valueFromOneof.parameterSelectors[%d]", path, i))
			}
		default:
			v.ps.add(path, "output parameter has neither valueFromParameter nor valueFromOneof")
		}
	}
	for _, name := range sortedKeys(dag.GetOutputs().GetArtifacts()) {
		o := dag.GetOutputs().GetArtifacts()[name]
		path := pathKey(base, "artifacts", name)
		if _, ok := outs.GetArtifacts()[name]; !ok {
			v.ps.add(path, "%s.outputDefinitions declares no output artifact %q", sc.path, name)
		}
		for i, s := range o.GetArtifactSelectors() {
			spath := fmt.Sprintf("%s.artifactSelectors[%d]", path, i)
			pt, ok := tasks[s.GetProducerSubtask()]
			if !ok {
				v.ps.add(spath+".producerSubtask", "task %q is not in this DAG (%s)", s.GetProducerSubtask(), taskList(tasks))
				continue
			}
			if pc := v.component(pt.GetComponentRef().GetName()); pc != nil {
				if _, ok := pc.GetOutputDefinitions().GetArtifacts()[s.GetOutputArtifactKey()]; !ok {
					v.ps.add(spath+".outputArtifactKey", "task %q has no output artifact %q", s.GetProducerSubtask(), s.GetOutputArtifactKey())
				}
			}
		}
	}
}

func (v *validator) checkSelectorParam(tasks map[string]*pipelinespec.PipelineTaskSpec, s *pipelinespec.DagOutputsSpec_ParameterSelectorSpec, path string) {
	pt, ok := tasks[s.GetProducerSubtask()]
	if !ok {
		v.ps.add(path+".producerSubtask", "task %q is not in this DAG (%s)", s.GetProducerSubtask(), taskList(tasks))
		return
	}
	if pc := v.component(pt.GetComponentRef().GetName()); pc != nil {
		if _, ok := pc.GetOutputDefinitions().GetParameters()[s.GetOutputParameterKey()]; !ok {
			v.ps.add(path+".outputParameterKey", "task %q has no output parameter %q", s.GetProducerSubtask(), s.GetOutputParameterKey())
		}
	}
}

// checkCycles finds cycles among the tasks of one DAG, following
// dependentTasks and data dependencies, and names each cycle once.
func (v *validator) checkCycles(path string, tasks map[string]*pipelinespec.PipelineTaskSpec) {
	edges := map[string][]string{}
	for name, t := range tasks {
		seen := map[string]bool{}
		add := func(dep string) {
			if _, ok := tasks[dep]; ok && dep != name && !seen[dep] {
				seen[dep] = true
				edges[name] = append(edges[name], dep)
			}
		}
		for _, d := range t.GetDependentTasks() {
			add(d)
		}
		for _, in := range t.GetInputs().GetParameters() {
			add(in.GetTaskOutputParameter().GetProducerTask())
			add(in.GetTaskFinalStatus().GetProducerTask())
		}
		for _, in := range t.GetInputs().GetArtifacts() {
			add(in.GetTaskOutputArtifact().GetProducerTask())
		}
		sort.Strings(edges[name])
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range edges[n] {
			switch color[d] {
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), d)
				v.ps.add(path, "dependency cycle: %s", strings.Join(cycle, " -> "))
			case white:
				visit(d)
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for _, n := range sortedKeys(tasks) {
		if color[n] == white {
			visit(n)
		}
	}
}

// checkComponentCycles finds DAG components that (indirectly) call
// themselves, which would expand forever.
func (v *validator) checkComponentCycles() {
	comps := v.p.Spec.GetComponents()
	color := map[string]int{}
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		color[n] = 1
		stack = append(stack, n)
		c := comps[n]
		var callees []string
		for _, t := range c.GetDag().GetTasks() {
			callees = append(callees, t.GetComponentRef().GetName())
		}
		sort.Strings(callees)
		for _, d := range callees {
			if _, ok := comps[d]; !ok {
				continue
			}
			switch color[d] {
			case 1:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), d)
				v.ps.add(pathKey("", "components", d), "component calls itself: %s", strings.Join(cycle, " -> "))
			case 0:
				visit(d)
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = 2
	}
	for _, n := range sortedKeys(comps) {
		if color[n] == 0 {
			visit(n)
		}
	}
}

// checkExecutors validates container placeholders against the input and
// output definitions of every component that uses the executor.
func (v *validator) checkExecutors() {
	users := map[string][]string{}
	for _, name := range sortedKeys(v.p.Spec.GetComponents()) {
		if l := v.p.Spec.GetComponents()[name].GetExecutorLabel(); l != "" {
			users[l] = append(users[l], name)
		}
	}
	execs := v.p.Deployment.GetExecutors()
	for _, label := range sortedKeys(execs) {
		e := execs[label]
		path := pathKey("deploymentSpec", "executors", label)
		switch {
		case e.GetContainer() != nil:
			c := e.GetContainer()
			if c.GetImage() == "" {
				v.ps.add(path+".container.image", "container image is empty")
			}
			for _, comp := range users[label] {
				v.checkArgs(path+".container.command", c.GetCommand(), comp)
				v.checkArgs(path+".container.args", c.GetArgs(), comp)
			}
		case e.GetImporter() != nil:
			im := e.GetImporter()
			if rp := im.GetArtifactUri().GetRuntimeParameter(); rp != "" {
				for _, comp := range users[label] {
					if _, ok := v.component(comp).GetInputDefinitions().GetParameters()[rp]; !ok {
						v.ps.add(path+".importer.artifactUri.runtimeParameter", "component %q declares no input parameter %q", comp, rp)
					}
				}
			} else if im.GetArtifactUri().GetConstant() == nil && im.GetArtifactUri().GetConstantValue() == nil {
				v.ps.add(path+".importer.artifactUri", "importer has no artifact URI")
			}
		case e.GetResolver() != nil, e.GetCustomJob() != nil:
			// Not executed by pipefn; the compilers reject them with context.
		default:
			v.ps.add(path, "executor has no container, importer, resolver or customJob")
		}
	}
}

func (v *validator) checkArgs(path string, args []string, compName string) {
	comp := v.component(compName)
	in, out := comp.GetInputDefinitions(), comp.GetOutputDefinitions()
	for i, a := range args {
		apath := fmt.Sprintf("%s[%d]", path, i)
		err := argReferences(a, func(p *Placeholder, ifPresent string) error {
			if p == nil {
				_, okP := in.GetParameters()[ifPresent]
				_, okA := in.GetArtifacts()[ifPresent]
				if !okP && !okA {
					v.ps.add(apath, "IfPresent names input %q, which component %q does not declare", ifPresent, compName)
				}
				return nil
			}
			var ok bool
			var what string
			switch p.Kind {
			case InputParameter:
				_, ok = in.GetParameters()[p.Name]
				what = "input parameter"
			case InputArtifactURI, InputArtifactPath, InputArtifactMetadata:
				_, ok = in.GetArtifacts()[p.Name]
				what = "input artifact"
			case OutputParameterFile:
				_, ok = out.GetParameters()[p.Name]
				what = "output parameter"
			case OutputArtifactURI, OutputArtifactPath, OutputArtifactMetadata:
				_, ok = out.GetArtifacts()[p.Name]
				what = "output artifact"
			default:
				return nil
			}
			if !ok {
				v.ps.add(apath, "placeholder %s names %s %q, which component %q does not declare", p.Text, what, p.Name, compName)
			}
			return nil
		})
		if err != nil {
			v.ps.add(apath, "%v", err)
		}
	}
}

// checkKubernetes checks the platform document against the spec.
func (v *validator) checkKubernetes() {
	k := v.p.Kubernetes
	if k == nil {
		return
	}
	execs := v.p.Deployment.GetExecutors()
	for _, label := range sortedKeys(k.Executors) {
		path := pathKey("platforms.kubernetes.deploymentSpec", "executors", label)
		if _, ok := execs[label]; !ok {
			v.ps.add(path, "executor %q is not in deploymentSpec.executors", label)
		}
		checkExecutorConfig(path, k.Executors[label], v.ps)
	}
}

// checkExecutorConfig checks that every volume, secret and config map
// entry names its object and, for mounts, a path: the compilers would
// otherwise emit pods Kubernetes rejects at run time.
func checkExecutorConfig(path string, c *KubernetesExecutorConfig, ps *problems) {
	named := func(p, name string, ref *ParamRef, what string) {
		if name == "" && ref == nil {
			ps.add(p, "%s has no name (neither a name nor a name parameter)", what)
		}
	}
	mount := func(p, mountPath string) {
		if mountPath == "" {
			ps.add(p+".mountPath", "mountPath is empty")
		}
	}
	for i, s := range c.SecretAsVolume {
		p := fmt.Sprintf("%s.secretAsVolume[%d]", path, i)
		named(p, s.SecretName, s.SecretNameParameter, "secret")
		mount(p, s.MountPath)
	}
	for i, s := range c.SecretAsEnv {
		named(fmt.Sprintf("%s.secretAsEnv[%d]", path, i), s.SecretName, s.SecretNameParameter, "secret")
	}
	for i, s := range c.ConfigMapAsVolume {
		p := fmt.Sprintf("%s.configMapAsVolume[%d]", path, i)
		named(p, s.ConfigMapName, s.ConfigMapNameParameter, "config map")
		mount(p, s.MountPath)
	}
	for i, s := range c.ConfigMapAsEnv {
		named(fmt.Sprintf("%s.configMapAsEnv[%d]", path, i), s.ConfigMapName, s.ConfigMapNameParameter, "config map")
	}
	for i, s := range c.ImagePullSecret {
		named(fmt.Sprintf("%s.imagePullSecret[%d]", path, i), s.SecretName, s.SecretNameParameter, "image pull secret")
	}
	for i := range c.PvcMount {
		p := fmt.Sprintf("%s.pvcMount[%d]", path, i)
		if c.PvcMount[i].NameRef() == nil {
			ps.add(p, "PVC mount names no PVC (pvcNameParameter, taskOutputParameter, constant or componentInputParameter)")
		}
		mount(p, c.PvcMount[i].MountPath)
	}
	for i, e := range c.EmptyDirMounts {
		mount(fmt.Sprintf("%s.emptyDirMounts[%d]", path, i), e.MountPath)
	}
	for i, e := range c.GenericEphemeralVolume {
		mount(fmt.Sprintf("%s.genericEphemeralVolume[%d]", path, i), e.MountPath)
	}
}

func taskList(tasks map[string]*pipelinespec.PipelineTaskSpec) string {
	return "tasks: " + keyList(tasks)
}

func keyList[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := sortedKeys(m)
	if len(keys) > 10 {
		keys = append(keys[:10], "...")
	}
	return strings.Join(keys, ", ")
}
