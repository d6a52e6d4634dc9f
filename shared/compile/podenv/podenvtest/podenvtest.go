// Package podenvtest holds what the compilers' tests of the launcher's pod env share
// (shared/compile/tekton and shared/compile/argo report_test.go): one IR, the cases with
// the env each IR task's launcher must get, and a rendering of a container's env.
package podenvtest

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/pipefn/pipefn/shared/compile"
)

// IR has a task with caching on (cached), one with caching off (uncached) and an
// importer with caching on (imp).
const IR = `components:
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

// Cases: reporting and the cache each add their variables only when set, and
// the run-level CachingDisabled (like a task's own cachingOptions) removes the cache URL.
var Cases = []struct {
	Name     string
	Opts     func(*compile.Options)
	Want     map[string][]string // IR task -> its launcher's PIPEFN_ variables
	Annotate bool                // the object says its launchers report
}{
	{Name: "off", Opts: func(*compile.Options) {}, Want: map[string][]string{}},
	{Name: "events and cache", Annotate: true, Opts: func(o *compile.Options) {
		o.EventsURL, o.CacheURL, o.CacheMaxAge, o.Attempt = "http://broker", "http://lineage", time.Hour, 2
	}, Want: map[string][]string{
		"cached":   {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_CACHE_MAX_AGE=1h0m0s", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=2", "PIPEFN_PIPELINE_NAME=report-test"},
		"uncached": {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=2", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":      {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_CACHE_MAX_AGE=1h0m0s", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=2", "PIPEFN_PIPELINE_NAME=report-test"},
	}},
	{Name: "caching disabled for the run", Annotate: true, Opts: func(o *compile.Options) {
		o.EventsURL, o.CacheURL, o.CachingDisabled = "http://broker", "http://lineage", true
	}, Want: map[string][]string{
		"cached":   {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"uncached": {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":      {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
	}},
	{Name: "cache token", Annotate: true, Opts: func(o *compile.Options) {
		o.EventsURL, o.CacheURL, o.CacheTokenSecret = "http://broker", "http://lineage", "launcher-token"
	}, Want: map[string][]string{
		"cached":   {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test", "PIPEFN_CACHE_TOKEN<-secret:launcher-token/token"},
		"uncached": {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":      {"PIPEFN_EVENTS_URL=http://broker", "PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test", "PIPEFN_CACHE_TOKEN<-secret:launcher-token/token"},
	}},
	{Name: "cache only", Opts: func(o *compile.Options) { o.CacheURL = "http://lineage" }, Want: map[string][]string{
		"cached": {"PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
		"imp":    {"PIPEFN_CACHE_URL=http://lineage", "PIPEFN_TEAM=t", "PIPEFN_ATTEMPT=0", "PIPEFN_PIPELINE_NAME=report-test"},
	}},
}

// EnvStrings renders a container's PIPEFN_ variables as NAME=VALUE (literal) or
// NAME<-FIELDPATH (downward API) and NAME<-secret:NAME/KEY, in order.
func EnvStrings(env []corev1.EnvVar) (lit, field []string) {
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
