// Package ir loads and validates Kubeflow Pipelines v2 IR (PipelineSpec, with
// an optional kfp-kubernetes PlatformSpec document and the PipelineJob
// wrapper) as the KFP Python SDK writes it. It has no I/O: callers hand it
// bytes and get back typed, validated structures that the compilers, the
// launcher and the local executor share.
package ir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// Pipeline is one loaded KFP IR file.
type Pipeline struct {
	Spec          *pipelinespec.PipelineSpec // the first document
	Kubernetes    *KubernetesPlatform        // the platforms.kubernetes document, nil if absent
	RuntimeConfig *RuntimeConfig             // from the PipelineJob wrapper, nil otherwise

	// Deployment is Spec.DeploymentSpec decoded into its typed form. The
	// protobuf keeps deploymentSpec as a google.protobuf.Struct; every
	// consumer needs the executors typed, so it is decoded once here, with
	// the same unknown-field policy as the rest of the spec.
	Deployment *pipelinespec.PipelineDeploymentConfig

	// ExecutorExtras holds newer-SDK executor fields the protobuf types
	// lack, by executor label (nil when the file has none).
	ExecutorExtras map[string]*ExecutorExtras
	// InputLiterals holds the allowed values (typing.Literal) of input
	// parameters: component name ("" for root) -> parameter -> values.
	InputLiterals map[string]map[string][]*structpb.Value
	// Extras records every honoured newer-SDK field as raw JSON, keyed by
	// its path (e.g. "deploymentSpec.executors['exec-a'].container.resources.resourceCpuLimit").
	// See policy.go for what is honoured, ignored and rejected.
	Extras map[string]json.RawMessage
}

// RuntimeConfig is the runtimeConfig of a PipelineJob wrapper.
type RuntimeConfig struct {
	// GcsOutputDirectory is the pipeline root the job asks for ("" if unset).
	GcsOutputDirectory string
	// ParameterValues are the root input values the job binds. The legacy
	// "parameters" form ({"x": {"stringValue": "a"}}) is converted into it.
	ParameterValues map[string]*structpb.Value
}

// PipelineRoot returns the pipeline root named by the runtime config.
func (r *RuntimeConfig) PipelineRoot() string {
	if r == nil {
		return ""
	}
	return r.GcsOutputDirectory
}

// errPlatformOnly is returned by Parse for a file that holds only a
// PlatformSpec document.
var errPlatformOnly = errors.New("no pipelineSpec: this is a platform spec document (use ParsePlatform)")

// Load parses data and validates the result; it is what callers use on
// user input.
func Load(data []byte) (*Pipeline, error) {
	p, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Parse decodes YAML or JSON KFP IR: a PipelineSpec document optionally
// followed by a PlatformSpec document, or a PipelineJob wrapper
// ({pipelineSpec, runtimeConfig}). It does no semantic checks, but fields
// unknown to both the protobuf types and pipefn's policy are errors (a
// *ValidationError naming each field and its path).
func Parse(data []byte) (*Pipeline, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, &ValidationError{Problems: []Problem{{Message: "empty document: no KFP IR found"}}}
	}
	if len(docs) > 2 {
		return nil, fmt.Errorf("%d YAML documents: KFP IR has at most 2 (PipelineSpec, then PlatformSpec)", len(docs))
	}
	p := &Pipeline{}
	first := docs[0]
	switch {
	case first["pipelineSpec"] != nil:
		spec, rc, err := unwrapJob(first)
		if err != nil {
			return nil, err
		}
		p.RuntimeConfig = rc
		first = spec
	case isPlatformDoc(first):
		return nil, errPlatformOnly
	}
	if err := p.decodeSpec(first); err != nil {
		return nil, err
	}
	p.normalizeLegacyConstants()
	if len(docs) == 2 {
		if !isPlatformDoc(docs[1]) {
			return nil, errors.New("document 2: expected a PlatformSpec document with a top-level \"platforms\" key")
		}
		k, err := decodePlatform(docs[1])
		if err != nil {
			return nil, fmt.Errorf("document 2: %w", err)
		}
		p.Kubernetes = k
	}
	return p, nil
}

// ParsePlatform decodes a PlatformSpec-only document ({"platforms":
// {"kubernetes": ...}}), as kfp-tekton keeps beside some test pipelines.
func ParsePlatform(data []byte) (*KubernetesPlatform, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("platform spec: want 1 document, found %d", len(docs))
	}
	if !isPlatformDoc(docs[0]) {
		return nil, errors.New("platform spec: no top-level \"platforms\" key")
	}
	return decodePlatform(docs[0])
}

func isPlatformDoc(doc map[string]any) bool {
	_, ok := doc["platforms"]
	return ok && doc["pipelineInfo"] == nil && doc["root"] == nil
}

// decodeSpec strips and classifies unknown members, then decodes strictly.
func (p *Pipeline) decodeSpec(doc map[string]any) error {
	unknown := stripUnknown(doc, (&pipelinespec.PipelineSpec{}).ProtoReflect().Descriptor(), location{})
	var ps problems
	for _, u := range unknown {
		p.applyPolicy(u, &ps)
	}
	deploy, _ := doc["deploymentSpec"].(map[string]any)
	// Decode a copy: Spec.DeploymentSpec keeps the document as written.
	derr := p.decodeDeployment(deepCopy(deploy), &ps)
	if err := ps.err(); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	clean, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("re-encoding pipeline spec: %w", err)
	}
	spec := &pipelinespec.PipelineSpec{}
	if err := protojson.Unmarshal(clean, spec); err != nil {
		return fmt.Errorf("decoding pipeline spec: %s", protoMessage(err))
	}
	p.Spec = spec
	return nil
}

// decodeDeployment sets p.Deployment from a generic deploymentSpec object
// (nil for none), applying the unknown-field policy; policy problems go to
// ps, decoding failures are returned.
func (p *Pipeline) decodeDeployment(deploy any, ps *problems) error {
	p.Deployment = &pipelinespec.PipelineDeploymentConfig{}
	d, ok := deploy.(map[string]any)
	if !ok {
		return nil
	}
	for _, u := range stripUnknown(d, p.Deployment.ProtoReflect().Descriptor(), location{}.field("deploymentSpec")) {
		p.applyPolicy(u, ps)
	}
	if len(ps.list) > 0 {
		return nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("re-encoding deploymentSpec: %w", err)
	}
	if err := protojson.Unmarshal(b, p.Deployment); err != nil {
		return fmt.Errorf("decoding deploymentSpec: %s", protoMessage(err))
	}
	return nil
}

// ensureDeployment fills p.Deployment for a Pipeline built in code (e.g.
// by the Go DSL) rather than by Parse.
func (p *Pipeline) ensureDeployment(ps *problems) {
	if p.Deployment != nil {
		return
	}
	p.Deployment = &pipelinespec.PipelineDeploymentConfig{}
	st := p.Spec.GetDeploymentSpec()
	if st == nil {
		return
	}
	b, err := protojson.Marshal(st)
	if err != nil {
		ps.add("deploymentSpec", "cannot encode: %v", err)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var d map[string]any
	if err := dec.Decode(&d); err != nil {
		ps.add("deploymentSpec", "cannot decode: %v", err)
		return
	}
	if err := p.decodeDeployment(d, ps); err != nil {
		ps.add("deploymentSpec", "%v", err)
	}
}

// jobFields are the PipelineJob wrapper members pipefn reads or may ignore
// (they describe the job, not the execution graph).
var jobFields = map[string]bool{
	"pipelineSpec": true, "runtimeConfig": true,
	"displayName": true, "name": true, "labels": true,
}

func unwrapJob(doc map[string]any) (map[string]any, *RuntimeConfig, error) {
	var ps problems
	for k := range doc {
		if !jobFields[k] {
			ps.add(k, "unknown field %q in PipelineJob wrapper", k)
		}
	}
	spec, ok := doc["pipelineSpec"].(map[string]any)
	if !ok {
		ps.add("pipelineSpec", "must be an object")
	}
	rc, err := decodeRuntimeConfig(doc["runtimeConfig"], &ps)
	if err != nil {
		return nil, nil, err
	}
	if err := ps.err(); err != nil {
		return nil, nil, err
	}
	return spec, rc, nil
}

func decodeRuntimeConfig(v any, ps *problems) (*RuntimeConfig, error) {
	rc := &RuntimeConfig{ParameterValues: map[string]*structpb.Value{}}
	if v == nil {
		return rc, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		ps.add("runtimeConfig", "must be an object")
		return rc, nil
	}
	for k, val := range m {
		path := join("runtimeConfig", k)
		switch k {
		case "gcsOutputDirectory":
			s, ok := val.(string)
			if !ok {
				ps.add(path, "must be a string")
			}
			rc.GcsOutputDirectory = s
		case "parameterValues":
			vals, ok := val.(map[string]any)
			if !ok {
				ps.add(path, "must be an object")
				continue
			}
			for name, pv := range vals {
				sv, err := structpb.NewValue(plainJSON(pv))
				if err != nil {
					ps.add(pathKey("runtimeConfig", "parameterValues", name), "%v", err)
					continue
				}
				rc.ParameterValues[name] = sv
			}
		case "parameters":
			// Legacy form (SDK 1.x): {"x": {"stringValue"|"intValue"|"doubleValue": ...}}.
			vals, ok := val.(map[string]any)
			if !ok {
				ps.add(path, "must be an object")
				continue
			}
			for name, pv := range vals {
				sv, err := legacyValue(pv)
				if err != nil {
					ps.add(pathKey("runtimeConfig", "parameters", name), "%v", err)
					continue
				}
				rc.ParameterValues[name] = sv
			}
		default:
			ps.add(path, "unknown field %q in runtimeConfig", k)
		}
	}
	return rc, nil
}

// legacyValue converts the pre-2.0 pipelinespec.Value JSON form.
func legacyValue(v any) (*structpb.Value, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, errors.New("legacy parameter value must be an object with exactly one of stringValue, intValue, doubleValue")
	}
	for k, x := range m {
		switch k {
		case "stringValue":
			s, ok := x.(string)
			if !ok {
				return nil, errors.New("stringValue must be a string")
			}
			return structpb.NewStringValue(s), nil
		case "intValue", "doubleValue":
			var f float64
			switch n := x.(type) {
			case json.Number:
				var err error
				if f, err = n.Float64(); err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
			case string: // protojson writes int64 as a string
				if _, err := fmt.Sscan(n, &f); err != nil {
					return nil, fmt.Errorf("%s %q is not a number", k, n)
				}
			default:
				return nil, fmt.Errorf("%s must be a number", k)
			}
			return structpb.NewNumberValue(f), nil
		}
	}
	return nil, errors.New("legacy parameter value must be one of stringValue, intValue, doubleValue")
}

// deepCopy copies a generic JSON value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// plainJSON turns json.Number into float64 so structpb accepts the value.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	}
	return v
}

// protoPosition is protojson's "(line L:C)", an offset into JSON that
// pipefn re-encoded, so meaningless to the user.
var protoPosition = regexp.MustCompile(`\(line \d+:\d+\):? ?`)

// protoMessage is a protojson error without its position. The shape checks
// in unknown.go catch most type errors first, with their paths.
func protoMessage(err error) string {
	return protoPosition.ReplaceAllString(err.Error(), "")
}

// docStart matches a YAML document start marker ("---" at the start of a
// line, alone or followed by a space and content, with LF or CRLF ends).
var docStart = regexp.MustCompile(`(?m)^---(?:[ \t\r]|$)`)

// splitYAML cuts a YAML stream before each document start marker. Each
// piece keeps its marker, which the YAML parser accepts, so content on the
// marker line ("--- {a: 1}") is not lost.
func splitYAML(s string) []string {
	idx := docStart.FindAllStringIndex(s, -1)
	parts := make([]string, 0, len(idx)+1)
	prev := 0
	for _, m := range idx {
		parts = append(parts, s[prev:m[0]])
		prev = m[0]
	}
	return append(parts, s[prev:])
}

// splitDocuments returns the non-empty documents of a YAML or JSON stream,
// each decoded as a generic JSON object (numbers kept as json.Number so
// int64 values survive).
func splitDocuments(data []byte) ([]map[string]any, error) {
	var out []map[string]any
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		// JSON: decode directly; exact and much faster than via YAML.
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		for i := 1; ; i++ {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if err == io.EOF {
					break
				}
				return nil, fmt.Errorf("document %d: invalid JSON: %w", i, err)
			}
			if m != nil { // a JSON null is an empty document
				out = append(out, m)
			}
		}
		return out, nil
	}
	n := 0 // documents numbered as a user counts them: non-blank ones
	for _, part := range splitYAML(string(data)) {
		if isBlankYAML(part) {
			continue
		}
		n++
		js, err := yaml.YAMLToJSONStrict([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("document %d: invalid YAML: %w", n, err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d: top level must be a mapping, found %T", n, v)
		}
		out = append(out, m)
	}
	return out, nil
}

// isBlankYAML reports whether a document has only comments and blank lines
// (the SDK starts files with "# PIPELINE DEFINITION" comment blocks).
func isBlankYAML(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "..." && t != "---" {
			return false
		}
	}
	return true
}

// Documents returns each non-empty document of data (YAML or JSON) as
// JSON, in order and uninterpreted: the first is the PipelineSpec or
// PipelineJob, a second one the PlatformSpec. Fields are kept as written,
// including those the protobuf types lack.
func Documents(data []byte) ([]json.RawMessage, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(docs))
	for i, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// SpecJSON returns the PipelineSpec document of data as JSON, unwrapping a
// PipelineJob, exactly as uploaded (fields the Go types lack are kept), for
// storing a pipeline version verbatim.
func SpecJSON(data []byte) (json.RawMessage, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, &ValidationError{Problems: []Problem{{Message: "empty document: no KFP IR found"}}}
	}
	doc := docs[0]
	if spec, ok := doc["pipelineSpec"].(map[string]any); ok {
		doc = spec
	} else if isPlatformDoc(doc) {
		return nil, errPlatformOnly
	}
	return json.Marshal(doc)
}

// LegacyConstant converts a schema 2.0.0 constant (runtimeValue.constantValue, a
// pipelinespec.Value) into the plain value form that 2.1.0 writes.
func LegacyConstant(v *pipelinespec.Value) *structpb.Value {
	switch x := v.GetValue().(type) {
	case *pipelinespec.Value_IntValue:
		return structpb.NewNumberValue(float64(x.IntValue))
	case *pipelinespec.Value_DoubleValue:
		return structpb.NewNumberValue(x.DoubleValue)
	case *pipelinespec.Value_StringValue:
		return structpb.NewStringValue(x.StringValue)
	}
	return structpb.NewNullValue()
}
