package ir

import (
	"strconv"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"
)

// normalizeLegacyConstants rewrites task input constants written in the
// pre-2.0 pipelinespec.Value form into plain google.protobuf.Value, so
// compilers and executors see one form:
//
//   - runtimeValue.constantValue {intValue|doubleValue|stringValue} (SDK 1.x);
//   - runtimeValue.constant {"stringValue": "1"}, a 1.8-era mix of both that
//     KFP's own frontend test data carries. It is only rewritten when the
//     callee does not expect a STRUCT, where such an object is legitimate.
func (p *Pipeline) normalizeLegacyConstants() {
	comps := p.Spec.GetComponents()
	fix := func(c *pipelinespec.ComponentSpec) {
		for _, t := range c.GetDag().GetTasks() {
			callee := comps[t.GetComponentRef().GetName()]
			for name, in := range t.GetInputs().GetParameters() {
				rv := in.GetRuntimeValue()
				if rv == nil {
					continue
				}
				if old := rv.GetConstantValue(); old != nil {
					if v := fromLegacyValue(old); v != nil {
						// 1.x executors received every value as text, so a
						// number bound to a STRING input means its text.
						if n, ok := v.GetKind().(*structpb.Value_NumberValue); ok {
							if d := callee.GetInputDefinitions().GetParameters()[name]; d != nil && InputParameterType(d) == pipelinespec.ParameterType_STRING {
								v = structpb.NewStringValue(strconv.FormatFloat(n.NumberValue, 'f', -1, 64))
							}
						}
						rv.Value = &pipelinespec.ValueOrRuntimeParameter_Constant{Constant: v}
					}
					continue
				}
				st := rv.GetConstant().GetStructValue()
				if st == nil || len(st.GetFields()) != 1 {
					continue
				}
				if d := callee.GetInputDefinitions().GetParameters()[name]; d != nil && InputParameterType(d) == pipelinespec.ParameterType_STRUCT {
					continue
				}
				for k, f := range st.GetFields() {
					var v *structpb.Value
					switch k {
					case "stringValue":
						if s, ok := f.GetKind().(*structpb.Value_StringValue); ok {
							v = structpb.NewStringValue(s.StringValue)
						}
					case "intValue", "doubleValue":
						v = legacyNumber(f)
					}
					if v != nil {
						rv.Value = &pipelinespec.ValueOrRuntimeParameter_Constant{Constant: v}
					}
				}
			}
		}
	}
	fix(p.Spec.GetRoot())
	for _, c := range comps {
		fix(c)
	}
}

func fromLegacyValue(v *pipelinespec.Value) *structpb.Value {
	switch k := v.GetValue().(type) {
	case *pipelinespec.Value_StringValue:
		return structpb.NewStringValue(k.StringValue)
	case *pipelinespec.Value_IntValue:
		return structpb.NewNumberValue(float64(k.IntValue))
	case *pipelinespec.Value_DoubleValue:
		return structpb.NewNumberValue(k.DoubleValue)
	}
	return nil
}

// legacyNumber accepts a number or, as protojson writes int64, a numeric string.
func legacyNumber(f *structpb.Value) *structpb.Value {
	switch k := f.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return structpb.NewNumberValue(k.NumberValue)
	case *structpb.Value_StringValue:
		if v, err := CoerceParameter(k.StringValue, pipelinespec.ParameterType_NUMBER_DOUBLE); err == nil {
			return v
		}
	}
	return nil
}
