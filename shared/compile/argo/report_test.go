package argo

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
		"PIPEFN_ARGO_WORKFLOW<-metadata.labels['workflows.argoproj.io/workflow']",
		"PIPEFN_ARGO_NODE_NAME<-metadata.annotations['workflows.argoproj.io/node-name']",
	}
	for _, tc := range podenvtest.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			opts := compile.Options{RunID: "R1", Team: "t", Namespace: "t", PipelineRoot: "s3://b/r", LauncherImage: "launcher:v1"}
			tc.Opts(&opts)
			wf, err := Compile(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateWorkflow(wf); err != nil {
				t.Fatalf("Argo validation: %v", err)
			}
			got := map[string][]string{}
			for _, tmpl := range wf.Spec.Templates {
				for _, ic := range tmpl.InitContainers {
					if lit, field := podenvtest.EnvStrings(ic.Env); len(lit)+len(field) > 0 {
						t.Errorf("template %s: init container has %v %v", tmpl.Name, lit, field)
					}
				}
				if tmpl.Container == nil {
					continue
				}
				lit, field := podenvtest.EnvStrings(tmpl.Container.Env)
				if len(lit) == 0 && len(field) == 0 {
					continue
				}
				got[tmpl.Metadata.Labels[compile.LabelTask]] = lit
				if diff := cmp.Diff(wantField, field); diff != "" {
					t.Errorf("template %s: downward-API variables (-want +got):\n%s", tmpl.Name, diff)
				}
			}
			if diff := cmp.Diff(tc.Want, got); diff != "" {
				t.Errorf("launcher environment (-want +got):\n%s", diff)
			}
			if ann := wf.Annotations[launch.AnnotationLauncherReports]; (ann == "true") != tc.Annotate {
				t.Errorf("annotation %s = %q, want it set: %v", launch.AnnotationLauncherReports, ann, tc.Annotate)
			}
		})
	}
}
