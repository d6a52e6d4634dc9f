package local

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"google.golang.org/protobuf/types/known/structpb"
)

// result is how a task (or DAG, loop, iteration) ended.
type result struct {
	state   string
	outputs launch.Outputs
	err     string
	// inherited marks a FAILED DAG, loop or iteration whose failure is a
	// child's, so the run's error names the task that failed first.
	inherited bool
}

// ok reports whether downstream tasks may consume the result.
func (r result) ok() bool { return r.state == StateSucceeded || r.state == StateCached }

// node is one task of a DAG being executed. res is written once, before
// done is closed; readers wait on done first.
type node struct {
	name     string
	id       string
	spec     *pipelinespec.PipelineTaskSpec
	upstream []string
	done     chan struct{}
	res      result
}

// scope is one executing DAG: its resolved inputs and its tasks.
type scope struct {
	id     string // TaskID of the DAG; "" for the root
	inputs launch.Inputs
	nodes  map[string]*node
}

// childID is the TaskID of task name inside the DAG with TaskID parent.
func childID(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// rootInputs are the root DAG's inputs: the bound parameters plus the root
// inputDefinitions defaults; a required parameter without a value fails the
// run before any task starts.
func rootInputs(root *pipelinespec.ComponentSpec, params map[string]*structpb.Value) (launch.Inputs, error) {
	in := launch.Inputs{Params: maps.Clone(params), Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	out, err := withDefaults(root, in, nil)
	if err != nil {
		return out, fmt.Errorf("local: pipeline inputs: %w", err)
	}
	return out, nil
}

// runRoot runs the root DAG.
func (r *runner) runRoot(ctx context.Context) result {
	return r.runDAG(ctx, r.p.Spec.GetRoot(), "", r.rootIn)
}

// component returns the component a task refers to.
func (r *runner) component(t *pipelinespec.PipelineTaskSpec) (*pipelinespec.ComponentSpec, error) {
	name := t.GetComponentRef().GetName()
	c := r.p.Spec.GetComponents()[name]
	if c == nil {
		return nil, fmt.Errorf("component %q is not defined in components", name)
	}
	return c, nil
}

// upstreamOf lists the tasks t waits for: dependentTasks and the producers
// of its inputs, sorted and without duplicates.
func upstreamOf(t *pipelinespec.PipelineTaskSpec) []string {
	set := map[string]bool{}
	for _, d := range t.GetDependentTasks() {
		set[d] = true
	}
	for _, p := range t.GetInputs().GetParameters() {
		if x := p.GetTaskOutputParameter(); x != nil {
			set[x.GetProducerTask()] = true
		}
		if x := p.GetTaskFinalStatus(); x != nil {
			set[x.GetProducerTask()] = true
		}
	}
	for _, a := range t.GetInputs().GetArtifacts() {
		if x := a.GetTaskOutputArtifact(); x != nil {
			set[x.GetProducerTask()] = true
		}
	}
	delete(set, "")
	return slices.Sorted(maps.Keys(set))
}

// buildNodes creates the nodes of dag and checks that every upstream task
// exists and that there is no cycle (a cycle would wait forever).
func buildNodes(dag *pipelinespec.DagSpec, dagID string) (map[string]*node, error) {
	nodes := map[string]*node{}
	for name, t := range dag.GetTasks() {
		nodes[name] = &node{name: name, id: childID(dagID, name), spec: t, upstream: upstreamOf(t), done: make(chan struct{})}
	}
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		for _, up := range nodes[name].upstream {
			if nodes[up] == nil {
				return nil, fmt.Errorf("task %s depends on task %q, which is not in the same DAG", childID(dagID, name), up)
			}
		}
	}
	// Kahn's algorithm: whatever cannot be ordered is on a cycle.
	indeg := map[string]int{}
	down := map[string][]string{}
	for name, n := range nodes {
		indeg[name] = len(n.upstream)
		for _, up := range n.upstream {
			down[up] = append(down[up], name)
		}
	}
	var queue []string
	for name, d := range indeg {
		if d == 0 {
			queue = append(queue, name)
		}
	}
	seen := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		seen++
		for _, d := range down[n] {
			indeg[d]--
			if indeg[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	if seen != len(nodes) {
		var cyc []string
		for name, d := range indeg {
			if d > 0 {
				cyc = append(cyc, name)
			}
		}
		slices.Sort(cyc)
		return nil, fmt.Errorf("DAG %q has a dependency cycle among tasks %s", dagID, strings.Join(cyc, ", "))
	}
	return nodes, nil
}

// runDAG runs the tasks of comp's DAG concurrently as their upstream tasks
// finish, then computes the DAG's outputs. dagID is the TaskID of the DAG.
func (r *runner) runDAG(ctx context.Context, comp *pipelinespec.ComponentSpec, dagID string, in launch.Inputs) result {
	nodes, err := buildNodes(comp.GetDag(), dagID)
	if err != nil {
		return result{state: StateFailed, err: err.Error()}
	}
	sc := &scope{id: dagID, inputs: in, nodes: nodes}
	names := slices.Sorted(maps.Keys(nodes))
	for _, name := range names {
		n := nodes[name]
		r.report(TaskUpdate{TaskID: n.id, Name: name, ParentID: dagID, Kind: r.kindOf(n.spec), State: StatePending})
	}
	var wg sync.WaitGroup
	for _, name := range names {
		n := nodes[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(n.done)
			n.res = r.runNode(ctx, sc, n)
		}()
	}
	wg.Wait()

	res := result{state: StateSucceeded}
	var failed []string
	for _, name := range names {
		if nodes[name].res.state == StateFailed {
			failed = append(failed, nodes[name].id)
		}
	}
	switch {
	case ctx.Err() != nil:
		return result{state: StateCanceled, err: "run canceled"}
	case len(failed) > 0:
		return result{state: StateFailed, err: "failed tasks: " + strings.Join(failed, ", "), inherited: true}
	}
	out, err := dagOutputs(comp.GetDag().GetOutputs(), nodes)
	if err != nil {
		return result{state: StateFailed, err: fmt.Sprintf("DAG %q outputs: %v", dagID, err)}
	}
	res.outputs = out
	return res
}

// kindOf classifies a task for reporting.
func (r *runner) kindOf(t *pipelinespec.PipelineTaskSpec) string {
	if t.GetParameterIterator() != nil || t.GetArtifactIterator() != nil {
		return KindLoop
	}
	c, err := r.component(t)
	if err != nil {
		return KindContainer
	}
	if c.GetDag() != nil {
		return KindDAG
	}
	if e := r.executors[c.GetExecutorLabel()]; e != nil && e.spec.GetImporter() != nil {
		return KindImporter
	}
	return KindContainer
}

// taskInfo is what every report about one task repeats.
type taskInfo struct {
	id, name, parentID, kind string
}

func (t taskInfo) update(state string) TaskUpdate {
	return TaskUpdate{TaskID: t.id, Name: t.name, ParentID: t.parentID, Kind: t.kind, State: state}
}

// finalize reports res as the final state of the task and returns it. start
// is zero when the task never started.
func (r *runner) finalize(info taskInfo, res result, in launch.Inputs, start time.Time) result {
	u := info.update(res.state)
	u.Start, u.End, u.Inputs, u.Outputs, u.Error = start, r.opts.Now(), in, res.outputs, res.err
	r.noteFailure(u, res)
	r.report(u)
	return res
}

// runNode waits for n's upstream tasks, decides whether n runs, runs it and
// reports its final state.
func (r *runner) runNode(ctx context.Context, sc *scope, n *node) result {
	for _, up := range n.upstream {
		<-sc.nodes[up].done
	}
	info := taskInfo{id: n.id, name: n.name, parentID: sc.id, kind: r.kindOf(n.spec)}
	none := launch.Inputs{}
	comp, err := r.component(n.spec)
	if err != nil {
		return r.finalize(info, result{state: StateFailed, err: err.Error()}, none, time.Time{})
	}
	if ctx.Err() != nil {
		// KFP starts no new task while a run is being canceled, exit
		// handlers included.
		return r.finalize(info, result{state: StateCanceled, err: "run canceled before the task started"}, none, time.Time{})
	}
	if n.spec.GetTriggerPolicy().GetStrategy() != pipelinespec.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED {
		for _, up := range n.upstream {
			if u := sc.nodes[up]; !u.res.ok() {
				res := result{state: StateSkipped, err: fmt.Sprintf("upstream task %s is %s", u.id, u.res.state)}
				r.skipInside(comp, n.id, info.kind)
				return r.finalize(info, res, none, time.Time{})
			}
		}
	}
	in, why, err := r.resolveInputs(sc, n.spec)
	if err != nil {
		return r.finalize(info, result{state: StateFailed, err: err.Error()}, none, time.Time{})
	}
	if cond := n.spec.GetTriggerPolicy().GetCondition(); cond != "" {
		params := withParamDefaults(comp, in).Params
		ok, err := ir.EvalCondition(cond, params)
		if err != nil {
			return r.finalize(info, result{state: StateFailed, err: fmt.Sprintf("triggerPolicy.condition %q: %v", cond, err)}, in, time.Time{})
		}
		if !ok {
			r.skipInside(comp, n.id, info.kind)
			return r.finalize(info, result{state: StateSkipped, err: "condition is false: " + cond}, in, time.Time{})
		}
	}
	switch info.kind {
	case KindLoop:
		return r.runLoop(ctx, sc, n, info, comp, in, why)
	case KindDAG:
		in, err := withDefaults(comp, in, why)
		if err != nil {
			return r.finalize(info, result{state: StateFailed, err: err.Error()}, in, time.Time{})
		}
		start := r.opts.Now()
		u := info.update(StateRunning)
		u.Start, u.Inputs = start, in
		r.report(u)
		return r.finalize(info, r.runDAG(ctx, comp, n.id, in), in, start)
	default:
		return r.runExecutor(ctx, sc, info, n.spec, comp, in, why)
	}
}

// skipInside reports every task inside a skipped DAG as SKIPPED, so a UI
// shows the whole subtree as not run. Loops inside are reported once, as
// their iterations are unknown.
func (r *runner) skipInside(comp *pipelinespec.ComponentSpec, id, kind string) {
	if kind != KindDAG && kind != KindLoop {
		return
	}
	r.skipTree(comp, id)
}

func (r *runner) skipTree(comp *pipelinespec.ComponentSpec, id string) {
	tasks := comp.GetDag().GetTasks()
	for _, name := range slices.Sorted(maps.Keys(tasks)) {
		t := tasks[name]
		info := taskInfo{id: childID(id, name), name: name, parentID: id, kind: r.kindOf(t)}
		u := info.update(StateSkipped)
		u.End, u.Error = r.opts.Now(), "parent "+id+" was skipped"
		r.report(u)
		if info.kind == KindDAG {
			if c, err := r.component(t); err == nil {
				r.skipTree(c, info.id)
			}
		}
	}
}

// dagOutputs computes a DAG's outputs from its tasks' results. A selector
// whose task did not succeed or did not produce the output yields nothing;
// with several selectors (dsl.OneOf) the first one that produced wins.
func dagOutputs(spec *pipelinespec.DagOutputsSpec, nodes map[string]*node) (launch.Outputs, error) {
	out := launch.Outputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	for _, name := range slices.Sorted(maps.Keys(spec.GetParameters())) {
		ps := spec.GetParameters()[name]
		var sels []*pipelinespec.DagOutputsSpec_ParameterSelectorSpec
		if s := ps.GetValueFromParameter(); s != nil {
			sels = append(sels, s)
		}
		sels = append(sels, ps.GetValueFromOneof().GetParameterSelectors()...)
		if len(sels) == 0 {
			return out, fmt.Errorf("output parameter %q has no selector", name)
		}
		for _, s := range sels {
			n := nodes[s.GetProducerSubtask()]
			if n == nil {
				return out, fmt.Errorf("output parameter %q selects task %q, which is not in the DAG", name, s.GetProducerSubtask())
			}
			if v, ok := n.res.outputs.Params[s.GetOutputParameterKey()]; ok && n.res.ok() {
				out.Params[name] = v
				break
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(spec.GetArtifacts())) {
		sels := spec.GetArtifacts()[name].GetArtifactSelectors()
		if len(sels) == 0 {
			return out, fmt.Errorf("output artifact %q has no selector", name)
		}
		for _, s := range sels {
			n := nodes[s.GetProducerSubtask()]
			if n == nil {
				return out, fmt.Errorf("output artifact %q selects task %q, which is not in the DAG", name, s.GetProducerSubtask())
			}
			if a, ok := n.res.outputs.Artifacts[s.GetOutputArtifactKey()]; ok && n.res.ok() {
				out.Artifacts[name] = a
				break
			}
		}
	}
	return out, nil
}
