package ir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// PlaceholderKind says what a KFP runtime placeholder stands for.
type PlaceholderKind int

// Placeholder kinds, named after the text they come from.
const (
	// ExecutorInput is {{$}}: the whole ExecutorInput as JSON. With
	// Escapes > 0 it is {{$.json_escape[N]}}: that JSON escaped N times as
	// the contents of a JSON string, for embedding in JSON payloads.
	ExecutorInput          PlaceholderKind = iota + 1
	InputParameter                         // {{$.inputs.parameters['x']}}
	InputArtifactURI                       // {{$.inputs.artifacts['x'].uri}}
	InputArtifactPath                      // {{$.inputs.artifacts['x'].path}}
	InputArtifactMetadata                  // {{$.inputs.artifacts['x'].metadata}} or .metadata['k'] (Key)
	OutputParameterFile                    // {{$.outputs.parameters['x'].output_file}}
	OutputArtifactURI                      // {{$.outputs.artifacts['x'].uri}}
	OutputArtifactPath                     // {{$.outputs.artifacts['x'].path}}
	OutputArtifactMetadata                 // {{$.outputs.artifacts['x'].metadata}}
	OutputMetadataFile                     // {{$.outputs.output_file}}: where the executor writes ExecutorOutput
	System                                 // {{$.pipeline_job_name}} and friends (Name holds the field)
)

// SystemPlaceholders are the {{$.NAME}} placeholders that refer to the run
// rather than to the task's inputs and outputs.
var SystemPlaceholders = map[string]bool{
	"pipeline_job_name":              true,
	"pipeline_job_resource_name":     true,
	"pipeline_job_uuid":              true,
	"pipeline_task_name":             true,
	"pipeline_task_uuid":             true,
	"pipeline_root":                  true,
	"pipeline_job_create_time_utc":   true,
	"pipeline_job_schedule_time_utc": true,
	"workspace_path":                 true, // the run's shared workspace volume (SDK 2.14+)
}

// Placeholder is one parsed {{$...}} placeholder.
type Placeholder struct {
	Kind    PlaceholderKind
	Name    string // input/output name, or the system field for System
	Key     string // metadata key for InputArtifactMetadata ("" = all metadata)
	Escapes int    // json_escape depth for ExecutorInput
	Text    string // the placeholder as written, braces included
}

// maxPlaceholderDepth bounds nesting of Concat/IfPresent so hostile input
// cannot exhaust the stack.
const maxPlaceholderDepth = 32

// ParsePlaceholders returns the {{$...}} placeholders in one string, in
// order. A "{{$" without a closing "}}" or with an unknown body is an error.
func ParsePlaceholders(s string) ([]Placeholder, error) {
	var out []Placeholder
	err := scanPlaceholders(s, func(p Placeholder) (string, error) {
		out = append(out, p)
		return "", nil
	}, nil)
	return out, err
}

// scanPlaceholders calls fn for every placeholder in s; when b is non-nil,
// it writes s to b with each placeholder replaced by fn's result.
func scanPlaceholders(s string, fn func(Placeholder) (string, error), b *strings.Builder) error {
	for {
		i := strings.Index(s, "{{$")
		if i < 0 {
			if b != nil {
				b.WriteString(s)
			}
			return nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return fmt.Errorf("unterminated placeholder %q", clip(s[i:]))
		}
		text := s[i : i+j+2]
		p, err := parsePlaceholder(text)
		if err != nil {
			return err
		}
		v, err := fn(p)
		if err != nil {
			return err
		}
		if b != nil {
			b.WriteString(s[:i])
			b.WriteString(v)
		}
		s = s[i+j+2:]
	}
}

// parsePlaceholder parses "{{$...}}".
func parsePlaceholder(text string) (Placeholder, error) {
	p := Placeholder{Text: text}
	body := strings.TrimSuffix(strings.TrimPrefix(text, "{{"), "}}")
	bad := func(why string) (Placeholder, error) {
		return Placeholder{}, fmt.Errorf("malformed placeholder %s: %s", clip(text), why)
	}
	if body == "$" {
		p.Kind = ExecutorInput
		return p, nil
	}
	rest, ok := strings.CutPrefix(body, "$.")
	if !ok {
		return bad("must start with $.")
	}
	if n, ok := strings.CutPrefix(rest, "json_escape["); ok {
		num, tail, ok := strings.Cut(n, "]")
		if !ok || tail != "" {
			return bad("want json_escape[N]")
		}
		k, err := strconv.Atoi(num)
		if err != nil || k < 0 || k > 8 {
			return bad("json_escape depth must be 0..8")
		}
		p.Kind, p.Escapes = ExecutorInput, k
		return p, nil
	}
	if SystemPlaceholders[rest] {
		p.Kind, p.Name = System, rest
		return p, nil
	}
	if rest == "outputs.output_file" {
		p.Kind = OutputMetadataFile
		return p, nil
	}
	var section string
	switch {
	case strings.HasPrefix(rest, "inputs.parameters["):
		section = "inputs.parameters"
	case strings.HasPrefix(rest, "inputs.artifacts["):
		section = "inputs.artifacts"
	case strings.HasPrefix(rest, "outputs.parameters["):
		section = "outputs.parameters"
	case strings.HasPrefix(rest, "outputs.artifacts["):
		section = "outputs.artifacts"
	default:
		return bad("unknown placeholder")
	}
	name, tail, err := subscript(rest[len(section):])
	if err != nil {
		return bad(err.Error())
	}
	p.Name = name
	switch section + tail {
	case "inputs.parameters":
		p.Kind = InputParameter
	case "inputs.artifacts.uri":
		p.Kind = InputArtifactURI
	case "inputs.artifacts.path":
		p.Kind = InputArtifactPath
	case "inputs.artifacts.metadata":
		p.Kind = InputArtifactMetadata
	case "outputs.parameters.output_file":
		p.Kind = OutputParameterFile
	case "outputs.artifacts.uri":
		p.Kind = OutputArtifactURI
	case "outputs.artifacts.path":
		p.Kind = OutputArtifactPath
	case "outputs.artifacts.metadata":
		p.Kind = OutputArtifactMetadata
	default:
		if section == "inputs.artifacts" && strings.HasPrefix(tail, ".metadata[") {
			key, after, err := subscript(tail[len(".metadata"):])
			if err != nil || after != "" {
				return bad("want .metadata['key']")
			}
			p.Kind, p.Key = InputArtifactMetadata, key
			return p, nil
		}
		return bad(fmt.Sprintf("unknown accessor %q after %s", tail, section))
	}
	return p, nil
}

// subscript parses ['name'] or ["name"] at the start of s.
func subscript(s string) (name, rest string, err error) {
	if len(s) < 4 || s[0] != '[' || (s[1] != '\'' && s[1] != '"') {
		return "", "", fmt.Errorf("want ['name']")
	}
	q := s[1]
	end := strings.IndexByte(s[2:], q)
	if end < 0 || 2+end+1 >= len(s) || s[2+end+1] != ']' {
		return "", "", fmt.Errorf("unterminated ['name']")
	}
	name = s[2 : 2+end]
	if name == "" {
		return "", "", fmt.Errorf("empty name in []")
	}
	return name, s[2+end+2:], nil
}

func clip(s string) string {
	if len(s) > 60 {
		return strconv.Quote(s[:60] + "...")
	}
	return strconv.Quote(s)
}

// Resolver supplies placeholder values when a task's command line is built.
// It is implemented by the launcher (and by StaticResolver for tests and
// simple callers).
type Resolver interface {
	// Value returns the text that replaces p, or an error naming what is
	// missing.
	Value(p Placeholder) (string, error)
	// IsPresent reports whether the named input (parameter or artifact)
	// has a value, for IfPresent.
	IsPresent(inputName string) bool
}

// StaticResolver resolves placeholders from fixed maps.
type StaticResolver struct {
	Params           map[string]string // input parameter text (STRING raw, others JSON)
	InputURIs        map[string]string
	InputPaths       map[string]string
	InputMetadata    map[string]map[string]any
	OutputParamFiles map[string]string
	OutputURIs       map[string]string
	OutputPaths      map[string]string
	OutputMetadata   map[string]map[string]any
	OutputFile       string            // {{$.outputs.output_file}}
	ExecutorInput    string            // {{$}}
	System           map[string]string // pipeline_job_name etc.
}

// IsPresent implements Resolver.
func (r *StaticResolver) IsPresent(name string) bool {
	if _, ok := r.Params[name]; ok {
		return true
	}
	_, ok := r.InputURIs[name]
	return ok
}

// Value implements Resolver.
func (r *StaticResolver) Value(p Placeholder) (string, error) {
	look := func(m map[string]string, what string) (string, error) {
		v, ok := m[p.Name]
		if !ok {
			return "", fmt.Errorf("%s: no %s %q", p.Text, what, p.Name)
		}
		return v, nil
	}
	switch p.Kind {
	case ExecutorInput:
		return JSONEscape(r.ExecutorInput, p.Escapes), nil
	case InputParameter:
		return look(r.Params, "input parameter")
	case InputArtifactURI:
		return look(r.InputURIs, "input artifact")
	case InputArtifactPath:
		return look(r.InputPaths, "input artifact")
	case InputArtifactMetadata:
		md, ok := r.InputMetadata[p.Name]
		if !ok {
			if _, present := r.InputURIs[p.Name]; !present {
				return "", fmt.Errorf("%s: no input artifact %q", p.Text, p.Name)
			}
		}
		return MetadataText(md, p.Key)
	case OutputParameterFile:
		return look(r.OutputParamFiles, "output parameter")
	case OutputArtifactURI:
		return look(r.OutputURIs, "output artifact")
	case OutputArtifactPath:
		return look(r.OutputPaths, "output artifact")
	case OutputArtifactMetadata:
		return MetadataText(r.OutputMetadata[p.Name], "")
	case OutputMetadataFile:
		return r.OutputFile, nil
	case System:
		return look(r.System, "system value")
	}
	return "", fmt.Errorf("%s: unsupported placeholder", p.Text)
}

// MetadataText renders artifact metadata for a placeholder: the whole map
// as JSON when key is "", else the value under key (strings raw, other
// values as JSON), as KFP does.
func MetadataText(md map[string]any, key string) (string, error) {
	if key == "" {
		if md == nil {
			md = map[string]any{}
		}
		b, err := json.Marshal(md)
		return string(b), err
	}
	v, ok := md[key]
	if !ok {
		return "", fmt.Errorf("artifact metadata has no key %q", key)
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// JSONEscape escapes s n times as the contents of a JSON string.
func JSONEscape(s string, n int) string {
	for range n {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s) // a string always encodes
		out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		s = string(out[1 : len(out)-1])
	}
	return s
}

// ResolveArgs expands a container command or args list: structured
// placeholders ({"Concat": [...]}, {"IfPresent": {...}}) and {{$...}}
// placeholders inside strings. An IfPresent may expand to zero or several
// arguments.
func ResolveArgs(args []string, r Resolver) ([]string, error) {
	out := make([]string, 0, len(args))
	for i, a := range args {
		node, ok, err := structuredArg(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
		if !ok {
			s, err := substitute(a, r)
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i, err)
			}
			out = append(out, s)
			continue
		}
		vals, err := evalNode(node, r, 0)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
		out = append(out, vals...)
	}
	return out, nil
}

// structuredArg reports whether an argument is a structured placeholder: a
// JSON object whose only key is Concat or IfPresent. Other JSON-looking
// arguments (e.g. a job payload) are literal strings.
func structuredArg(a string) (any, bool, error) {
	t := strings.TrimSpace(a)
	if !strings.HasPrefix(t, `{"Concat"`) && !strings.HasPrefix(t, `{"IfPresent"`) {
		return nil, false, nil
	}
	var v any
	if err := json.Unmarshal([]byte(t), &v); err != nil {
		return nil, false, nil // literal text that merely starts like one
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false, nil
	}
	return v, true, nil
}

func substitute(s string, r Resolver) (string, error) {
	var b strings.Builder
	err := scanPlaceholders(s, r.Value, &b)
	return b.String(), err
}

// evalNode evaluates a structured placeholder node to a list of strings.
func evalNode(n any, r Resolver, depth int) ([]string, error) {
	if depth > maxPlaceholderDepth {
		return nil, fmt.Errorf("placeholders nested deeper than %d", maxPlaceholderDepth)
	}
	switch x := n.(type) {
	case string:
		s, err := substitute(x, r)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	case []any:
		var out []string
		for _, e := range x {
			v, err := evalNode(e, r, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		}
		return out, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("structured placeholder must have exactly one key, found %d", len(x))
		}
		if parts, ok := x["Concat"]; ok {
			l, ok := parts.([]any)
			if !ok {
				return nil, fmt.Errorf("Concat wants a list")
			}
			var b strings.Builder
			for _, e := range l {
				v, err := evalNode(e, r, depth+1)
				if err != nil {
					return nil, err
				}
				b.WriteString(strings.Join(v, ""))
			}
			return []string{b.String()}, nil
		}
		if body, ok := x["IfPresent"]; ok {
			ip, err := parseIfPresent(body)
			if err != nil {
				return nil, err
			}
			branch := ip.els
			if r.IsPresent(ip.input) {
				branch = ip.then
			}
			if branch == nil {
				return nil, nil
			}
			return evalNode(branch, r, depth+1)
		}
		for k := range x {
			return nil, fmt.Errorf("unknown structured placeholder %q (want Concat or IfPresent)", k)
		}
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %T in structured placeholder", n)
}

type ifPresent struct {
	input     string
	then, els any
}

func parseIfPresent(body any) (ifPresent, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return ifPresent{}, fmt.Errorf("IfPresent wants an object")
	}
	var ip ifPresent
	for k, v := range m {
		switch k {
		case "InputName":
			s, ok := v.(string)
			if !ok || s == "" {
				return ifPresent{}, fmt.Errorf("IfPresent.InputName must be a non-empty string")
			}
			ip.input = s
		case "Then":
			ip.then = v
		case "Else":
			ip.els = v
		default:
			return ifPresent{}, fmt.Errorf("IfPresent: unknown key %q", k)
		}
	}
	if ip.input == "" {
		return ifPresent{}, fmt.Errorf("IfPresent.InputName is missing")
	}
	return ip, nil
}

// argReferences visits every placeholder and IfPresent input name in one
// command/args entry, for validation.
func argReferences(a string, visit func(p *Placeholder, ifPresentInput string) error) error {
	node, ok, err := structuredArg(a)
	if err != nil {
		return err
	}
	if !ok {
		return scanPlaceholders(a, func(p Placeholder) (string, error) { return "", visit(&p, "") }, nil)
	}
	return walkNode(node, visit, 0)
}

func walkNode(n any, visit func(*Placeholder, string) error, depth int) error {
	if depth > maxPlaceholderDepth {
		return fmt.Errorf("placeholders nested deeper than %d", maxPlaceholderDepth)
	}
	switch x := n.(type) {
	case string:
		return scanPlaceholders(x, func(p Placeholder) (string, error) { return "", visit(&p, "") }, nil)
	case []any:
		for _, e := range x {
			if err := walkNode(e, visit, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if len(x) != 1 {
			return fmt.Errorf("structured placeholder must have exactly one key, found %d", len(x))
		}
		if parts, ok := x["Concat"]; ok {
			if _, ok := parts.([]any); !ok {
				return fmt.Errorf("Concat wants a list")
			}
			return walkNode(parts, visit, depth+1)
		}
		if body, ok := x["IfPresent"]; ok {
			ip, err := parseIfPresent(body)
			if err != nil {
				return err
			}
			if err := visit(nil, ip.input); err != nil {
				return err
			}
			if err := walkNode(ip.then, visit, depth+1); err != nil {
				return err
			}
			return walkNode(ip.els, visit, depth+1)
		}
		for k := range x {
			return fmt.Errorf("unknown structured placeholder %q (want Concat or IfPresent)", k)
		}
	case nil:
		return nil
	}
	return fmt.Errorf("unexpected %T in structured placeholder", n)
}
