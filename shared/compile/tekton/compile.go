// Package tekton compiles KFP v2 IR (shared/ir) into a Tekton v1 PipelineRun
// with an embedded pipelineSpec. Compile is pure and deterministic: the same
// IR and options give the same object, and nothing is read from the
// environment.
//
// # Mapping
//
// Tekton cannot nest pipelines without alpha features, so every DAG component
// is flattened into one Pipeline: a task's name is its DAG path joined with
// "-" (DNS-1123, at most 63 characters, cut and given a hash suffix when too
// long or taken). Each container task becomes a PipelineTask with an embedded
// taskSpec of two steps: "pipefn-init" copies the launcher from the launcher
// image into an emptyDir at /pipefn, "main" runs "/pipefn/launcher run" in the
// component's image. Output parameter X is the task result p-X, output
// artifact Y the result a-Y (its URI); consumers read
// $(tasks.T.results.p-X) through a task parameter.
//
// Root parameters become pipeline parameters whose values (the bound values of
// Options.Params, encoded as CONTRACTS.md says) sit in spec.params; a root
// input artifact is bound by its URI, a string in Options.Params under the
// artifact's name. A loop over a bound root parameter is expanded inline.
//
// A triggerPolicy.condition becomes a "<task>-cond" task ("launcher cond")
// that writes the result ok; the guarded task, and every task flattened out
// of it, carries the when expression $(tasks.<task>-cond.results.ok) in
// ["true"]. Nested conditions stack their when expressions.
//
// Exit handlers and every other ALL_UPSTREAM_TASKS_COMPLETED task of the root
// DAG become finally tasks; PipelineTaskFinalStatus inputs receive the Tekton
// statuses of the tasks they watch ($(tasks.T.status), comma-joined when the
// watched DAG was flattened into several tasks; the launcher folds them).
// Such a task elsewhere than in the root DAG is an error: Tekton's finally
// runs only after the whole pipeline.
//
// # Loops
//
// A ParallelFor becomes a Tekton matrix. Each task of the loop body (at any
// flattening depth) is matrixed over one string parameter, pf-iteration,
// whose values are compact JSON {"index":i,"item":x} (launch.Iteration);
// nested loops add "path" and "items" with one entry per level from the
// outermost: so each TaskRun knows its iteration indices (for its task id
// and artifact paths) and its items (see launch.Iteration).
// Static item lists are written inline; a dynamic list (an upstream output
// or a parameter) first goes through a "<loop>-items" task ("launcher
// items") that writes the array result "iterations". Tekton cannot nest a
// matrix, so a loop inside a loop is matrixed over the product of the
// levels (inline when every level is static, else by its items task).
//
// Tekton aggregates the string results of a matrixed task into an array
// ordered by TaskRun name (so "-10" sorts before "-2", and long names are
// hashed) and lets later tasks consume only the whole array
// ($(tasks.T.results.R[*])). So matrixed tasks write every result in an
// envelope {"path":[..],"value":V} naming their iteration, a body task that
// needs the value another body task produced in the same iteration receives
// the whole array plus its length ($(tasks.T.matrix.R.length)) and the
// launcher picks the element with its own path ("--list-param NAME COUNT
// E1..EN", launch.ListInput.PerIteration), and a task after the loop that consumes
// a collected output (dsl.Collected) gets the same array, which the
// launcher orders by path into a list (nested lists for nested loops).
//
// A condition inside a loop body that reads the iteration cannot be a when
// expression (it applies to a whole matrix): its cond task is matrixed too
// and the guarded tasks receive its per-iteration results as guards; the
// launcher skips an iteration whose guards are not all "true".
//
// # OneOf
//
// dsl.OneOf outputs choose the branch that ran. Tekton skips a task that
// reads a result of a skipped task, so the conditions of a DAG with OneOf
// outputs (scope.guardMode) are guards rather than when expressions: every
// branch task runs and skips itself in the launcher, results always exist,
// and the consumer receives all candidates with their guards and takes the
// one whose guards hold.
//
// # Limits
//
// Reported as errors, never dropped silently: a ParallelFor over artifacts
// or a list computed inside its enclosing loop, exit tasks
// that are pipelines and exit handlers below the root, Kubernetes settings
// and resources that depend on upstream outputs at run time for fields
// Tekton does not substitute (pod template, step resources), importer
// downloadToWorkspace, and executors other than container/importer.
//
// Documented approximations: iteratorPolicy.parallelismLimit cannot be
// honoured (Tekton has no concurrency bound for a matrix), so the run is
// annotated with pipefn.dev/unbounded-parallelism naming the loops; retry
// backoff is not supported by Tekton (only the count is kept) and the run is
// annotated with pipefn.dev/retry-backoff-ignored naming the tasks. A
// dynamic loop larger than Tekton's default-max-matrix-combinations-count
// (config-defaults, 256) fails at run time; raise it for big fan-outs. A
// dynamic loop over an empty list makes Tekton skip the matrixed tasks and,
// transitively, every task after them, where KFP would run those with empty
// collections.
package tekton

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"google.golang.org/protobuf/types/known/structpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// RequiredFeatureFlags are the entries of Tekton's feature-flags ConfigMap
// that compiled PipelineRuns need. Matrix is a beta feature, enabled by
// Tekton's default enable-api-fields=beta; it is set explicitly so that a
// cluster configured for "stable" does not reject runs. Results carry KFP
// output parameters, artifact URIs and whole aggregated loop outputs, which
// overflow the default 4 KiB termination message; sidecar-logs results with
// a 1 MiB limit hold them (the Tekton controller must be allowed to read
// pod logs). The output validates with Tekton's defaults too.
var RequiredFeatureFlags = map[string]string{
	"enable-api-fields": "beta",
	"results-from":      "sidecar-logs",
	"max-result-size":   "1048576",
}

// Annotations the compiler writes when it has to approximate a feature.
const (
	AnnotationUnboundedParallelism = "pipefn.dev/unbounded-parallelism"
	AnnotationRetryBackoffIgnored  = "pipefn.dev/retry-backoff-ignored"
	// AnnotationUnmappedOutputs names pipeline outputs that are not Tekton
	// pipeline results (OneOf choices, nested collections): read them from
	// the producing tasks' records instead.
	AnnotationUnmappedOutputs = "pipefn.dev/unmapped-outputs"
)

// Names of reserved parameters and results.
const (
	iterationParam = launch.TektonIterationParam
	itemsResult    = "iterations"
	launcherVolume = "pipefn"
	launcherDir    = "/pipefn"
)

// Compile turns p into a PipelineRun named after opts.RunID. Every problem
// found is returned in one error, each naming its IR path.
func Compile(p *ir.Pipeline, opts compile.Options) (*tektonv1.PipelineRun, error) {
	if p == nil || p.Spec == nil || p.Spec.GetRoot() == nil {
		return nil, errors.New("tekton: pipeline has no root component")
	}
	if opts.RunID == "" {
		return nil, errors.New("tekton: Options.RunID is empty")
	}
	for key, v := range map[string]string{compile.LabelRunID: opts.RunID, compile.LabelTeam: opts.Team, compile.LabelPipelineVersion: opts.PipelineVersionID} {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("tekton: %q cannot be the value of label %s: %s", v, key, strings.Join(errs, "; "))
		}
	}
	if opts.LauncherImage == "" {
		opts.LauncherImage = compile.DefaultLauncherImage
	}
	c := &compiler{p: p, opts: opts, names: newNamer(), backoff: map[string]bool{}, rootVals: map[string]*structpb.Value{}}
	if err := c.checkExtras(); err != nil {
		return nil, err
	}
	ws, err := c.workspaceClaim()
	if err != nil {
		return nil, fmt.Errorf("tekton: %w", err)
	}
	c.workspace = ws
	root := c.rootScope()
	for _, name := range sortedKeys(p.Spec.GetRoot().GetDag().GetTasks()) {
		c.flatten(root, name)
	}
	c.pipelineResults(root)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return c.pipelineRun(), nil
}

type compiler struct {
	p     *ir.Pipeline
	opts  compile.Options
	names *namer

	tasks    []tektonv1.PipelineTask
	finally  []tektonv1.PipelineTask
	runSpecs []tektonv1.PipelineTaskRunSpec
	params   []tektonv1.ParamSpec
	values   tektonv1.Params

	rootVals  map[string]*structpb.Value
	workspace *corev1.PersistentVolumeClaim // the run's shared PVC, nil if none

	results  []tektonv1.PipelineResult
	unmapped []string // pipeline outputs Tekton results cannot carry

	unbounded []string
	backoff   map[string]bool
	errs      []error
}

func (c *compiler) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// srcKind says where an input value comes from once the DAGs are flattened.
type srcKind int

const (
	srcConst   srcKind = iota // a literal known at compile time
	srcRoot                   // a pipeline parameter
	srcResult                 // a task result
	srcItem                   // the loop item of an enclosing ParallelFor (loop)
	srcStatus                 // Tekton task statuses (PipelineTaskFinalStatus)
	srcMissing                // nothing can be bound (reason in lit)
	srcOneOf                  // the one candidate whose guards hold (dsl.OneOf)
)

// source is a resolved input value.
type source struct {
	kind     srcKind
	val      *structpb.Value // srcConst
	lit      string          // srcStatus: the status expression; srcMissing: why
	root     string          // srcRoot: pipeline parameter name
	task     string          // srcResult: producing pipeline task; srcStatus: the watched IR task
	leaves   []string        // srcStatus: the pipeline tasks whose statuses lit joins
	result   string          // srcResult: result name
	loop     *loopCtx        // srcResult: the matrix the producer runs in (nil = none)
	typ      pipelinespec.ParameterType_ParameterTypeEnum
	selector string // parameterExpressionSelector to apply to the value
	// guards are the launcher-evaluated conditions of the producing task
	// (srcResult); a OneOf consumer picks the candidate whose guards hold.
	guards     []*source
	candidates []*source // srcOneOf
}

// loopCtx is one ParallelFor being compiled to a matrix.
type loopCtx struct {
	name   string
	matrix tektonv1.Param
	parent *loopCtx // the enclosing loop, nil at the outermost level
	depth  int      // 1 for an outermost loop
	levels []launch.Level
	inputs map[string]*source // the --param values the levels read
	// artifactInputs are the artifact lists the levels iterate over.
	artifactInputs map[string]*source
}

// within reports whether l is lc or one of its enclosing loops.
func (lc *loopCtx) within(l *loopCtx) bool {
	for x := lc; x != nil; x = x.parent {
		if x == l {
			return true
		}
	}
	return false
}

// taskOut is what a flattened IR task offers its consumers.
type taskOut struct {
	name      string // container/importer: the pipeline task
	loop      *loopCtx
	params    map[string]*source // DAG outputs (nil for container tasks)
	artifacts map[string]*source
	outTypes  map[string]pipelinespec.ParameterType_ParameterTypeEnum
	leaves    []string // every regular pipeline task the IR task became
	finally   bool
	guards    []*source // container/importer: its launcher-evaluated conditions
}

// scope is one DAG being flattened.
type scope struct {
	path      []string
	irPath    string
	dag       *pipelinespec.DagSpec
	params    map[string]*source
	artifacts map[string]*source
	when      tektonv1.WhenExpressions
	// guards are conditions the launcher evaluates (cond task results)
	// rather than Tekton when expressions: per-iteration conditions in a
	// loop body, and every condition in guard mode.
	guards []*source
	// guardMode: this DAG feeds a OneOf output, so its conditions must not
	// make Tekton skip tasks (a consumer of a skipped task's result is
	// skipped too); the guarded tasks run and skip themselves instead.
	guardMode bool
	runAfter  []string
	loop      *loopCtx
	root      bool
	done      map[string]*taskOut
	busy      map[string]bool
}

func (c *compiler) rootScope() *scope {
	s := &scope{
		irPath: "root.dag", dag: c.p.Spec.GetRoot().GetDag(), root: true,
		params: map[string]*source{}, artifacts: map[string]*source{},
		done: map[string]*taskOut{}, busy: map[string]bool{},
	}
	defs := c.p.Spec.GetRoot().GetInputDefinitions()
	for _, name := range sortedKeys(defs.GetParameters()) {
		spec := defs.GetParameters()[name]
		v := c.rootValue(name, spec)
		if v == nil {
			if spec.GetIsOptional() {
				s.params[name] = nil
			} else {
				s.params[name] = &source{kind: srcMissing, lit: fmt.Sprintf("root parameter %q is required and has no value", name)}
			}
			continue
		}
		enc := launch.EncodeParam(v, paramType(spec))
		c.rootVals[name] = v
		c.params = append(c.params, tektonv1.ParamSpec{Name: name, Type: tektonv1.ParamTypeString})
		c.values = append(c.values, tektonv1.Param{Name: name, Value: *tektonv1.NewStructuredValues(enc)})
		s.params[name] = &source{kind: srcRoot, root: name, typ: paramType(spec)}
	}
	// A root input artifact is bound by its URI, given as a string in
	// Options.Params under the artifact's name.
	for _, name := range sortedKeys(defs.GetArtifacts()) {
		uri := c.opts.Params[name].GetStringValue()
		switch {
		case uri != "":
			c.params = append(c.params, tektonv1.ParamSpec{Name: name, Type: tektonv1.ParamTypeString})
			c.values = append(c.values, tektonv1.Param{Name: name, Value: *tektonv1.NewStructuredValues(uri)})
			s.artifacts[name] = &source{kind: srcRoot, root: name}
		case defs.GetArtifacts()[name].GetIsOptional():
			s.artifacts[name] = nil
		default:
			s.artifacts[name] = &source{kind: srcMissing, lit: fmt.Sprintf("root input artifact %q is required: bind its URI as a string in the run parameters", name)}
		}
	}
	return s
}

// rootValue is the bound value of a root parameter: Options.Params, then the
// PipelineJob runtime config, then the default.
func (c *compiler) rootValue(name string, spec *pipelinespec.ComponentInputsSpec_ParameterSpec) *structpb.Value {
	if v, ok := c.opts.Params[name]; ok && v != nil {
		return v
	}
	if rc := c.p.RuntimeConfig; rc != nil {
		if v, ok := rc.ParameterValues[name]; ok && v != nil {
			return v
		}
	}
	return spec.GetDefaultValue()
}

func paramType(spec interface {
	GetParameterType() pipelinespec.ParameterType_ParameterTypeEnum
	GetType() pipelinespec.PrimitiveType_PrimitiveTypeEnum
}) pipelinespec.ParameterType_ParameterTypeEnum {
	if t := spec.GetParameterType(); t != pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
		return t
	}
	// schemaVersion 2.0.0 files carry only the old primitive type.
	switch spec.GetType() {
	case pipelinespec.PrimitiveType_INT:
		return pipelinespec.ParameterType_NUMBER_INTEGER
	case pipelinespec.PrimitiveType_DOUBLE:
		return pipelinespec.ParameterType_NUMBER_DOUBLE
	}
	return pipelinespec.ParameterType_STRING
}

// flatten compiles IR task name of scope s (once) and returns what it offers.
func (c *compiler) flatten(s *scope, name string) *taskOut {
	if out, ok := s.done[name]; ok {
		return out
	}
	where := s.irPath + ".tasks['" + name + "']"
	if s.busy[name] {
		c.errorf(where, "dependency cycle")
		return nil
	}
	t, ok := s.dag.GetTasks()[name]
	if !ok {
		c.errorf(s.irPath, "no task %q", name)
		return nil
	}
	s.busy[name] = true
	out := c.flattenTask(s, name, t, where)
	delete(s.busy, name)
	s.done[name] = out
	return out
}

func (c *compiler) flattenTask(s *scope, name string, t *pipelinespec.PipelineTaskSpec, where string) *taskOut {
	compName := t.GetComponentRef().GetName()
	comp, ok := c.p.Spec.GetComponents()[compName]
	if !ok {
		c.errorf(where+".componentRef", "no component %q", compName)
		return nil
	}
	path := append(append([]string(nil), s.path...), name)

	finally := t.GetTriggerPolicy().GetStrategy() == pipelinespec.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED
	if finally && (!s.root || s.loop != nil) {
		c.errorf(where+".triggerPolicy.strategy", "ALL_UPSTREAM_TASKS_COMPLETED (exit handler) below the root DAG cannot be compiled to Tekton: finally tasks run only after the whole pipeline")
		return nil
	}

	if comp.GetDag() != nil && t.GetRetryPolicy().GetMaxRetryCount() > 0 {
		c.errorf(where+".retryPolicy", "retrying a whole sub-pipeline is not supported on Tekton (set retries on its tasks)")
		return nil
	}
	if finally && comp.GetDag() != nil {
		c.errorf(where, "an exit task that is itself a pipeline cannot be compiled to Tekton: its tasks would all be finally tasks, which can neither follow nor read results of one another")
		return nil
	}

	// Upstream tasks: explicit dependencies plus those whose outputs we read.
	runAfter := append([]string(nil), s.runAfter...)
	for _, dep := range t.GetDependentTasks() {
		up := c.flatten(s, dep)
		if up == nil {
			continue
		}
		if up.finally {
			c.errorf(where+".dependentTasks", "depends on %q, an exit-handler task (Tekton finally), which nothing may follow", dep)
			continue
		}
		if !finally {
			runAfter = append(runAfter, up.leaves...)
		}
	}
	if finally {
		runAfter = nil
	}

	params, artifacts := c.resolveInputs(s, t, where)
	when := append(tektonv1.WhenExpressions(nil), s.when...)
	guards := s.guards

	if cond := t.GetTriggerPolicy().GetCondition(); cond != "" {
		condName, condLoop, asGuard := c.condTask(s, path, comp, t, cond, params, runAfter, when, where)
		switch {
		case condName == "":
		case asGuard:
			guards = append(append([]*source(nil), guards...), &source{kind: srcResult, task: condName, result: launch.CondResult, loop: condLoop, typ: pipelinespec.ParameterType_STRING})
		default:
			when = append(when, tektonv1.WhenExpression{
				Input: "$(tasks." + condName + ".results." + launch.CondResult + ")", Operator: "in", Values: []string{"true"},
			})
		}
	}
	gs := *s
	gs.guards = guards
	s = &gs

	if t.GetParameterIterator() != nil || t.GetArtifactIterator() != nil {
		return c.loop(s, path, comp, t, params, artifacts, runAfter, when, where)
	}
	if comp.GetDag() != nil {
		return c.dag(s, path, compName, comp, params, artifacts, runAfter, when, s.loop, where)
	}
	return c.executorTask(s, path, comp, t, params, artifacts, runAfter, when, finally, where)
}

// resolveInputs resolves every input binding of t in scope s.
func (c *compiler) resolveInputs(s *scope, t *pipelinespec.PipelineTaskSpec, where string) (map[string]*source, map[string]*source) {
	params := map[string]*source{}
	for _, in := range sortedKeys(t.GetInputs().GetParameters()) {
		params[in] = c.paramSource(s, t.GetInputs().GetParameters()[in], where+".inputs.parameters['"+in+"']")
	}
	artifacts := map[string]*source{}
	for _, in := range sortedKeys(t.GetInputs().GetArtifacts()) {
		artifacts[in] = c.artifactSource(s, t.GetInputs().GetArtifacts()[in], where+".inputs.artifacts['"+in+"']")
	}
	return params, artifacts
}

func (c *compiler) paramSource(s *scope, spec *pipelinespec.TaskInputsSpec_InputParameterSpec, where string) *source {
	var src *source
	switch {
	case spec.GetRuntimeValue() != nil:
		v := spec.GetRuntimeValue().GetConstant()
		if v == nil && spec.GetRuntimeValue().GetConstantValue() != nil {
			v = ir.LegacyConstant(spec.GetRuntimeValue().GetConstantValue())
		}
		src = &source{kind: srcConst, val: v}
	case spec.GetComponentInputParameter() != "":
		name := spec.GetComponentInputParameter()
		in, ok := s.params[name]
		if !ok {
			c.errorf(where, "component input parameter %q is not an input of the enclosing DAG", name)
			return nil
		}
		if in == nil {
			return nil // optional and unbound: the launcher applies the default
		}
		cp := *in
		src = &cp
	case spec.GetTaskOutputParameter() != nil:
		ref := spec.GetTaskOutputParameter()
		up := c.flatten(s, ref.GetProducerTask())
		if up == nil {
			return nil
		}
		if up.params != nil {
			o, ok := up.params[ref.GetOutputParameterKey()]
			if !ok {
				c.errorf(where, "task %q has no output parameter %q", ref.GetProducerTask(), ref.GetOutputParameterKey())
				return nil
			}
			if o == nil {
				return nil
			}
			cp := *o
			src = &cp
		} else {
			typ, ok := up.outTypes[ref.GetOutputParameterKey()]
			if !ok {
				c.errorf(where, "task %q has no output parameter %q", ref.GetProducerTask(), ref.GetOutputParameterKey())
				return nil
			}
			src = &source{kind: srcResult, task: up.name, result: paramResult(ref.GetOutputParameterKey()), loop: up.loop, typ: typ, guards: up.guards}
		}
	case spec.GetTaskFinalStatus() != nil:
		up := c.flatten(s, spec.GetTaskFinalStatus().GetProducerTask())
		if up == nil {
			return nil
		}
		refs := make([]string, len(up.leaves))
		for i, l := range up.leaves {
			refs[i] = "$(tasks." + l + ".status)"
		}
		src = &source{kind: srcStatus, lit: strings.Join(refs, ","), typ: pipelinespec.ParameterType_TASK_FINAL_STATUS,
			task: spec.GetTaskFinalStatus().GetProducerTask(), leaves: up.leaves}
	default:
		c.errorf(where, "input parameter has no value source")
		return nil
	}
	if sel := spec.GetParameterExpressionSelector(); sel != "" {
		if src.selector != "" {
			c.errorf(where, "a parameterExpressionSelector applied on top of another one (%q) is not supported", src.selector)
			return nil
		}
		src.selector = sel
	}
	return src
}

func (c *compiler) artifactSource(s *scope, spec *pipelinespec.TaskInputsSpec_InputArtifactSpec, where string) *source {
	switch {
	case spec.GetComponentInputArtifact() != "":
		name := spec.GetComponentInputArtifact()
		in, ok := s.artifacts[name]
		if !ok {
			c.errorf(where, "component input artifact %q is not an input of the enclosing DAG", name)
			return nil
		}
		if in == nil {
			return nil
		}
		cp := *in
		return &cp
	case spec.GetTaskOutputArtifact() != nil:
		ref := spec.GetTaskOutputArtifact()
		up := c.flatten(s, ref.GetProducerTask())
		if up == nil {
			return nil
		}
		if up.artifacts != nil {
			o, ok := up.artifacts[ref.GetOutputArtifactKey()]
			if !ok {
				c.errorf(where, "task %q has no output artifact %q", ref.GetProducerTask(), ref.GetOutputArtifactKey())
				return nil
			}
			if o == nil {
				return nil
			}
			cp := *o
			return &cp
		}
		return &source{kind: srcResult, task: up.name, result: artifactResult(ref.GetOutputArtifactKey()), loop: up.loop, guards: up.guards}
	}
	c.errorf(where, "input artifact has no value source")
	return nil
}

// dag flattens a DAG component: its tasks join the pipeline with path
// prefixes; its outputs resolve to the producing tasks' results.
func (c *compiler) dag(s *scope, path []string, compName string, comp *pipelinespec.ComponentSpec, params, artifacts map[string]*source,
	runAfter []string, when tektonv1.WhenExpressions, loop *loopCtx, where string) *taskOut {
	child := &scope{
		path: path, irPath: where + " > components['" + compName + "'].dag", dag: comp.GetDag(),
		params: map[string]*source{}, artifacts: map[string]*source{},
		when: when, guards: s.guards, runAfter: runAfter, loop: loop,
		done: map[string]*taskOut{}, busy: map[string]bool{},
		guardMode: s.guardMode || hasOneOf(comp.GetDag().GetOutputs()),
	}
	for name, def := range comp.GetInputDefinitions().GetParameters() {
		child.params[name] = params[name]
		if params[name] == nil && def.GetDefaultValue() != nil {
			// An unbound DAG input takes its default, as in the KFP driver.
			child.params[name] = &source{kind: srcConst, val: def.GetDefaultValue(), typ: paramType(def)}
		}
	}
	for name := range comp.GetInputDefinitions().GetArtifacts() {
		child.artifacts[name] = artifacts[name]
	}
	// Bindings the component does not declare still flow (older SDKs).
	for name, p := range params {
		if _, ok := child.params[name]; !ok {
			child.params[name] = p
		}
	}
	for name, a := range artifacts {
		if _, ok := child.artifacts[name]; !ok {
			child.artifacts[name] = a
		}
	}
	out := &taskOut{params: map[string]*source{}, artifacts: map[string]*source{}, loop: loop}
	for _, name := range sortedKeys(comp.GetDag().GetTasks()) {
		o := c.flatten(child, name)
		if o != nil {
			out.leaves = append(out.leaves, o.leaves...)
		}
	}
	outs := comp.GetDag().GetOutputs()
	for _, key := range sortedKeys(outs.GetParameters()) {
		spec := outs.GetParameters()[key]
		opath := child.irPath + ".outputs.parameters['" + key + "']"
		sels := spec.GetValueFromOneof().GetParameterSelectors()
		if sel := spec.GetValueFromParameter(); sel != nil {
			sels = append(sels[:0:0], sel)
		}
		var cands []*source
		for i, sel := range sels {
			src := c.paramSource(child, &pipelinespec.TaskInputsSpec_InputParameterSpec{
				Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
					TaskOutputParameter: &pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{
						ProducerTask: sel.GetProducerSubtask(), OutputParameterKey: sel.GetOutputParameterKey(),
					},
				},
			}, fmt.Sprintf("%s[%d]", opath, i))
			if src != nil {
				cands = append(cands, src)
			}
		}
		out.params[key] = c.oneOf(cands, spec.GetValueFromOneof() != nil, opath)
	}
	for _, key := range sortedKeys(outs.GetArtifacts()) {
		sels := outs.GetArtifacts()[key].GetArtifactSelectors()
		apath := child.irPath + ".outputs.artifacts['" + key + "']"
		var cands []*source
		for i, sel := range sels {
			src := c.artifactSource(child, &pipelinespec.TaskInputsSpec_InputArtifactSpec{
				Kind: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact{
					TaskOutputArtifact: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifactSpec{
						ProducerTask: sel.GetProducerSubtask(), OutputArtifactKey: sel.GetOutputArtifactKey(),
					},
				},
			}, fmt.Sprintf("%s[%d]", apath, i))
			if src != nil {
				cands = append(cands, src)
			}
		}
		out.artifacts[key] = c.oneOf(cands, len(sels) > 1, apath)
	}
	sort.Strings(out.leaves)
	return out
}

// pipelineResults maps the root DAG's outputs to Tekton pipeline results
// named like task results (p-X, a-X), so a finished run reports them. A
// collected loop output is an array of result envelopes
// ({"path":[i],"value":V}, in TaskRun-name order): order it by path.
func (c *compiler) pipelineResults(root *scope) {
	outs := c.p.Spec.GetRoot().GetDag().GetOutputs()
	add := func(name string, src *source) {
		if src == nil {
			return
		}
		r := tektonv1.PipelineResult{Name: name, Type: tektonv1.ResultsTypeString}
		switch {
		case src.kind == srcResult && src.loop == nil:
			r.Value = *tektonv1.NewStructuredValues("$(tasks." + src.task + ".results." + src.result + ")")
		case src.kind == srcResult && src.loop.parent == nil:
			r.Type = tektonv1.ResultsTypeArray
			r.Value = *tektonv1.NewStructuredValues("$(tasks." + src.task + ".results." + src.result + "[*])")
		case src.kind == srcRoot:
			r.Value = *tektonv1.NewStructuredValues("$(params." + src.root + ")")
		case src.kind == srcConst:
			v := launch.EncodeParam(src.val, src.typ)
			if hasEngineRef(v) {
				c.unmapped = append(c.unmapped, name)
				return
			}
			r.Value = *tektonv1.NewStructuredValues(v)
		default:
			c.unmapped = append(c.unmapped, name)
			return
		}
		if src.selector != "" {
			c.unmapped = append(c.unmapped, name)
			return
		}
		c.results = append(c.results, r)
	}
	for _, key := range sortedKeys(outs.GetParameters()) {
		spec := outs.GetParameters()[key]
		where := "root.dag.outputs.parameters['" + key + "']"
		var cands []*source
		sels := spec.GetValueFromOneof().GetParameterSelectors()
		if sel := spec.GetValueFromParameter(); sel != nil {
			sels = append(sels[:0:0], sel)
		}
		for i, sel := range sels {
			if src := c.paramSource(root, &pipelinespec.TaskInputsSpec_InputParameterSpec{
				Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
					TaskOutputParameter: &pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{
						ProducerTask: sel.GetProducerSubtask(), OutputParameterKey: sel.GetOutputParameterKey(),
					},
				},
			}, fmt.Sprintf("%s[%d]", where, i)); src != nil {
				cands = append(cands, src)
			}
		}
		if len(cands) == 1 && spec.GetValueFromOneof() == nil {
			add(paramResult(key), cands[0])
		} else if len(cands) > 0 {
			c.unmapped = append(c.unmapped, paramResult(key))
		}
	}
	for _, key := range sortedKeys(outs.GetArtifacts()) {
		sels := outs.GetArtifacts()[key].GetArtifactSelectors()
		if len(sels) != 1 {
			c.unmapped = append(c.unmapped, artifactResult(key))
			continue
		}
		src := c.artifactSource(root, &pipelinespec.TaskInputsSpec_InputArtifactSpec{
			Kind: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact{
				TaskOutputArtifact: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifactSpec{
					ProducerTask: sels[0].GetProducerSubtask(), OutputArtifactKey: sels[0].GetOutputArtifactKey(),
				},
			},
		}, "root.dag.outputs.artifacts['"+key+"']")
		add(artifactResult(key), src)
	}
}

// hasOneOf reports whether DAG outputs choose among several producers.
func hasOneOf(o *pipelinespec.DagOutputsSpec) bool {
	for _, p := range o.GetParameters() {
		if p.GetValueFromOneof() != nil {
			return true
		}
	}
	for _, a := range o.GetArtifacts() {
		if len(a.GetArtifactSelectors()) > 1 {
			return true
		}
	}
	return false
}

// oneOf returns the source of a DAG output: the single producer's, or for
// dsl.OneOf a choice among candidates that each carry the guards under which
// their producer runs. Candidates that are choices themselves are flattened.
func (c *compiler) oneOf(cands []*source, oneof bool, where string) *source {
	if !oneof {
		if len(cands) == 0 {
			return nil
		}
		return cands[0]
	}
	out := &source{kind: srcOneOf}
	for _, cand := range cands {
		if cand.kind == srcOneOf {
			out.candidates = append(out.candidates, cand.candidates...)
			continue
		}
		if cand.kind != srcResult || len(cand.guards) == 0 {
			c.errorf(where, "OneOf candidate is not produced under a condition; which branch ran cannot be told")
			return nil
		}
		out.candidates = append(out.candidates, cand)
	}
	if len(out.candidates) > 0 {
		out.typ = out.candidates[0].typ
	}
	return out
}

// loop compiles a ParallelFor: the body is flattened with every task
// matrixed over the iterations. A loop nested in another is matrixed over
// the product of the enclosing loops' iterations (Tekton cannot nest a
// matrix), computed inline when every level is a static list and otherwise
// by a "<loop>-items" task.
func (c *compiler) loop(s *scope, path []string, comp *pipelinespec.ComponentSpec, t *pipelinespec.PipelineTaskSpec,
	params, artifacts map[string]*source, runAfter []string, when tektonv1.WhenExpressions, where string) *taskOut {
	if comp.GetDag() == nil {
		c.errorf(where, "ParallelFor component %q is not a DAG", t.GetComponentRef().GetName())
		return nil
	}
	lc := &loopCtx{name: c.names.name(path, ""), parent: s.loop, depth: 1, inputs: map[string]*source{}, artifactInputs: map[string]*source{}}
	if s.loop != nil {
		lc.depth = s.loop.depth + 1
		lc.levels = append(lc.levels, s.loop.levels...)
		for k, v := range s.loop.inputs {
			lc.inputs[k] = v
		}
		for k, v := range s.loop.artifactInputs {
			lc.artifactInputs[k] = v
		}
	}
	lc.matrix.Name = iterationParam
	lvl := launch.Level{}
	it := t.GetParameterIterator()
	itemInput := it.GetItemInput()
	switch {
	case t.GetArtifactIterator() != nil:
		ai := t.GetArtifactIterator()
		itemInput = ai.GetItemInput()
		in := ai.GetItems().GetInputArtifact()
		src, ok := artifacts[in]
		if !ok || src == nil {
			c.errorf(where+".artifactIterator.items.inputArtifact", "loop input artifact %q has no value", in)
			return nil
		}
		if src.kind == srcResult && src.loop != nil && (s.loop.within(src.loop) || src.loop.parent != nil) {
			c.errorf(where+".artifactIterator.items.inputArtifact", "ParallelFor over artifacts computed inside a loop is not supported on Tekton")
			return nil
		}
		lvl.ArtifactInput = fmt.Sprintf("artifacts-%d", lc.depth-1)
		lc.artifactInputs[lvl.ArtifactInput] = src
	case it.GetItems().GetRaw() != "":
		var items []any
		if err := json.Unmarshal([]byte(it.GetItems().GetRaw()), &items); err != nil {
			c.errorf(where+".parameterIterator.items.raw", "not a JSON list: %v", err)
			return nil
		}
		lvl.Raw = items
		if lvl.Raw == nil {
			lvl.Raw = []any{}
		}
	case it.GetItems().GetInputParameter() != "":
		in := it.GetItems().GetInputParameter()
		src, ok := params[in]
		if !ok || src == nil {
			c.errorf(where+".parameterIterator.items.inputParameter", "loop input %q has no value", in)
			return nil
		}
		val := src.val
		if src.kind == srcRoot {
			// Root parameters are bound when compiling: expand inline.
			val = c.rootVals[src.root]
		}
		switch {
		case (src.kind == srcConst || (src.kind == srcRoot && val.GetListValue() != nil)) && src.selector == "":
			var items []any
			b, _ := json.Marshal(val.AsInterface())
			if err := json.Unmarshal(b, &items); err != nil || items == nil {
				c.errorf(where+".parameterIterator.items.inputParameter", "constant is not a JSON list")
				return nil
			}
			lvl.Raw = items
		case src.kind == srcItem:
			lvl.FromItem = &launch.ItemRef{Level: src.loop.depth - 1, Selector: src.selector}
		case src.kind == srcResult && src.loop != nil:
			c.errorf(where+".parameterIterator.items.inputParameter", "nested ParallelFor over a list computed inside the outer loop is not supported on Tekton")
			return nil
		default:
			lvl.Input = fmt.Sprintf("level-%d", lc.depth-1)
			lc.inputs[lvl.Input] = src
		}
	default:
		c.errorf(where+".parameterIterator.items", "neither raw items nor an input parameter")
		return nil
	}
	lc.levels = append(lc.levels, lvl)
	if vals, ok := staticIterations(lc.levels); ok {
		if len(vals) == 0 {
			c.errorf(where+".parameterIterator.items", "empty item list: Tekton rejects an empty matrix")
			return nil
		}
		lc.matrix.Value = *tektonv1.NewStructuredValues(vals[0], vals[1:]...)
	} else {
		items := c.itemsTask(s, path, lc, runAfter, when, where)
		if items == "" {
			return nil
		}
		lc.matrix.Value = *tektonv1.NewStructuredValues("$(tasks." + items + ".results." + itemsResult + "[*])")
	}
	if lim := t.GetIteratorPolicy().GetParallelismLimit(); lim > 0 {
		c.unbounded = append(c.unbounded, lc.name)
	}
	bodyParams := map[string]*source{}
	for k, v := range params {
		bodyParams[k] = v
	}
	bodyArtifacts := map[string]*source{}
	for k, v := range artifacts {
		bodyArtifacts[k] = v
	}
	if itemInput != "" {
		if t.GetArtifactIterator() != nil {
			bodyArtifacts[itemInput] = &source{kind: srcItem, loop: lc}
		} else {
			bodyParams[itemInput] = &source{kind: srcItem, loop: lc}
		}
	}
	return c.dag(s, path, t.GetComponentRef().GetName(), comp, bodyParams, bodyArtifacts, runAfter, when, lc, where)
}

// staticIterations expands the product of levels at compile time when all
// of them are static lists (as the launcher's items subcommand does at run
// time for the others).
func staticIterations(levels []launch.Level) ([]string, bool) {
	for _, l := range levels {
		if l.Raw == nil {
			return nil, false
		}
	}
	iters := []launch.Iteration{{}}
	for _, l := range levels {
		var next []launch.Iteration
		for _, prefix := range iters {
			for i, item := range l.Raw {
				raw, _ := json.Marshal(item) // decoded from JSON, so it encodes
				next = append(next, launch.Iteration{
					Index: i, Item: raw,
					Path:  append(append([]int(nil), prefix.Path...), i),
					Items: append(append([]json.RawMessage(nil), prefix.Items...), raw),
				})
			}
		}
		iters = next
	}
	out := make([]string, len(iters))
	for i, it := range iters {
		if len(levels) == 1 {
			it.Path, it.Items = nil, nil
		}
		b, _ := json.Marshal(it)
		out[i] = string(b)
	}
	return out, true
}

// pipelineRun assembles the object.
func (c *compiler) pipelineRun() *tektonv1.PipelineRun {
	labels := map[string]string{}
	for k, v := range c.opts.Labels {
		labels[k] = v
	}
	labels[compile.LabelRunID] = c.opts.RunID
	if c.opts.Team != "" {
		labels[compile.LabelTeam] = c.opts.Team
	}
	if c.opts.PipelineVersionID != "" {
		labels[compile.LabelPipelineVersion] = c.opts.PipelineVersionID
	}
	var ann map[string]string
	if len(c.unbounded) > 0 || len(c.backoff) > 0 || len(c.unmapped) > 0 || c.opts.Reports() {
		ann = map[string]string{}
		if c.opts.Reports() {
			ann[launch.AnnotationLauncherReports] = "true"
		}
		if len(c.unmapped) > 0 {
			ann[AnnotationUnmappedOutputs] = strings.Join(c.unmapped, ",")
		}
		if len(c.unbounded) > 0 {
			sort.Strings(c.unbounded)
			ann[AnnotationUnboundedParallelism] = strings.Join(c.unbounded, ",")
		}
		if len(c.backoff) > 0 {
			ann[AnnotationRetryBackoffIgnored] = strings.Join(sortedKeys(c.backoff), ",")
		}
	}
	sort.Slice(c.tasks, func(i, j int) bool { return c.tasks[i].Name < c.tasks[j].Name })
	sort.Slice(c.finally, func(i, j int) bool { return c.finally[i].Name < c.finally[j].Name })
	sort.Slice(c.runSpecs, func(i, j int) bool { return c.runSpecs[i].PipelineTaskName < c.runSpecs[j].PipelineTaskName })
	pr := &tektonv1.PipelineRun{
		TypeMeta: metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "PipelineRun"},
		ObjectMeta: metav1.ObjectMeta{
			Name: objectName(c.opts.RunID), Namespace: c.opts.Namespace,
			Labels: labels, Annotations: ann,
		},
		Spec: tektonv1.PipelineRunSpec{
			PipelineSpec: &tektonv1.PipelineSpec{
				DisplayName: c.p.Spec.GetPipelineInfo().GetDisplayName(),
				Description: c.p.Spec.GetPipelineInfo().GetDescription(),
				Params:      c.params,
				Tasks:       c.tasks,
				Finally:     c.finally,
				Results:     c.results,
			},
			Params: c.values,
			// KFP runs have no overall deadline; Tekton's default is one hour.
			Timeouts:     &tektonv1.TimeoutFields{Pipeline: &metav1.Duration{}},
			TaskRunSpecs: c.runSpecs,
		},
	}
	if c.opts.ServiceAccount != "" {
		pr.Spec.TaskRunTemplate.ServiceAccountName = c.opts.ServiceAccount
	}
	if c.workspace != nil {
		pr.Spec.PipelineSpec.Workspaces = []tektonv1.PipelineWorkspaceDeclaration{{Name: workspaceName}}
		pr.Spec.Workspaces = []tektonv1.WorkspaceBinding{{Name: workspaceName, VolumeClaimTemplate: c.workspace}}
	}
	return pr
}

// dedupe sorts names and drops repeats and self.
func dedupe(names []string, self string) []string {
	sort.Strings(names)
	out := names[:0:0]
	for i, n := range names {
		if n == self || (i > 0 && n == names[i-1]) {
			continue
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Validate runs Tekton's own validation on pr with the feature flags of
// flags applied over Tekton's defaults (nil = defaults only). Compile does
// not call it (Tekton compiles regular expressions on every call: about
// 5 ms for a two-task pipeline against 50 µs for Compile); the tests run it
// on every corpus pipeline, and a caller about to create the object may.
func Validate(ctx context.Context, pr *tektonv1.PipelineRun, flags map[string]string) error {
	ctx, err := withFlags(ctx, flags)
	if err != nil {
		return err
	}
	if fe := pr.Validate(ctx); fe != nil {
		return fe
	}
	return nil
}
