package launch

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

func mustValue(t testing.TB, x any) *structpb.Value {
	t.Helper()
	v, err := structpb.NewValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParamEncoding(t *testing.T) {
	P := pipelinespec.ParameterType_STRING
	tests := []struct {
		name string
		typ  ParameterType
		val  any
		text string
	}{
		{"string", P, "hello world", "hello world"},
		{"string with json look", P, `{"a":1}`, `{"a":1}`},
		{"empty string", P, "", ""},
		{"string with newline", P, "a\nb\n", "a\nb\n"},
		{"integer", pipelinespec.ParameterType_NUMBER_INTEGER, 42.0, "42"},
		{"negative integer", pipelinespec.ParameterType_NUMBER_INTEGER, -7.0, "-7"},
		{"large integer", pipelinespec.ParameterType_NUMBER_INTEGER, 9007199254740992.0, "9007199254740992"},
		{"double", pipelinespec.ParameterType_NUMBER_DOUBLE, 0.25, "0.25"},
		{"whole double", pipelinespec.ParameterType_NUMBER_DOUBLE, 3.0, "3"},
		{"true", pipelinespec.ParameterType_BOOLEAN, true, "true"},
		{"false", pipelinespec.ParameterType_BOOLEAN, false, "false"},
		{"list", pipelinespec.ParameterType_LIST, []any{1.0, "a", map[string]any{"k": true}}, `[1,"a",{"k":true}]`},
		{"empty list", pipelinespec.ParameterType_LIST, []any{}, `[]`},
		{"struct sorted keys", pipelinespec.ParameterType_STRUCT, map[string]any{"b": 1.0, "a": []any{"x"}}, `{"a":["x"],"b":1}`},
		{"final status", pipelinespec.ParameterType_TASK_FINAL_STATUS, map[string]any{"state": "SUCCEEDED"}, `{"state":"SUCCEEDED"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustValue(t, tt.val)
			if got := EncodeParam(v, tt.typ); got != tt.text {
				t.Errorf("EncodeParam = %q, want %q", got, tt.text)
			}
			back, err := DecodeParam(tt.text, tt.typ)
			if err != nil {
				t.Fatalf("DecodeParam(%q): %v", tt.text, err)
			}
			if diff := cmp.Diff(v, back, protocmp.Transform()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeParamLenient(t *testing.T) {
	tests := []struct {
		text string
		typ  ParameterType
		want any
	}{
		{"True", pipelinespec.ParameterType_BOOLEAN, true},     // Python's str(True)
		{"false\n", pipelinespec.ParameterType_BOOLEAN, false}, // echo adds a newline
		{"3\n", pipelinespec.ParameterType_NUMBER_INTEGER, 3.0},
		{"3.0", pipelinespec.ParameterType_NUMBER_INTEGER, 3.0},
		{" [1, 2] ", pipelinespec.ParameterType_LIST, []any{1.0, 2.0}},
		{`{"a": 1}`, pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED, map[string]any{"a": 1.0}},
		{"not json", pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED, "not json"},
	}
	for _, tt := range tests {
		got, err := DecodeParam(tt.text, tt.typ)
		if err != nil {
			t.Errorf("DecodeParam(%q, %s): %v", tt.text, tt.typ, err)
			continue
		}
		if diff := cmp.Diff(mustValue(t, tt.want), got, protocmp.Transform()); diff != "" {
			t.Errorf("DecodeParam(%q, %s) (-want +got):\n%s", tt.text, tt.typ, diff)
		}
	}
}

func TestDecodeParamErrors(t *testing.T) {
	tests := []struct {
		text    string
		typ     ParameterType
		wantErr string
	}{
		{"yes", pipelinespec.ParameterType_BOOLEAN, "not a BOOLEAN"},
		{"1.5", pipelinespec.ParameterType_NUMBER_INTEGER, "has a fraction"},
		{`"3"`, pipelinespec.ParameterType_NUMBER_INTEGER, "not a NUMBER_INTEGER"},
		{"abc", pipelinespec.ParameterType_NUMBER_DOUBLE, "not a NUMBER_DOUBLE"},
		{`{"a":1}`, pipelinespec.ParameterType_LIST, "want a JSON array"},
		{`[1] [2]`, pipelinespec.ParameterType_LIST, "trailing data"},
		{`[1,`, pipelinespec.ParameterType_LIST, "not a LIST"},
		{`[1]`, pipelinespec.ParameterType_STRUCT, "want a JSON object"},
		{`1`, ParameterType(99), "unknown parameter type"},
	}
	for _, tt := range tests {
		_, err := DecodeParam(tt.text, tt.typ)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("DecodeParam(%q, %s) error = %v, want %q", tt.text, tt.typ, err, tt.wantErr)
		}
	}
}

func TestEncodeParamOddValues(t *testing.T) {
	if got := EncodeParam(nil, pipelinespec.ParameterType_STRING); got != "" {
		t.Errorf("nil STRING = %q", got)
	}
	if got := EncodeParam(nil, pipelinespec.ParameterType_LIST); got != "null" {
		t.Errorf("nil LIST = %q", got)
	}
	// A number given to a STRING parameter is passed as its JSON text.
	if got := EncodeParam(structpb.NewNumberValue(5), pipelinespec.ParameterType_STRING); got != "5" {
		t.Errorf("number as STRING = %q", got)
	}
}

// FuzzDecodeParam: DecodeParam never panics, and whatever it accepts
// re-encodes to text that decodes to the same value.
func FuzzDecodeParam(f *testing.F) {
	for _, s := range []string{"", "1", "1.5", "true", "True", "[1,2]", `{"a":[null]}`, "NaN", "1e400", `"x"`, "\xff"} {
		for typ := range 8 {
			f.Add(s, int32(typ))
		}
	}
	f.Fuzz(func(t *testing.T, s string, typ int32) {
		pt := ParameterType(typ)
		v, err := DecodeParam(s, pt)
		if err != nil {
			return
		}
		again, err := DecodeParam(EncodeParam(v, pt), pt)
		if err != nil {
			t.Fatalf("re-decoding %q (%s): %v", EncodeParam(v, pt), pt, err)
		}
		if diff := cmp.Diff(v, again, protocmp.Transform()); diff != "" {
			t.Fatalf("round trip of %q (%s) (-first +second):\n%s", s, pt, diff)
		}
	})
}
