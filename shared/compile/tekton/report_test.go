package tekton

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/podenv/podenvtest"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
)

func TestReportEnv(t *testing.T) {
	p, err := ir.Load([]byte(podenvtest.IR))
	if err != nil {
		t.Fatal(err)
	}
	wantField := []string{
		"PIPEFN_TEKTON_PIPELINERUN<-metadata.labels['tekton.dev/pipelineRun']",
		"PIPEFN_TEKTON_PIPELINETASK<-metadata.labels['tekton.dev/pipelineTask']",
		"PIPEFN_TEKTON_TASKRUN<-metadata.labels['tekton.dev/taskRun']",
	}
	for _, tc := range podenvtest.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			opts := compile.Options{RunID: "R1", Team: "t", Namespace: "t", PipelineRoot: "s3://b/r", LauncherImage: "launcher:v1"}
			tc.Opts(&opts)
			pr := mustCompile(t, p, opts)
			got := map[string][]string{}
			for _, pt := range pr.Spec.PipelineSpec.Tasks {
				for i, s := range pt.TaskSpec.Steps {
					lit, field := podenvtest.EnvStrings(s.Env)
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
			if diff := cmp.Diff(tc.Want, got); diff != "" {
				t.Errorf("launcher environment (-want +got):\n%s", diff)
			}
			if ann := pr.Annotations[launch.AnnotationLauncherReports]; (ann == "true") != tc.Annotate {
				t.Errorf("annotation %s = %q, want it set: %v", launch.AnnotationLauncherReports, ann, tc.Annotate)
			}
		})
	}
}
