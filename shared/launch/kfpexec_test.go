package launch

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/pipefn/pipefn/shared/artifacts"
)

// kfpLikeExecutor mimics what KFP's Python executor does with the
// ExecutorInput: it never reads a path from it, it derives each artifact's
// path from its URI (Artifact._get_path: gs:// -> /gcs/, s3:// -> /s3/,
// minio:// -> /minio/, otherwise the URI is the path), and it reports
// outputs through the executor output file.
const kfpLikeExecutor = `
import json, sys
ei = json.loads(sys.argv[1])
def path(uri):
    for scheme, mount in (("gs://", "/gcs/"), ("s3://", "/s3/"), ("minio://", "/minio/")):
        if uri.startswith(scheme):
            return mount + uri[len(scheme):]
    return uri
src = ei["inputs"]["artifacts"]["text"]["artifacts"][0]
dst = ei["outputs"]["artifacts"]["upper"]["artifacts"][0]
with open(path(src["uri"])) as f:
    data = f.read()
with open(path(dst["uri"]), "w") as f:
    f.write(data.upper())
out = {"parameterValues": {"length": len(data)},
       "artifacts": {"upper": {"artifacts": [{"name": "upper", "uri": dst["uri"], "metadata": {"lines": data.count("\n")}}]}}}
with open(ei["outputs"]["outputFile"], "w") as f:
    json.dump(out, f)
`

// TestExecuteKFPPythonConvention runs a program that finds its artifacts the
// way KFP's Python executor does, so the local-path convention is tested
// against the consumer's rule, not against our own expectations.
func TestExecuteKFPPythonConvention(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIPPING: python3 is not installed; the KFP executor emulation needs it")
	}
	env, root, logs := localEnv(t)
	ctx := context.Background()
	in := artifacts.Join(root, "run-0", "p", "text")
	if _, err := env.Store.Put(ctx, in, strings.NewReader("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	cfg := shTask(t, root, comp{inArts: []string{"text"}, outArts: []string{"upper"}, outParams: []string{"length:NUMBER_INTEGER"}}, "")
	cfg.Container.Command = []string{py, "-c", kfpLikeExecutor, "{{$}}"}
	out, err := Execute(ctx, cfg, Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"text": {{Uri: in}}}}, env)
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs)
	}
	if got := out.Params["length"].GetNumberValue(); got != 4 {
		t.Errorf("length = %v, want 4", got)
	}
	a := out.Artifacts["upper"][0]
	if got := readURI(t, env.Store, a.GetUri()); got != "A\nB\n" {
		t.Errorf("uploaded %q, want %q", got, "A\nB\n")
	}
	if a.GetUri() != OutputURI(cfg, "upper") {
		t.Errorf("output URI %q, want the real %q (not the local path the executor saw)", a.GetUri(), OutputURI(cfg, "upper"))
	}
	if got := a.GetMetadata().GetFields()["lines"].GetNumberValue(); got != 2 {
		t.Errorf("executor metadata lines = %v, want 2", got)
	}
}
