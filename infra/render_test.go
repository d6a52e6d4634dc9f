package infra

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func find(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		m, _ := o["metadata"].(map[string]any)
		if o["kind"] == kind && m["name"] == name {
			return o
		}
	}
	return nil
}

func get(o map[string]any, path ...string) any {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func TestRender(t *testing.T) {
	for _, backend := range []string{"tekton", "argo"} {
		t.Run(backend, func(t *testing.T) {
			objs, err := Objects(Options{Team: "ml", Backend: backend, Registry: "registry.example/pf", Tag: "v1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := Render(Options{Team: "ml", Backend: backend, Registry: "registry.example/pf", Tag: "v1.2.3"})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), PlaceholderTeam) || strings.Contains(string(out), DefaultRegistry) {
				t.Errorf("rendered install still names the placeholder team or default registry")
			}
			namespaces := map[string]int{}
			for _, o := range objs {
				ns, _ := get(o, "metadata", "namespace").(string)
				namespaces[ns]++
				if get(o, "metadata", "labels", "pipefn.dev/team") != "ml" {
					t.Errorf("%s %v lacks the team label", o["kind"], get(o, "metadata", "name"))
				}
			}
			wantNS := map[string]int{"": 1, "ml": len(objs) - 1}
			if backend == "tekton" {
				wantNS = map[string]int{"": 1, "ml": len(objs) - 2, "pipefn-system": 1}
			}
			if diff := cmp.Diff(wantNS, namespaces); diff != "" {
				t.Errorf("objects per namespace (-want +got):\n%s", diff)
			}
			cm := find(objs, "ConfigMap", "pipefn-config")
			if diff := cmp.Diff(map[string]any{"team": "ml", "backend": backend, "root": "s3://pipefn-artifacts/ml", "launcher": "registry.example/pf/launcher:v1.2.3"},
				map[string]any{"team": get(cm, "data", "PIPEFN_TEAM"), "backend": get(cm, "data", "PIPEFN_BACKEND"),
					"root": get(cm, "data", "PIPEFN_PIPELINE_ROOT"), "launcher": get(cm, "data", "PIPEFN_LAUNCHER_IMAGE")}); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			svc := find(objs, "Service", "submit")
			img := get(svc, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["image"]
			if img != "registry.example/pf/submit:v1.2.3" {
				t.Errorf("submit image %v", img)
			}
			// Scale to zero by default; only the webhook entry stays warm.
			minScale := map[string]any{}
			for _, o := range objs {
				if o["kind"] == "Service" && o["apiVersion"] == "serving.knative.dev/v1" {
					minScale[get(o, "metadata", "name").(string)] = get(o, "spec", "template", "metadata", "annotations", "autoscaling.knative.dev/min-scale")
				}
			}
			if diff := cmp.Diff(map[string]any{"submit": "1", "compile": "0", "status": "0", "schedule": "0", "lineage": "0"}, minScale); diff != "" {
				t.Errorf("min-scale per function (-want +got):\n%s", diff)
			}
			switch backend {
			case "tekton":
				tr := find(objs, "Trigger", "tekton-to-ml")
				if tr == nil || get(tr, "spec", "subscriber", "uri") != "http://status.ml.svc.cluster.local" {
					t.Errorf("tekton route: %v", tr)
				}
				if find(objs, "ApiServerSource", "pipefn-argo-workflows") != nil {
					t.Error("tekton install has the Argo source")
				}
			case "argo":
				src := find(objs, "ApiServerSource", "pipefn-argo-workflows")
				if src == nil || get(src, "spec", "ceOverrides", "extensions", "pfteam") != "ml" {
					t.Errorf("argo source: %v", src)
				}
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, o := range []Options{
		{Team: ""}, {Team: "Upper"}, {Team: "-x"}, {Team: strings.Repeat("a", 64)}, {Team: PlaceholderTeam},
		{Team: "ok", Backend: "airflow"},
	} {
		if _, err := Render(o); err == nil {
			t.Errorf("Render(%+v) accepted", o)
		}
	}
}

func TestSplitYAML(t *testing.T) {
	docs, err := SplitYAML([]byte("# only a comment\n---\na: 1\n--- \nb: [x]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]map[string]any{{"a": float64(1)}, {"b": []any{"x"}}}, docs); diff != "" {
		t.Errorf("SplitYAML (-want +got):\n%s", diff)
	}
}
