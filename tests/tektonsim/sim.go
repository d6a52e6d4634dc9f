// Package tektonsim runs a compiled Tekton PipelineRun (shared/compile/tekton)
// on the local machine the way Tekton's PipelineRun reconciler would, so that
// compiled loops, conditions, OneOf and exit handlers can be checked end to
// end without a cluster. Every TaskRun's launcher step runs as a real local
// process (the built cmd/launcher); the user's command runs on the host.
//
// What it models, from Tekton v1.11's pkg/reconciler/pipelinerun/resources
// and pkg/apis/pipeline/v1:
//
//   - Tasks run when every task they depend on (runAfter and every
//     $(tasks.T...) reference) is done; finally tasks run after all DAG
//     tasks. Once a TaskRun fails no new DAG task starts (the run is
//     "stopping"), finally tasks still run.
//   - A task is skipped, in this order, when its when expressions are false
//     (reason WhenExpressionsSkip, which does not propagate), when a parent
//     was skipped for any other reason (ParentTasksSkip), when it reads a
//     result of a task skipped by its when expressions (MissingResultsSkip),
//     or when a matrix parameter is an empty array.
//   - A when expression is true when its input, after substitution, is
//     (operator in) or is not (notin) one of its substituted values.
//   - A matrix with one parameter fans out into one TaskRun per value named
//     kmeta.ChildName(pr, "-<task>-<i>") (cut to fit 63 characters with the
//     index kept), a single combination into "<pr>-<task>".
//   - Matrixed tasks' string results are aggregated into arrays ordered by
//     TaskRun name (so "-10" sorts before "-2"); a TaskRun missing a result
//     adds nothing. $(tasks.T.matrix.R.length) is the number of R results
//     the TaskRuns wrote; $(tasks.T.matrix.length) counts the combinations of
//     the matrix as written in the spec, where a reference to another task's
//     array result is one value (ApplyPipelineTaskContexts in Tekton v1.11).
//   - $(params.x), $(tasks.T.results.R), $(tasks.T.results.R[*]) (an array
//     reference standing alone expands into separate values),
//     $(tasks.T.status) (Succeeded, Failed or None) and $(tasks.status)
//     (Succeeded, Failed, or Completed when a DAG task was skipped).
//   - retries: a failed TaskRun is retried up to PipelineTask.Retries times.
//
// Not modelled: timeouts, workspaces and volumes, pod templates, sidecars,
// CEL when expressions, matrix include and multi-parameter matrices (these
// are errors), and the pipefn-init step, which only copies the launcher
// into /pipefn: the simulator calls the built launcher directly.
package tektonsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"knative.dev/pkg/kmeta"
)

// Options configure a simulated run.
type Options struct {
	// Launcher is the path of the built cmd/launcher binary; it replaces
	// /pipefn/launcher and /launcher in step commands.
	Launcher string
	// WorkDir holds one results directory per TaskRun.
	WorkDir string
	// Env is added to every step's environment.
	Env []string
	// Logs receives every step's output, prefixed by the TaskRun name; nil
	// discards it.
	Logs io.Writer
}

// TaskRun is one executed (or attempted) TaskRun.
type TaskRun struct {
	Name         string // <pr>-<task> or <pr>-<task>-<i>
	PipelineTask string
	Labels       map[string]string // the embedded task's metadata labels
	Finally      bool
	Params       map[string]value // after substitution, matrix value included
	Args         []string         // the last step's arguments after substitution
	Results      map[string]string
	Succeeded    bool
	Attempts     int
	Output       string // the last step's stdout and stderr

	resultSpecs []tektonv1.TaskResult
}

// Skip records why a pipeline task was skipped.
type Skip struct {
	Task   string
	Reason string // WhenExpressionsSkip, ParentTasksSkip, MissingResultsSkip, PipelineRunStopping, EmptyArrayInMatrixParams
}

// Result is the outcome of a simulated PipelineRun.
type Result struct {
	Succeeded bool
	TaskRuns  []*TaskRun // in execution order
	Skipped   []Skip
}

// value is a Tekton parameter value: a string or an array of strings.
type value struct {
	isArray bool
	str     string
	arr     []string
}

func (v value) String() string {
	if v.isArray {
		return fmt.Sprintf("%q", v.arr)
	}
	return strconv.Quote(v.str)
}

// ptState is a pipeline task's outcome.
type ptState struct {
	done     bool
	skipped  string // skip reason, "" when it ran
	runs     []*TaskRun
	matrixed bool
}

func (s *ptState) failed() bool {
	for _, r := range s.runs {
		if !r.Succeeded {
			return true
		}
	}
	return false
}

type sim struct {
	pr      *tektonv1.PipelineRun
	opts    Options
	params  map[string]value
	states  map[string]*ptState
	finally map[string]bool
	res     *Result
}

// Run simulates pr. It returns an error for what Tekton would reject or
// what the simulator does not model; task failures are in Result.
func Run(ctx context.Context, pr *tektonv1.PipelineRun, opts Options) (*Result, error) {
	if pr.Spec.PipelineSpec == nil {
		return nil, fmt.Errorf("PipelineRun %s has no embedded pipelineSpec", pr.Name)
	}
	if opts.Launcher == "" || opts.WorkDir == "" {
		return nil, fmt.Errorf("tektonsim: Options.Launcher and Options.WorkDir are required")
	}
	s := &sim{pr: pr, opts: opts, params: map[string]value{}, states: map[string]*ptState{}, finally: map[string]bool{}, res: &Result{}}
	spec := pr.Spec.PipelineSpec
	for _, p := range spec.Params {
		if p.Default != nil {
			s.params[p.Name] = fromParamValue(*p.Default)
		}
	}
	for _, p := range pr.Spec.Params {
		s.params[p.Name] = fromParamValue(p.Value)
	}
	for _, pt := range spec.Tasks {
		s.states[pt.Name] = &ptState{matrixed: pt.Matrix != nil}
	}
	for _, pt := range spec.Finally {
		s.states[pt.Name] = &ptState{matrixed: pt.Matrix != nil}
		s.finally[pt.Name] = true
	}
	if err := s.runAll(ctx, spec.Tasks, false); err != nil {
		return nil, err
	}
	if err := s.runAll(ctx, spec.Finally, true); err != nil {
		return nil, err
	}
	s.res.Succeeded = true
	for _, st := range s.states {
		if st.failed() {
			s.res.Succeeded = false
		}
	}
	return s.res, nil
}

func fromParamValue(p tektonv1.ParamValue) value {
	if p.Type == tektonv1.ParamTypeArray {
		return value{isArray: true, arr: append([]string{}, p.ArrayVal...)}
	}
	return value{str: p.StringVal}
}

var taskRef = regexp.MustCompile(`\$\(tasks\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.`)

// deps are the pipeline tasks pt waits for: runAfter and references.
func deps(pt tektonv1.PipelineTask) []string {
	set := map[string]bool{}
	for _, r := range pt.RunAfter {
		set[r] = true
	}
	var texts []string
	collect := func(ps tektonv1.Params) {
		for _, p := range ps {
			texts = append(texts, p.Value.StringVal)
			texts = append(texts, p.Value.ArrayVal...)
		}
	}
	collect(pt.Params)
	if pt.Matrix != nil {
		collect(pt.Matrix.Params)
	}
	for _, w := range pt.When {
		texts = append(texts, w.Input)
		texts = append(texts, w.Values...)
	}
	for _, t := range texts {
		for _, m := range taskRef.FindAllStringSubmatch(t, -1) {
			set[m[1]] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runAll runs tasks in waves, as the reconciler schedules them: every task
// whose dependencies are done is decided (skipped or started) against the
// state at the start of the wave, so tasks that became ready together all
// start even if one of them then fails; their TaskRuns run concurrently.
func (s *sim) runAll(ctx context.Context, tasks []tektonv1.PipelineTask, finally bool) error {
	pending := append([]tektonv1.PipelineTask(nil), tasks...)
	for len(pending) > 0 {
		var ready, rest []tektonv1.PipelineTask
		for _, pt := range pending {
			ok := true
			for _, d := range deps(pt) {
				st, known := s.states[d]
				if !known {
					return fmt.Errorf("task %s depends on unknown task %s", pt.Name, d)
				}
				if s.finally[d] && !finally {
					return fmt.Errorf("task %s depends on finally task %s", pt.Name, d)
				}
				if !st.done {
					ok = false
				}
			}
			if ok {
				ready = append(ready, pt)
			} else {
				rest = append(rest, pt)
			}
		}
		if len(ready) == 0 {
			names := make([]string, 0, len(pending))
			for _, pt := range pending {
				names = append(names, pt.Name)
			}
			return fmt.Errorf("dependency cycle among %v", names)
		}
		stopping := !finally && s.stopping()
		type job struct {
			pt  tektonv1.PipelineTask
			trs []*TaskRun
		}
		var jobs []job
		for _, pt := range ready {
			trs, err := s.plan(pt, finally, stopping)
			if err != nil {
				return fmt.Errorf("task %s: %w", pt.Name, err)
			}
			if trs != nil {
				jobs = append(jobs, job{pt, trs})
			}
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		errs := make([]error, 0)
		var mu sync.Mutex
		for _, j := range jobs {
			for _, tr := range j.trs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					if err := s.execute(ctx, j.pt, tr); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if len(errs) > 0 {
			return errs[0]
		}
		for _, j := range jobs {
			st := s.states[j.pt.Name]
			st.runs = j.trs
			st.done = true
			s.res.TaskRuns = append(s.res.TaskRuns, j.trs...)
		}
		pending = rest
	}
	return nil
}

func (s *sim) stopping() bool {
	for name, st := range s.states {
		if !s.finally[name] && st.failed() {
			return true
		}
	}
	return false
}

func (s *sim) skip(pt tektonv1.PipelineTask, reason string) {
	s.states[pt.Name].done = true
	s.states[pt.Name].skipped = reason
	s.res.Skipped = append(s.res.Skipped, Skip{Task: pt.Name, Reason: reason})
}

// plan decides whether pt is skipped (nil TaskRuns) and otherwise returns
// its TaskRuns with their parameters substituted.
func (s *sim) plan(pt tektonv1.PipelineTask, finally, stopping bool) ([]*TaskRun, error) {
	if pt.TaskSpec == nil {
		return nil, fmt.Errorf("only embedded taskSpecs are simulated")
	}
	if stopping {
		s.skip(pt, "PipelineRunStopping")
		return nil, nil
	}
	// When expressions first; a reference that cannot be resolved stays
	// literal, as Tekton's substitution leaves unknown variables alone.
	for _, w := range pt.When {
		if w.CEL != "" {
			return nil, fmt.Errorf("CEL when expressions are not simulated")
		}
		in, err := s.subst(w.Input, finally, true)
		if err != nil {
			return nil, err
		}
		var vals []string
		for _, v := range w.Values {
			x, err := s.substValue(v, finally, true)
			if err != nil {
				return nil, err
			}
			if x.isArray {
				vals = append(vals, x.arr...)
			} else {
				vals = append(vals, x.str)
			}
		}
		found := false
		for _, v := range vals {
			if v == in.str {
				found = true
			}
		}
		op := string(w.Operator)
		if (op == "in" && !found) || (op == "notin" && found) {
			s.skip(pt, "WhenExpressionsSkip")
			return nil, nil
		}
		if op != "in" && op != "notin" {
			return nil, fmt.Errorf("when operator %q", op)
		}
	}
	if !finally {
		for _, d := range deps(pt) {
			if r := s.states[d].skipped; r != "" && r != "WhenExpressionsSkip" {
				s.skip(pt, "ParentTasksSkip")
				return nil, nil
			}
		}
	}
	for _, d := range deps(pt) {
		if s.states[d].skipped != "" && referencesResults(pt, d) {
			s.skip(pt, "MissingResultsSkip")
			return nil, nil
		}
	}
	// Pipeline task parameters.
	params := map[string]value{}
	for _, p := range pt.Params {
		v, err := s.substParam(p.Value, finally)
		if finally && errors.Is(err, errUnresolved) {
			// A finally task reading a result its producer never wrote
			// (it failed) is skipped.
			s.skip(pt, "MissingResultsSkip")
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("param %s: %w", p.Name, err)
		}
		params[p.Name] = v
	}
	combos := []map[string]value{{}}
	if pt.Matrix != nil {
		if len(pt.Matrix.Include) > 0 || len(pt.Matrix.Params) != 1 {
			return nil, fmt.Errorf("only a matrix of one parameter without include is simulated")
		}
		mp := pt.Matrix.Params[0]
		v, err := s.substParam(mp.Value, finally)
		if err != nil {
			return nil, fmt.Errorf("matrix param %s: %w", mp.Name, err)
		}
		if !v.isArray {
			return nil, fmt.Errorf("matrix param %s is not an array: %s", mp.Name, v)
		}
		if len(v.arr) == 0 {
			s.skip(pt, "EmptyArrayInMatrixParams")
			return nil, nil
		}
		combos = combos[:0]
		for _, x := range v.arr {
			combos = append(combos, map[string]value{mp.Name: {str: x}})
		}
	}
	names := runNames(s.pr.Name, pt.Name, len(combos))
	var trs []*TaskRun
	for i, combo := range combos {
		all := map[string]value{}
		for k, v := range params {
			all[k] = v
		}
		for k, v := range combo {
			all[k] = v
		}
		trs = append(trs, &TaskRun{Name: names[i], PipelineTask: pt.Name, Labels: pt.TaskSpec.Metadata.Labels, Finally: finally, Params: all})
	}
	return trs, nil
}

// referencesResults reports whether pt reads a result (or the matrix
// length) of task d.
func referencesResults(pt tektonv1.PipelineTask, d string) bool {
	b, _ := json.Marshal(struct {
		P tektonv1.Params
		M *tektonv1.Matrix
		W tektonv1.WhenExpressions
	}{pt.Params, pt.Matrix, pt.When})
	return bytes.Contains(b, []byte("$(tasks."+d+".results.")) || bytes.Contains(b, []byte("$(tasks."+d+".matrix."))
}

// runNames names the TaskRuns of a pipeline task with n combinations
// (Tekton's getNewRunNames).
func runNames(pr, task string, n int) []string {
	if n == 1 {
		return []string{kmeta.ChildName(pr, "-"+task)}
	}
	out := make([]string, n)
	for i := range n {
		name := kmeta.ChildName(pr, fmt.Sprintf("-%s-%d", task, i))
		if !strings.HasSuffix(name, fmt.Sprintf("-%d", i)) {
			base := kmeta.ChildName(pr, "-"+task)
			base = base[:63-len(fmt.Sprintf("-%d", n))]
			name = fmt.Sprintf("%s-%d", base, i)
		}
		out[i] = name
	}
	return out
}

// errUnresolved marks a reference to a result that does not exist.
var errUnresolved = errors.New("cannot be resolved")

var (
	varRef   = regexp.MustCompile(`\$\(([^()]+)\)`)
	arrayRef = regexp.MustCompile(`^\$\(([^()]+)\[\*\]\)$`)
)

// lookup resolves one variable (without "$(" and ")"); ok=false when it
// cannot be resolved (yet).
func (s *sim) lookup(name string, finally bool) (value, bool, error) {
	parts := strings.Split(name, ".")
	switch {
	case len(parts) == 2 && parts[0] == "params":
		v, ok := s.params[parts[1]]
		return v, ok, nil
	case len(parts) == 2 && parts[0] == "tasks" && parts[1] == "status":
		if !finally {
			return value{}, false, fmt.Errorf("$(tasks.status) outside finally")
		}
		agg := "Succeeded"
		for n, st := range s.states {
			if s.finally[n] {
				continue
			}
			if st.failed() {
				return value{str: "Failed"}, true, nil
			}
			if st.skipped != "" {
				agg = "Completed"
			}
		}
		return value{str: agg}, true, nil
	case len(parts) == 3 && parts[0] == "tasks" && parts[2] == "status":
		st, ok := s.states[parts[1]]
		if !ok || !finally {
			return value{}, false, fmt.Errorf("$(%s): unknown task or outside finally", name)
		}
		switch {
		case st.failed():
			return value{str: "Failed"}, true, nil
		case st.done && st.skipped == "":
			return value{str: "Succeeded"}, true, nil
		}
		return value{str: "None"}, true, nil
	case len(parts) == 4 && parts[0] == "tasks" && parts[2] == "matrix" && parts[3] == "length":
		return value{}, false, fmt.Errorf("$(%s): Tekton counts the matrix as written, not as run; not simulated", name)
	case len(parts) == 5 && parts[0] == "tasks" && parts[2] == "matrix" && parts[4] == "length":
		st, ok := s.states[parts[1]]
		if !ok {
			return value{}, false, fmt.Errorf("$(%s): unknown task", name)
		}
		if !st.done || st.skipped != "" {
			return value{}, false, nil
		}
		n := 0
		for _, r := range st.runs {
			if _, ok := r.Results[parts[3]]; ok {
				n++
			}
		}
		return value{str: strconv.Itoa(n)}, true, nil
	case len(parts) == 4 && parts[0] == "tasks" && parts[2] == "results":
		st, ok := s.states[parts[1]]
		if !ok {
			return value{}, false, fmt.Errorf("$(%s): unknown task", name)
		}
		if !st.done || st.skipped != "" {
			return value{}, false, nil
		}
		if st.matrixed {
			// Aggregated, ordered by TaskRun name.
			runs := append([]*TaskRun(nil), st.runs...)
			sort.Slice(runs, func(i, j int) bool { return runs[i].Name < runs[j].Name })
			out := value{isArray: true, arr: []string{}}
			for _, r := range runs {
				if v, ok := r.Results[parts[3]]; ok {
					out.arr = append(out.arr, v)
				}
			}
			return out, true, nil
		}
		r := st.runs[0]
		v, ok := r.Results[parts[3]]
		if !ok {
			return value{}, false, nil
		}
		for _, res := range r.resultSpecs {
			if res.Name == parts[3] && res.Type == tektonv1.ResultsTypeArray {
				var arr []string
				if err := json.Unmarshal([]byte(v), &arr); err != nil {
					return value{}, false, fmt.Errorf("array result %s of %s is not a JSON array of strings: %w", parts[3], r.Name, err)
				}
				return value{isArray: true, arr: arr}, true, nil
			}
		}
		return value{str: v}, true, nil
	}
	return value{}, false, fmt.Errorf("variable $(%s) is not simulated", name)
}

// substValue substitutes one string that may be a lone array reference.
func (s *sim) substValue(text string, finally, lenient bool) (value, error) {
	if m := arrayRef.FindStringSubmatch(text); m != nil {
		v, ok, err := s.lookup(m[1], finally)
		if err != nil {
			return value{}, err
		}
		if !ok {
			if lenient {
				return value{str: text}, nil
			}
			return value{}, fmt.Errorf("$(%s[*]): %w", m[1], errUnresolved)
		}
		if !v.isArray {
			return value{}, fmt.Errorf("$(%s[*]) is not an array", m[1])
		}
		return v, nil
	}
	return s.subst(text, finally, lenient)
}

// subst replaces every $(var) in text with its string value.
func (s *sim) subst(text string, finally, lenient bool) (value, error) {
	var ferr error
	out := varRef.ReplaceAllStringFunc(text, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok, err := s.lookup(name, finally)
		if err != nil {
			ferr = err
			return ref
		}
		if !ok {
			if !lenient {
				ferr = fmt.Errorf("%s: %w", ref, errUnresolved)
			}
			return ref
		}
		if v.isArray {
			ferr = fmt.Errorf("%s is an array used as a string", ref)
			return ref
		}
		return v.str
	})
	return value{str: out}, ferr
}

// substParam substitutes a pipeline task parameter value.
func (s *sim) substParam(p tektonv1.ParamValue, finally bool) (value, error) {
	switch p.Type {
	case tektonv1.ParamTypeArray:
		out := value{isArray: true, arr: []string{}}
		for _, e := range p.ArrayVal {
			v, err := s.substValue(e, finally, false)
			if err != nil {
				return value{}, err
			}
			if v.isArray {
				out.arr = append(out.arr, v.arr...)
			} else {
				out.arr = append(out.arr, v.str)
			}
		}
		return out, nil
	case tektonv1.ParamTypeObject:
		return value{}, fmt.Errorf("object params are not simulated")
	}
	return s.substValue(p.StringVal, finally, false)
}

// execute runs the TaskRun's last step (retrying as the task says).
func (s *sim) execute(ctx context.Context, pt tektonv1.PipelineTask, tr *TaskRun) error {
	spec := pt.TaskSpec.TaskSpec
	tr.resultSpecs = spec.Results
	// Task-level params: declared types, values from the pipeline task.
	taskParams := map[string]value{}
	for _, ps := range spec.Params {
		v, ok := tr.Params[ps.Name]
		if !ok {
			if ps.Default == nil {
				return fmt.Errorf("TaskRun %s: param %s has no value", tr.Name, ps.Name)
			}
			v = fromParamValue(*ps.Default)
		}
		want := ps.Type == tektonv1.ParamTypeArray
		if v.isArray != want {
			return fmt.Errorf("TaskRun %s: param %s of type %s got %s", tr.Name, ps.Name, ps.Type, v)
		}
		taskParams[ps.Name] = v
	}
	if len(spec.Steps) == 0 {
		return fmt.Errorf("no steps")
	}
	step := spec.Steps[len(spec.Steps)-1]
	resultsDir := filepath.Join(s.opts.WorkDir, tr.Name, "results")
	var args []string
	for _, a := range append(append([]string(nil), step.Command...), step.Args...) {
		if m := arrayRef.FindStringSubmatch(a); m != nil && strings.HasPrefix(m[1], "params.") {
			v, ok := taskParams[strings.TrimPrefix(m[1], "params.")]
			if !ok || !v.isArray {
				return fmt.Errorf("TaskRun %s: %s is not an array param", tr.Name, a)
			}
			args = append(args, v.arr...)
			continue
		}
		var ferr error
		a = varRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := ref[2 : len(ref)-1]
			if !strings.HasPrefix(name, "params.") {
				ferr = fmt.Errorf("step variable %s is not simulated", ref)
				return ref
			}
			v, ok := taskParams[strings.TrimPrefix(name, "params.")]
			if !ok || v.isArray {
				ferr = fmt.Errorf("step variable %s is not a string param", ref)
				return ref
			}
			return v.str
		})
		if ferr != nil {
			return fmt.Errorf("TaskRun %s: %w", tr.Name, ferr)
		}
		if a == "/tekton/results" {
			a = resultsDir
		}
		args = append(args, a)
	}
	if len(args) == 0 || (args[0] != "/pipefn/launcher" && args[0] != "/launcher") {
		return fmt.Errorf("TaskRun %s: step %s does not run the launcher: %q", tr.Name, step.Name, args)
	}
	tr.Args = args[1:]
	env := append(os.Environ(), s.opts.Env...)
	for _, e := range step.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	for attempt := 0; attempt <= pt.Retries; attempt++ {
		if err := os.RemoveAll(resultsDir); err != nil {
			return err
		}
		if err := os.MkdirAll(resultsDir, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, s.opts.Launcher, tr.Args...)
		cmd.Env = env
		cmd.Dir = filepath.Join(s.opts.WorkDir, tr.Name)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		tr.Attempts = attempt + 1
		tr.Output = out.String()
		if s.opts.Logs != nil {
			for _, line := range strings.Split(strings.TrimRight(tr.Output, "\n"), "\n") {
				fmt.Fprintf(s.opts.Logs, "[%s] %s\n", tr.Name, line)
			}
		}
		if err == nil {
			tr.Succeeded = true
			break
		}
		if _, ok := err.(*exec.ExitError); !ok {
			return fmt.Errorf("TaskRun %s: %w", tr.Name, err)
		}
	}
	tr.Results = map[string]string{}
	if tr.Succeeded {
		for _, r := range spec.Results {
			b, err := os.ReadFile(filepath.Join(resultsDir, r.Name))
			if err != nil {
				continue // a missing result: consumers are skipped or fail
			}
			tr.Results[r.Name] = string(b)
		}
	}
	return nil
}
