package launch

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/testing/protocmp"
)

func testConfig(t testing.TB) TaskConfig {
	t.Helper()
	cfg := TaskConfig{
		RunID: "run-1", TaskID: "loop-1.2.train", TaskName: "train", PipelineRoot: "s3://bucket/root",
		Container: &Container{Image: "python:3.12", Command: []string{"sh", "-c"}, Args: []string{"echo {{$.inputs.parameters['msg']}}"}},
	}
	err := cfg.SetComponent(&pipelinespec.ComponentSpec{
		InputDefinitions: &pipelinespec.ComponentInputsSpec{Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{
			"msg": {ParameterType: pipelinespec.ParameterType_STRING},
		}},
		Implementation: &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: "exec-train"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestArgsRoundTrip(t *testing.T) {
	cfg := testConfig(t)
	params := map[string]string{"z": "$(tasks.a.results.p-out)", "a": "x=y", "m": ""}
	arts := map[string]string{"model": "{{tasks.a.outputs.parameters.a-model}}", "data": `["s3://b/1","s3://b/2"]`}
	args := cfg.Args(params, arts, "/tekton/results")

	// Deterministic: keys sorted, and the same every call.
	if diff := cmp.Diff(args, cfg.Args(params, arts, "/tekton/results")); diff != "" {
		t.Fatalf("Args is not deterministic:\n%s", diff)
	}
	wantShape := []string{"run", "--config-b64", args[2],
		"--param", "a=x=y", "--param", "m=", "--param", "z=$(tasks.a.results.p-out)",
		"--artifact", `data=["s3://b/1","s3://b/2"]`, "--artifact", "model={{tasks.a.outputs.parameters.a-model}}",
		"--results-dir", "/tekton/results"}
	if diff := cmp.Diff(wantShape, args); diff != "" {
		t.Errorf("Args (-want +got):\n%s", diff)
	}
	// The encoded config must hide KFP placeholders from engine substitution.
	if strings.ContainsAny(args[2], "{}$") {
		t.Errorf("config-b64 contains substitution characters: %s", args[2])
	}

	inv, err := ParseInvocation(args)
	if err != nil {
		t.Fatal(err)
	}
	want := Invocation{Command: "run", ConfigB64: args[2], Params: params, Artifacts: arts, ResultsDir: "/tekton/results"}
	if diff := cmp.Diff(want, inv, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ParseInvocation (-want +got):\n%s", diff)
	}
	back, err := DecodeTaskConfig(inv.ConfigB64)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, back); diff != "" {
		t.Errorf("config round trip (-want +got):\n%s", diff)
	}
	spec, err := back.ComponentSpec()
	if err != nil {
		t.Fatal(err)
	}
	wantSpec := &pipelinespec.ComponentSpec{InputDefinitions: &pipelinespec.ComponentInputsSpec{Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{
		"msg": {ParameterType: pipelinespec.ParameterType_STRING},
	}}}
	if diff := cmp.Diff(wantSpec, spec, protocmp.Transform()); diff != "" {
		t.Errorf("component (executor label dropped) (-want +got):\n%s", diff)
	}
}

func TestCondAndImporterArgs(t *testing.T) {
	cc := CondConfig{TaskID: "t-cond", Condition: "inputs.parameter_values['x'] == 1",
		ParamTypes: map[string]ParameterType{"x": pipelinespec.ParameterType_NUMBER_INTEGER}}
	args := cc.Args(map[string]string{"x": "1"}, "/out")
	if args[0] != "cond" || args[len(args)-1] != "/out" {
		t.Errorf("cond args = %q", args)
	}
	inv, err := ParseInvocation(args)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCondConfig(inv.ConfigB64)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cc, back); diff != "" {
		t.Errorf("cond config (-want +got):\n%s", diff)
	}
	imp := testConfig(t).ImporterArgs(map[string]string{"uri": "s3://b/k"}, "/out")
	if imp[0] != "importer" {
		t.Errorf("importer args = %q", imp)
	}
}

func TestParseInvocationErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "missing subcommand"},
		{[]string{"explode"}, `unknown subcommand "explode"`},
		{[]string{"run", "--results-dir", "/r"}, "--config-b64 is required"},
		{[]string{"run", "--config-b64", "e30="}, "--results-dir is required"},
		{[]string{"run", "--config-b64"}, "needs a value"},
		{[]string{"run", "--config-b64", "e30=", "--results-dir", "/r", "--param", "novalue"}, "wants NAME=VALUE"},
		{[]string{"run", "--config-b64", "e30=", "--results-dir", "/r", "--param", "=v"}, "wants NAME=VALUE"},
		{[]string{"run", "--config-b64", "e30=", "--results-dir", "/r", "--param", "a=1", "--param=a=2"}, "--param a given twice"},
		{[]string{"run", "--config-b64", "e30=", "--config-b64", "e30=", "--results-dir", "/r"}, "given twice"},
		{[]string{"run", "--config-b64", "e30=", "--results-dir", "/r", "--verbose", "1"}, "unknown flag --verbose"},
		{[]string{"run", "--config-b64", "e30=", "--results-dir", "/r", "stray"}, `unexpected "stray"`},
		{[]string{"cond", "--config-b64", "e30=", "--results-dir", "/r", "--artifact", "a=s3://b/k"}, "cond takes no --artifact"},
	}
	for _, tt := range tests {
		_, err := ParseInvocation(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseInvocation(%q) error = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestParseInvocationInlineForm(t *testing.T) {
	inv, err := ParseInvocation([]string{"importer", "--config-b64=e30=", "--results-dir=/r", "--param=uri=s3://b/k?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := Invocation{Command: "importer", ConfigB64: "e30=", ResultsDir: "/r", Params: map[string]string{"uri": "s3://b/k?x=1"}}
	if diff := cmp.Diff(want, inv, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	for _, tt := range []struct{ b64, wantErr string }{
		{"!!!", "not base64"},
		{"bm90IGpzb24=", "not a valid config"},       // "not json"
		{"eyJub3BlIjoxfQ==", `unknown field "nope"`}, // {"nope":1}
	} {
		if _, err := DecodeTaskConfig(tt.b64); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("DecodeTaskConfig(%q) error = %v, want %q", tt.b64, err, tt.wantErr)
		}
	}
}

// FuzzParseInvocation: the parser never panics, and what Args builds from the
// parsed maps parses back to the same invocation.
func FuzzParseInvocation(f *testing.F) {
	f.Add("run", "--config-b64", "e30=", "--param", "a=b", "--results-dir", "/r")
	f.Add("cond", "--config-b64=x", "--param=k=v=w", "--artifact", "a=[]", "--results-dir=/r", "")
	f.Add("importer", "--results-dir", "", "--param", "=", "--config-b64", "e30=")
	f.Add("run", "--list-param", "xs", "2", "a", "b", "--config-b64=c")
	f.Add("items", "--iteration", `{"index":1}`, "--extra-b64", "e30=", "--results-dir", "d")
	f.Fuzz(func(t *testing.T, a0, a1, a2, a3, a4, a5, a6 string) {
		inv, err := ParseInvocation([]string{a0, a1, a2, a3, a4, a5, a6})
		if err != nil {
			return
		}
		again, err := ParseInvocation(inv.Args())
		if err != nil {
			t.Fatalf("rebuilt invocation does not parse: %v", err)
		}
		if diff := cmp.Diff(inv, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func TestDecodeArtifactURIs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "s3://b/k", want: []string{"s3://b/k"}},
		{in: ` ["s3://b/1", "file:///x"] `, want: []string{"s3://b/1", "file:///x"}},
		{in: "", wantErr: "empty artifact URI"},
		{in: "[1,2]", wantErr: "element 1 is not a URI"},
		{in: "[nul", wantErr: "not a JSON array of URIs"},
		// Collected over nested loops (Argo keeps a level per loop): flattened in order.
		{in: `[["s3://b/0.0","s3://b/0.1"],["s3://b/1.0"],[]]`, want: []string{"s3://b/0.0", "s3://b/0.1", "s3://b/1.0"}},
		{in: `[]`, want: []string{}},
	}
	for _, tt := range tests {
		got, err := DecodeArtifactURIs(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DecodeArtifactURIs(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DecodeArtifactURIs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
