package local

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/pipefn/pipefn/shared/ir"
)

var update = flag.Bool("update", false, "rewrite golden files")

// smokeScript writes every output it is given: args come in triples
// (p VALUE FILE) for a parameter, (a - FILE) for an artifact.
const smokeScript = `while [ $# -ge 3 ]; do
  mkdir -p "$(dirname "$3")"
  if [ "$1" = p ]; then printf %s "$2" > "$3"; else printf data > "$3"; fi
  shift 3
done`

// selectorKey finds the keys parameterExpressionSelectors read.
var selectorKey = regexp.MustCompile(`parseJson\(string_value\)\[\\?"([^"\\]+)\\?"\]`)

// smokeList is the LIST a stand-in returns: dicts with every key the
// pipeline's selectors read (loops over them pick fields), else strings.
func smokeList(data []byte) string {
	keys := map[string]bool{}
	for _, m := range selectorKey.FindAllSubmatch(data, -1) {
		keys[string(m[1])] = true
	}
	if len(keys) == 0 {
		return `["1","2"]`
	}
	item := map[string]string{}
	for k := range keys {
		item[k] = "1"
	}
	b, _ := json.Marshal([]any{item, item})
	return string(b)
}

// smokeValue is the value a stand-in executor writes for an output of type t.
func smokeValue(t pipelinespec.ParameterType_ParameterTypeEnum, list string) string {
	switch t {
	case pipelinespec.ParameterType_NUMBER_INTEGER:
		return "1"
	case pipelinespec.ParameterType_NUMBER_DOUBLE:
		return "1.5"
	case pipelinespec.ParameterType_BOOLEAN:
		return "true"
	case pipelinespec.ParameterType_LIST:
		return list
	case pipelinespec.ParameterType_STRUCT:
		return `{"a":"1"}`
	}
	return "1"
}

// standIns replaces every container executor of p with smokeScript writing
// the outputs its component declares. It reports false for pipelines the
// smoke run cannot stand in for (importers of remote URIs, artifact-list
// outputs, non-container executors).
func standIns(p *ir.Pipeline, list string) (string, bool) {
	byLabel := map[string]*pipelinespec.ComponentSpec{}
	for _, c := range p.Spec.GetComponents() {
		if l := c.GetExecutorLabel(); l != "" {
			byLabel[l] = c
		}
	}
	execs := p.Deployment.GetExecutors()
	for _, label := range slices.Sorted(maps.Keys(execs)) {
		c := execs[label].GetContainer()
		if c == nil {
			return "executor " + label + " is not a container", false
		}
		comp := byLabel[label]
		args := []string{"smoke"}
		outs := comp.GetOutputDefinitions()
		for _, name := range slices.Sorted(maps.Keys(outs.GetParameters())) {
			args = append(args, "p", smokeValue(ir.OutputParameterType(outs.GetParameters()[name]), list),
				"{{$.outputs.parameters['"+name+"'].output_file}}")
		}
		for _, name := range slices.Sorted(maps.Keys(outs.GetArtifacts())) {
			if outs.GetArtifacts()[name].GetIsArtifactList() {
				return "executor " + label + " outputs an artifact list", false
			}
			args = append(args, "a", "-", "{{$.outputs.artifacts['"+name+"'].path}}")
		}
		c.Command = []string{"sh", "-c", smokeScript}
		c.Args = args
	}
	return "", true
}

// smokeParams gives every required root parameter without a default a
// value of its type.
func smokeParams(p *ir.Pipeline) map[string]any {
	out := map[string]any{}
	for name, d := range p.Spec.GetRoot().GetInputDefinitions().GetParameters() {
		if d.GetDefaultValue() != nil || d.GetIsOptional() {
			continue
		}
		if allowed := p.InputLiterals[""][name]; len(allowed) > 0 {
			out[name] = allowed[0].AsInterface()
			continue
		}
		switch ir.InputParameterType(d) {
		case pipelinespec.ParameterType_NUMBER_INTEGER:
			out[name] = 1
		case pipelinespec.ParameterType_NUMBER_DOUBLE:
			out[name] = 1.5
		case pipelinespec.ParameterType_BOOLEAN:
			out[name] = true
		case pipelinespec.ParameterType_LIST:
			out[name] = []any{"1", "2"}
		case pipelinespec.ParameterType_STRUCT:
			out[name] = map[string]any{"a": "1"}
		default:
			out[name] = "1"
		}
	}
	return out
}

// TestCorpusSmoke runs every corpus pipeline that loads, with each executor
// replaced by a stand-in that writes its declared outputs, so that the
// interpreter meets every DAG shape the KFP SDK produces. The outcome per
// file (run state and task state counts, or why it was not run) is a golden
// file: a change in behaviour shows up as a reviewed diff. Run with -update
// to rewrite it.
func TestCorpusSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few hundred pipelines")
	}
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.*"))
	if len(files) == 0 {
		t.Fatalf("KFP IR corpus not found at %s (it must sit beside the repository as shared/kfp-ir-corpus)", corpusDir)
	}
	var lines []string
	for _, f := range files {
		name := filepath.Base(f)
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ir.Load(data)
		if err != nil {
			lines = append(lines, name+": not loaded")
			continue
		}
		if why, ok := standIns(p, smokeList(data)); !ok {
			lines = append(lines, name+": not run: "+why)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		o := runPipeline(ctx, t, p, smokeParams(p), func(o *Options) {
			o.Getenv = func(string) (string, bool) { return "1", true }
			o.Warn = nil
		})
		cancel()
		counts := map[string]int{}
		for id, s := range o.rec.final() {
			counts[s]++
			if !isFinal(s) {
				t.Errorf("%s: task %s left in state %s", name, id, s)
			}
		}
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%s=%d", s, counts[s]))
		}
		line := fmt.Sprintf("%s: %s %s", name, o.state, strings.Join(parts, " "))
		// Which task failed first depends on scheduling; only an error
		// raised before any task started is stable enough to record.
		if o.state != StateSucceeded && o.err != nil && len(counts) == 0 {
			line += " | " + firstLine(o.err.Error())
		}
		lines = append(lines, line)
	}
	got := strings.Join(lines, "\n") + "\n"
	golden := "testdata/corpus_smoke.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("corpus outcomes changed (-want +got); rerun with -update if intended:\n%s", d)
	}
}

// firstLine keeps golden lines short and free of temporary paths.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.Index(s, "/tmp/"); i >= 0 {
		s = s[:i] + "<tmp>"
	}
	return truncate(s, 200)
}
