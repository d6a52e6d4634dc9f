package ir

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePlaceholders(t *testing.T) {
	tests := []struct {
		in      string
		want    []Placeholder
		wantErr string
	}{
		{in: "plain text"},
		{in: "{{$}}", want: []Placeholder{{Kind: ExecutorInput, Text: "{{$}}"}}},
		{in: "--x={{$.json_escape[1]}}", want: []Placeholder{{Kind: ExecutorInput, Escapes: 1, Text: "{{$.json_escape[1]}}"}}},
		{in: "{{$.inputs.parameters['lr']}} and {{$.inputs.parameters[\"a b\"]}}", want: []Placeholder{
			{Kind: InputParameter, Name: "lr", Text: "{{$.inputs.parameters['lr']}}"},
			{Kind: InputParameter, Name: "a b", Text: `{{$.inputs.parameters["a b"]}}`},
		}},
		{in: "{{$.inputs.artifacts['d'].uri}}{{$.inputs.artifacts['d'].path}}", want: []Placeholder{
			{Kind: InputArtifactURI, Name: "d", Text: "{{$.inputs.artifacts['d'].uri}}"},
			{Kind: InputArtifactPath, Name: "d", Text: "{{$.inputs.artifacts['d'].path}}"},
		}},
		{in: "{{$.inputs.artifacts['m'].metadata['resourceName']}}", want: []Placeholder{
			{Kind: InputArtifactMetadata, Name: "m", Key: "resourceName", Text: "{{$.inputs.artifacts['m'].metadata['resourceName']}}"},
		}},
		{in: "{{$.inputs.artifacts['m'].metadata}}", want: []Placeholder{{Kind: InputArtifactMetadata, Name: "m", Text: "{{$.inputs.artifacts['m'].metadata}}"}}},
		{in: "{{$.outputs.parameters['o'].output_file}}", want: []Placeholder{{Kind: OutputParameterFile, Name: "o", Text: "{{$.outputs.parameters['o'].output_file}}"}}},
		{in: "{{$.outputs.artifacts['m'].uri}}", want: []Placeholder{{Kind: OutputArtifactURI, Name: "m", Text: "{{$.outputs.artifacts['m'].uri}}"}}},
		{in: "{{$.outputs.artifacts['m'].path}}", want: []Placeholder{{Kind: OutputArtifactPath, Name: "m", Text: "{{$.outputs.artifacts['m'].path}}"}}},
		{in: "{{$.outputs.artifacts['m'].metadata}}", want: []Placeholder{{Kind: OutputArtifactMetadata, Name: "m", Text: "{{$.outputs.artifacts['m'].metadata}}"}}},
		{in: "{{$.outputs.output_file}}", want: []Placeholder{{Kind: OutputMetadataFile, Text: "{{$.outputs.output_file}}"}}},
		{in: "/{{$.pipeline_job_uuid}}/{{$.pipeline_task_uuid}}", want: []Placeholder{
			{Kind: System, Name: "pipeline_job_uuid", Text: "{{$.pipeline_job_uuid}}"},
			{Kind: System, Name: "pipeline_task_uuid", Text: "{{$.pipeline_task_uuid}}"},
		}},
		{in: `"parameters": {{$.inputs.parameters['p']}}}`, want: []Placeholder{{Kind: InputParameter, Name: "p", Text: "{{$.inputs.parameters['p']}}"}}},
		{in: "{{$.inputs.parameters['x']", wantErr: "unterminated placeholder"},
		{in: "{{$.inputs.parameter['x']}}", wantErr: "unknown placeholder"},
		{in: "{{$.inputs.parameters[x]}}", wantErr: "want ['name']"},
		{in: "{{$.inputs.parameters['']}}", wantErr: "empty name"},
		{in: "{{$.inputs.parameters['x'].uri}}", wantErr: `unknown accessor ".uri"`},
		{in: "{{$.inputs.artifacts['x'].size}}", wantErr: `unknown accessor ".size"`},
		{in: "{{$.json_escape[x]}}", wantErr: "json_escape depth"},
		{in: "{{$.pipeline_job_colour}}", wantErr: "unknown placeholder"},
		{in: "{{$x}}", wantErr: "must start with $."},
	}
	for _, tc := range tests {
		got, err := ParsePlaceholders(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePlaceholders(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePlaceholders(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParsePlaceholders(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func testResolver() *StaticResolver {
	return &StaticResolver{
		Params:           map[string]string{"lr": "0.1", "name": "n1", "empty": ""},
		InputURIs:        map[string]string{"data": "s3://b/run/gen/data"},
		InputPaths:       map[string]string{"data": "/tmp/in/data"},
		InputMetadata:    map[string]map[string]any{"data": {"rows": 3.0, "projectId": "p"}},
		OutputParamFiles: map[string]string{"Output": "/tmp/out/Output"},
		OutputURIs:       map[string]string{"model": "s3://b/run/train/model"},
		OutputPaths:      map[string]string{"model": "/tmp/out/model"},
		OutputFile:       "/tmp/out/executor_output.json",
		ExecutorInput:    `{"inputs":{"parameterValues":{"lr":0.1}}}`,
		System:           map[string]string{"pipeline_job_uuid": "run-1"},
	}
}

func TestResolveArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{{
		name: "plain placeholders",
		args: []string{"--lr", "{{$.inputs.parameters['lr']}}", "--in={{$.inputs.artifacts['data'].path}}", "{{$.outputs.parameters['Output'].output_file}}"},
		want: []string{"--lr", "0.1", "--in=/tmp/in/data", "/tmp/out/Output"},
	}, {
		name: "IfPresent then, list expands to several args",
		args: []string{`{"IfPresent": {"InputName": "name", "Then": ["--name", "{{$.inputs.parameters['name']}}"]}}`, "x"},
		want: []string{"--name", "n1", "x"},
	}, {
		name: "IfPresent absent without Else drops the arg",
		args: []string{"a", `{"IfPresent": {"InputName": "nick", "Then": ["--nick", "{{$.inputs.parameters['nick']}}"]}}`, "b"},
		want: []string{"a", "b"},
	}, {
		name: "IfPresent else",
		args: []string{`{"IfPresent": {"InputName": "nick", "Then": ["{{$.inputs.parameters['nick']}}"], "Else": ["bye"]}}`},
		want: []string{"bye"},
	}, {
		name: "IfPresent on an artifact with Concat then",
		args: []string{`{"IfPresent": {"InputName": "data", "Then": {"Concat": ["--uri=", "{{$.inputs.artifacts['data'].uri}}"]}}}`},
		want: []string{"--uri=s3://b/run/gen/data"},
	}, {
		name: "Concat with a nested IfPresent and metadata",
		args: []string{`{"Concat": ["{", "\"p\": \"", "{{$.inputs.artifacts['data'].metadata['projectId']}}", "\"", {"IfPresent": {"InputName": "name", "Then": {"Concat": [", \"n\": \"", "{{$.inputs.parameters['name']}}", "\""]}}}, "}"]}`},
		want: []string{`{"p": "p", "n": "n1"}`},
	}, {
		name: "JSON-looking literal payload keeps its braces",
		args: []string{`{"display_name": "job-{{$.pipeline_job_uuid}}", "parameters": {{$.inputs.parameters['lr']}}}`},
		want: []string{`{"display_name": "job-run-1", "parameters": 0.1}`},
	}, {
		name: "executor input and its escaped form",
		args: []string{"{{$}}", `["--executor_input={{$.json_escape[1]}}"]`},
		want: []string{`{"inputs":{"parameterValues":{"lr":0.1}}}`, `["--executor_input={\"inputs\":{\"parameterValues\":{\"lr\":0.1}}}"]`},
	}, {
		name: "whole metadata and output file",
		args: []string{"{{$.inputs.artifacts['data'].metadata}}", "{{$.outputs.output_file}}"},
		want: []string{`{"projectId":"p","rows":3}`, "/tmp/out/executor_output.json"},
	}, {
		name: "empty parameter value is an empty argument",
		args: []string{"{{$.inputs.parameters['empty']}}"},
		want: []string{""},
	}, {
		name:    "missing input outside IfPresent",
		args:    []string{"ok", "{{$.inputs.parameters['nick']}}"},
		wantErr: `argument 1: {{$.inputs.parameters['nick']}}: no input parameter "nick"`,
	}, {
		name:    "malformed placeholder",
		args:    []string{"{{$.inputs.parameters['lr']"},
		wantErr: "argument 0: unterminated placeholder",
	}, {
		name:    "unknown structured key inside Concat",
		args:    []string{`{"Concat": [{"IfNotPresent": {}}]}`},
		wantErr: `unknown structured placeholder "IfNotPresent"`,
	}, {
		name:    "IfPresent without InputName",
		args:    []string{`{"IfPresent": {"Then": ["x"]}}`},
		wantErr: "IfPresent.InputName is missing",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveArgs(tc.args, testResolver())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveArgs error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveArgs: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ResolveArgs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveArgsDepthLimit(t *testing.T) {
	arg := `"x"`
	for range maxPlaceholderDepth + 2 {
		arg = `{"Concat": [` + arg + `]}`
	}
	if _, err := ResolveArgs([]string{arg}, testResolver()); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("ResolveArgs on deep nesting: %v, want a depth error", err)
	}
}

func TestJSONEscape(t *testing.T) {
	in := `{"a":"b\c"}`
	once := JSONEscape(in, 1)
	var back string
	if err := json.Unmarshal([]byte(`"`+once+`"`), &back); err != nil || back != in {
		t.Fatalf("JSONEscape once = %q; unescapes to %q, %v", once, back, err)
	}
	if got := JSONEscape(in, 0); got != in {
		t.Errorf("JSONEscape(_, 0) = %q, want unchanged", got)
	}
	if got, want := JSONEscape(`"`, 2), `\\\"`; got != want {
		t.Errorf("JSONEscape(quote, 2) = %q, want %q", got, want)
	}
}

func FuzzResolveArgs(f *testing.F) {
	f.Add(`{"Concat": ["a", {"IfPresent": {"InputName": "name", "Then": ["{{$.inputs.parameters['name']}}"]}}]}`)
	f.Add("{{$.inputs.artifacts['data'].metadata['rows']}}")
	f.Add(`{"IfPresent": {"InputName": "x", "Then": {"Concat": []}, "Else": null}}`)
	f.Add("{{$.json_escape[3]}}{{")
	f.Fuzz(func(t *testing.T, arg string) {
		_, _ = ResolveArgs([]string{arg}, testResolver())
		_, _ = ParsePlaceholders(arg)
		_ = argReferences(arg, func(*Placeholder, string) error { return nil })
	})
}
