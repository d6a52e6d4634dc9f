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
	// Path is the loop iteration's index path (nil outside loops).
	Path []int
	// Envelope: write every result as an Envelope (Extra.ResultEnvelope).
	Envelope bool
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
			return ir.InputParameterType(spec.GetInputDefinitions().GetParameters()[n])
		},
		Artifact: func(n string) *pipelinespec.ArtifactTypeSchema {
			return spec.GetInputDefinitions().GetArtifacts()[n].GetArtifactType()
		},
	}
}

// Bind decodes the invocation's parameters and artifacts: --param text by
// declared type, --artifact URIs, the loop item (--iteration with
// Extra.IterationInputs, IterationLevels and IterationArtifacts),
// aggregated matrix results (--list-param / --list-artifact with
// Extra.ListInputs, result envelopes unwrapped and ordered by path),
// dsl.OneOf candidates, parameterExpressionSelectors, the guards and the
// effective task id. Every error names the input.
func (inv Invocation) Bind(taskID string, types Types) (Bound, error) {
	var extra Extra
	if inv.ExtraB64 != "" {
		var err error
		if extra, err = DecodeExtra(inv.ExtraB64); err != nil {
			return Bound{}, err
		}
	}
	iter, err := inv.iteration()
	if err != nil {
		return Bound{}, err
	}
	b := Bound{TaskID: taskID, Envelope: extra.ResultEnvelope,
		Inputs: Inputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}}
	if iter != nil {
		b.Path = slices.Clone(iter.IndexPath())
	}
	if id, ok := inv.Params[TaskIDParam]; ok && id != "" {
		b.TaskID = id
	} else if iter != nil {
		for _, i := range b.Path {
			b.TaskID += "." + strconv.Itoa(i)
		}
	}
	bd := binder{inv: inv, extra: extra, iter: iter, types: types, internal: map[string]bool{TaskIDParam: true}}
	for _, g := range extra.Guards {
		bd.internal[g] = true
	}
	for _, cands := range extra.OneOf {
		for _, c := range cands {
			bd.internal[c.Input] = true
			for _, g := range c.Guards {
				bd.internal[g] = true
			}
		}
	}
	for _, name := range extra.IterationArtifacts {
		bd.iterArtifact = append(bd.iterArtifact, name)
	}

	// Guards first: a skipped task's inputs may come from skipped
	// producers and need not decode.
	for _, g := range extra.Guards {
		ok, why, err := bd.guard(g)
		if err != nil {
			return Bound{}, err
		}
		if !ok {
			b.Skip = true
			b.SkipReason = why
			return b, nil
		}
	}

	// Parameters: every --param and --list-param that is not internal,
	// and every loop item that is not an artifact.
	names := map[string]bool{}
	for n := range inv.Params {
		names[n] = true
	}
	for n := range inv.ListParams {
		names[n] = true
	}
	for n := range extra.IterationInputs {
		if !slices.Contains(extra.IterationArtifacts, n) {
			names[n] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if bd.internal[name] {
			continue
		}
		v, ok, err := bd.param(name, name)
		if err != nil {
			return Bound{}, err
		}
		if ok {
			if src, isStatus := extra.FinalStatus[name]; isStatus {
				if text, plain := inv.Params[name]; plain && !strings.HasPrefix(strings.TrimSpace(text), "{") {
					v = src.fullStatus(v, text)
				}
			}
			b.Inputs.Params[name] = v
		}
	}

	// Artifacts: --artifact, --list-artifact and artifact loop items.
	anames := map[string]bool{}
	for n := range inv.Artifacts {
		anames[n] = true
	}
	for n := range inv.ListArtifacts {
		anames[n] = true
	}
	for _, n := range extra.IterationArtifacts {
		anames[n] = true
	}
	for _, name := range slices.Sorted(maps.Keys(anames)) {
		if bd.internal[name] {
			continue
		}
		list, ok, err := bd.artifacts(name, name)
		if err != nil {
			return Bound{}, err
		}
		if ok {
			b.Inputs.Artifacts[name] = list
		}
	}

	// dsl.OneOf: the first candidate whose guards all hold.
	for _, name := range slices.Sorted(maps.Keys(extra.OneOf)) {
		chosen := false
		for i, c := range extra.OneOf[name] {
			all := true
			for _, g := range c.Guards {
				ok, _, err := bd.guard(g)
				if err != nil {
					return Bound{}, fmt.Errorf("oneOf %s candidate %d: %w", name, i, err)
				}
				if !ok {
					all = false
					break
				}
			}
			if !all {
				continue
			}
			if hasKey(inv.Artifacts, c.Input) || hasKey(inv.ListArtifacts, c.Input) {
				list, ok, err := bd.artifacts(c.Input, name)
				if err != nil {
					return Bound{}, fmt.Errorf("oneOf %s: %w", name, err)
				}
				if ok {
					b.Inputs.Artifacts[name] = list
				}
			} else {
				v, ok, err := bd.param(c.Input, name)
				if err != nil {
					return Bound{}, fmt.Errorf("oneOf %s: %w", name, err)
				}
				if ok {
					b.Inputs.Params[name] = v
				}
			}
			chosen = true
			break
		}
		if !chosen {
			return Bound{}, fmt.Errorf("oneOf %s: no candidate's conditions hold (%d candidates)", name, len(extra.OneOf[name]))
		}
	}
	return b, nil
}

// binder resolves single inputs of one invocation.
type binder struct {
	inv          Invocation
	extra        Extra
	iter         *Iteration
	types        Types
	internal     map[string]bool // guards and OneOf candidates: not user inputs
	iterArtifact []string
}

func (bd *binder) needIter(what, name string) (*Iteration, error) {
	if bd.iter == nil {
		return nil, fmt.Errorf("%s %s needs the loop iteration, but no --iteration was given", what, name)
	}
	return bd.iter, nil
}

// paramType is the declared type of input as: a value that goes through a
// selector is decoded by its own shape, since the declared type is that of
// the selector's result.
func (bd *binder) paramType(name, as string) ParameterType {
	if bd.extra.Selectors[name] != "" || bd.types.Param == nil {
		return pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED
	}
	return bd.types.Param(as)
}

// elementText is the per-iteration element of --list-* name (its text;
// present=false when the producing iteration was skipped).
func (bd *binder) elementText(flag, name string, elems []string, li ListInput) (text string, present bool, err error) {
	it, err := bd.needIter(flag, name)
	if err != nil {
		return "", false, err
	}
	if !li.Enveloped {
		if it.Index >= len(elems) {
			return "", false, fmt.Errorf("%s %s: iteration %d but only %d elements", flag, name, it.Index, len(elems))
		}
		return elems[it.Index], true, nil
	}
	path := it.IndexPath()
	if li.Level < 0 || li.Level >= len(path) {
		return "", false, fmt.Errorf("%s %s: level %d outside the iteration's %d levels", flag, name, li.Level, len(path))
	}
	want := path[:li.Level+1]
	for i, e := range elems {
		env, err := DecodeEnvelope(e)
		if err != nil {
			return "", false, fmt.Errorf("%s %s[%d]: %w", flag, name, i, err)
		}
		if slices.Equal(env.Path, want) {
			return env.Value, !env.Skipped, nil
		}
	}
	return "", false, fmt.Errorf("%s %s: no element for iteration %v among %d", flag, name, want, len(elems))
}

// collected is a Collected aggregate: the elements under this task's own
// iteration of the first li.Level loops, ordered by path and grouped into
// one nested list per remaining level. Skipped iterations are left out.
type collectedNode struct {
	path  []int
	value string
}

func (bd *binder) collected(flag, name string, elems []string, li ListInput, keepEmpty bool) ([]collectedNode, int, error) {
	var prefix []int
	if li.Level > 0 {
		it, err := bd.needIter(flag, name)
		if err != nil {
			return nil, 0, err
		}
		path := it.IndexPath()
		if li.Level > len(path) {
			return nil, 0, fmt.Errorf("%s %s: level %d outside the iteration's %d levels", flag, name, li.Level, len(path))
		}
		prefix = path[:li.Level]
	}
	var out []collectedNode
	depth := 1
	for i, e := range elems {
		if !li.Enveloped {
			// Not enveloped: a skipped iteration wrote an empty result.
			if e != "" || keepEmpty {
				out = append(out, collectedNode{path: []int{i}, value: e})
			}
			continue
		}
		if strings.TrimSpace(e) == "" {
			continue // a TaskRun that wrote nothing
		}
		env, err := DecodeEnvelope(e)
		if err != nil {
			return nil, 0, fmt.Errorf("%s %s[%d]: %w", flag, name, i, err)
		}
		if len(env.Path) <= len(prefix) || !slices.Equal(env.Path[:len(prefix)], prefix) {
			continue
		}
		if env.Skipped {
			continue
		}
		rest := env.Path[len(prefix):]
		depth = max(depth, len(rest))
		out = append(out, collectedNode{path: rest, value: env.Value})
	}
	slices.SortStableFunc(out, func(a, b collectedNode) int { return comparePaths(a.path, b.path) })
	return out, depth, nil
}

// nest groups nodes (sorted by path) into nested lists, one per level.
func nest(nodes []collectedNode, depth int, leaf func(collectedNode) (*structpb.Value, error)) (*structpb.Value, error) {
	list := &structpb.ListValue{}
	if depth <= 1 {
		for _, n := range nodes {
			v, err := leaf(n)
			if err != nil {
				return nil, err
			}
			list.Values = append(list.Values, v)
		}
		return structpb.NewListValue(list), nil
	}
	for i := 0; i < len(nodes); {
		j := i
		for j < len(nodes) && nodes[j].path[0] == nodes[i].path[0] {
			j++
		}
		group := make([]collectedNode, 0, j-i)
		for _, n := range nodes[i:j] {
			group = append(group, collectedNode{path: n.path[1:], value: n.value})
		}
		v, err := nest(group, depth-1, leaf)
		if err != nil {
			return nil, err
		}
		list.Values = append(list.Values, v)
		i = j
	}
	return structpb.NewListValue(list), nil
}

// text is the raw text of parameter name: a --param, or a per-iteration
// --list-param element. present is false for a skipped producer.
func (bd *binder) text(name string) (text string, present, found bool, err error) {
	if t, ok := bd.inv.Params[name]; ok {
		return t, true, true, nil
	}
	if elems, ok := bd.inv.ListParams[name]; ok {
		li, ok := bd.extra.ListInputs[name]
		if !ok {
			return "", false, true, fmt.Errorf("--list-param %s: the extension config has no listInputs entry for it", name)
		}
		if !li.PerIteration {
			return "", false, true, fmt.Errorf("--list-param %s: a collected list is not a single value", name)
		}
		t, present, err := bd.elementText("--list-param", name, elems, li)
		return t, present, true, err
	}
	return "", false, false, nil
}

// guard reports whether guard input name holds "true" for this iteration.
func (bd *binder) guard(name string) (ok bool, why string, err error) {
	t, present, found, err := bd.text(name)
	if err != nil {
		return false, "", err
	}
	if !found {
		return false, "", fmt.Errorf("guard %s has no value (no --param or --list-param)", name)
	}
	if !present {
		return false, fmt.Sprintf("condition %s was skipped", name), nil
	}
	if strings.TrimSpace(t) != "true" {
		return false, fmt.Sprintf("condition %s is %q", name, t), nil
	}
	return true, "", nil
}

// param resolves parameter input name, typed as input as (a OneOf input
// takes its candidate's value under its own name and type).
func (bd *binder) param(name, as string) (*structpb.Value, bool, error) {
	var v *structpb.Value
	switch {
	case bd.extra.IterationInputs != nil && hasKey(bd.extra.IterationInputs, name):
		it, err := bd.needIter("input", name)
		if err != nil {
			return nil, false, err
		}
		level := -1
		if l, ok := bd.extra.IterationLevels[name]; ok {
			level = l
		}
		raw, err := it.LevelItem(level)
		if err != nil {
			return nil, false, fmt.Errorf("loop item for %s: %w", name, err)
		}
		if v, err = rawValue(raw); err != nil {
			return nil, false, fmt.Errorf("loop item for %s: %w", name, err)
		}
		if sel := bd.extra.IterationInputs[name]; sel != "" {
			if v, err = ir.EvalParameterSelector(sel, v); err != nil {
				return nil, false, fmt.Errorf("loop item for %s: %w", name, err)
			}
		}
		return v, true, nil
	case hasKey(bd.inv.ListParams, name) && !bd.extra.ListInputs[name].PerIteration:
		elems := bd.inv.ListParams[name]
		li, ok := bd.extra.ListInputs[name]
		if !ok {
			return nil, false, fmt.Errorf("--list-param %s: the extension config has no listInputs entry for it", name)
		}
		et, err := elementType(li.ElementType)
		if err != nil {
			return nil, false, fmt.Errorf("--list-param %s: %w", name, err)
		}
		nodes, depth, err := bd.collected("--list-param", name, elems, li, et == pipelinespec.ParameterType_STRING)
		if err != nil {
			return nil, false, err
		}
		v, err = nest(nodes, depth, func(n collectedNode) (*structpb.Value, error) {
			v, err := DecodeParam(n.value, et)
			if err != nil {
				return nil, fmt.Errorf("--list-param %s%v: %w", name, n.path, err)
			}
			return v, nil
		})
		if err != nil {
			return nil, false, err
		}
	default:
		t, present, found, err := bd.text(name)
		if err != nil {
			return nil, false, err
		}
		if !found || !present {
			return nil, false, nil // unbound: an optional input, or a skipped producer
		}
		et := bd.paramType(name, as)
		if _, isList := bd.inv.ListParams[name]; isList && bd.extra.Selectors[name] == "" {
			if et, err = elementType(bd.extra.ListInputs[name].ElementType); err != nil {
				return nil, false, fmt.Errorf("--list-param %s: %w", name, err)
			}
		}
		if v, err = DecodeParam(t, et); err != nil {
			return nil, false, fmt.Errorf("--param %s: %w", name, err)
		}
	}
	if sel := bd.extra.Selectors[name]; sel != "" {
		out, err := ir.EvalParameterSelector(sel, v)
		if err != nil {
			return nil, false, fmt.Errorf("input %s: %w", name, err)
		}
		v = out
	}
	return v, true, nil
}

// artifacts resolves artifact input name (named as in the task's inputs).
func (bd *binder) artifacts(name, as string) ([]*pipelinespec.RuntimeArtifact, bool, error) {
	var typ *pipelinespec.ArtifactTypeSchema
	if bd.types.Artifact != nil {
		typ = bd.types.Artifact(as)
	}
	var out []*pipelinespec.RuntimeArtifact
	add := func(text string) error {
		uris, err := DecodeArtifactURIs(text)
		if err != nil {
			return err
		}
		for _, u := range uris {
			out = append(out, &pipelinespec.RuntimeArtifact{Name: as, Uri: u, Type: typ})
		}
		return nil
	}
	if slices.Contains(bd.iterArtifact, name) {
		it, err := bd.needIter("artifact", name)
		if err != nil {
			return nil, false, err
		}
		level := -1
		if l, ok := bd.extra.IterationLevels[name]; ok {
			level = l
		}
		raw, err := it.LevelItem(level)
		if err != nil {
			return nil, false, fmt.Errorf("loop artifact %s: %w", name, err)
		}
		var uri string
		if err := json.Unmarshal(raw, &uri); err != nil {
			return nil, false, fmt.Errorf("loop artifact %s: the item %s is not a URI string", name, clip(string(raw)))
		}
		if err := add(uri); err != nil {
			return nil, false, fmt.Errorf("loop artifact %s: %w", name, err)
		}
		return out, true, nil
	}
	if text, ok := bd.inv.Artifacts[name]; ok {
		if err := add(text); err != nil {
			return nil, false, fmt.Errorf("--artifact %s: %w", name, err)
		}
		return out, true, nil
	}
	elems, ok := bd.inv.ListArtifacts[name]
	if !ok {
		return nil, false, nil
	}
	li, ok := bd.extra.ListInputs[name]
	if !ok {
		return nil, false, fmt.Errorf("--list-artifact %s: the extension config has no listInputs entry for it", name)
	}
	if li.PerIteration {
		text, present, err := bd.elementText("--list-artifact", name, elems, li)
		if err != nil {
			return nil, false, err
		}
		if !present || strings.TrimSpace(text) == "" {
			return nil, false, nil
		}
		if err := add(text); err != nil {
			return nil, false, fmt.Errorf("--list-artifact %s: %w", name, err)
		}
		return out, true, nil
	}
	nodes, _, err := bd.collected("--list-artifact", name, elems, li, false)
	if err != nil {
		return nil, false, err
	}
	out = []*pipelinespec.RuntimeArtifact{}
	for _, n := range nodes {
		if strings.TrimSpace(n.value) == "" {
			continue // a skipped iteration
		}
		if err := add(n.value); err != nil {
			return nil, false, fmt.Errorf("--list-artifact %s%v: %w", name, n.path, err)
		}
	}
	return out, true, nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

// rawValue decodes a JSON loop item.
func rawValue(raw json.RawMessage) (*structpb.Value, error) {
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return nil, err
	}
	return structpb.NewValue(x)
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
