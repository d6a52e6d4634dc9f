package browser

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/pipefn/pipefn/shared/ir"
)

// corpusDir holds real KFP IR compiled by the KFP SDK; PIPEFN_IR_CORPUS overrides it.
func corpusDir() string {
	if d := os.Getenv("PIPEFN_IR_CORPUS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "kfp-ir-corpus")
}

// taskKeys walks the IR as the UI must: every task of the root DAG and of the DAG
// components it uses, named by the path of task names joined with '.'.
func taskKeys(spec *pipelinespec.PipelineSpec) []string {
	var keys []string
	var walk func(dag *pipelinespec.DagSpec, prefix string, depth int)
	walk = func(dag *pipelinespec.DagSpec, prefix string, depth int) {
		if depth > 30 {
			return
		}
		for name, task := range dag.GetTasks() {
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			keys = append(keys, key)
			if comp := spec.GetComponents()[task.GetComponentRef().GetName()]; comp.GetDag() != nil {
				walk(comp.GetDag(), key, depth+1)
			}
		}
	}
	walk(spec.GetRoot().GetDag(), "", 0)
	sort.Strings(keys)
	return keys
}

// TestPipelineGraphOfCorpus draws the graph of every IR file of the KFP corpus in the
// browser, with the UI's own module: every task appears once under its path, every
// edge joins drawn nodes, and no two nodes share a place.
func TestPipelineGraphOfCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir(), "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("KFP IR corpus not found at %s: it must sit beside the repository as shared/kfp-ir-corpus (or set PIPEFN_IR_CORPUS)", corpusDir())
	}
	specs := map[string]json.RawMessage{}
	want := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ir.Parse(data)
		if err != nil || p.Spec == nil {
			continue // not a pipeline (a platform document alone, a component)
		}
		js, err := ir.SpecJSON(data)
		if err != nil {
			continue
		}
		name := filepath.Base(f)
		specs[name] = js
		want[name] = taskKeys(p.Spec)
	}
	if len(specs) < 100 {
		t.Fatalf("only %d corpus files parsed; the corpus or the parser changed", len(specs))
	}
	s := startServer(t)
	ctx := newBrowser(t)
	run(t, ctx, "open a page", chromedp.Navigate(s.url+"/experiments"))
	waitJS(t, ctx, "the UI", `document.querySelector('main h1')`)
	arg, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Keys     []string `json:"keys"`
		Problems []string `json:"problems"`
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('/ui/static/graph.js').then((g) => {
  const specs = `+string(arg)+`;
  const out = {};
  for (const [name, spec] of Object.entries(specs)) {
    const r = { keys: [], problems: [] };
    try {
      const gr = g.pipelineGraph(g.specOf(spec));
      r.keys = gr.nodes.map((n) => n.id).sort();
      const ids = new Set(r.keys);
      if (ids.size !== r.keys.length) r.problems.push('duplicate node ids');
      for (const [a, b] of gr.edges) if (!ids.has(a) || !ids.has(b)) r.problems.push('edge ' + a + ' -> ' + b + ' joins a missing node');
      const { place } = g.layout(gr.nodes, gr.edges);
      const seen = new Set();
      for (const p of place.values()) {
        const k = p.x + ',' + p.y;
        if (seen.has(k)) r.problems.push('two nodes at ' + k);
        seen.add(k);
      }
      g.draw(gr, {});
    } catch (e) { r.problems.push('threw ' + e); }
    out[name] = r;
  }
  return JSON.stringify(out);
})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]result
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for name, keys := range want {
		r := got[name]
		if keys == nil {
			keys = []string{}
		}
		if r.Keys == nil {
			r.Keys = []string{}
		}
		if diff := cmp.Diff(keys, r.Keys); diff != "" {
			t.Errorf("%s: drawn tasks (-IR +drawn):\n%s", name, diff)
		}
		for _, p := range r.Problems {
			t.Errorf("%s: %s", name, p)
		}
	}
	t.Logf("drew %d corpus pipelines", len(got))
}
