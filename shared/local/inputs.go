package local

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"google.golang.org/protobuf/types/known/structpb"
)

// resolveInputs computes a task's input values from its DAG's inputs and
// upstream results. An input that has no value (an absent optional DAG
// input, an output a producer did not write) is left out; why records the
// reason so that a later "missing input" error can name it.
func (r *runner) resolveInputs(sc *scope, t *pipelinespec.PipelineTaskSpec) (launch.Inputs, map[string]string, error) {
	in := launch.Inputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	why := map[string]string{}
	params := t.GetInputs().GetParameters()
	for _, name := range slices.Sorted(maps.Keys(params)) {
		ps := params[name]
		v, reason, err := r.resolveParam(sc, ps)
		if err != nil {
			return in, why, fmt.Errorf("input parameter %q: %w", name, err)
		}
		if v == nil {
			why[name] = reason
			continue
		}
		if sel := ps.GetParameterExpressionSelector(); sel != "" {
			if v, err = ir.EvalParameterSelector(sel, v); err != nil {
				return in, why, fmt.Errorf("input parameter %q: %w", name, err)
			}
		}
		in.Params[name] = v
	}
	arts := t.GetInputs().GetArtifacts()
	for _, name := range slices.Sorted(maps.Keys(arts)) {
		as := arts[name]
		switch {
		case as.GetComponentInputArtifact() != "":
			if a, ok := sc.inputs.Artifacts[as.GetComponentInputArtifact()]; ok {
				in.Artifacts[name] = a
			} else {
				why[name] = fmt.Sprintf("input artifact %q of the enclosing DAG has no value", as.GetComponentInputArtifact())
			}
		case as.GetTaskOutputArtifact() != nil:
			ref := as.GetTaskOutputArtifact()
			p := sc.nodes[ref.GetProducerTask()]
			if a, ok := p.res.outputs.Artifacts[ref.GetOutputArtifactKey()]; ok && p.res.ok() {
				in.Artifacts[name] = a
			} else {
				why[name] = fmt.Sprintf("task %s (%s) produced no output artifact %q", p.id, p.res.state, ref.GetOutputArtifactKey())
			}
		default:
			return in, why, fmt.Errorf("input artifact %q: neither componentInputArtifact nor taskOutputArtifact is set", name)
		}
	}
	return in, why, nil
}

// resolveParam returns the value of one input parameter spec, or nil and the
// reason when there is none.
func (r *runner) resolveParam(sc *scope, ps *pipelinespec.TaskInputsSpec_InputParameterSpec) (*structpb.Value, string, error) {
	switch {
	case ps.GetComponentInputParameter() != "":
		name := ps.GetComponentInputParameter()
		if v, ok := sc.inputs.Params[name]; ok {
			return v, "", nil
		}
		return nil, fmt.Sprintf("input parameter %q of the enclosing DAG has no value", name), nil
	case ps.GetRuntimeValue() != nil:
		rv := ps.GetRuntimeValue()
		if c := rv.GetConstant(); c != nil {
			return c, "", nil
		}
		if name := rv.GetRuntimeParameter(); name != "" {
			if v, ok := sc.inputs.Params[name]; ok {
				return v, "", nil
			}
			return nil, fmt.Sprintf("runtime parameter %q has no value", name), nil
		}
		if c := rv.GetConstantValue(); c != nil {
			return ir.LegacyConstant(c), "", nil
		}
		return nil, "", fmt.Errorf("runtimeValue has neither constant nor runtimeParameter")
	case ps.GetTaskOutputParameter() != nil:
		ref := ps.GetTaskOutputParameter()
		p := sc.nodes[ref.GetProducerTask()]
		if v, ok := p.res.outputs.Params[ref.GetOutputParameterKey()]; ok && p.res.ok() {
			return v, "", nil
		}
		return nil, fmt.Sprintf("task %s (%s) produced no output parameter %q", p.id, p.res.state, ref.GetOutputParameterKey()), nil
	case ps.GetTaskFinalStatus() != nil:
		p := sc.nodes[ps.GetTaskFinalStatus().GetProducerTask()]
		return r.finalStatus(p), "", nil
	}
	return nil, "", fmt.Errorf("none of componentInputParameter, runtimeValue, taskOutputParameter, taskFinalStatus is set")
}

// finalStatus renders a task's end as KFP's PipelineTaskFinalStatus JSON
// object. "error" is always present because the KFP SDK's executor reads
// error.code and error.message unconditionally.
func (r *runner) finalStatus(p *node) *structpb.Value {
	errObj := map[string]any{}
	if !p.res.ok() && p.res.state != StateSkipped {
		// google.rpc.Code: 1 CANCELLED, 2 UNKNOWN.
		code := 2.0
		if p.res.state == StateCanceled {
			code = 1
		}
		errObj["code"] = code
		errObj["message"] = p.res.err
	}
	v, _ := structpb.NewValue(map[string]any{
		"state":                   p.res.state,
		"pipelineJobResourceName": r.opts.RunID,
		"pipelineTaskName":        p.name,
		"error":                   errObj,
	})
	return v
}

// withParamDefaults fills absent parameters that comp declares with a
// default value.
func withParamDefaults(comp *pipelinespec.ComponentSpec, in launch.Inputs) launch.Inputs {
	out := launch.Inputs{Params: maps.Clone(in.Params), Artifacts: maps.Clone(in.Artifacts)}
	if out.Params == nil {
		out.Params = map[string]*structpb.Value{}
	}
	if out.Artifacts == nil {
		out.Artifacts = map[string][]*pipelinespec.RuntimeArtifact{}
	}
	for name, def := range comp.GetInputDefinitions().GetParameters() {
		if _, ok := out.Params[name]; !ok && def.GetDefaultValue() != nil {
			out.Params[name] = def.GetDefaultValue()
		}
	}
	return out
}

// withDefaults fills defaults and fails when an input comp requires has no
// value, naming each one and, from why, the reason.
func withDefaults(comp *pipelinespec.ComponentSpec, in launch.Inputs, why map[string]string) (launch.Inputs, error) {
	out := withParamDefaults(comp, in)
	var missing []string
	explain := func(kind, name string) string {
		if w := why[name]; w != "" {
			return fmt.Sprintf("%s %q (%s)", kind, name, w)
		}
		return fmt.Sprintf("%s %q", kind, name)
	}
	defs := comp.GetInputDefinitions()
	for _, name := range slices.Sorted(maps.Keys(defs.GetParameters())) {
		if _, ok := out.Params[name]; !ok && !defs.GetParameters()[name].GetIsOptional() {
			missing = append(missing, explain("parameter", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(defs.GetArtifacts())) {
		if _, ok := out.Artifacts[name]; !ok && !defs.GetArtifacts()[name].GetIsOptional() {
			missing = append(missing, explain("artifact", name))
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("required inputs have no value: %s", strings.Join(missing, "; "))
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
