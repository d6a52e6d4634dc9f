package tekton

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

// reportIR has a task with caching on, one with caching off and an importer.
const reportIR = `components:
  comp-echo:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: STRING}
  comp-imp:
    executorLabel: exec-imp
    inputDefinitions:
      parameters:
        uri: {parameterType: STRING}
    outputDefinitions:
      artifacts:
        artifact:
          artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
deploymentSpec:
  executors:
    exec-echo:
      container: {image: "alpine:3", command: [echo], args: ["{{$.inputs.parameters['msg']}}"]}
    exec-imp:
      importer:
        artifactUri: {runtimeParameter: uri}
        typeSchema: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
pipelineInfo: {name: report-test}
root:
  dag:
    tasks:
      cached:
        taskInfo: {name: cached}
        componentRef: {name: comp-echo}
        cachingOptions: {enableCache: true}
        inputs:
          parameters:
            msg: {runtimeValue: {constant: hi}}
      uncached:
        taskInfo: {name: uncached}
        componentRef: {name: comp-echo}
        inputs:
          parameters:
            msg: {runtimeValue: {constant: hi}}
      imp:
        taskInfo: {name: imp}
        componentRef: {name: comp-imp}
        cachingOptions: {enableCache: true}
        inputs:
          parameters:
            uri: {runtimeValue: {constant: "s3://b/data.csv"}}
schemaVersion: 2.1.0
sdkVersion: kfp-2.7.0
`

// reportEnvCases: reporting and the cache each add their variables only when set, and
// the run-level CachingDisabled (like a task's own cachingOptions) removes the cache URL.
var reportEnvCases = []struct {
	name     string
	opts     func(*compile.Options)
	want     map[string][]string // task -> names of its launcher's PIPEFN_ variables
	annotate bool
}{
	{name: "off", opts: func(*compile.Options) {}, want: map[string][]string{}},
	{name: "events and cache", annotate: true, opts: func(o *compile.Options) {
		o.EventsURL, o.CacheURL, o.CacheMaxAge, o.Attempt = "http://broker", "http://lineage", time.Hour, 2
	}, want: map[string][]string{
		"cached":   {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_CACHE_MAX_AGE=1h0m0s", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=2", "PIPEFN_PIPELINE_NAME=report-test"},
		"uncached": {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=2", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":      {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_CACHE_MAX_AGE=1h0m0s", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=2", "PIPEFN_PIPELINE_NAME=report-test"},
	}},
	{name: "caching disabled for the run", annotate: true, opts: func(o *compile.Options) {
		o.EventsURL, o.CacheURL, o.CachingDisabled = "http://broker", "http://lineage", true
	}, want: map[string][]string{
		"cached":   {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"uncached": {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":      {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
	}},
	{name: "cache token", annotate: true, opts: func(o *compile.Options) {
		o.EventsURL, o.CacheURL, o.CacheTokenSecret = "http://broker", "http://lineage", "launcher-token"
	}, want: map[string][]string{
		"cached":   {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test", "PIPEFN_CACHE_TOKEN<-secret:launcher-token/token"},
		"uncached": {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":      {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test", "PIPEFN_CACHE_TOKEN<-secret:launcher-token/token"},
	}},
	{name: "cache only", opts: func(o *compile.Options) { o.CacheURL = "http://lineage" }, want: map[string][]string{
		"cached": {"PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":    {"PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
	}},
}

// envStrings renders a container's PIPEFN_ variables as NAME=VALUE (literal) or
// NAME<-FIELDPATH (downward API) and NAME<-secret:NAME/KEY, in order.
func envStrings(env []corev1.EnvVar) (lit, field []string) {
	for _, e := range env {
		if !strings.HasPrefix(e.Name, "PIPEFN_") {
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			lit = append(lit, e.Name+"<-secret:"+e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			field = append(field, e.Name+"<-"+e.ValueFrom.FieldRef.FieldPath)
			continue
		}
		lit = append(lit, e.Name+"="+e.Value)
	}
	return lit, field
}

func TestReportEnv(t *testing.T) {
	p, err := ir.Load([]byte(reportIR))
	if err != nil {
		t.Fatal(err)
	}
	wantField := []string{
		"PIPEFN_TEKTON_PIPELINERUN<-metadata.labels['tekton.dev/pipelineRun']",
		"PIPEFN_TEKTON_PIPELINETASK<-metadata.labels['tekton.dev/pipelineTask']",
		"PIPEFN_TEKTON_TASKRUN<-metadata.labels['tekton.dev/taskRun']",
	}
	for _, tc := range reportEnvCases {
		t.Run(tc.name, func(t *testing.T) {
			opts := compile.Options{RunID: "R1", Team: "t", Namespace: "t", PipelineRoot: "s3://b/r", LauncherImage: "launcher:v1"}
			tc.opts(&opts)
			pr := mustCompile(t, p, opts)
			got := map[string][]string{}
			for _, pt := range pr.Spec.PipelineSpec.Tasks {
				for i, s := range pt.TaskSpec.Steps {
					lit, field := envStrings(s.Env)
					if len(lit) == 0 && len(field) == 0 {
						continue
					}
					if i != len(pt.TaskSpec.Steps)-1 {
						t.Errorf("task %s: step %s (not the launcher's) has %v", pt.Name, s.Name, lit)
					}
					got[pt.Name] = lit
					if diff := cmp.Diff(wantField, field); diff != "" {
						t.Errorf("task %s: downward-API variables (-want +got):\n%s", pt.Name, diff)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("launcher environment (-want +got):\n%s", diff)
			}
			if ann := pr.Annotations[launch.AnnotationLauncherReports]; (ann == "true") != tc.annotate {
				t.Errorf("annotation %s = %q, want it set: %v", launch.AnnotationLauncherReports, ann, tc.annotate)
			}
		})
	}
}
