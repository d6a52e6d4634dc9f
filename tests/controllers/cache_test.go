package controllers

import (
	"net/url"
	"strings"
	"testing"

	"github.com/pipefn/pipefn/shared/api"
)

// runArtifact is the part of the lineage API's artifact view this suite checks.
type runArtifact struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	URI          string `json:"uri"`
	ProducerTask string `json:"producer_task"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
}

// TestClusterLineageAndStepCache is issue 6 on real engines: the launcher inside each
// task pod reports the task's full lineage record (typed artifacts with digests) to
// pipefn and asks pipefn's step cache before running. A second identical run is served
// from the cache (tasks CACHED, the user command not run); a new parameter re-runs the
// tasks it reaches.
func TestClusterLineageAndStepCache(t *testing.T) {
	for _, engine := range []string{"tekton", "argo"} {
		t.Run(engine, func(t *testing.T) {
			f := start(t, engine)
			if engine == "argo" {
				startArgo(t, f)
			} else {
				f.logs = append(f.logs, cluster.tektonLog)
				if err := setTektonEventsSink(f.ctx, f.srv.URL+"/events"); err != nil {
					t.Fatal(err)
				}
			}
			spec := corpus(t, twoStep)
			first := f.waitRun(f.submit("first", spec, map[string]any{"text": "cache me"}).RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
			if first.State != api.StateSucceeded {
				t.Fatalf("first run ended %s: %+v", first.State, first.Error)
			}
			// The lineage of a cluster run comes from the launchers: typed, with digests
			// (the engine's own state only knows URIs).
			var arts struct {
				Artifacts []runArtifact `json:"artifacts"`
			}
			if err := f.api.Get(f.ctx, "/runs/"+url.PathEscape(first.RunID)+"/artifacts", nil, &arts); err != nil {
				t.Fatal(err)
			}
			var ds *runArtifact
			for i, a := range arts.Artifacts {
				if a.Name == "output_gcs" {
					ds = &arts.Artifacts[i]
				}
			}
			if ds == nil || ds.Type != "system.Dataset" || !strings.HasPrefix(ds.Digest, "sha256:") || ds.Size != int64(len("cache me\n")) || ds.ProducerTask != "component1" {
				t.Fatalf("component1's dataset in the run's lineage = %+v; want a system.Dataset from component1 with a sha256 digest and size %d (all artifacts: %+v)", ds, len("cache me\n"), arts.Artifacts)
			}

			second := f.waitRun(f.submit("second", spec, map[string]any{"text": "cache me"}).RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
			for _, id := range []string{"component1", "component2"} {
				td, _ := taskOf(second, id)
				if td.State != api.StateCached {
					t.Errorf("second identical run: task %s is %s, want CACHED", id, td.State)
				}
				if log, err := f.taskLog(second.RunID, id); err != nil || strings.Contains(log, "cache me") {
					t.Errorf("second identical run: task %s's log shows the user command ran (or cannot be read: %v):\n%s", id, err, log)
				}
			}
			third := f.waitRun(f.submit("third", spec, map[string]any{"text": "changed"}).RunID, "SUCCEEDED", stateIs(api.StateSucceeded, api.StateFailed))
			for _, id := range []string{"component1", "component2"} {
				if td, _ := taskOf(third, id); td.State != api.StateSucceeded {
					t.Errorf("run with a new parameter: task %s is %s, want SUCCEEDED (re-run)", id, td.State)
				}
			}
			if log, err := f.taskLog(third.RunID, "component2"); err != nil || !strings.Contains(log, "changed") {
				t.Errorf("run with a new parameter: component2's log lacks the new text (err %v):\n%s", err, log)
			}
		})
	}
}
