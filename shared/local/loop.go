package local

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// loopItem is one iteration's binding: a parameter value or one artifact.
type loopItem struct {
	param    *structpb.Value
	artifact *pipelinespec.RuntimeArtifact
}

// loopItems lists what a ParallelFor iterates over: items.raw, or the task's
// own input parameter (a list value or a JSON array string), or the task's
// input artifact list.
func loopItems(t *pipelinespec.PipelineTaskSpec, in launch.Inputs) (string, []loopItem, error) {
	if it := t.GetArtifactIterator(); it != nil {
		name := it.GetItems().GetInputArtifact()
		arts, ok := in.Artifacts[name]
		if !ok {
			return "", nil, fmt.Errorf("artifactIterator: input artifact %q has no value", name)
		}
		items := make([]loopItem, len(arts))
		for i, a := range arts {
			items[i] = loopItem{artifact: a}
		}
		return it.GetItemInput(), items, nil
	}
	it := t.GetParameterIterator()
	var list *structpb.ListValue
	switch {
	case it.GetItems().GetRaw() != "":
		l, err := parseJSONList(it.GetItems().GetRaw())
		if err != nil {
			return "", nil, fmt.Errorf("parameterIterator items.raw: %w", err)
		}
		list = l
	case it.GetItems().GetInputParameter() != "":
		name := it.GetItems().GetInputParameter()
		v, ok := in.Params[name]
		if !ok {
			return "", nil, fmt.Errorf("parameterIterator: input parameter %q has no value", name)
		}
		switch k := v.GetKind().(type) {
		case *structpb.Value_ListValue:
			list = k.ListValue
		case *structpb.Value_StringValue:
			l, err := parseJSONList(k.StringValue)
			if err != nil {
				return "", nil, fmt.Errorf("parameterIterator: input parameter %q: %w", name, err)
			}
			list = l
		default:
			return "", nil, fmt.Errorf("parameterIterator: input parameter %q is not a list", name)
		}
	default:
		return "", nil, fmt.Errorf("parameterIterator has neither items.raw nor items.inputParameter")
	}
	items := make([]loopItem, len(list.GetValues()))
	for i, v := range list.GetValues() {
		items[i] = loopItem{param: v}
	}
	return it.GetItemInput(), items, nil
}

func parseJSONList(s string) (*structpb.ListValue, error) {
	var x []any
	if err := json.Unmarshal([]byte(s), &x); err != nil {
		return nil, fmt.Errorf("%q is not a JSON array: %w", truncate(s, 80), err)
	}
	return structpb.NewList(x)
}

// itemValue adapts a loop item to the body's declared input type: the SDK
// declares dict and number items of raw lists as STRING and reads fields
// with parseJson(string_value), so non-strings become JSON text there.
func itemValue(body *pipelinespec.ComponentSpec, input string, v *structpb.Value) *structpb.Value {
	def := body.GetInputDefinitions().GetParameters()[input]
	if def == nil || ir.InputParameterType(def) != pipelinespec.ParameterType_STRING {
		return v
	}
	if _, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return v
	}
	b, err := protojson.Marshal(v)
	if err != nil {
		return v
	}
	var compact any
	if json.Unmarshal(b, &compact) == nil {
		if c, err := json.Marshal(compact); err == nil {
			b = c
		}
	}
	return structpb.NewStringValue(string(b))
}

// runLoop runs one iteration of body per item, at most
// iteratorPolicy.parallelismLimit at once, and collects the iterations'
// outputs: each output parameter becomes a list over iterations (in item
// order), output artifacts are concatenated.
func (r *runner) runLoop(ctx context.Context, sc *scope, n *node, info taskInfo, body *pipelinespec.ComponentSpec, in launch.Inputs, why map[string]string) result {
	itemInput, items, err := loopItems(n.spec, in)
	if err != nil {
		return r.finalize(info, result{state: StateFailed, err: err.Error()}, in, time.Time{})
	}
	start := r.opts.Now()
	u := info.update(StateRunning)
	u.Start, u.Inputs = start, in
	r.report(u)

	limit := int(n.spec.GetIteratorPolicy().GetParallelismLimit())
	if limit <= 0 {
		limit = len(items)
	}
	sem := make(chan struct{}, max(limit, 1))
	iterInfo := func(i int) taskInfo {
		return taskInfo{id: n.id + "." + strconv.Itoa(i), name: n.name, parentID: n.id, kind: KindIteration}
	}
	bodyIsDAG := body.GetDag() != nil
	for i := range items {
		ii := iterInfo(i)
		if !bodyIsDAG {
			ii.kind = KindContainer
			if e := r.executors[body.GetExecutorLabel()]; e != nil && e.spec.GetImporter() != nil {
				ii.kind = KindImporter
			}
		}
		r.report(ii.update(StatePending))
	}
	results := make([]result, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ii := iterInfo(i)
			iin := launch.Inputs{Params: maps.Clone(in.Params), Artifacts: maps.Clone(in.Artifacts)}
			if item.artifact != nil {
				iin.Artifacts[itemInput] = []*pipelinespec.RuntimeArtifact{item.artifact}
			} else {
				iin.Params[itemInput] = itemValue(body, itemInput, item.param)
			}
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				if bodyIsDAG {
					results[i] = r.finalize(ii, result{state: StateCanceled, err: "run canceled before the iteration started"}, iin, time.Time{})
				} else {
					results[i] = r.finalize(taskInfo{id: ii.id, name: n.name, parentID: n.id, kind: KindContainer},
						result{state: StateCanceled, err: "run canceled before the task started"}, iin, time.Time{})
				}
				return
			}
			if !bodyIsDAG {
				// An iterator on an executor task: each iteration is the
				// task itself.
				ci := taskInfo{id: ii.id, name: n.name, parentID: n.id, kind: KindContainer}
				if e := r.executors[body.GetExecutorLabel()]; e != nil && e.spec.GetImporter() != nil {
					ci.kind = KindImporter
				}
				results[i] = r.runExecutor(ctx, sc, ci, n.spec, body, iin, why)
				return
			}
			iin, err := withDefaults(body, iin, why)
			if err != nil {
				results[i] = r.finalize(ii, result{state: StateFailed, err: err.Error()}, iin, time.Time{})
				return
			}
			istart := r.opts.Now()
			u := ii.update(StateRunning)
			u.Start, u.Inputs = istart, iin
			r.report(u)
			results[i] = r.finalize(ii, r.runDAG(ctx, body, ii.id, iin), iin, istart)
		}()
	}
	wg.Wait()

	var failed []string
	for i, res := range results {
		if res.state == StateFailed {
			failed = append(failed, strconv.Itoa(i))
		}
	}
	switch {
	case ctx.Err() != nil:
		return r.finalize(info, result{state: StateCanceled, err: "run canceled"}, in, start)
	case len(failed) > 0:
		return r.finalize(info, result{state: StateFailed, err: fmt.Sprintf("iterations %v failed", failed), inherited: true}, in, start)
	}
	return r.finalize(info, result{state: StateSucceeded, outputs: collect(body, results)}, in, start)
}

// collect fans the iterations' outputs in (dsl.Collected).
func collect(body *pipelinespec.ComponentSpec, results []result) launch.Outputs {
	out := launch.Outputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	defs := body.GetOutputDefinitions()
	for _, name := range slices.Sorted(maps.Keys(defs.GetParameters())) {
		var vals []*structpb.Value
		for _, res := range results {
			if v, ok := res.outputs.Params[name]; ok {
				vals = append(vals, v)
			}
		}
		out.Params[name] = structpb.NewListValue(&structpb.ListValue{Values: vals})
	}
	for _, name := range slices.Sorted(maps.Keys(defs.GetArtifacts())) {
		var arts []*pipelinespec.RuntimeArtifact
		for _, res := range results {
			arts = append(arts, res.outputs.Artifacts[name]...)
		}
		out.Artifacts[name] = arts
	}
	return out
}
