package launch

import (
	"encoding/json"
	"fmt"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/ir"
)

// Items computes the `items` subcommand's result: the JSON array of
// iteration strings a Tekton matrix fans out over. The plain form reads the
// JSON list --param list and writes one {"index","item"} per element. With
// Extra.Levels it writes the product of the levels, outermost first; for
// more than one level each iteration carries "path" and "items" as well.
func (inv Invocation) Items() (string, error) {
	var extra Extra
	if inv.ExtraB64 != "" {
		var err error
		if extra, err = DecodeExtra(inv.ExtraB64); err != nil {
			return "", err
		}
	}
	bound, err := inv.Bind("", Types{Param: func(string) ParameterType { return pipelinespec.ParameterType_LIST }})
	if err != nil {
		return "", err
	}
	if len(extra.Levels) == 0 {
		list, ok := bound.Inputs.Params["list"]
		if !ok {
			return "", fmt.Errorf("items needs --param list=<JSON list> or extension levels")
		}
		if list.GetListValue() == nil {
			return "", fmt.Errorf("items: --param list is not a JSON list")
		}
		return EncodeIterations(list.GetListValue().AsSlice())
	}
	iters := []Iteration{{}}
	for k, lvl := range extra.Levels {
		var next []Iteration
		for _, prefix := range iters {
			items, err := levelItems(k, lvl, prefix, bound)
			if err != nil {
				return "", err
			}
			for i, item := range items {
				next = append(next, Iteration{
					Index: i, Item: item,
					Path:  append(append([]int(nil), prefix.Path...), i),
					Items: append(append([]json.RawMessage(nil), prefix.Items...), item),
				})
			}
		}
		iters = next
	}
	out := make([]string, 0, len(iters))
	for _, it := range iters {
		if len(extra.Levels) == 1 {
			it.Path, it.Items = nil, nil
		}
		b, err := json.Marshal(it)
		if err != nil {
			return "", err
		}
		out = append(out, string(b))
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// levelItems lists the items of loop level k under the outer iteration
// prefix.
func levelItems(k int, lvl Level, prefix Iteration, bound Bound) ([]json.RawMessage, error) {
	var list []any
	switch {
	case lvl.Raw != nil:
		list = lvl.Raw
	case lvl.Input != "":
		v, ok := bound.Inputs.Params[lvl.Input]
		if !ok {
			return nil, fmt.Errorf("loop level %d: no --param %s", k, lvl.Input)
		}
		if v.GetListValue() == nil {
			return nil, fmt.Errorf("loop level %d: --param %s is not a JSON list", k, lvl.Input)
		}
		list = v.GetListValue().AsSlice()
	case lvl.ArtifactInput != "":
		arts, ok := bound.Inputs.Artifacts[lvl.ArtifactInput]
		if !ok {
			return nil, fmt.Errorf("loop level %d: no artifact %s", k, lvl.ArtifactInput)
		}
		for _, a := range arts {
			list = append(list, a.GetUri())
		}
	case lvl.FromItem != nil:
		if lvl.FromItem.Level < 0 || lvl.FromItem.Level >= len(prefix.Items) {
			return nil, fmt.Errorf("loop level %d: item of level %d is not an enclosing level", k, lvl.FromItem.Level)
		}
		v, err := rawValue(prefix.Items[lvl.FromItem.Level])
		if err != nil {
			return nil, fmt.Errorf("loop level %d: %w", k, err)
		}
		if lvl.FromItem.Selector != "" {
			if v, err = ir.EvalParameterSelector(lvl.FromItem.Selector, v); err != nil {
				return nil, fmt.Errorf("loop level %d: %w", k, err)
			}
		}
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			// A selector yields a string; a list inside it is JSON text.
			var x any
			if json.Unmarshal([]byte(s.StringValue), &x) == nil {
				if xs, ok := x.([]any); ok {
					list = xs
					break
				}
			}
		}
		if list == nil {
			if v.GetListValue() == nil {
				return nil, fmt.Errorf("loop level %d: the item of level %d is not a list", k, lvl.FromItem.Level)
			}
			list = v.GetListValue().AsSlice()
		}
	default:
		return nil, fmt.Errorf("loop level %d: no source (raw, input, artifactInput or fromItem)", k)
	}
	out := make([]json.RawMessage, 0, len(list))
	for i, x := range list {
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("loop level %d item %d: %w", k, i, err)
		}
		out = append(out, b)
	}
	return out, nil
}
