package launch

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/ir"
)

// importerOutput is the output name KFP gives an importer's artifact.
const importerOutput = "artifact"

// Import runs the importer executor: it names an existing artifact by URI (a
// constant or an input parameter) with a type and metadata, and returns it as
// the task's output artifact. Nothing is copied (KFP's reimport semantics:
// the artifact stays where it is). When env.Store can Stat the URI, size and
// digest are recorded; an artifact the store cannot see is still imported,
// since it may live somewhere only the consumer can reach.
func Import(ctx context.Context, cfg TaskConfig, in Inputs, env Env) (Outputs, error) {
	spec, err := cfg.ImporterSpec()
	if err != nil {
		return Outputs{}, err
	}
	comp, err := cfg.ComponentSpec()
	if err != nil {
		return Outputs{}, err
	}
	params := in.Params
	if params == nil {
		params = map[string]*structpb.Value{}
	}
	uri, err := importerURI(spec, params)
	if err != nil {
		return Outputs{}, fmt.Errorf("launch: importer %s: %w", cfg.TaskID, err)
	}
	r := paramResolver{params: params, types: comp.GetInputDefinitions().GetParameters()}
	meta, err := resolveStruct(spec.GetMetadata(), r)
	if err != nil {
		return Outputs{}, fmt.Errorf("launch: importer %s: metadata: %w", cfg.TaskID, err)
	}
	name := importerOutput
	if outs := comp.GetOutputDefinitions().GetArtifacts(); len(outs) == 1 {
		name = slices.Collect(maps.Keys(outs))[0]
	}
	a := &pipelinespec.RuntimeArtifact{Name: name, Type: spec.GetTypeSchema(), Uri: uri, Metadata: meta}
	if env.Store != nil {
		if info, err := env.Store.Stat(ctx, uri); err == nil {
			a.Metadata.Fields[MetaSize] = structpb.NewNumberValue(float64(info.Size))
			if info.Digest != "" {
				a.Metadata.Fields[MetaDigest] = structpb.NewStringValue(info.Digest)
			}
		}
	}
	return Outputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{name: {a}}}, nil
}

func importerURI(spec *pipelinespec.PipelineDeploymentConfig_ImporterSpec, params map[string]*structpb.Value) (string, error) {
	au := spec.GetArtifactUri()
	var v *structpb.Value
	switch {
	case au.GetRuntimeParameter() != "":
		p := au.GetRuntimeParameter()
		var ok bool
		if v, ok = params[p]; !ok {
			return "", fmt.Errorf("artifact URI comes from parameter %q, which has no value", p)
		}
	case au.GetConstant() != nil:
		v = au.GetConstant()
	case au.GetConstantValue() != nil:
		v = structpb.NewStringValue(au.GetConstantValue().GetStringValue())
	default:
		return "", fmt.Errorf("importer spec has no artifact URI")
	}
	s, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok || s.StringValue == "" {
		return "", fmt.Errorf("artifact URI %s is not a non-empty string", compactJSON(v))
	}
	return s.StringValue, nil
}

// resolveStruct resolves placeholders in the keys and string values of s. A
// value that is exactly one input-parameter placeholder takes the
// parameter's typed value (KFP: metadata {"n": "{{$.inputs.parameters['n']}}"}
// with an integer n yields the integer).
func resolveStruct(s *structpb.Struct, r paramResolver) (*structpb.Struct, error) {
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range s.GetFields() {
		key, err := resolveString(k, r)
		if err != nil {
			return nil, err
		}
		rv, err := resolveValue(v, r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out.Fields[key] = rv
	}
	return out, nil
}

func resolveValue(v *structpb.Value, r paramResolver) (*structpb.Value, error) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		if ps, err := ir.ParsePlaceholders(k.StringValue); err == nil && len(ps) == 1 &&
			ps[0].Kind == ir.InputParameter && ps[0].Text == k.StringValue {
			if pv, ok := r.params[ps[0].Name]; ok {
				return pv, nil
			}
		}
		s, err := resolveString(k.StringValue, r)
		if err != nil {
			return nil, err
		}
		return structpb.NewStringValue(s), nil
	case *structpb.Value_StructValue:
		s, err := resolveStruct(k.StructValue, r)
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	case *structpb.Value_ListValue:
		l := &structpb.ListValue{}
		for i, e := range k.ListValue.GetValues() {
			rv, err := resolveValue(e, r)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l.Values = append(l.Values, rv)
		}
		return structpb.NewListValue(l), nil
	}
	return v, nil
}
