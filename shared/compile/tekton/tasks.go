package tekton

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/launch"
)

// binding collects, for one pipeline task, the Tekton parameters and the
// launcher arguments its inputs turn into.
type binding struct {
	c         *compiler
	where     string
	loop      *loopCtx // the matrix the consuming task runs in
	finally   bool
	ptParams  tektonv1.Params
	specs     tektonv1.ParamSpecs
	params    map[string]string // launcher --param
	artifacts map[string]string // launcher --artifact
	lists     []listArg
	ext       launch.Extra
	srcs      map[string]*source // the task's resolved parameter inputs
}

func (c *compiler) newBinding(where string, loop *loopCtx, finally bool) *binding {
	return &binding{c: c, where: where, loop: loop, finally: finally,
		params: map[string]string{}, artifacts: map[string]string{}}
}

// taskParam adds a string parameter to the task and returns its reference.
func (b *binding) taskParam(name, value string) string {
	b.ptParams = append(b.ptParams, tektonv1.Param{Name: name, Value: *tektonv1.NewStructuredValues(value)})
	b.specs = append(b.specs, tektonv1.ParamSpec{Name: name, Type: tektonv1.ParamTypeString})
	return "$(params." + name + ")"
}

// bind passes one input (artifact or not) of KFP type typ to the launcher.
func (b *binding) bind(name string, src *source, artifact bool, typ pipelinespec.ParameterType_ParameterTypeEnum) {
	if src == nil {
		return // optional input left unbound
	}
	path := b.where + ".inputs.parameters['" + name + "']"
	prefix, dest := "p-", b.params
	if artifact {
		path = b.where + ".inputs.artifacts['" + name + "']"
		prefix, dest = "a-", b.artifacts
	}
	pname := prefix + compile.DNSLabel(name)
	if src.selector != "" && src.kind != srcItem {
		if b.ext.Selectors == nil {
			b.ext.Selectors = map[string]string{}
		}
		b.ext.Selectors[name] = src.selector
	}
	switch src.kind {
	case srcOneOf:
		if b.ext.OneOf == nil {
			b.ext.OneOf = map[string][]launch.OneOfCandidate{}
		}
		for i, cand := range src.candidates {
			oc := launch.OneOfCandidate{Input: fmt.Sprintf("pf-oneof-%d-%s", i, name)}
			plain := *cand
			plain.guards = nil
			b.bind(oc.Input, &plain, artifact, typ)
			for j, g := range cand.guards {
				gname := fmt.Sprintf("pf-oneof-%d-%d-%s", i, j, name)
				b.bind(gname, g, false, pipelinespec.ParameterType_STRING)
				oc.Guards = append(oc.Guards, gname)
			}
			b.ext.OneOf[name] = append(b.ext.OneOf[name], oc)
		}
	case srcMissing:
		b.c.errorf(path, "%s", src.lit)
	case srcConst:
		v := launch.EncodeParam(src.val, typ)
		if b.c.workspace != nil {
			// The SDK binds workspace paths as this constant placeholder;
			// the workspace is mounted at a fixed path, so resolve it here.
			v = strings.ReplaceAll(v, "{{$.workspace_path}}", WorkspaceMountPath)
		}
		if hasEngineRef(v) {
			b.c.errorf(path, "constant %q contains a Tekton variable reference, which Tekton would substitute", v)
			return
		}
		dest[name] = v
	case srcRoot:
		dest[name] = b.taskParam(pname, "$(params."+src.root+")")
	case srcStatus:
		if !b.finally {
			b.c.errorf(path, "PipelineTaskFinalStatus is only available to exit-handler (finally) tasks on Tekton")
			return
		}
		dest[name] = b.taskParam(pname, src.lit)
		// Tekton only gives statuses; the launcher completes KFP's
		// PipelineTaskFinalStatus from this.
		if b.ext.FinalStatus == nil {
			b.ext.FinalStatus = map[string]launch.FinalStatusSource{}
		}
		b.ext.FinalStatus[name] = launch.FinalStatusSource{Task: src.task, Run: b.c.opts.RunID, Leaves: src.leaves}
	case srcItem:
		if !b.loop.within(src.loop) {
			b.c.errorf(path, "loop item used outside its ParallelFor")
			return
		}
		if b.ext.IterationInputs == nil {
			b.ext.IterationInputs = map[string]string{}
		}
		b.ext.IterationInputs[name] = src.selector
		if b.loop.depth > 1 {
			if b.ext.IterationLevels == nil {
				b.ext.IterationLevels = map[string]int{}
			}
			b.ext.IterationLevels[name] = src.loop.depth - 1
		}
		if artifact {
			b.ext.IterationArtifacts = append(b.ext.IterationArtifacts, name)
		}
	case srcResult:
		ref := "$(tasks." + src.task + ".results." + src.result
		if src.loop == nil {
			dest[name] = b.taskParam(pname, ref+")")
			return
		}
		// The producer is matrixed: its results only exist as a whole array.
		perIteration := b.loop.within(src.loop)
		list := "l" + pname
		count := "n" + pname
		// Written like Tekton's own examples: a string holding the whole
		// array reference, which Tekton expands into the array.
		b.ptParams = append(b.ptParams, tektonv1.Param{Name: list, Value: *tektonv1.NewStructuredValues(ref + "[*])")})
		b.specs = append(b.specs, tektonv1.ParamSpec{Name: list, Type: tektonv1.ParamTypeArray})
		// The count of the results themselves, not $(tasks.T.matrix.length):
		// Tekton computes that from the matrix as written, where a fan-out
		// over another task's results counts as one combination.
		cnt := b.taskParam(count, "$(tasks."+src.task+".matrix."+src.result+".length)")
		b.lists = append(b.lists, listArg{artifact: artifact, name: name, count: cnt, elements: "$(params." + list + "[*])"})
		if b.ext.ListInputs == nil {
			b.ext.ListInputs = map[string]launch.ListInput{}
		}
		// Every element is a result envelope {"path":[..],"value":V}
		// (launch.Extra.ResultEnvelope): Tekton orders a matrix's aggregated
		// results by TaskRun name, not by iteration.
		li := launch.ListInput{PerIteration: perIteration, Enveloped: true}
		switch {
		case perIteration:
			li.Level = src.loop.depth - 1
		default:
			// Collected: keep the elements under this task's own iteration
			// of the loops both share (Level of them), nested into lists by
			// the remaining levels.
			for x := src.loop.parent; x != nil; x = x.parent {
				if b.loop.within(x) {
					li.Level = x.depth
					break
				}
			}
		}
		if !artifact {
			li.ElementType = src.typ.String()
		}
		b.ext.ListInputs[name] = li
	}
}

// guard passes the per-iteration condition results the task depends on;
// the launcher skips the iteration unless every one is "true".
func (b *binding) guard(guards []*source) {
	for i, g := range guards {
		name := fmt.Sprintf("pf-guard-%d", i)
		b.bind(name, g, false, pipelinespec.ParameterType_STRING)
		b.ext.Guards = append(b.ext.Guards, name)
	}
}

// executorTask compiles a container or importer task.
func (c *compiler) executorTask(s *scope, path []string, comp *pipelinespec.ComponentSpec, t *pipelinespec.PipelineTaskSpec,
	params, artifacts map[string]*source, runAfter []string, when tektonv1.WhenExpressions, finally bool, where string) *taskOut {
	label := comp.GetExecutorLabel()
	exec, err := c.executor(label)
	if err != nil {
		c.errorf(where, "%v", err)
		return nil
	}
	name := c.names.name(path, "")
	cfg := launch.TaskConfig{
		RunID: c.opts.RunID, TaskID: name, TaskName: path[len(path)-1],
		PipelineRoot: c.pipelineRoot(),
		CacheEnabled: t.GetCachingOptions().GetEnableCache() && !c.opts.CachingDisabled,
	}
	if err := cfg.SetComponent(comp); err != nil {
		c.errorf(where, "%v", err)
		return nil
	}
	b := c.newBinding(where, s.loop, finally)
	b.ext.ResultEnvelope = s.loop != nil
	b.srcs = params
	b.guard(s.guards)
	inDefs := comp.GetInputDefinitions()
	for _, in := range sortedKeys(params) {
		typ := pipelinespec.ParameterType_STRING
		if d, ok := inDefs.GetParameters()[in]; ok {
			typ = paramType(d)
		}
		b.bind(in, params[in], false, typ)
	}
	for _, in := range sortedKeys(artifacts) {
		b.bind(in, artifacts[in], true, 0)
	}

	out := &taskOut{name: name, loop: s.loop, finally: finally, guards: s.guards, outTypes: map[string]pipelinespec.ParameterType_ParameterTypeEnum{}}
	var results []tektonv1.TaskResult
	for _, o := range sortedKeys(comp.GetOutputDefinitions().GetParameters()) {
		out.outTypes[o] = paramType(comp.GetOutputDefinitions().GetParameters()[o])
		results = append(results, tektonv1.TaskResult{Name: paramResult(o), Type: tektonv1.ResultsTypeString})
	}
	for _, o := range sortedKeys(comp.GetOutputDefinitions().GetArtifacts()) {
		results = append(results, tektonv1.TaskResult{Name: artifactResult(o), Type: tektonv1.ResultsTypeString})
	}
	if !finally {
		out.leaves = []string{name}
	}

	var spec tektonv1.TaskSpec
	switch {
	case exec.GetContainer() != nil:
		spec, err = c.containerSpec(cfg, exec.GetContainer(), label, b)
	case exec.GetImporter() != nil:
		spec, err = c.importerSpec(cfg, exec.GetImporter(), label, b)
	default:
		err = fmt.Errorf("executor %q is neither a container nor an importer (resolver and custom jobs are not supported)", label)
	}
	if err != nil {
		c.errorf(where, "%v", err)
		return nil
	}
	c.reportEnv(&spec, cfg)
	spec.Results = results
	pt := tektonv1.PipelineTask{
		Name:     name,
		TaskSpec: &tektonv1.EmbeddedTask{TaskSpec: spec, Metadata: taskLabel(path[len(path)-1])},
		When:     when,
		RunAfter: dedupe(runAfter, name),
	}
	if rp := t.GetRetryPolicy(); rp.GetMaxRetryCount() > 0 {
		pt.Retries = int(rp.GetMaxRetryCount())
		if rp.GetBackoffDuration() != nil || rp.GetBackoffFactor() != 0 || rp.GetBackoffMaxDuration() != nil {
			c.backoff[name] = true
		}
	}
	if s.loop != nil {
		pt.Matrix = &tektonv1.Matrix{Params: tektonv1.Params{s.loop.matrix}}
	}
	if err := c.applyKubernetes(&pt, label, s, b, where); err != nil {
		c.errorf(where, "%v", err)
		return nil
	}
	pt.TaskSpec.Params = b.taskParams()
	pt.Params = b.ptParams
	if c.workspace != nil {
		useWorkspace(&pt)
	}
	if finally {
		c.finally = append(c.finally, pt)
	} else {
		c.tasks = append(c.tasks, pt)
	}
	return out
}

// args appends the extension arguments b collected to a launcher command
// line built by shared/launch.
func (b *binding) args(base []string) ([]string, error) {
	iter := ""
	if b.loop != nil {
		iter = "$(params." + iterationParam + ")"
	}
	return extend(base, b.ext, iter, b.lists)
}

func (b *binding) taskParams() tektonv1.ParamSpecs {
	specs := append(tektonv1.ParamSpecs(nil), b.specs...)
	if b.loop != nil {
		specs = append(specs, tektonv1.ParamSpec{Name: iterationParam, Type: tektonv1.ParamTypeString})
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	sort.Slice(b.ptParams, func(i, j int) bool { return b.ptParams[i].Name < b.ptParams[j].Name })
	return specs
}

// containerSpec is the two-step task of a container executor.
func (c *compiler) containerSpec(cfg launch.TaskConfig, ctr *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, label string, b *binding) (tektonv1.TaskSpec, error) {
	if ctr.GetLifecycle() != nil {
		return tektonv1.TaskSpec{}, fmt.Errorf("executor %q: container lifecycle hooks are not supported", label)
	}
	cfg.Container = launch.ContainerFromSpec(ctr)
	args, err := b.args(cfg.Args(b.params, b.artifacts, resultsDir))
	if err != nil {
		return tektonv1.TaskSpec{}, err
	}
	res, err := c.resources(ctr, label, b)
	if err != nil {
		return tektonv1.TaskSpec{}, err
	}
	mount := corev1.VolumeMount{Name: launcherVolume, MountPath: launcherDir}
	spec := tektonv1.TaskSpec{
		Steps: []tektonv1.Step{
			{
				Name: "pipefn-init", Image: c.opts.LauncherImage,
				Command:      []string{"/launcher", "copy", launcherDir + "/launcher"},
				VolumeMounts: []corev1.VolumeMount{mount},
			},
			{
				Name: "main", Image: ctr.GetImage(),
				Command: []string{launcherDir + "/launcher"}, Args: args,
				ComputeResources: res,
				VolumeMounts:     []corev1.VolumeMount{mount},
			},
		},
		Volumes: []corev1.Volume{{Name: launcherVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	return spec, nil
}

// launcherSpec is a one-step task in the launcher image (cond, items,
// importer).
func (c *compiler) launcherSpec(sub string, base []string, b *binding) (tektonv1.TaskSpec, error) {
	args, err := b.args(base)
	if err != nil {
		return tektonv1.TaskSpec{}, err
	}
	return tektonv1.TaskSpec{
		Steps: []tektonv1.Step{{
			Name: sub, Image: c.opts.LauncherImage, Command: []string{"/launcher"}, Args: args,
		}},
	}, nil
}

func (c *compiler) importerSpec(cfg launch.TaskConfig, imp *pipelinespec.PipelineDeploymentConfig_ImporterSpec, label string, b *binding) (tektonv1.TaskSpec, error) {
	if raw, ok := c.p.Extras["deploymentSpec.executors['"+label+"'].importer.downloadToWorkspace"]; ok && string(raw) == "true" {
		return tektonv1.TaskSpec{}, fmt.Errorf("importer downloadToWorkspace is not supported yet (the launcher's importer does not copy into the workspace)")
	}
	if err := cfg.SetImporter(imp); err != nil {
		return tektonv1.TaskSpec{}, err
	}
	if len(b.artifacts) > 0 || len(b.lists) > 0 {
		return tektonv1.TaskSpec{}, fmt.Errorf("an importer takes only parameters")
	}
	return c.launcherSpec("importer", cfg.ImporterArgs(b.params, resultsDir), b)
}

// condTask adds "<task>-cond", which evaluates the trigger condition of t
// over t's parameter inputs. It returns the task's name ("" on error) and
// the loop it is matrixed over: a condition inside a ParallelFor body that
// reads the iteration is matrixed like the body. Since a Tekton when
// expression applies to a whole matrix, the tasks it guards skip themselves
// per iteration in the launcher instead (launch.Extra.Guards); so do the
// tasks of a guard-mode scope (see scope.guardMode). asGuard says which.
func (c *compiler) condTask(s *scope, path []string, comp *pipelinespec.ComponentSpec, t *pipelinespec.PipelineTaskSpec, cond string,
	params map[string]*source, runAfter []string, when tektonv1.WhenExpressions, where string) (name string, loop *loopCtx, asGuard bool) {
	name = c.names.name(path, "cond")
	cfg := launch.CondConfig{RunID: c.opts.RunID, TaskID: name, Condition: cond, ParamTypes: map[string]launch.ParameterType{}}

	if s.loop != nil {
		for _, src := range params {
			if src != nil && (src.kind == srcItem || (src.kind == srcResult && src.loop != nil && s.loop.within(src.loop))) {
				loop = s.loop
			}
		}
		for _, g := range s.guards {
			if g.loop != nil {
				loop = s.loop
			}
		}
	}
	b := c.newBinding(where+".triggerPolicy", loop, false)
	b.ext.ResultEnvelope = loop != nil
	for _, in := range sortedKeys(params) {
		typ := pipelinespec.ParameterType_STRING
		if d, ok := comp.GetInputDefinitions().GetParameters()[in]; ok {
			typ = paramType(d)
		}
		cfg.ParamTypes[in] = typ
		b.bind(in, params[in], false, typ)
	}
	b.guard(s.guards)
	spec, err := c.launcherSpec("cond", cfg.Args(b.params, resultsDir), b)
	if err != nil {
		c.errorf(where, "%v", err)
		return "", nil, false
	}
	spec.Results = []tektonv1.TaskResult{{Name: launch.CondResult, Type: tektonv1.ResultsTypeString}}
	spec.Params = b.taskParams()
	pt := tektonv1.PipelineTask{
		Name: name, TaskSpec: &tektonv1.EmbeddedTask{TaskSpec: spec, Metadata: taskLabel(path[len(path)-1] + "-cond")},
		Params: b.ptParams, When: when, RunAfter: dedupe(append([]string(nil), runAfter...), name),
	}
	if loop != nil {
		pt.Matrix = &tektonv1.Matrix{Params: tektonv1.Params{loop.matrix}}
	}
	c.tasks = append(c.tasks, pt)
	return name, loop, loop != nil || s.guardMode
}

// itemsTask adds "<loop>-items", which expands the loop's levels (see
// launch.Level) into the array result its matrix fans out over.
func (c *compiler) itemsTask(s *scope, path []string, lc *loopCtx, runAfter []string, when tektonv1.WhenExpressions, where string) string {
	name := c.names.name(path, "items")
	cfg := launch.TaskConfig{RunID: c.opts.RunID, TaskID: name, TaskName: path[len(path)-1] + "-items", PipelineRoot: c.pipelineRoot()}
	b := c.newBinding(where+".parameterIterator", nil, false)
	if len(lc.levels) == 1 && lc.levels[0].Input != "" {
		// A single loop over a list: the launcher's plain form.
		b.bind("list", lc.inputs[lc.levels[0].Input], false, pipelinespec.ParameterType_LIST)
	} else {
		for _, in := range sortedKeys(lc.inputs) {
			b.bind(in, lc.inputs[in], false, pipelinespec.ParameterType_LIST)
		}
		for _, in := range sortedKeys(lc.artifactInputs) {
			b.bind(in, lc.artifactInputs[in], true, 0)
		}
		b.ext.Levels = lc.levels
	}
	// launch builds "run ..."; the items subcommand takes the same flags.
	base := cfg.Args(b.params, b.artifacts, resultsDir)
	base[0] = "items"
	spec, err := c.launcherSpec("items", base, b)
	if err != nil {
		c.errorf(where, "%v", err)
		return ""
	}
	spec.Results = []tektonv1.TaskResult{{Name: itemsResult, Type: tektonv1.ResultsTypeArray}}
	spec.Params = b.taskParams()
	c.tasks = append(c.tasks, tektonv1.PipelineTask{
		Name: name, TaskSpec: &tektonv1.EmbeddedTask{TaskSpec: spec, Metadata: taskLabel(path[len(path)-1] + "-items")},
		Params: b.ptParams, When: when, RunAfter: dedupe(append([]string(nil), runAfter...), name),
	})
	return name
}

// taskLabel labels a task's TaskRuns and pods with the IR task name
// (compile.LabelTask), for status reports.
func taskLabel(irName string) tektonv1.PipelineTaskMetadata {
	v := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, irName)
	if len(v) > maxName {
		v = v[:maxName]
	}
	v = strings.Trim(v, "-_.")
	return tektonv1.PipelineTaskMetadata{Labels: map[string]string{compile.LabelTask: v}}
}

func (c *compiler) executor(label string) (*pipelinespec.PipelineDeploymentConfig_ExecutorSpec, error) {
	if label == "" {
		return nil, fmt.Errorf("component has neither a DAG nor an executor")
	}
	ds := c.p.Spec.GetDeploymentSpec()
	if ds == nil {
		return nil, fmt.Errorf("no deploymentSpec for executor %q", label)
	}
	raw, ok := ds.GetFields()["executors"].GetStructValue().GetFields()[label]
	if !ok {
		return nil, fmt.Errorf("deploymentSpec has no executor %q", label)
	}
	b, err := raw.MarshalJSON()
	if err != nil {
		return nil, err
	}
	exec := &pipelinespec.PipelineDeploymentConfig_ExecutorSpec{}
	if err := unmarshalLenient(b, exec); err != nil {
		return nil, fmt.Errorf("executor %q: %w", label, err)
	}
	return exec, nil
}

func (c *compiler) pipelineRoot() string {
	if c.opts.PipelineRoot != "" {
		return c.opts.PipelineRoot
	}
	if r := c.p.RuntimeConfig.PipelineRoot(); r != "" {
		return r
	}
	return c.p.Spec.GetDefaultPipelineRoot()
}

// withFlags returns ctx carrying Tekton's config with flags applied over
// the defaults.
func withFlags(ctx context.Context, flags map[string]string) (context.Context, error) {
	ff, err := config.NewFeatureFlagsFromMap(flags)
	if err != nil {
		return nil, fmt.Errorf("feature flags: %w", err)
	}
	defaults, err := config.NewDefaultsFromMap(map[string]string{})
	if err != nil {
		return nil, err
	}
	return config.ToContext(ctx, &config.Config{FeatureFlags: ff, Defaults: defaults}), nil
}
