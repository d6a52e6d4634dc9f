package tektonsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/local"
	"github.com/pipefn/pipefn/tests/internal/standin"
)

// echoStandIns replaces every container executor of p with the shell stand-in
// (tests/internal/standin); fixed gives the STRING outputs of some executors (by
// label), e.g. a coin flip's side; "!fail" makes the executor fail.
func echoStandIns(t *testing.T, p *ir.Pipeline, fixed map[string]string) {
	t.Helper()
	var nr *standin.ErrNotReplaceable
	if err := standin.Apply(p, listOf[p], fixed); errors.As(err, &nr) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
}

// syncDeployment writes p.Deployment back into p.Spec.DeploymentSpec.
func syncDeployment(t *testing.T, p *ir.Pipeline) {
	t.Helper()
	if err := standin.SyncDeployment(p); err != nil {
		t.Fatal(err)
	}
}

var listOf = map[*ir.Pipeline]string{}

func loadCorpus(t *testing.T, name string) *ir.Pipeline {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "kfp-ir-corpus", name))
	if err != nil {
		t.Fatalf("KFP IR corpus file (shared/kfp-ir-corpus beside the repository): %v", err)
	}
	p, err := ir.Load(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	listOf[p] = standin.List(b)
	return p
}

const valid = "kfp__test_data__sdk_compiled_pipelines__valid__"

// Corpus pipelines with every executor replaced by echoScript: KFP's own
// DAGs, loops, conditions, OneOf and exit handlers, run on both backends.
func TestCorpusAgrees(t *testing.T) {
	for _, tc := range standin.Cases {
		t.Run(tc.File, func(t *testing.T) {
			p := loadCorpus(t, tc.File)
			if tc.List != "" {
				listOf[p] = tc.List
			}
			echoStandIns(t, p, tc.Fixed)
			agree(t, p, tc.Params, tc.State)
		})
	}
}

// conditional_producer_and_consumers with the shell stand-ins of
// shared/local's corpus test: a condition on the loop item inside the loop
// (per-iteration guards), its outputs collected after the loop, and a
// condition around the fan-in.
func TestConditionInsideLoop(t *testing.T) {
	const out = "{{$.outputs.parameters['Output'].output_file}}"
	sum := `mkdir -p "$(dirname "$1")"; s=$(printf %s "$0" | tr -d '[] ' | tr , +); echo $((${s:-0})) > "$1"`
	for _, tc := range []struct {
		threshold int
		sum       any
	}{{2, 10.0}, {5, nil}} {
		t.Run(fmt.Sprint(tc.threshold), func(t *testing.T) {
			p := loadCorpus(t, valid+"conditional_producer_and_consumers.yaml")
			setShell(t, p, "exec-double", `mkdir -p "$(dirname "$1")"; echo $((2 * $0)) > "$1"`, "{{$.inputs.parameters['num']}}", out)
			setShell(t, p, "exec-add", sum, "{{$.inputs.parameters['nums']}}", out)
			syncDeployment(t, p)
			got := agree(t, p, map[string]any{"threshold": tc.threshold}, local.StateSucceeded)
			var gotSum any
			if m, ok := got.Tasks["condition-4-add"].(map[string]any); ok {
				gotSum = m["p:Output"]
			}
			if d := cmp.Diff(tc.sum, gotSum); d != "" {
				t.Errorf("add output (-want +got):\n%s", d)
			}
		})
	}
}

func setShell(t *testing.T, p *ir.Pipeline, label, script string, args ...string) {
	t.Helper()
	c := p.Deployment.GetExecutors()[label].GetContainer()
	if c == nil {
		t.Fatalf("executor %s has no container", label)
	}
	c.Command = []string{"sh", "-c", script}
	c.Args = args
}
