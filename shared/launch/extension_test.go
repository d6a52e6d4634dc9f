package launch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

// envs renders result envelopes as a matrixed task writes them, in the
// order given (Tekton's order: by TaskRun name, so "-10" before "-2").
func envs(entries ...any) []string {
	var out []string
	for i := 0; i < len(entries); i += 2 {
		out = append(out, EncodeEnvelope(entries[i].([]int), entries[i+1].(string), false))
	}
	return out
}

func TestBindExtensions(t *testing.T) {
	spec := comp{inParams: []string{"x:NUMBER_INTEGER", "all:LIST", "outer:STRING", "inner:STRING", "msg:STRING", "peer:NUMBER_INTEGER", "status:TASK_FINAL_STATUS"},
		inArts: []string{"model", "models"}}.spec(t)
	typ := &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Artifact"}, SchemaVersion: "0.0.1"}
	art := func(name string, uris ...string) []*pipelinespec.RuntimeArtifact {
		var out []*pipelinespec.RuntimeArtifact
		for _, u := range uris {
			out = append(out, &pipelinespec.RuntimeArtifact{Name: name, Uri: u, Type: typ})
		}
		return out
	}
	noArts := map[string][]*pipelinespec.RuntimeArtifact{}
	// Eleven iterations in TaskRun-name order: 0, 1, 10, 2, 3, ... 9.
	eleven := []any{[]int{0}, "0", []int{1}, "10", []int{10}, "100"}
	for i := 2; i < 10; i++ {
		eleven = append(eleven, []int{i}, strconv.Itoa(10*i))
	}
	skipped := EncodeEnvelope([]int{1}, "", true)
	tests := []struct {
		name    string
		inv     Invocation
		want    Bound
		wantErr string
	}{
		{
			name: "collected envelopes are ordered by path, not by position",
			inv: Invocation{ExtraB64: Extra{ListInputs: map[string]ListInput{"all": {Enveloped: true, ElementType: "NUMBER_INTEGER"}}}.encode(),
				ListParams: map[string][]string{"all": envs(eleven...)}},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: params(t, map[string]any{"all": []any{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}}), Artifacts: noArts}},
		},
		{
			name: "collected leaves out skipped iterations",
			inv: Invocation{ExtraB64: Extra{ListInputs: map[string]ListInput{"all": {Enveloped: true, ElementType: "NUMBER_INTEGER"}}}.encode(),
				ListParams: map[string][]string{"all": append(envs([]int{2}, "5", []int{0}, "3"), skipped)}},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: params(t, map[string]any{"all": []any{3, 5}}), Artifacts: noArts}},
		},
		{
			name: "collected two levels down nests one list per level",
			inv: Invocation{ExtraB64: Extra{ListInputs: map[string]ListInput{"all": {Enveloped: true, ElementType: "NUMBER_INTEGER"}}}.encode(),
				ListParams: map[string][]string{"all": envs([]int{1, 0}, "10", []int{0, 1}, "1", []int{0, 0}, "0", []int{1, 1}, "11")}},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: params(t, map[string]any{"all": []any{[]any{0, 1}, []any{10, 11}}}), Artifacts: noArts}},
		},
		{
			name: "collected inside the outer loop keeps this iteration's elements",
			inv: Invocation{Iteration: `{"index":1,"item":"b","path":[1],"items":["b"]}`,
				ExtraB64:   Extra{ListInputs: map[string]ListInput{"all": {Enveloped: true, Level: 1, ElementType: "NUMBER_INTEGER"}}, ResultEnvelope: true}.encode(),
				ListParams: map[string][]string{"all": envs([]int{1, 1}, "11", []int{0, 0}, "0", []int{1, 0}, "10")}},
			want: Bound{TaskID: "t.1", Path: []int{1}, Envelope: true, Inputs: Inputs{Params: params(t, map[string]any{"all": []any{10, 11}}), Artifacts: noArts}},
		},
		{
			name: "nested iteration: per-level items, per-iteration element by path, artifact item",
			inv: Invocation{Iteration: `{"index":2,"item":"s3://b/x","path":[1,2],"items":[{"k":"o"},"s3://b/x"]}`,
				ExtraB64: Extra{
					IterationInputs:    map[string]string{"outer": `parseJson(string_value)["k"]`, "model": ""},
					IterationLevels:    map[string]int{"outer": 0, "model": 1},
					IterationArtifacts: []string{"model"},
					ListInputs: map[string]ListInput{
						"peer":   {Enveloped: true, PerIteration: true, Level: 1, ElementType: "NUMBER_INTEGER"},
						"msg":    {Enveloped: true, PerIteration: true, Level: 0, ElementType: "STRING"},
						"models": {Enveloped: true, PerIteration: true, Level: 1},
					},
				}.encode(),
				ListParams:    map[string][]string{"peer": envs([]int{1, 10}, "9", []int{1, 2}, "12", []int{0, 2}, "2"), "msg": envs([]int{0}, "zero", []int{1}, "one")},
				ListArtifacts: map[string][]string{"models": envs([]int{1, 2}, "s3://b/m12", []int{0, 2}, "s3://b/m02")}},
			want: Bound{TaskID: "t.1.2", Path: []int{1, 2}, Inputs: Inputs{
				Params:    params(t, map[string]any{"outer": "o", "peer": 12, "msg": "one"}),
				Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"model": art("model", "s3://b/x"), "models": art("models", "s3://b/m12")},
			}},
		},
		{
			name: "a per-iteration guard from an enveloped cond",
			inv: Invocation{Iteration: `{"index":10,"item":1}`,
				ExtraB64:   Extra{Guards: []string{"g"}, ListInputs: map[string]ListInput{"g": {Enveloped: true, PerIteration: true, ElementType: "STRING"}}}.encode(),
				ListParams: map[string][]string{"g": envs([]int{1}, "true", []int{10}, "false", []int{2}, "true")}},
			want: Bound{TaskID: "t.10", Path: []int{10}, Skip: true, SkipReason: `condition g is "false"`,
				Inputs: Inputs{Params: map[string]*structpb.Value{}, Artifacts: noArts}},
		},
		{
			name: "oneOf takes the first candidate whose guards hold",
			inv: Invocation{
				Params: map[string]string{"c0": "", "c0g": "false", "c1": "picked", "c1g": "true", "c2": "later", "c2g": "true"},
				ExtraB64: Extra{OneOf: map[string][]OneOfCandidate{"msg": {
					{Input: "c0", Guards: []string{"c0g"}}, {Input: "c1", Guards: []string{"c1g"}}, {Input: "c2", Guards: []string{"c2g"}},
				}}}.encode()},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: params(t, map[string]any{"msg": "picked"}), Artifacts: noArts}},
		},
		{
			name: "oneOf over artifacts",
			inv: Invocation{
				Params:    map[string]string{"c0g": "true", "c1g": "false"},
				Artifacts: map[string]string{"c0": "s3://b/a", "c1": ""},
				ExtraB64: Extra{OneOf: map[string][]OneOfCandidate{"model": {
					{Input: "c0", Guards: []string{"c0g"}}, {Input: "c1", Guards: []string{"c1g"}},
				}}}.encode()},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"model": art("model", "s3://b/a")}}},
		},
		{
			name: "final status from Tekton statuses, completed as KFP reports it",
			inv: Invocation{Params: map[string]string{"status": "Succeeded,Failed,None"},
				ExtraB64: Extra{FinalStatus: map[string]FinalStatusSource{"status": {Task: "exit-handler-1", Run: "run-1", Leaves: []string{"a", "b", "c"}}}}.encode()},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: params(t, map[string]any{"status": map[string]any{
				"state": "FAILED", "pipelineTaskName": "exit-handler-1", "pipelineJobResourceName": "run-1",
				"error": map[string]any{"code": 2, "message": "failed tasks: b"},
			}}), Artifacts: noArts}},
		},
		{
			name: "final status that succeeded has an empty error",
			inv: Invocation{Params: map[string]string{"status": "Succeeded"},
				ExtraB64: Extra{FinalStatus: map[string]FinalStatusSource{"status": {Task: "t1", Run: "r", Leaves: []string{"t1"}}}}.encode()},
			want: Bound{TaskID: "t", Inputs: Inputs{Params: params(t, map[string]any{"status": map[string]any{
				"state": "SUCCEEDED", "pipelineTaskName": "t1", "pipelineJobResourceName": "r", "error": map[string]any{},
			}}), Artifacts: noArts}},
		},
		{
			name: "oneOf with no candidate is an error",
			inv: Invocation{Params: map[string]string{"c0": "x", "c0g": "false"},
				ExtraB64: Extra{OneOf: map[string][]OneOfCandidate{"msg": {{Input: "c0", Guards: []string{"c0g"}}}}}.encode()},
			wantErr: "oneOf msg: no candidate's conditions hold",
		},
		{
			name: "per-iteration element missing",
			inv: Invocation{Iteration: `{"index":3,"item":1}`,
				ExtraB64:   Extra{ListInputs: map[string]ListInput{"x": {Enveloped: true, PerIteration: true, ElementType: "NUMBER_INTEGER"}}}.encode(),
				ListParams: map[string][]string{"x": envs([]int{1}, "1")}},
			wantErr: "--list-param x: no element for iteration [3]",
		},
		{
			name: "not an envelope",
			inv: Invocation{ExtraB64: Extra{ListInputs: map[string]ListInput{"all": {Enveloped: true, ElementType: "NUMBER_INTEGER"}}}.encode(),
				ListParams: map[string][]string{"all": {"7"}}},
			wantErr: "--list-param all[0]: not a result envelope",
		},
		{
			name:    "unknown extension field",
			inv:     Invocation{ExtraB64: "eyJuZXdGaWVsZCI6dHJ1ZX0="}, // {"newField":true}
			wantErr: `unknown field "newField"`,
		},
		{
			name:    "inconsistent nested iteration",
			inv:     Invocation{Iteration: `{"index":1,"item":1,"path":[0,2],"items":[1,1]}`},
			wantErr: "path and items must have one entry per level",
		},
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

func TestItemsLevels(t *testing.T) {
	tests := []struct {
		name    string
		inv     Invocation
		want    []string
		wantErr string
	}{
		{
			name: "plain list",
			inv:  Invocation{Params: map[string]string{"list": `["a",{"k":1}]`}},
			want: []string{`{"index":0,"item":"a"}`, `{"index":1,"item":{"k":1}}`},
		},
		{
			name: "static outer, dynamic inner: the product with paths and items",
			inv: Invocation{Params: map[string]string{"level-1": `[10,20]`},
				ExtraB64: Extra{Levels: []Level{{Raw: []any{"x", "y"}}, {Input: "level-1"}}}.encode()},
			want: []string{
				`{"index":0,"item":10,"path":[0,0],"items":["x",10]}`, `{"index":1,"item":20,"path":[0,1],"items":["x",20]}`,
				`{"index":0,"item":10,"path":[1,0],"items":["y",10]}`, `{"index":1,"item":20,"path":[1,1],"items":["y",20]}`,
			},
		},
		{
			name: "inner list inside the outer item, through a selector",
			inv: Invocation{Params: map[string]string{"level-0": `[{"b":["p","q"]},{"b":["r"]}]`},
				ExtraB64: Extra{Levels: []Level{{Input: "level-0"}, {FromItem: &ItemRef{Level: 0, Selector: `parseJson(string_value)["b"]`}}}}.encode()},
			want: []string{
				`{"index":0,"item":"p","path":[0,0],"items":[{"b":["p","q"]},"p"]}`,
				`{"index":1,"item":"q","path":[0,1],"items":[{"b":["p","q"]},"q"]}`,
				`{"index":0,"item":"r","path":[1,0],"items":[{"b":["r"]},"r"]}`,
			},
		},
		{
			name: "a loop over artifacts: one level of URIs",
			inv: Invocation{Artifacts: map[string]string{"artifacts-0": `["s3://b/1","s3://b/2"]`},
				ExtraB64: Extra{Levels: []Level{{ArtifactInput: "artifacts-0"}}}.encode()},
			want: []string{`{"index":0,"item":"s3://b/1"}`, `{"index":1,"item":"s3://b/2"}`},
		},
		{
			name: "a loop over a collected artifact list, ordered by path",
			inv: Invocation{ListArtifacts: map[string][]string{"artifacts-0": envs([]int{1}, "s3://b/1", []int{0}, "s3://b/0")},
				ExtraB64: Extra{Levels: []Level{{ArtifactInput: "artifacts-0"}}, ListInputs: map[string]ListInput{"artifacts-0": {Enveloped: true}}}.encode()},
			want: []string{`{"index":0,"item":"s3://b/0"}`, `{"index":1,"item":"s3://b/1"}`},
		},
		{
			name: "big integers keep their digits",
			inv:  Invocation{ExtraB64: Extra{Levels: []Level{{Raw: []any{json.Number("12345678901234567890")}}, {Raw: []any{true}}}}.encode()},
			want: []string{`{"index":0,"item":true,"path":[0,0],"items":[12345678901234567890,true]}`},
		},
		{
			name:    "level input not a list",
			inv:     Invocation{Params: map[string]string{"level-0": `{"a":1}`}, ExtraB64: Extra{Levels: []Level{{Input: "level-0"}}}.encode()},
			wantErr: "level-0",
		},
		{
			name:    "level without a source",
			inv:     Invocation{ExtraB64: Extra{Levels: []Level{{}}}.encode()},
			wantErr: "loop level 0: no source",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.inv.Command = "items"
			got, err := tt.inv.Items()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Items error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var list []string
			if err := json.Unmarshal([]byte(got), &list); err != nil {
				t.Fatalf("Items = %s: %v", got, err)
			}
			if diff := cmp.Diff(tt.want, list); diff != "" {
				t.Errorf("Items (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBoundWritesEnvelopes(t *testing.T) {
	spec := comp{outParams: []string{"n:NUMBER_INTEGER", "s:STRING"}, outArts: []string{"m"}}.spec(t)
	read := func(dir string) map[string]string {
		out := map[string]string{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			out[e.Name()] = string(b)
		}
		return out
	}
	b := Bound{Path: []int{1, 10}, Envelope: true}
	dir := t.TempDir()
	out := Outputs{Params: map[string]*structpb.Value{"n": structpb.NewNumberValue(3), "s": structpb.NewStringValue("a b")},
		Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"m": {{Uri: "s3://b/m"}}}}
	types := map[string]ParameterType{"n": pipelinespec.ParameterType_NUMBER_INTEGER, "s": pipelinespec.ParameterType_STRING}
	if err := b.WriteResults(dir, out, types); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"p-n": `{"path":[1,10],"value":"3"}`, "p-s": `{"path":[1,10],"value":"a b"}`, "a-m": `{"path":[1,10],"value":"s3://b/m"}`,
	}
	if diff := cmp.Diff(want, read(dir)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	dir = t.TempDir()
	if err := b.WriteSkippedResults(dir, spec); err != nil {
		t.Fatal(err)
	}
	sk := `{"path":[1,10],"value":"","skipped":true}`
	if diff := cmp.Diff(map[string]string{"p-n": sk, "p-s": sk, "a-m": sk}, read(dir)); diff != "" {
		t.Errorf("skipped results (-want +got):\n%s", diff)
	}
	dir = t.TempDir()
	if err := b.WriteCondResult(dir, false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"ok": `{"path":[1,10],"value":"false"}`}, read(dir)); diff != "" {
		t.Errorf("cond result (-want +got):\n%s", diff)
	}
	dir = t.TempDir()
	if err := (Bound{}).WriteCondResult(dir, true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"ok": "true"}, read(dir)); diff != "" {
		t.Errorf("plain cond result (-want +got):\n%s", diff)
	}
}

// Schema 2.0 components declare parameters with the legacy primitive
// "type"; a STRING stays raw text (the corpus sweep of tests/tektonsim found
// "1" bound as the number 1 and rendered as "\"1\"").
func TestLegacyPrimitiveTypes(t *testing.T) {
	spec := &pipelinespec.ComponentSpec{InputDefinitions: &pipelinespec.ComponentInputsSpec{Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{
		"text": {Type: pipelinespec.PrimitiveType_STRING}, "n": {Type: pipelinespec.PrimitiveType_INT},
	}}}
	got, err := Invocation{Params: map[string]string{"text": "1", "n": "2"}}.Bind("t", SpecTypes(spec))
	if err != nil {
		t.Fatal(err)
	}
	want := Inputs{Params: params(t, map[string]any{"text": "1", "n": 2}), Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	if diff := cmp.Diff(want, got.Inputs, protocmp.Transform()); diff != "" {
		t.Errorf("Bind (-want +got):\n%s", diff)
	}
}
