package launch

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestBind(t *testing.T) {
	spec := comp{inParams: []string{"n:NUMBER_INTEGER", "s:STRING", "item:STRING", "field:NUMBER_INTEGER", "peer:NUMBER_DOUBLE", "all:LIST", "status:TASK_FINAL_STATUS", "picked:STRING"},
		inArts: []string{"model", "models", "one"}}.spec(t)
	dataset := &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Artifact"}, SchemaVersion: "0.0.1"}
	art := func(name string, uris ...string) []*pipelinespec.RuntimeArtifact {
		var out []*pipelinespec.RuntimeArtifact
		for _, u := range uris {
			out = append(out, &pipelinespec.RuntimeArtifact{Name: name, Uri: u, Type: dataset})
		}
		return out
	}
	tests := []struct {
		name    string
		inv     Invocation
		want    Bound
		wantErr string
	}{
		{
			name: "plain params and artifacts",
			inv: Invocation{Params: map[string]string{"n": "3", "s": "x y", "status": "Succeeded,None"},
				Artifacts: map[string]string{"model": "s3://b/m", "models": `["s3://b/1","s3://b/2"]`}},
			want: Bound{TaskID: "t", Inputs: Inputs{
				Params:    params(t, map[string]any{"n": 3, "s": "x y", "status": map[string]any{"state": "SUCCEEDED"}}),
				Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"model": art("model", "s3://b/m"), "models": art("models", "s3://b/1", "s3://b/2")},
			}},
		},
		{
			name: "argo task id",
			inv:  Invocation{Params: map[string]string{TaskIDParam: "for-loop-1.2.t", "n": "1"}},
			want: Bound{TaskID: "for-loop-1.2.t", Inputs: Inputs{Params: params(t, map[string]any{"n": 1}), Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}},
		},
		{
			name: "tekton iteration: item, selector, per-iteration and collected lists",
			inv: Invocation{
				Params:    map[string]string{"picked": `{"k":"v"}`},
				Iteration: `{"index":1,"item":{"a":"first","b":7}}`,
				ExtraB64: Extra{
					IterationInputs: map[string]string{"item": `parseJson(string_value)["a"]`, "field": `parseJson(string_value)["b"]`},
					ListInputs: map[string]ListInput{
						"peer":   {PerIteration: true, ElementType: "NUMBER_DOUBLE"},
						"all":    {ElementType: "NUMBER_INTEGER"},
						"one":    {PerIteration: true},
						"models": {},
					},
					Selectors: map[string]string{"picked": `parseJson(string_value)["k"]`},
				}.encode(),
				ListParams:    map[string][]string{"peer": {"0.5", "1.5", "2.5"}, "all": {"1", "", "3"}},
				ListArtifacts: map[string][]string{"one": {"s3://b/0", "s3://b/1"}, "models": {"s3://b/x", "", `["s3://b/y"]`}},
			},
			want: Bound{TaskID: "t.1", Path: []int{1}, Inputs: Inputs{
				Params:    params(t, map[string]any{"item": "first", "field": 7, "peer": 1.5, "all": []any{1, 3}, "picked": "v"}),
				Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"one": art("one", "s3://b/1"), "models": art("models", "s3://b/x", "s3://b/y")},
			}},
		},
		{
			name: "guards all true run",
			inv: Invocation{Params: map[string]string{"pf-guard-0": "true"}, Iteration: `{"index":0,"item":1}`,
				ExtraB64:   Extra{Guards: []string{"pf-guard-0", "pf-guard-1"}, ListInputs: map[string]ListInput{"pf-guard-1": {PerIteration: true, ElementType: "STRING"}}}.encode(),
				ListParams: map[string][]string{"pf-guard-1": {"true", "false"}}},
			want: Bound{TaskID: "t.0", Path: []int{0}, Inputs: Inputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}},
		},
		{
			name: "a false guard skips",
			inv: Invocation{Iteration: `{"index":1,"item":1}`,
				ExtraB64:   Extra{Guards: []string{"pf-guard-0"}, ListInputs: map[string]ListInput{"pf-guard-0": {PerIteration: true, ElementType: "STRING"}}}.encode(),
				ListParams: map[string][]string{"pf-guard-0": {"true", "false"}}},
			want: Bound{TaskID: "t.1", Skip: true, SkipReason: `condition pf-guard-0 is "false"`, Path: []int{1},
				Inputs: Inputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}},
		},
		{name: "bad param", inv: Invocation{Params: map[string]string{"n": "x"}}, wantErr: "--param n:"},
		{name: "item without iteration", inv: Invocation{ExtraB64: Extra{IterationInputs: map[string]string{"item": ""}}.encode()}, wantErr: "no --iteration was given"},
		{name: "list without entry", inv: Invocation{ListParams: map[string][]string{"all": {"1"}}}, wantErr: "no listInputs entry"},
		{name: "iteration out of range", inv: Invocation{Iteration: `{"index":5,"item":0}`,
			ExtraB64: Extra{ListInputs: map[string]ListInput{"peer": {PerIteration: true}}}.encode(), ListParams: map[string][]string{"peer": {"1"}}},
			wantErr: "iteration 5 but only 1 elements"},
		{name: "guard without value", inv: Invocation{ExtraB64: Extra{Guards: []string{"g"}}.encode()}, wantErr: "guard g has no value"},
		{name: "bad iteration", inv: Invocation{Iteration: "7"}, wantErr: "--iteration 7"},
		{name: "bad extra", inv: Invocation{ExtraB64: "%%"}, wantErr: "--extra-b64"},
		{name: "bad status", inv: Invocation{Params: map[string]string{"status": "Exploded"}}, wantErr: "not a TASK_FINAL_STATUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.inv.Bind("t", SpecTypes(spec))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Bind error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Bind (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeIterations(t *testing.T) {
	got, err := EncodeIterations([]any{"a", map[string]any{"x": 1.0}})
	if err != nil {
		t.Fatal(err)
	}
	want := `["{\"index\":0,\"item\":\"a\"}","{\"index\":1,\"item\":{\"x\":1}}"]`
	if got != want {
		t.Errorf("EncodeIterations = %s, want %s", got, want)
	}
}

// encode returns the --extra-b64 value of e.
func (e Extra) encode() string {
	s, err := e.Encode()
	if err != nil {
		panic(err)
	}
	return s
}
