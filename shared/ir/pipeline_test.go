package ir

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestParseForms(t *testing.T) {
	base, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specOnly := strings.SplitN(string(base), "\n---\n", 2)[0]
	spec, _ := baseDocs(t)
	wrapped := encodeDocs(t, map[string]any{
		"displayName":  "demo run",
		"pipelineSpec": spec,
		"runtimeConfig": map[string]any{
			"gcsOutputDirectory": "s3://bucket/root",
			"parameterValues":    map[string]any{"steps": 5, "tags": []any{"a"}},
		},
	})
	legacy := encodeDocs(t, map[string]any{
		"pipelineSpec": spec,
		"runtimeConfig": map[string]any{
			"parameters": map[string]any{
				"steps": map[string]any{"intValue": "7"},
				"mode":  map[string]any{"stringValue": "prod"},
			},
		},
	})
	tests := []struct {
		name     string
		data     string
		wantK8s  bool
		wantRC   *RuntimeConfig
		wantName string
	}{
		{name: "yaml two documents", data: string(base), wantK8s: true, wantName: "demo"},
		{name: "yaml one document", data: specOnly, wantName: "demo"},
		{name: "yaml with explicit start and end markers", data: "---\n" + specOnly + "\n...\n", wantName: "demo"},
		{name: "json", data: string(encodeDocs(t, spec)), wantName: "demo"},
		{name: "yaml with content on the marker line", data: specOnly + "\n--- {platforms: {kubernetes: {deploymentSpec: {executors: {exec-gen: {}}}}}}\n", wantK8s: true, wantName: "demo"},
		{name: "yaml with CRLF line ends", data: strings.ReplaceAll(string(base), "\n", "\r\n"), wantK8s: true, wantName: "demo"},
		{name: "PipelineJob wrapper", data: string(wrapped), wantName: "demo", wantRC: &RuntimeConfig{
			GcsOutputDirectory: "s3://bucket/root",
			ParameterValues: map[string]*structpb.Value{
				"steps": structpb.NewNumberValue(5),
				"tags":  structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("a")}}),
			},
		}},
		{name: "PipelineJob wrapper, legacy parameters", data: string(legacy), wantName: "demo", wantRC: &RuntimeConfig{
			ParameterValues: map[string]*structpb.Value{
				"steps": structpb.NewNumberValue(7),
				"mode":  structpb.NewStringValue("prod"),
			},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load([]byte(tc.data))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := p.Spec.GetPipelineInfo().GetName(); got != tc.wantName {
				t.Errorf("name = %q, want %q", got, tc.wantName)
			}
			if (p.Kubernetes != nil) != tc.wantK8s {
				t.Errorf("Kubernetes present = %v, want %v", p.Kubernetes != nil, tc.wantK8s)
			}
			if diff := cmp.Diff(tc.wantRC, p.RuntimeConfig, protocmp.Transform()); diff != "" {
				t.Errorf("RuntimeConfig (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	base, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specOnly := strings.SplitN(string(base), "\n---\n", 2)[0]
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "empty document"},
		{"comments only", "# PIPELINE DEFINITION\n# nothing here\n", "empty document"},
		{"platform only", `{"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}`, "no pipelineSpec: this is a platform spec document"},
		{"three documents", specOnly + "\n---\nplatforms: {}\n---\nplatforms: {}\n", "3 YAML documents"},
		{"second document not a platform spec", specOnly + "\n---\npipelineInfo: {name: x}\n", "document 2: expected a PlatformSpec document"},
		{"yaml syntax", "pipelineInfo: [unclosed\n", "document 1: invalid YAML"},
		{"duplicate key", "pipelineInfo: {name: a}\npipelineInfo: {name: b}\n", "invalid YAML"},
		{"top level not a mapping", "- a\n- b\n", "top level must be a mapping"},
		{"json syntax", `{"pipelineInfo": `, "invalid JSON"},
		{"wrapper unknown field", `{"pipelineSpec": {}, "runtimeConfig": {}, "extra": 1}`, `extra: unknown field "extra" in PipelineJob wrapper`},
		{"runtimeConfig unknown field", `{"pipelineSpec": {}, "runtimeConfig": {"pipelineRoot": "x"}}`, `runtimeConfig.pipelineRoot: unknown field`},
		{"wrong type for a known field", `{"pipelineInfo": {"name": 3}, "schemaVersion": "2.1.0"}`, "pipelineInfo.name: want a string, got 3"},
		{"scalar where a list belongs", `{"root": {"dag": {"tasks": {"a": {"dependentTasks": "b"}}}}}`, "root.dag.tasks['a'].dependentTasks: want a list"},
		{"wrong element type", `{"deploymentSpec": {"executors": {"e": {"container": {"args": ["a", 1]}}}}}`, "deploymentSpec.executors['e'].container.args[1]: want a string, got 1"},
		{"object where a message belongs", `{"root": {"dag": {"tasks": {"a": {"componentRef": "comp-a"}}}}}`, `root.dag.tasks['a'].componentRef: want an object, got "comp-a"`},
		{"bad enum number", `{"root": {"inputDefinitions": {"parameters": {"a": {"parameterType": 7.5}}}}}`, "invalid value for enum field parameterType: 7.5"}, // protobuf-go varies the spacing on purpose
		{"unsupported platform", specOnly + "\n---\nplatforms: {vertex: {}}\n", `platforms['vertex']: unsupported platform "vertex"`},
		{"platform field of the wrong type", specOnly + "\n---\nplatforms: {kubernetes: {deploymentSpec: {executors: {exec-gen: {activeDeadlineSeconds: soon}}}}}\n", "want an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEmptyDocumentIsValidationError(t *testing.T) {
	_, err := Load(nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load(nil) error %T %v, want *ValidationError", err, err)
	}
}

func TestParsePlatform(t *testing.T) {
	data := `{"platforms": {"kubernetes": {
	  "deploymentSpec": {"executors": {"exec-a": {
	    "activeDeadlineSeconds": "3600",
	    "pvcMount": [{"mountPath": "/data", "taskOutputParameter": {"producerTask": "createpvc", "outputParameterKey": "name"}}],
	    "nodeSelector": {"nodeSelectorJson": {"componentInputParameter": "sel"}},
	    "tolerations": [{"key": "gpu", "operator": "Exists", "tolerationSeconds": 60}],
	    "securityContext": {"runAsUser": "1000", "runAsNonRoot": true}
	  }}},
	  "pipelineConfig": {"workspace": {"size": "1Gi", "kubernetes": {"pvcSpecPatch": {"storageClassName": "fast"}}}}
	}}}`
	k, err := ParsePlatform([]byte(data))
	if err != nil {
		t.Fatalf("ParsePlatform: %v", err)
	}
	sixty, thousand, yes := Int64String(60), Int64String(1000), true
	want := &KubernetesPlatform{
		Executors: map[string]*KubernetesExecutorConfig{"exec-a": {
			ActiveDeadlineSeconds: 3600,
			PvcMount:              []PvcMount{{MountPath: "/data", TaskOutputParameter: &TaskOutputParameter{ProducerTask: "createpvc", OutputParameterKey: "name"}}},
			NodeSelector:          &NodeSelector{NodeSelectorJSON: &ParamRef{ComponentInputParameter: "sel"}},
			Tolerations:           []Toleration{{Key: "gpu", Operator: "Exists", TolerationSeconds: &sixty}},
			SecurityContext:       &SecurityContext{RunAsUser: &thousand, RunAsNonRoot: &yes},
		}},
		PipelineConfig: &KubernetesPipelineConfig{Workspace: &WorkspaceConfig{Size: "1Gi", Kubernetes: &KubernetesWorkspaceConfig{PvcSpecPatch: map[string]any{"storageClassName": "fast"}}}},
	}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Errorf("ParsePlatform (-want +got):\n%s", diff)
	}
	if got := k.Executors["exec-a"].PvcMount[0].NameRef(); got.TaskOutputParameter == nil || got.TaskOutputParameter.ProducerTask != "createpvc" {
		t.Errorf("NameRef() = %+v, want the task output reference", got)
	}
	ref, err := (&ParamRef{RuntimeValue: &RuntimeValue{Constant: "creds"}}).Proto()
	if err != nil || ref.GetRuntimeValue().GetConstant().GetStringValue() != "creds" {
		t.Errorf("ParamRef.Proto() = %v, %v; want constant creds", ref, err)
	}
}

func TestDocumentsAndSpecJSON(t *testing.T) {
	base, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Documents(base)
	if err != nil || len(docs) != 2 {
		t.Fatalf("Documents = %d docs, %v; want 2", len(docs), err)
	}
	if !strings.Contains(string(docs[1]), `"platforms"`) {
		t.Errorf("document 2 = %s, want the platform spec", docs[1])
	}
	spec, _ := baseDocs(t)
	job := encodeDocs(t, map[string]any{"pipelineSpec": spec, "runtimeConfig": map[string]any{}})
	for name, data := range map[string][]byte{"plain": base, "wrapper": job} {
		got, err := SpecJSON(data)
		if err != nil {
			t.Fatalf("%s: SpecJSON: %v", name, err)
		}
		// Newer-SDK fields survive verbatim.
		if !strings.Contains(string(got), `"resourceCpuLimit":"2"`) || strings.Contains(string(got), "pipelineSpec") {
			t.Errorf("%s: SpecJSON = %.200s..., want the bare spec with resourceCpuLimit kept", name, got)
		}
	}
	if _, err := SpecJSON(nil); err == nil || !strings.Contains(err.Error(), "empty document") {
		t.Errorf("SpecJSON(nil) error = %v, want empty document", err)
	}
}
