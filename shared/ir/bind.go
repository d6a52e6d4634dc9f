package ir

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// ParameterType is the KFP parameter type enum.
type ParameterType = pipelinespec.ParameterType_ParameterTypeEnum

// maxSafeInteger is the largest integer KFP allows for NUMBER_INTEGER
// (values travel as JSON doubles).
const maxSafeInteger = 1<<53 - 1

// InputParameterType returns the type of a component input parameter,
// mapping the deprecated PrimitiveType field of 2.0.0 schema files.
func InputParameterType(s *pipelinespec.ComponentInputsSpec_ParameterSpec) ParameterType {
	if t := s.GetParameterType(); t != pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
		return t
	}
	return fromPrimitive(s.GetType())
}

// OutputParameterType is InputParameterType for output definitions.
func OutputParameterType(s *pipelinespec.ComponentOutputsSpec_ParameterSpec) ParameterType {
	if t := s.GetParameterType(); t != pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED {
		return t
	}
	return fromPrimitive(s.GetType())
}

func fromPrimitive(t pipelinespec.PrimitiveType_PrimitiveTypeEnum) ParameterType {
	switch t {
	case pipelinespec.PrimitiveType_INT:
		return pipelinespec.ParameterType_NUMBER_INTEGER
	case pipelinespec.PrimitiveType_DOUBLE:
		return pipelinespec.ParameterType_NUMBER_DOUBLE
	case pipelinespec.PrimitiveType_STRING:
		return pipelinespec.ParameterType_STRING
	}
	return pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED
}

// BindParameters computes the root input parameter values of a run: root
// inputDefinitions defaults, then RuntimeConfig.ParameterValues, then in
// (by name). Values are type-checked and coerced to the declared type
// (so "3" from a command line binds a NUMBER_INTEGER). Unknown names,
// uncoercible values, values outside a Literal's allowed set and missing
// required parameters are errors naming the parameter; all are reported at
// once in a *ValidationError.
func (p *Pipeline) BindParameters(in map[string]any) (map[string]*structpb.Value, error) {
	defs := p.Spec.GetRoot().GetInputDefinitions().GetParameters()
	var ps problems
	out := make(map[string]*structpb.Value, len(defs))
	for name, d := range defs {
		if d.GetDefaultValue() != nil {
			out[name] = proto.Clone(d.GetDefaultValue()).(*structpb.Value)
		}
	}
	given := map[string]bool{} // a bad value is reported once, not also as missing
	set := func(source, name string, v any) {
		given[name] = true
		path := source + "['" + name + "']"
		d, ok := defs[name]
		if !ok {
			ps.add(path, "unknown pipeline parameter %q (declared: %s)", name, declared(defs))
			return
		}
		t := InputParameterType(d)
		val, err := CoerceParameter(v, t)
		if err != nil {
			ps.add(path, "parameter %q: %v", name, err)
			return
		}
		if allowed := p.InputLiterals[""][name]; len(allowed) > 0 && !containsValue(allowed, val) {
			ps.add(path, "parameter %q: %s is not one of the allowed values %s", name, jsonText(val.AsInterface()), literalsText(allowed))
			return
		}
		out[name] = val
	}
	if p.RuntimeConfig != nil {
		for _, name := range sortedKeys(p.RuntimeConfig.ParameterValues) {
			set("runtimeConfig.parameterValues", name, p.RuntimeConfig.ParameterValues[name])
		}
	}
	for _, name := range sortedKeys(in) {
		set("parameters", name, in[name])
	}
	for name, d := range defs {
		if _, ok := out[name]; !ok && !given[name] && !d.GetIsOptional() {
			ps.add("parameters['"+name+"']", "required pipeline parameter %q (%s) has no value and no default", name, InputParameterType(d))
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func declared(defs map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec) string {
	if len(defs) == 0 {
		return "none"
	}
	return strings.Join(sortedKeys(defs), ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func containsValue(list []*structpb.Value, v *structpb.Value) bool {
	for _, e := range list {
		if proto.Equal(e, v) {
			return true
		}
	}
	return false
}

func literalsText(list []*structpb.Value) string {
	parts := make([]string, len(list))
	for i, v := range list {
		parts[i] = jsonText(v.AsInterface())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// CoerceParameter converts v to a value of type t. Strings are accepted
// for every type (as text for STRING, parsed for the others) because
// values from a command line or an engine result arrive as text. A nil or
// unspecified type accepts any JSON-representable value unchanged.
func CoerceParameter(v any, t ParameterType) (*structpb.Value, error) {
	if sv, ok := v.(*structpb.Value); ok {
		if sv == nil {
			return nil, fmt.Errorf("want %s, got nothing", t)
		}
		v = sv.AsInterface()
	}
	switch x := v.(type) {
	case json.Number:
		v = x.String()
	case int:
		v = float64(x)
	case int32:
		v = float64(x)
	case int64:
		if x > maxSafeInteger || x < -maxSafeInteger {
			return nil, fmt.Errorf("integer %d is outside ±2^53", x)
		}
		v = float64(x)
	case float32:
		v = float64(x)
	}
	switch t {
	case pipelinespec.ParameterType_STRING:
		if s, ok := v.(string); ok {
			return structpb.NewStringValue(s), nil
		}
		return nil, fmt.Errorf("want STRING, got %s", jsonText(v))
	case pipelinespec.ParameterType_NUMBER_INTEGER:
		f, err := number(v, t)
		if err != nil {
			return nil, err
		}
		if f != math.Trunc(f) || math.Abs(f) > maxSafeInteger {
			return nil, fmt.Errorf("want NUMBER_INTEGER, got %v", f)
		}
		return structpb.NewNumberValue(f), nil
	case pipelinespec.ParameterType_NUMBER_DOUBLE:
		f, err := number(v, t)
		if err != nil {
			return nil, err
		}
		return structpb.NewNumberValue(f), nil
	case pipelinespec.ParameterType_BOOLEAN:
		switch x := v.(type) {
		case bool:
			return structpb.NewBoolValue(x), nil
		case string:
			switch x {
			case "true", "True":
				return structpb.NewBoolValue(true), nil
			case "false", "False":
				return structpb.NewBoolValue(false), nil
			}
		}
		return nil, fmt.Errorf("want BOOLEAN (true or false), got %s", jsonText(v))
	case pipelinespec.ParameterType_LIST:
		if s, ok := v.(string); ok {
			var l []any
			if err := json.Unmarshal([]byte(s), &l); err != nil || l == nil {
				return nil, fmt.Errorf("want LIST (a JSON array), got %s", clip(s))
			}
			v = l
		}
		if _, ok := v.([]any); !ok {
			return nil, fmt.Errorf("want LIST, got %s", jsonText(v))
		}
		return newValue(v)
	case pipelinespec.ParameterType_STRUCT:
		if s, ok := v.(string); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
				return nil, fmt.Errorf("want STRUCT (a JSON object), got %s", clip(s))
			}
			v = m
		}
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("want STRUCT, got %s", jsonText(v))
		}
		return newValue(v)
	case pipelinespec.ParameterType_TASK_FINAL_STATUS:
		return nil, fmt.Errorf("a TASK_FINAL_STATUS parameter cannot be set by the user")
	}
	return newValue(v)
}

func newValue(v any) (*structpb.Value, error) {
	sv, err := structpb.NewValue(plainJSON(v))
	if err != nil {
		return nil, fmt.Errorf("not a JSON value: %v", err)
	}
	return sv, nil
}

func number(v any, t ParameterType) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("want %s, got %s", t, clip(x))
		}
		return f, nil
	}
	return 0, fmt.Errorf("want %s, got %s", t, jsonText(v))
}
