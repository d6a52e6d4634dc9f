package launch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// ParameterType is KFP's parameter type enum.
type ParameterType = pipelinespec.ParameterType_ParameterTypeEnum

// EncodeParam renders v as the text form used for engine results and --param
// values: a STRING parameter is its raw text, every other type compact JSON.
// A nil v encodes as JSON null ("" for STRING).
func EncodeParam(v *structpb.Value, t ParameterType) string {
	if t == pipelinespec.ParameterType_STRING {
		if v == nil {
			return ""
		}
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			return s.StringValue
		}
		// A non-string value declared STRING (e.g. a number constant) is
		// passed as its JSON text, which is what KFP prints for it too.
	}
	return compactJSON(v)
}

// compactJSON renders v as compact JSON with sorted object keys.
func compactJSON(v *structpb.Value) string {
	if v == nil {
		return "null"
	}
	if b, err := json.Marshal(v.AsInterface()); err == nil {
		return string(b)
	}
	// NaN and ±Inf have no JSON form; protojson spells them "NaN"/"Infinity".
	b, err := protojson.Marshal(v)
	if err != nil {
		return "null"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// DecodeParam parses s, the text form of a parameter of type t (see
// EncodeParam). An unspecified type decodes s as JSON when it is valid JSON
// and as a string otherwise.
func DecodeParam(s string, t ParameterType) (*structpb.Value, error) {
	// Protobuf strings must be UTF-8; a value that is not would fail much
	// later, far from where it came from.
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("launch: %q is not valid UTF-8", clip(s))
	}
	switch t {
	case pipelinespec.ParameterType_STRING:
		return structpb.NewStringValue(s), nil
	case pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED:
		if v, err := parseJSON(s); err == nil {
			return v, nil
		}
		return structpb.NewStringValue(s), nil
	case pipelinespec.ParameterType_BOOLEAN:
		// Python's str(True) reaches us from components that print booleans.
		switch strings.TrimSpace(s) {
		case "true", "True":
			return structpb.NewBoolValue(true), nil
		case "false", "False":
			return structpb.NewBoolValue(false), nil
		}
		return nil, fmt.Errorf("launch: %q is not a BOOLEAN (want true or false)", clip(s))
	case pipelinespec.ParameterType_NUMBER_INTEGER, pipelinespec.ParameterType_NUMBER_DOUBLE:
		v, err := parseJSON(s)
		if err != nil {
			return nil, fmt.Errorf("launch: %q is not a %s: %w", clip(s), t, err)
		}
		n, ok := v.GetKind().(*structpb.Value_NumberValue)
		if !ok {
			return nil, fmt.Errorf("launch: %q is not a %s", clip(s), t)
		}
		if t == pipelinespec.ParameterType_NUMBER_INTEGER && (n.NumberValue != math.Trunc(n.NumberValue) || math.IsInf(n.NumberValue, 0)) {
			return nil, fmt.Errorf("launch: %q is not a NUMBER_INTEGER (it has a fraction)", clip(s))
		}
		return v, nil
	case pipelinespec.ParameterType_LIST:
		v, err := parseJSON(s)
		if err != nil {
			return nil, fmt.Errorf("launch: %q is not a LIST: %w", clip(s), err)
		}
		if _, ok := v.GetKind().(*structpb.Value_ListValue); !ok {
			return nil, fmt.Errorf("launch: %q is not a LIST (want a JSON array)", clip(s))
		}
		return v, nil
	case pipelinespec.ParameterType_TASK_FINAL_STATUS:
		if t := strings.TrimSpace(s); !strings.HasPrefix(t, "{") {
			return foldEngineStatuses(t)
		}
		v, err := parseJSON(s)
		if err != nil {
			return nil, fmt.Errorf("launch: %q is not a %s: %w", clip(s), t, err)
		}
		if _, ok := v.GetKind().(*structpb.Value_StructValue); !ok {
			return nil, fmt.Errorf("launch: %q is not a %s (want a JSON object)", clip(s), t)
		}
		return v, nil
	case pipelinespec.ParameterType_STRUCT:
		v, err := parseJSON(s)
		if err != nil {
			return nil, fmt.Errorf("launch: %q is not a %s: %w", clip(s), t, err)
		}
		if _, ok := v.GetKind().(*structpb.Value_StructValue); !ok {
			return nil, fmt.Errorf("launch: %q is not a %s (want a JSON object)", clip(s), t)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("launch: unknown parameter type %d", int32(t))
	}
}

// parseJSON decodes exactly one JSON value, keeping numbers exact enough for
// integers up to 2^53 (structpb stores numbers as float64 anyway).
func parseJSON(s string) (*structpb.Value, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return structpb.NewValue(x)
}

// clip shortens s for error messages so a huge value does not flood logs.
func clip(s string) string {
	const n = 120
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// foldEngineStatuses turns Tekton task statuses ($(tasks.T.status), comma-
// joined when the watched DAG was flattened into several tasks) into KFP's
// PipelineTaskFinalStatus: FAILED if any failed, else SUCCEEDED if any
// succeeded, else SKIPPED (nothing ran).
func foldEngineStatuses(s string) (*structpb.Value, error) {
	failed, succeeded := false, false
	for _, st := range strings.Split(s, ",") {
		switch strings.TrimSpace(st) {
		case "Failed":
			failed = true
		case "Succeeded", "Completed":
			succeeded = true
		case "None", "":
		default:
			return nil, fmt.Errorf("launch: %q is not a TASK_FINAL_STATUS (a JSON object or engine statuses Succeeded/Failed/None)", clip(s))
		}
	}
	state := "SKIPPED"
	switch {
	case failed:
		state = "FAILED"
	case succeeded:
		state = "SUCCEEDED"
	}
	return structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"state": structpb.NewStringValue(state)}}), nil
}
