package launch

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/pipefn/pipefn/shared/artifacts"
)

// TestClusterTaskID: the ids derived from the engines' names of a pod's task. The
// agreement with shared/k8s's mapping itself is checked in functions/status.
func TestClusterTaskID(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		iteration string
		want      string
		ok        bool
	}{
		{name: "no engine", env: map[string]string{}, want: "", ok: false},
		{name: "tekton task", env: map[string]string{EnvTektonPipelineRun: "pf-r-a0", EnvTektonPipelineTask: "train", EnvTektonTaskRun: "pf-r-a0-train"}, want: "train", ok: true},
		{name: "tekton loop iteration", env: map[string]string{EnvTektonPipelineRun: "pf-r-a0", EnvTektonPipelineTask: "train", EnvTektonTaskRun: "pf-r-a0-train-12"}, iteration: `{"index":12,"item":"x"}`, want: "train.12", ok: true},
		{name: "tekton shortened name", env: map[string]string{EnvTektonPipelineRun: "pf-r-a0", EnvTektonPipelineTask: "train", EnvTektonTaskRun: "3f9a2c1b7d-0"}, iteration: `{"index":0,"item":"x"}`, want: "train.0", ok: true},
		{name: "tekton nested loops", env: map[string]string{EnvTektonPipelineRun: "pf-r-a0", EnvTektonPipelineTask: "for-loop-2-train", EnvTektonTaskRun: "pf-r-a0-for-loop-2-train-3"}, iteration: `{"index":3,"item":1,"path":[1,0]}`, want: "for-loop-2-train.1.0", ok: true},
		{name: "tekton task ending in digits, no loop", env: map[string]string{EnvTektonPipelineRun: "pf-r-a0", EnvTektonPipelineTask: "print-op-2", EnvTektonTaskRun: "pf-r-a0-print-op-2"}, want: "print-op-2", ok: true},
		{name: "argo task", env: map[string]string{EnvArgoWorkflow: "pf-r-a0", EnvArgoNodeName: "pf-r-a0.root.train"}, want: "root.train", ok: true},
		{name: "argo retried try", env: map[string]string{EnvArgoWorkflow: "pf-r-a0", EnvArgoNodeName: "pf-r-a0.root.train(2)"}, want: "root.train", ok: true},
		{name: "argo loop iteration", env: map[string]string{EnvArgoWorkflow: "pf-r-a0", EnvArgoNodeName: "pf-r-a0.root.for-loop-1(0:a).train"}, want: "root.for-loop-1(0:a).train", ok: true},
		{name: "argo retried loop item", env: map[string]string{EnvArgoWorkflow: "pf-r-a0", EnvArgoNodeName: "pf-r-a0.root.train(1:b)(0)"}, want: "root.train(1:b)", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := ClusterTaskID(func(k string) string { return tc.env[k] }, tc.iteration)
			if id != tc.want || ok != tc.ok {
				t.Errorf("ClusterTaskID = %q, %v; want %q, %v", id, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestCacheKeyCoversInputContent: the key depends on input parameter values and on
// input artifacts' digests, which WithInputDigests reads from the store for bare URIs
// (a single object, or a directory's manifest).
func TestCacheKeyCoversInputContent(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewLocal()
	root := artifacts.FileURI(t.TempDir())
	file := artifacts.Join(root, "f")
	if _, err := store.Put(ctx, file, strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	dir := artifacts.Join(root, "d")
	if _, err := store.Put(ctx, artifacts.Join(dir, ManifestName), strings.NewReader(`{"files":[]}`)); err != nil {
		t.Fatal(err)
	}
	cfg := TaskConfig{TaskID: "t", Container: &Container{Image: "alpine", Command: []string{"cat"}}}
	in := func(uri string) Inputs {
		return Inputs{Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"x": {{Uri: uri}}}}
	}
	key := func(i Inputs) string {
		k, err := CacheKey(cfg, i)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	bare := key(in(file))
	orig := in(file)
	withDigest := WithInputDigests(ctx, store, orig)
	if d := artifactDigest(withDigest.Artifacts["x"][0]); !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("file input digest %q", d)
	}
	if d := artifactDigest(WithInputDigests(ctx, store, in(dir)).Artifacts["x"][0]); !strings.HasPrefix(d, "sha256:") {
		t.Errorf("directory input digest %q, want its manifest's", d)
	}
	if d := artifactDigest(WithInputDigests(ctx, store, in(artifacts.Join(root, "missing"))).Artifacts["x"][0]); d != "" {
		t.Errorf("missing input digest %q, want none", d)
	}
	k1 := key(withDigest)
	if _, err := store.Put(ctx, file, strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	k2 := key(WithInputDigests(ctx, store, in(file)))
	if k1 == bare || k1 == k2 {
		t.Errorf("keys: bare %s, with digest %s, rewritten %s; want all different", bare, k1, k2)
	}
	if again := key(WithInputDigests(ctx, store, in(file))); again != k2 {
		t.Errorf("key not stable: %s then %s", k2, again)
	}
	if diff := cmp.Diff("", artifactDigest(orig.Artifacts["x"][0])); diff != "" {
		t.Errorf("WithInputDigests modified its input (-want +got):\n%s", diff)
	}
}
