package launch

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"
)

// resultNameRE is the intersection of Tekton's result-name and Argo's
// parameter-name rules.
var resultNameRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_]*[A-Za-z0-9]$`)

func TestResultNames(t *testing.T) {
	tests := []struct {
		name, param, artifact string
	}{
		{"out", "p-out", "a-out"},
		{"Output_1", "p-Output_1", "a-Output_1"},
		{"with-dash", "p-with-dash", "a-with-dash"},
		{"dotted.name", "p-dotted_name-10c733ab", "a-dotted_name-10c733ab"},
		{"trailing_", "p-trailing-e50cedf6", "a-trailing-e50cedf6"},
		{"", "p--e3b0c442", "a--e3b0c442"},
	}
	for _, tt := range tests {
		p, a := ParamResult(tt.name), ArtifactResult(tt.name)
		if p != tt.param || a != tt.artifact {
			t.Errorf("results of %q = %q, %q; want %q, %q", tt.name, p, a, tt.param, tt.artifact)
		}
		if !resultNameRE.MatchString(p) || !resultNameRE.MatchString(a) {
			t.Errorf("%q -> %q, %q: not valid result names", tt.name, p, a)
		}
	}
	// Distinct names never collide, even when they sanitise alike.
	seen := map[string]string{}
	for _, n := range []string{"a.b", "a_b", "a b", "a/b", "ä_b", "", "-", "_"} {
		r := ParamResult(n)
		if !resultNameRE.MatchString(r) {
			t.Errorf("ParamResult(%q) = %q is invalid", n, r)
		}
		if prev, dup := seen[r]; dup {
			t.Errorf("ParamResult(%q) = ParamResult(%q) = %q", n, prev, r)
		}
		seen[r] = n
	}
}

func TestWriteResults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	out := Outputs{
		Params: map[string]*structpb.Value{
			"msg":   structpb.NewStringValue("hi"),
			"n":     structpb.NewNumberValue(3),
			"flags": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewBoolValue(true)}}),
		},
		Artifacts: map[string][]*pipelinespec.RuntimeArtifact{
			"model": {{Uri: "s3://b/run/t/model"}},
			"parts": {{Uri: "s3://b/1"}, {Uri: "s3://b/2"}},
		},
	}
	types := map[string]ParameterType{"msg": pipelinespec.ParameterType_STRING, "n": pipelinespec.ParameterType_NUMBER_INTEGER, "flags": pipelinespec.ParameterType_LIST}
	if err := WriteResults(dir, out, types); err != nil {
		t.Fatal(err)
	}
	if err := WriteCondResult(dir, false); err != nil {
		t.Fatal(err)
	}
	got := readDir(t, dir)
	want := map[string]string{
		"p-msg": "hi", "p-n": "3", "p-flags": "[true]",
		"a-model": "s3://b/run/t/model", "a-parts": `["s3://b/1","s3://b/2"]`,
		"ok": "false",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(b)
	}
	return got
}
