package ir

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

func loadBase(t *testing.T) *Pipeline {
	t.Helper()
	data, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBindParameters(t *testing.T) {
	num := structpb.NewNumberValue
	str := structpb.NewStringValue
	defaults := map[string]*structpb.Value{"lr": num(0.01), "mode": str("dev")}
	with := func(extra map[string]*structpb.Value) map[string]*structpb.Value {
		out := map[string]*structpb.Value{}
		for k, v := range defaults {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		runtime map[string]*structpb.Value
		in      map[string]any
		want    map[string]*structpb.Value
		wantErr []want
	}{{
		name: "defaults and a required value",
		in:   map[string]any{"steps": 10},
		want: with(map[string]*structpb.Value{"steps": num(10)}),
	}, {
		name: "command-line text is coerced",
		in:   map[string]any{"steps": "3", "lr": "0.5", "tags": `["a", "b"]`, "mode": "prod"},
		want: map[string]*structpb.Value{"steps": num(3), "lr": num(0.5), "mode": str("prod"),
			"tags": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{str("a"), str("b")}})},
	}, {
		name:    "runtime config then overrides",
		runtime: map[string]*structpb.Value{"steps": num(5), "lr": num(0.2)},
		in:      map[string]any{"steps": "7"},
		want:    map[string]*structpb.Value{"steps": num(7), "lr": num(0.2), "mode": str("dev")},
	}, {
		name:    "runtime config alone",
		runtime: map[string]*structpb.Value{"steps": num(5)},
		want:    with(map[string]*structpb.Value{"steps": num(5)}),
	}, {
		name:    "not an integer",
		in:      map[string]any{"steps": "abc"},
		wantErr: []want{{"parameters['steps']", `parameter "steps": want NUMBER_INTEGER, got "abc"`}},
	}, {
		name:    "fraction for an integer",
		in:      map[string]any{"steps": 2.5},
		wantErr: []want{{"parameters['steps']", `parameter "steps": want NUMBER_INTEGER, got 2.5`}},
	}, {
		name: "unknown and missing",
		in:   map[string]any{"stpes": 3},
		wantErr: []want{
			{"parameters['steps']", `required pipeline parameter "steps" (NUMBER_INTEGER) has no value and no default`},
			{"parameters['stpes']", `unknown pipeline parameter "stpes" (declared: lr, mode, steps, tags)`},
		},
	}, {
		name:    "value outside the Literal",
		in:      map[string]any{"steps": 1, "mode": "staging"},
		wantErr: []want{{"parameters['mode']", `parameter "mode": "staging" is not one of the allowed values ["dev", "prod"]`}},
	}, {
		name:    "bad list text",
		in:      map[string]any{"steps": 1, "tags": "a,b"},
		wantErr: []want{{"parameters['tags']", `parameter "tags": want LIST (a JSON array), got "a,b"`}},
	}, {
		name:    "bad runtime config value",
		runtime: map[string]*structpb.Value{"steps": str("many")},
		wantErr: []want{{"runtimeConfig.parameterValues['steps']", `parameter "steps": want NUMBER_INTEGER, got "many"`}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := loadBase(t)
			if tc.runtime != nil {
				p.RuntimeConfig = &RuntimeConfig{ParameterValues: tc.runtime}
			}
			got, err := p.BindParameters(tc.in)
			if tc.wantErr != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("BindParameters error = %v, want a *ValidationError", err)
				}
				var gotErr []want
				for i, pr := range ve.Problems {
					w := want{pr.Path, pr.Message}
					if i < len(tc.wantErr) && tc.wantErr[i].Path == pr.Path && strings.Contains(pr.Message, tc.wantErr[i].Contains) {
						w.Contains = tc.wantErr[i].Contains
					}
					gotErr = append(gotErr, w)
				}
				if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
					t.Errorf("problems (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("BindParameters: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("BindParameters (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCoerceParameter(t *testing.T) {
	type pt = pipelinespec.ParameterType_ParameterTypeEnum
	const (
		str  = pipelinespec.ParameterType_STRING
		i    = pipelinespec.ParameterType_NUMBER_INTEGER
		d    = pipelinespec.ParameterType_NUMBER_DOUBLE
		b    = pipelinespec.ParameterType_BOOLEAN
		list = pipelinespec.ParameterType_LIST
		st   = pipelinespec.ParameterType_STRUCT
	)
	tests := []struct {
		in      any
		t       pt
		want    any // the value's Go form, or nil when an error is expected
		wantErr string
	}{
		{"x", str, "x", ""},
		{3, str, nil, "want STRING, got 3"},
		{"42", i, 42.0, ""},
		{int64(1) << 54, i, nil, "outside ±2^53"},
		{" 7 ", i, 7.0, ""},
		{"1e3", i, 1000.0, ""},
		{"NaN", d, nil, "want NUMBER_DOUBLE"},
		{"2.5", d, 2.5, ""},
		{structpb.NewNumberValue(4), d, 4.0, ""},
		{"True", b, true, ""},
		{"false", b, false, ""},
		{"yes", b, nil, "want BOOLEAN"},
		{`[1, "a"]`, list, []any{1.0, "a"}, ""},
		{[]any{1}, list, []any{1.0}, ""},
		{`{"a": 1}`, list, nil, "want LIST"},
		{`{"a": 1}`, st, map[string]any{"a": 1.0}, ""},
		{map[string]any{"a": "b"}, st, map[string]any{"a": "b"}, ""},
		{"[1]", st, nil, "want STRUCT"},
		{"anything", pipelinespec.ParameterType_TASK_FINAL_STATUS, nil, "cannot be set by the user"},
		{"free", pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED, "free", ""},
	}
	for _, tc := range tests {
		got, err := CoerceParameter(tc.in, tc.t)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CoerceParameter(%#v, %s) error = %v, want %q", tc.in, tc.t, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("CoerceParameter(%#v, %s): %v", tc.in, tc.t, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got.AsInterface()); diff != "" {
			t.Errorf("CoerceParameter(%#v, %s) (-want +got):\n%s", tc.in, tc.t, diff)
		}
	}
}
