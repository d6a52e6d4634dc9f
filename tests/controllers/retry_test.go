package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/api"
)

// flakyIR: prepare writes a dataset; flaky fails the first time it runs (it leaves a
// marker file on this machine, where the stand-in kubelet runs it) and succeeds after.
const flakyIR = `
components:
  comp-prepare:
    executorLabel: exec-prepare
    inputDefinitions:
      parameters:
        marker: {parameterType: STRING}
    outputDefinitions:
      artifacts:
        data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}
  comp-flaky:
    executorLabel: exec-flaky
    inputDefinitions:
      parameters:
        marker: {parameterType: STRING}
      artifacts:
        data: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}
deploymentSpec:
  executors:
    exec-prepare:
      container:
        image: alpine:3.20
        command: [sh, -c, 'echo run >> "$0.prepare"; echo "prepared for $0" > "$1"', '{{$.inputs.parameters[''marker'']}}', '{{$.outputs.artifacts[''data''].path}}']
    exec-flaky:
      container:
        image: alpine:3.20
        command: [sh, -c, 'cat "$1"; if [ -e "$0" ]; then echo second try; else touch "$0"; echo first try fails >&2; exit 3; fi', '{{$.inputs.parameters[''marker'']}}', '{{$.inputs.artifacts[''data''].path}}']
pipelineInfo:
  name: flaky
root:
  dag:
    tasks:
      prepare:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-prepare}
        inputs:
          parameters:
            marker: {componentInputParameter: marker}
        taskInfo: {name: prepare}
      flaky:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-flaky}
        dependentTasks: [prepare]
        inputs:
          parameters:
            marker: {componentInputParameter: marker}
          artifacts:
            data: {taskOutputArtifact: {producerTask: prepare, outputArtifactKey: data}}
        taskInfo: {name: flaky}
  inputDefinitions:
    parameters:
      marker: {parameterType: STRING}
schemaVersion: 2.1.0
sdkVersion: kfp-2.13.0
`

// TestRetryThroughEngines: a run whose second task fails ends FAILED on the real
// engine; :retry makes a new attempt (a new PipelineRun or Workflow) that succeeds, and
// the task that had succeeded is served from the step cache instead of running again.
func TestRetryThroughEngines(t *testing.T) {
	spec, err := yaml.YAMLToJSON([]byte(flakyIR))
	if err != nil {
		t.Fatal(err)
	}
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
			marker := filepath.Join(t.TempDir(), "tried")
			run := f.submit("flaky", spec, map[string]any{"marker": marker})
			failed := f.waitRun(run.RunID, "FAILED", stateIs(api.StateFailed, api.StateSucceeded))
			if failed.State != api.StateFailed {
				t.Fatalf("first attempt ended %s, want FAILED", failed.State)
			}
			if td, _ := taskOf(failed, "flaky"); td.State != api.StateFailed {
				t.Errorf("first attempt: task flaky is %s, want FAILED", td.State)
			}
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("the first attempt did not run flaky's command: %v", err)
			}
			if err := f.api.RetryRun(f.ctx, run.RunID); err != nil {
				t.Fatal(err)
			}
			done := f.waitRun(run.RunID, "attempt 1 SUCCEEDED", func(r api.Run) bool {
				return r.Attempt == 1 && (r.State == api.StateSucceeded || r.State == api.StateFailed)
			})
			if done.State != api.StateSucceeded {
				t.Fatalf("retry ended %s: %+v", done.State, done.Error)
			}
			// prepare succeeded in the first attempt: the new attempt's launcher finds it
			// in the step cache and does not run its command again. Its task stays
			// SUCCEEDED (a finished task's state never changes; the first attempt's
			// success is the truth of it).
			if td, _ := taskOf(done, "prepare"); td.State != api.StateSucceeded && td.State != api.StateCached {
				t.Errorf("retry: task prepare is %s, want SUCCEEDED or CACHED", td.State)
			}
			if b, err := os.ReadFile(marker + ".prepare"); err != nil || string(b) != "run\n" {
				plog, _ := f.taskLog(done.RunID, "prepare")
				t.Errorf("prepare's command ran %q times over both attempts (err %v); want once: the retry must reuse its cached outputs; prepare's log now:\n%s", b, err, plog)
			}
			if td, _ := taskOf(done, "flaky"); td.State != api.StateSucceeded {
				t.Errorf("retry: task flaky is %s, want SUCCEEDED", td.State)
			}
			log, err := f.taskLog(done.RunID, "flaky")
			if err != nil || !strings.Contains(log, "second try") || !strings.Contains(log, "prepared for "+marker) {
				t.Errorf("retry: flaky's log (err %v) lacks the second try on prepare's dataset:\n%s", err, log)
			}
		})
	}
}
