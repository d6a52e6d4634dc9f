package ir

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestEvalCondition(t *testing.T) {
	params := map[string]*structpb.Value{
		"pipelinechannel--flip-coin-Output":     structpb.NewStringValue("heads"),
		"pipelinechannel--random-num-Output":    structpb.NewNumberValue(7),
		"pipelinechannel--threshold":            structpb.NewStringValue("5"),
		"pipelinechannel--pick_a":               structpb.NewBoolValue(true),
		"pipelinechannel--bool-identity-Output": structpb.NewStringValue("true"),
		"pipelinechannel--loop-item-param-1":    structpb.NewNumberValue(3),
		"pipelinechannel--list":                 structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNumberValue(1)}}),
		"pipelineparam--bool-identity-Output":   structpb.NewStringValue("true"),
		"pipelinechannel--ratio":                structpb.NewNumberValue(0.5),
	}
	tests := []struct {
		expr    string
		want    bool
		wantErr string
	}{
		// Shapes found in the corpus.
		{expr: "inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads'", want: true},
		{expr: "!(inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads')", want: false},
		{expr: "int(inputs.parameter_values['pipelinechannel--random-num-Output']) > 5", want: true},
		{expr: "int(inputs.parameter_values['pipelinechannel--random-num-Output']) <= 5", want: false},
		{expr: "int(inputs.parameter_values['pipelinechannel--loop-item-param-1']) >= int(inputs.parameter_values['pipelinechannel--threshold'])", want: false},
		{expr: "inputs.parameter_values['pipelinechannel--pick_a'] == true", want: true},
		{expr: "inputs.parameter_values['pipelinechannel--bool-identity-Output'] == 'true'", want: true},
		{expr: "inputs.parameter_values['pipelinechannel--flip-coin-Output'] == inputs.parameter_values['pipelinechannel--flip-coin-Output']", want: true},
		{expr: "!(inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads') && inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'tails'", want: false},
		{expr: "inputs.parameters['pipelineparam--bool-identity-Output'].string_value == 'true'", want: true},
		// A double compared with an int literal (CEL's cross-type numeric equality).
		{expr: "inputs.parameter_values['pipelinechannel--loop-item-param-1'] == 3", want: true},
		{expr: "double(inputs.parameter_values['pipelinechannel--ratio']) < 1.0", want: true},
		{expr: "size(inputs.parameter_values['pipelinechannel--list']) == 1", want: true},
		// Errors.
		{expr: "inputs.parameter_values['pipelinechannel--missing'] == 'x'", wantErr: "no such key"},
		{expr: "int(inputs.parameter_values['pipelinechannel--flip-coin-Output']) > 1", wantErr: "type conversion error from 'string' to 'int'"},
		{expr: "inputs.parameter_values['pipelinechannel--flip-coin-Output']", wantErr: "want bool"},
		{expr: "'a' + 1", wantErr: "no matching overload"},
		{expr: "inputs.parameter_values[", wantErr: "Syntax error"},
		{expr: "input.parameter_values['x'] == 1", wantErr: "undeclared reference to 'input'"},
		{expr: "inputs.values['x'] == 1", wantErr: "unknown field inputs.values"},
		{expr: "", wantErr: "empty condition"},
	}
	for _, tc := range tests {
		got, err := EvalCondition(tc.expr, params)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("EvalCondition(%q) = %v, %v; want error containing %q", tc.expr, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("EvalCondition(%q): %v", tc.expr, err)
			continue
		}
		if got != tc.want {
			t.Errorf("EvalCondition(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestCheckCondition(t *testing.T) {
	if err := CheckCondition("int(inputs.parameter_values['pipelinechannel--x']) > 5"); err != nil {
		t.Errorf("CheckCondition(valid): %v", err)
	}
	if err := CheckCondition("1 + 1"); err == nil || !strings.Contains(err.Error(), "want bool") {
		t.Errorf("CheckCondition(non-bool) = %v, want a bool error", err)
	}
}

func TestConditionParameters(t *testing.T) {
	got := ConditionParameters("int(inputs.parameter_values['b']) >= int(inputs.parameter_values['a']) && inputs.parameters['c'].string_value == 'x' && inputs.parameter_values['a'] != 1")
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("ConditionParameters (-want +got):\n%s", diff)
	}
}

func TestEvalParameterSelector(t *testing.T) {
	item := structpb.NewStringValue(`{"A_a": "10", "B_b": 20}`)
	tests := []struct {
		expr    string
		in      *structpb.Value
		want    *structpb.Value
		wantErr string
	}{
		{expr: `parseJson(string_value)["A_a"]`, in: item, want: structpb.NewStringValue("10")},
		{expr: `parseJson(string_value)["B_b"]`, in: item, want: structpb.NewNumberValue(20)},
		{expr: `parseJson(string_value)["a"]`, in: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewStringValue("x")}}), want: structpb.NewStringValue("x")},
		{expr: `parseJson(string_value)["C"]`, in: item, wantErr: "no such key"},
		{expr: `parseJson(string_value)[`, in: item, wantErr: "Syntax error"},
		{expr: `parseJson(string_value)["a"]`, in: structpb.NewStringValue("not json"), wantErr: "parseJson"},
	}
	for _, tc := range tests {
		got, err := EvalParameterSelector(tc.expr, tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("EvalParameterSelector(%q) = %v, %v; want error containing %q", tc.expr, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("EvalParameterSelector(%q): %v", tc.expr, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
			t.Errorf("EvalParameterSelector(%q) (-want +got):\n%s", tc.expr, diff)
		}
	}
}

func TestEvalConditionConcurrent(t *testing.T) {
	params := map[string]*structpb.Value{"pipelinechannel--n": structpb.NewNumberValue(7)}
	done := make(chan error)
	for i := range 8 {
		go func() {
			expr := "int(inputs.parameter_values['pipelinechannel--n']) > " + string(rune('0'+i))
			got, err := EvalCondition(expr, params)
			if err == nil && got != (7 > i) {
				err = fmt.Errorf("%s = %v", expr, got)
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
