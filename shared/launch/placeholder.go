package launch

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// This file resolves KFP's command-line placeholders. shared/ir is to provide
// the canonical ResolveArgs; until it lands, the launcher carries this private
// resolver with the same semantics (documented per case below).

// resolver answers the questions a placeholder can ask. Each method reports
// false when the name is unknown to the component.
type resolver interface {
	inputParam(name string) (string, bool)           // encoded value (EncodeParam)
	inputParamPresent(name string) bool              // has a value (for IfPresent)
	inputArtifact(name, field string) (string, bool) // field: uri, path, metadata, metadata['k']
	outputParam(name string) (string, bool)          // output_file path
	outputArtifact(name, field string) (string, bool)
	executorInput() string             // {{$}}: the ExecutorInput JSON
	outputFile() string                // {{$.outputs.output_file}}
	system(name string) (string, bool) // pipeline_job_name, pipeline_task_uuid, ...
}

// placeholderRE matches one {{$...}} placeholder; the body has no braces.
var placeholderRE = regexp.MustCompile(`\{\{\$[^{}]*\}\}`)

// ioRE parses the body of an input/output placeholder:
// .inputs.parameters['x'], .outputs.artifacts['x'].uri, .inputs.artifacts['x'].metadata['k'].
var ioRE = regexp.MustCompile(`^\.(inputs|outputs)\.(parameters|artifacts)\['([^']*)'\](?:\.(.+))?$`)

var jsonEscapeRE = regexp.MustCompile(`^\.json_escape\[(\d+)\]$`)

// resolveString replaces every placeholder in s. Unknown placeholders are an
// error naming the placeholder: passing them through silently would hand the
// user's program a literal "{{$...}}".
func resolveString(s string, r resolver) (string, error) {
	var firstErr error
	out := placeholderRE.ReplaceAllStringFunc(s, func(ph string) string {
		v, err := resolveOne(ph, r)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	return out, firstErr
}

func resolveOne(ph string, r resolver) (string, error) {
	body := strings.TrimSuffix(strings.TrimPrefix(ph, "{{$"), "}}")
	if body == "" {
		return r.executorInput(), nil
	}
	if body == ".outputs.output_file" {
		return r.outputFile(), nil
	}
	if m := jsonEscapeRE.FindStringSubmatch(body); m != nil {
		// {{$.json_escape[N]}}: the executor input escaped N times for a JSON
		// string literal, as KFP's Concat-built JSON arguments expect.
		n, _ := strconv.Atoi(m[1])
		if n > 8 {
			return "", fmt.Errorf("placeholder %s: escape depth %d is unreasonable", ph, n)
		}
		s := r.executorInput()
		for range n {
			b, _ := json.Marshal(s)
			s = string(b[1 : len(b)-1])
		}
		return s, nil
	}
	if m := ioRE.FindStringSubmatch(body); m != nil {
		dir, kind, name, field := m[1], m[2], m[3], m[4]
		var v string
		var ok bool
		switch {
		case dir == "inputs" && kind == "parameters" && field == "":
			v, ok = r.inputParam(name)
		case dir == "outputs" && kind == "parameters" && field == "output_file":
			v, ok = r.outputParam(name)
		case dir == "inputs" && kind == "artifacts" && field != "":
			v, ok = r.inputArtifact(name, field)
		case dir == "outputs" && kind == "artifacts" && field != "":
			v, ok = r.outputArtifact(name, field)
		default:
			return "", fmt.Errorf("placeholder %s is not supported", ph)
		}
		if !ok {
			return "", fmt.Errorf("placeholder %s names %s %s %q, which the component does not declare or has no value", ph, strings.TrimSuffix(dir, "s"), strings.TrimSuffix(kind, "s"), name)
		}
		return v, nil
	}
	if v, ok := r.system(strings.TrimPrefix(body, ".")); ok {
		return v, nil
	}
	return "", fmt.Errorf("placeholder %s is not supported", ph)
}

// resolveArgs expands a container's args: plain strings have their
// placeholders replaced; an arg that is a JSON object {"IfPresent": ...} or
// {"Concat": [...]} (KFP's structured placeholders) expands to zero or more
// args. An error names the offending argument index.
func resolveArgs(args []string, r resolver) ([]string, error) {
	var out []string
	for i, a := range args {
		vals, err := resolveArg(a, r, 0)
		if err != nil {
			return nil, fmt.Errorf("argument %d (%s): %w", i, clip(a), err)
		}
		out = append(out, vals...)
	}
	return out, nil
}

func resolveArg(a string, r resolver, depth int) ([]string, error) {
	if depth > 16 {
		return nil, fmt.Errorf("structured placeholders nest too deeply")
	}
	trimmed := strings.TrimSpace(a)
	if strings.HasPrefix(trimmed, "{") && (strings.Contains(trimmed, `"IfPresent"`) || strings.Contains(trimmed, `"Concat"`)) {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(trimmed), &raw); err == nil && len(raw) == 1 {
			if body, ok := raw["IfPresent"]; ok {
				return resolveIfPresent(body, r, depth)
			}
			if body, ok := raw["Concat"]; ok {
				s, err := resolveConcat(body, r, depth)
				if err != nil {
					return nil, err
				}
				return []string{s}, nil
			}
		}
	}
	s, err := resolveString(a, r)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// resolveIfPresent expands {"InputName": n, "Then": [...], "Else": [...]}.
// Then/Else may also be a single string.
func resolveIfPresent(body json.RawMessage, r resolver, depth int) ([]string, error) {
	var ip struct {
		InputName string          `json:"InputName"`
		Then      json.RawMessage `json:"Then"`
		Else      json.RawMessage `json:"Else"`
	}
	if err := json.Unmarshal(body, &ip); err != nil {
		return nil, fmt.Errorf("IfPresent: %w", err)
	}
	if ip.InputName == "" {
		return nil, fmt.Errorf("IfPresent has no InputName")
	}
	branch := ip.Else
	if r.inputParamPresent(ip.InputName) {
		branch = ip.Then
	}
	items, err := stringItems(branch)
	if err != nil {
		return nil, fmt.Errorf("IfPresent %s: %w", ip.InputName, err)
	}
	var out []string
	for _, it := range items {
		vals, err := resolveArg(it, r, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, vals...)
	}
	return out, nil
}

// resolveConcat joins the resolved items of {"Concat": [...]} into one string.
func resolveConcat(body json.RawMessage, r resolver, depth int) (string, error) {
	items, err := stringItems(body)
	if err != nil {
		return "", fmt.Errorf("Concat: %w", err)
	}
	var b strings.Builder
	for _, it := range items {
		vals, err := resolveArg(it, r, depth+1)
		if err != nil {
			return "", err
		}
		b.WriteString(strings.Join(vals, ""))
	}
	return b.String(), nil
}

// stringItems decodes a JSON string or array whose elements are strings or
// nested structured placeholders (kept as their JSON text).
func stringItems(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []json.RawMessage
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want a string or a list, got %s", clip(string(raw)))
	}
	out := make([]string, 0, len(many))
	for _, m := range many {
		var s string
		if json.Unmarshal(m, &s) == nil {
			out = append(out, s)
			continue
		}
		out = append(out, string(m))
	}
	return out, nil
}
