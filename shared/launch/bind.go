package launch

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/ir"
)

// Bound is an invocation's dynamic values resolved against the task's types.
type Bound struct {
	Inputs Inputs
	// TaskID is the effective task id: the config's, overridden by the
	// TaskIDParam parameter (Argo) or suffixed ".N" for iteration N (Tekton).
	TaskID string
	// Skip is set when a guard is not "true": the task must not run; the
	// launcher writes empty results (cond: ok=false) and exits 0.
	Skip       bool
	SkipReason string
}

// Types tells Bind the declared type of each input.
type Types struct {
	Param    func(name string) ParameterType                    // PARAMETER_TYPE_ENUM_UNSPECIFIED when unknown
	Artifact func(name string) *pipelinespec.ArtifactTypeSchema // may return nil
}

// SpecTypes returns the Types of a component's input definitions.
func SpecTypes(spec *pipelinespec.ComponentSpec) Types {
	return Types{
		Param: func(n string) ParameterType {
			return spec.GetInputDefinitions().GetParameters()[n].GetParameterType()
		},
		Artifact: func(n string) *pipelinespec.ArtifactTypeSchema {
			return spec.GetInputDefinitions().GetArtifacts()[n].GetArtifactType()
		},
	}
}

// Bind decodes the invocation's parameters and artifacts: --param text by
// declared type, --artifact URIs, the loop item (--iteration with
// Extra.IterationInputs), aggregated matrix results (--list-param /
// --list-artifact with Extra.ListInputs), parameterExpressionSelectors, the
// guards and the effective task id. Every error names the input.
func (inv Invocation) Bind(taskID string, types Types) (Bound, error) {
	extra, err := inv.extra()
	if err != nil {
		return Bound{}, err
	}
	iter, err := inv.iteration()
	if err != nil {
		return Bound{}, err
	}
	b := Bound{TaskID: taskID, Inputs: Inputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}}
	if id, ok := inv.Params[TaskIDParam]; ok && id != "" {
		b.TaskID = id
	} else if iter != nil {
		b.TaskID = taskID + "." + strconv.Itoa(iter.Index)
	}
	guard := map[string]bool{}
	for _, g := range extra.Guards {
		guard[g] = true
	}
	guardText := map[string]string{}
	// A value that goes through a selector is decoded by its own shape: the
	// declared type is that of the selector's result, not of its input.
	typeOf := func(name string) ParameterType {
		if extra.Selectors[name] != "" || types.Param == nil {
			return pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED
		}
		return types.Param(name)
	}
	needIter := func(what, name string) (*Iteration, error) {
		if iter == nil {
			return nil, fmt.Errorf("%s %s needs the loop iteration, but no --iteration was given", what, name)
		}
		return iter, nil
	}

	for _, name := range slices.Sorted(maps.Keys(inv.Params)) {
		text := inv.Params[name]
		switch {
		case name == TaskIDParam:
			continue
		case guard[name]:
			guardText[name] = text
			continue
		}
		v, err := DecodeParam(text, typeOf(name))
		if err != nil {
			return Bound{}, fmt.Errorf("--param %s: %w", name, err)
		}
		b.Inputs.Params[name] = v
	}

	for _, name := range slices.Sorted(maps.Keys(extra.IterationInputs)) {
		it, err := needIter("input", name)
		if err != nil {
			return Bound{}, err
		}
		var x any
		if err := json.Unmarshal(it.Item, &x); err != nil {
			return Bound{}, fmt.Errorf("loop item for %s: %w", name, err)
		}
		v, err := structpb.NewValue(x)
		if err != nil {
			return Bound{}, fmt.Errorf("loop item for %s: %w", name, err)
		}
		if sel := extra.IterationInputs[name]; sel != "" {
			if v, err = ir.EvalParameterSelector(sel, v); err != nil {
				return Bound{}, fmt.Errorf("loop item for %s: %w", name, err)
			}
		}
		b.Inputs.Params[name] = v
	}

	for _, name := range slices.Sorted(maps.Keys(inv.ListParams)) {
		elems := inv.ListParams[name]
		li, ok := extra.ListInputs[name]
		if !ok {
			return Bound{}, fmt.Errorf("--list-param %s: the extension config has no listInputs entry for it", name)
		}
		et, err := elementType(li.ElementType)
		if err != nil {
			return Bound{}, fmt.Errorf("--list-param %s: %w", name, err)
		}
		if li.PerIteration {
			it, err := needIter("--list-param", name)
			if err != nil {
				return Bound{}, err
			}
			if it.Index >= len(elems) {
				return Bound{}, fmt.Errorf("--list-param %s: iteration %d but only %d elements", name, it.Index, len(elems))
			}
			if guard[name] {
				guardText[name] = elems[it.Index]
				continue
			}
			if extra.Selectors[name] != "" {
				et = pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED
			}
			v, err := DecodeParam(elems[it.Index], et)
			if err != nil {
				return Bound{}, fmt.Errorf("--list-param %s[%d]: %w", name, it.Index, err)
			}
			b.Inputs.Params[name] = v
			continue
		}
		list := &structpb.ListValue{}
		for i, e := range elems {
			// A skipped iteration wrote an empty result; KFP's Collected
			// gathers only the iterations that ran.
			if e == "" && et != pipelinespec.ParameterType_STRING {
				continue
			}
			v, err := DecodeParam(e, et)
			if err != nil {
				return Bound{}, fmt.Errorf("--list-param %s[%d]: %w", name, i, err)
			}
			list.Values = append(list.Values, v)
		}
		b.Inputs.Params[name] = structpb.NewListValue(list)
	}

	for _, name := range slices.Sorted(maps.Keys(extra.Selectors)) {
		v, ok := b.Inputs.Params[name]
		if !ok {
			continue // an optional input left unbound
		}
		out, err := ir.EvalParameterSelector(extra.Selectors[name], v)
		if err != nil {
			return Bound{}, fmt.Errorf("input %s: %w", name, err)
		}
		b.Inputs.Params[name] = out
	}

	artifactType := func(n string) *pipelinespec.ArtifactTypeSchema {
		if types.Artifact == nil {
			return nil
		}
		return types.Artifact(n)
	}
	addURIs := func(name, text string) error {
		uris, err := DecodeArtifactURIs(text)
		if err != nil {
			return err
		}
		for _, u := range uris {
			b.Inputs.Artifacts[name] = append(b.Inputs.Artifacts[name], &pipelinespec.RuntimeArtifact{Name: name, Uri: u, Type: artifactType(name)})
		}
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(inv.Artifacts)) {
		if err := addURIs(name, inv.Artifacts[name]); err != nil {
			return Bound{}, fmt.Errorf("--artifact %s: %w", name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inv.ListArtifacts)) {
		elems := inv.ListArtifacts[name]
		li, ok := extra.ListInputs[name]
		if !ok {
			return Bound{}, fmt.Errorf("--list-artifact %s: the extension config has no listInputs entry for it", name)
		}
		if li.PerIteration {
			it, err := needIter("--list-artifact", name)
			if err != nil {
				return Bound{}, err
			}
			if it.Index >= len(elems) {
				return Bound{}, fmt.Errorf("--list-artifact %s: iteration %d but only %d elements", name, it.Index, len(elems))
			}
			if err := addURIs(name, elems[it.Index]); err != nil {
				return Bound{}, fmt.Errorf("--list-artifact %s[%d]: %w", name, it.Index, err)
			}
			continue
		}
		b.Inputs.Artifacts[name] = []*pipelinespec.RuntimeArtifact{}
		for i, e := range elems {
			if strings.TrimSpace(e) == "" {
				continue // a skipped iteration
			}
			if err := addURIs(name, e); err != nil {
				return Bound{}, fmt.Errorf("--list-artifact %s[%d]: %w", name, i, err)
			}
		}
	}

	for _, g := range extra.Guards {
		text, ok := guardText[g]
		if !ok {
			return Bound{}, fmt.Errorf("guard %s has no value (no --param or --list-param)", g)
		}
		if strings.TrimSpace(text) != "true" {
			b.Skip = true
			b.SkipReason = fmt.Sprintf("condition %s is %q", g, text)
			break
		}
	}
	return b, nil
}

func elementType(name string) (ParameterType, error) {
	if name == "" {
		return pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED, nil
	}
	v, ok := pipelinespec.ParameterType_ParameterTypeEnum_value[name]
	if !ok {
		return 0, fmt.Errorf("unknown element type %q", name)
	}
	return ParameterType(v), nil
}
