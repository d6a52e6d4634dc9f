package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

type artifactView struct {
	ArtifactID   string `json:"artifact_id"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	URI          string `json:"uri"`
	ProducerTask string `json:"producer_task"`
	Size         int64  `json:"size"`
	Digest       string `json:"digest"`
}

type graph struct {
	Nodes []struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"nodes"`
	Edges []struct {
		From string `json:"from"`
		To   string `json:"to"`
		Type string `json:"type"`
	} `json:"edges"`
}

// names lists a graph's nodes as "kind:name", sorted.
func (g graph) names() []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.Kind+":"+n.Name)
	}
	sort.Strings(out)
	return out
}

// TestLineageAndStepCache runs a three-step pipeline (dataset -> model -> metrics), reads
// its lineage both ways, runs it again to be served from the cache, then changes one
// parameter and expects exactly the affected steps to run again.
func TestLineageAndStepCache(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	spec := specJSON(t, readExample(t, "train-model.yaml"))
	first, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec}, "")
	if err != nil {
		t.Fatal(err)
	}
	r1 := e.waitState(t, first.RunID, api.StateSucceeded)
	all := map[string]string{"prepare": api.StateSucceeded, "train": api.StateSucceeded, "evaluate": api.StateSucceeded}
	if diff := cmp.Diff(all, taskStates(r1)); diff != "" {
		t.Fatalf("first run (-want +got):\n%s", diff)
	}

	var arts struct {
		Artifacts []artifactView `json:"artifacts"`
	}
	if err := e.c.Get(ctx, "/runs/"+first.RunID+"/artifacts", nil, &arts); err != nil {
		t.Fatal(err)
	}
	byName := map[string]artifactView{}
	for _, a := range arts.Artifacts {
		byName[a.Name] = a
	}
	for name, want := range map[string]struct{ typ, producer string }{
		"dataset": {"system.Dataset", "prepare"}, "model": {"system.Model", "train"}, "metrics": {"system.Metrics", "evaluate"},
	} {
		a, ok := byName[name]
		if !ok {
			t.Fatalf("run artifacts %+v lack %s", arts.Artifacts, name)
		}
		if a.Type != want.typ || a.ProducerTask != want.producer || a.Size <= 0 || a.Digest == "" {
			t.Errorf("%s: %+v, want type %s from %s with a size and digest", name, a, want.typ, want.producer)
		}
	}

	// The dataset downloads through the link the API hands out, byte for byte.
	var withLink struct {
		DownloadURL string `json:"download_url"`
	}
	if err := e.c.Get(ctx, "/artifacts/"+byName["dataset"].ArtifactID, url.Values{"view": {"DOWNLOAD"}}, &withLink); err != nil {
		t.Fatal(err)
	}
	if withLink.DownloadURL == "" {
		t.Fatal("no download_url for a local artifact")
	}
	resp, err := http.Get(e.srv.URL + withLink.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "1,2\n2,4\n3,6\n4,8\n5,10\n" {
		t.Errorf("download: %d %q", resp.StatusCode, body)
	}

	// Upstream of the metrics: evaluate, which read the model and the dataset; train,
	// which made the model from the dataset; prepare, which made the dataset.
	var up graph
	q := url.Values{"direction": {"upstream"}, "depth": {"5"}}
	if err := e.c.Get(ctx, "/artifacts/"+byName["metrics"].ArtifactID+"/lineage", q, &up); err != nil {
		t.Fatal(err)
	}
	wantUp := []string{"artifact:dataset", "artifact:metrics", "artifact:model", "execution:evaluate", "execution:prepare", "execution:train"}
	if diff := cmp.Diff(wantUp, up.names()); diff != "" {
		t.Errorf("upstream of metrics (-want +got):\n%s", diff)
	}
	// Downstream of the dataset: train and evaluate read it; model and metrics follow.
	var down graph
	q.Set("direction", "downstream")
	if err := e.c.Get(ctx, "/artifacts/"+byName["dataset"].ArtifactID+"/lineage", q, &down); err != nil {
		t.Fatal(err)
	}
	wantDown := []string{"artifact:dataset", "artifact:metrics", "artifact:model", "execution:evaluate", "execution:train"}
	if diff := cmp.Diff(wantDown, down.names()); diff != "" {
		t.Errorf("downstream of dataset (-want +got):\n%s", diff)
	}

	// The same parameters again: every step comes from the cache, with the same outputs.
	second, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec}, "")
	if err != nil {
		t.Fatal(err)
	}
	r2 := e.waitState(t, second.RunID, api.StateSucceeded)
	cached := map[string]string{"prepare": api.StateCached, "train": api.StateCached, "evaluate": api.StateCached}
	if diff := cmp.Diff(cached, taskStates(r2)); diff != "" {
		t.Errorf("identical run (-want +got):\n%s", diff)
	}
	if task(r2, "train").CachedFrom == "" {
		t.Errorf("a cached task must name the execution it reused")
	}
	if got, want := task(r2, "evaluate").OutputParameters["score"], task(r1, "evaluate").OutputParameters["score"]; got != want {
		t.Errorf("cached score %v, first run's %v", got, want)
	}

	// A new learning rate: prepare is reused, train and evaluate run again.
	third, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec, RuntimeConfig: &api.RuntimeConfig{Parameters: map[string]any{"learning_rate": 0.5}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	r3 := e.waitState(t, third.RunID, api.StateSucceeded)
	partial := map[string]string{"prepare": api.StateCached, "train": api.StateSucceeded, "evaluate": api.StateSucceeded}
	if diff := cmp.Diff(partial, taskStates(r3)); diff != "" {
		t.Errorf("run with a new learning rate (-want +got):\n%s", diff)
	}

	// Caching off for a run: everything runs.
	off := false
	fourth, err := e.c.CreateRun(ctx, &api.Run{PipelineSpec: spec, EnableCaching: &off}, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, taskStates(e.waitState(t, fourth.RunID, api.StateSucceeded))); diff != "" {
		t.Errorf("run with enable_caching=false (-want +got):\n%s", diff)
	}
}
