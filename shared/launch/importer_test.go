package launch

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/artifacts"
)

func importerTask(t *testing.T, spec *pipelinespec.PipelineDeploymentConfig_ImporterSpec, inParams ...string) TaskConfig {
	t.Helper()
	cfg := TaskConfig{RunID: "run-1", TaskID: "importer", TaskName: "importer"}
	if err := cfg.SetImporter(spec); err != nil {
		t.Fatal(err)
	}
	if err := cfg.SetComponent(comp{inParams: inParams, outArts: []string{"artifact"}}.spec(t)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestImport(t *testing.T) {
	env, root, _ := localEnv(t)
	ctx := context.Background()
	existing := artifacts.Join(root, "data", "shakespeare.txt")
	if _, err := env.Store.Put(ctx, existing, strings.NewReader("to be")); err != nil {
		t.Fatal(err)
	}
	dataset := &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Dataset"}, SchemaVersion: "0.0.1"}
	meta, err := structpb.NewStruct(map[string]any{
		"name":                           "prefix-{{$.inputs.parameters['tag']}}",
		"count":                          "{{$.inputs.parameters['n']}}", // exactly one placeholder: keeps the number type
		"list":                           []any{"{{$.inputs.parameters['tag']}}", "fixed"},
		"{{$.inputs.parameters['tag']}}": "as key",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		uri    *pipelinespec.ValueOrRuntimeParameter
		params map[string]any
		want   *pipelinespec.RuntimeArtifact
	}{
		{
			name:   "constant uri seen by the store",
			uri:    &pipelinespec.ValueOrRuntimeParameter{Value: &pipelinespec.ValueOrRuntimeParameter_Constant{Constant: structpb.NewStringValue(existing)}},
			params: map[string]any{"tag": "v1", "n": 3},
			want: &pipelinespec.RuntimeArtifact{Name: "artifact", Uri: existing, Type: dataset, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
				"name": structpb.NewStringValue("prefix-v1"), "count": structpb.NewNumberValue(3),
				"list": mustValue(t, []any{"v1", "fixed"}), "v1": structpb.NewStringValue("as key"),
				MetaSize: structpb.NewNumberValue(5), MetaDigest: structpb.NewStringValue(digestOf("to be")),
			}}},
		},
		{
			name:   "uri from a parameter, outside the store",
			uri:    &pipelinespec.ValueOrRuntimeParameter{Value: &pipelinespec.ValueOrRuntimeParameter_RuntimeParameter{RuntimeParameter: "uri"}},
			params: map[string]any{"uri": "gs://bucket/elsewhere", "tag": "v2", "n": 1},
			want: &pipelinespec.RuntimeArtifact{Name: "artifact", Uri: "gs://bucket/elsewhere", Type: dataset, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
				"name": structpb.NewStringValue("prefix-v2"), "count": structpb.NewNumberValue(1),
				"list": mustValue(t, []any{"v2", "fixed"}), "v2": structpb.NewStringValue("as key"),
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := importerTask(t, &pipelinespec.PipelineDeploymentConfig_ImporterSpec{ArtifactUri: tt.uri, TypeSchema: dataset, Metadata: meta},
				"uri:STRING", "tag:STRING", "n:NUMBER_INTEGER")
			out, err := Import(ctx, cfg, Inputs{Params: params(t, tt.params)}, env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, out.Artifacts["artifact"][0], protocmp.Transform()); diff != "" {
				t.Errorf("imported artifact (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	env, _, _ := localEnv(t)
	fromParam := &pipelinespec.ValueOrRuntimeParameter{Value: &pipelinespec.ValueOrRuntimeParameter_RuntimeParameter{RuntimeParameter: "uri"}}
	tests := []struct {
		name    string
		spec    *pipelinespec.PipelineDeploymentConfig_ImporterSpec
		params  map[string]any
		wantErr string
	}{
		{"no uri", &pipelinespec.PipelineDeploymentConfig_ImporterSpec{}, nil, "no artifact URI"},
		{"param missing", &pipelinespec.PipelineDeploymentConfig_ImporterSpec{ArtifactUri: fromParam}, nil, `parameter "uri", which has no value`},
		{"param not a string", &pipelinespec.PipelineDeploymentConfig_ImporterSpec{ArtifactUri: fromParam}, map[string]any{"uri": 5}, "is not a non-empty string"},
		{"metadata placeholder for output", &pipelinespec.PipelineDeploymentConfig_ImporterSpec{ArtifactUri: fromParam,
			Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewStringValue("{{$.outputs.parameters['o'].output_file}}")}}},
			map[string]any{"uri": "s3://b/k"}, "an importer can only use input parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := importerTask(t, tt.spec, "uri:STRING")
			_, err := Import(context.Background(), cfg, Inputs{Params: params(t, tt.params)}, env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := Import(context.Background(), TaskConfig{TaskID: "x"}, Inputs{}, env); err == nil || !strings.Contains(err.Error(), "no importer spec") {
		t.Errorf("no importer spec error = %v", err)
	}
}
