package ir

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"google.golang.org/protobuf/types/known/structpb"
)

// KFP trigger conditions are CEL over the task's ExecutorInput. The SDK
// writes inputs.parameter_values['pipelinechannel--x'] (2.x) and, in 2.0.0
// schema files, inputs.parameters['x'].string_value; artifacts are
// inputs.artifacts['m'][0].metadata['k'].
var inputsFields = map[string]bool{"parameter_values": true, "parameters": true, "artifacts": true}

// celEnv declares one variable, inputs, a map of maps whose first-level
// members are checked separately (see checkInputsSelects) because CEL map
// types cannot say "exactly these keys". The inner map type matters: with
// inputs declared as map(string, dyn), cel-go v0.27 fails at run time on
// int(inputs.parameter_values['x']) with "no such overload: int(double)".
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("inputs", cel.MapType(cel.StringType, cel.MapType(cel.StringType, cel.DynType))))
})

// programs caches compiled conditions: a pipeline has few distinct ones
// and a run evaluates them once per loop iteration. The cache is bounded
// because expressions come from user input; past the bound, conditions
// are compiled on every call.
var programs = struct {
	sync.Mutex
	m map[string]cel.Program
}{m: map[string]cel.Program{}}

const programCacheLimit = 4096

// CheckCondition parses and type-checks a KFP trigger condition (CEL).
func CheckCondition(expr string) error {
	_, err := compileCondition(expr)
	return err
}

func compileCondition(expr string) (cel.Program, error) {
	programs.Lock()
	prg, ok := programs.m[expr]
	programs.Unlock()
	if ok {
		return prg, nil
	}
	if expr == "" {
		return nil, errors.New("empty condition")
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("condition %s: %w", clip(expr), iss.Err())
	}
	if err := checkInputsSelects(ast); err != nil {
		return nil, fmt.Errorf("condition %s: %w", clip(expr), err)
	}
	if !ast.OutputType().IsAssignableType(cel.BoolType) {
		return nil, fmt.Errorf("condition %s: evaluates to %s, want bool", clip(expr), ast.OutputType())
	}
	prg, err = env.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("condition %s: %w", clip(expr), err)
	}
	programs.Lock()
	if len(programs.m) < programCacheLimit {
		programs.m[expr] = prg
	}
	programs.Unlock()
	return prg, nil
}

// checkInputsSelects rejects inputs.X for X other than the ExecutorInput
// fields KFP exposes, so a typo fails at submit time, not mid-run.
func checkInputsSelects(a *cel.Ast) error {
	var bad error
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if bad != nil || e.Kind() != celast.SelectKind {
			return
		}
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() == celast.IdentKind && op.AsIdent() == "inputs" && !inputsFields[sel.FieldName()] {
			bad = fmt.Errorf("unknown field inputs.%s (want inputs.parameter_values, inputs.parameters or inputs.artifacts)", sel.FieldName())
		}
	}))
	return bad
}

// EvalCondition evaluates a KFP trigger condition with
// inputs.parameter_values bound to params (and inputs.parameters to the
// legacy {string_value, int_value, double_value, bool_value} form).
func EvalCondition(expr string, params map[string]*structpb.Value) (bool, error) {
	prg, err := compileCondition(expr)
	if err != nil {
		return false, err
	}
	values := make(map[string]any, len(params))
	legacy := make(map[string]any, len(params))
	for k, v := range params {
		if v == nil {
			v = structpb.NewNullValue()
		}
		values[k] = v.AsInterface()
		legacy[k] = legacyCELValue(v)
	}
	out, _, err := prg.Eval(map[string]any{"inputs": map[string]any{
		"parameter_values": values,
		"parameters":       legacy,
		"artifacts":        map[string]any{},
	}})
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", clip(expr), err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition %s: evaluated to %v (%s), want bool", clip(expr), out, out.Type())
	}
	return bool(b), nil
}

// legacyCELValue renders a value as the pre-2.0 pipelinespec.Value message
// that 2.0.0 conditions select from (inputs.parameters['x'].string_value).
func legacyCELValue(v *structpb.Value) map[string]any {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return map[string]any{"string_value": x.StringValue}
	case *structpb.Value_NumberValue:
		n := x.NumberValue
		if n == float64(int64(n)) {
			return map[string]any{"int_value": int64(n), "double_value": n}
		}
		return map[string]any{"double_value": n}
	case *structpb.Value_BoolValue:
		return map[string]any{"bool_value": x.BoolValue}
	}
	return map[string]any{"string_value": compactJSON(v.AsInterface())}
}

// ConditionParameters returns the parameter names a condition reads
// through inputs.parameter_values['x'] or inputs.parameters['x'], sorted and
// without duplicates. It returns nil for an expression that does not compile.
func ConditionParameters(expr string) []string {
	env, err := celEnv()
	if err != nil {
		return nil
	}
	a, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil
	}
	seen := map[string]bool{}
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		if call.FunctionName() != "_[_]" || len(call.Args()) != 2 {
			return
		}
		target, idx := call.Args()[0], call.Args()[1]
		if target.Kind() != celast.SelectKind || idx.Kind() != celast.LiteralKind {
			return
		}
		sel := target.AsSelect()
		if sel.Operand().Kind() != celast.IdentKind || sel.Operand().AsIdent() != "inputs" {
			return
		}
		if f := sel.FieldName(); f != "parameter_values" && f != "parameters" {
			return
		}
		if s, ok := idx.AsLiteral().(types.String); ok {
			seen[string(s)] = true
		}
	}))
	return sortedKeys(seen)
}

// selectorEnv is the CEL environment of parameterExpressionSelector: the
// selected value as string_value (and friends) plus parseJson.
var selectorEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("string_value", cel.StringType),
		cel.Variable("number_value", cel.DoubleType),
		cel.Variable("bool_value", cel.BoolType),
		cel.Function("parseJson",
			cel.Overload("parseJson_string", []*cel.Type{cel.StringType}, cel.DynType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.NewErr("parseJson wants a string")
					}
					var out any
					if err := json.Unmarshal([]byte(s), &out); err != nil {
						return types.NewErr("parseJson: %v", err)
					}
					return types.DefaultTypeAdapter.NativeToValue(out)
				}))),
	)
})

// CheckParameterSelector parses and type-checks a task input's
// parameterExpressionSelector, e.g. parseJson(string_value)["A_a"].
func CheckParameterSelector(expr string) error {
	env, err := selectorEnv()
	if err != nil {
		return fmt.Errorf("CEL environment: %w", err)
	}
	if _, iss := env.Compile(expr); iss.Err() != nil {
		return fmt.Errorf("parameterExpressionSelector %s: %w", clip(expr), iss.Err())
	}
	return nil
}

// EvalParameterSelector applies a parameterExpressionSelector to a value
// (loop items over lists of structs are passed this way).
func EvalParameterSelector(expr string, v *structpb.Value) (*structpb.Value, error) {
	env, err := selectorEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	a, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("parameterExpressionSelector %s: %w", clip(expr), iss.Err())
	}
	prg, err := env.Program(a)
	if err != nil {
		return nil, fmt.Errorf("parameterExpressionSelector %s: %w", clip(expr), err)
	}
	vars := map[string]any{"string_value": "", "number_value": 0.0, "bool_value": false}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		vars["string_value"] = k.StringValue
	case *structpb.Value_NumberValue:
		vars["number_value"] = k.NumberValue
	case *structpb.Value_BoolValue:
		vars["bool_value"] = k.BoolValue
	default:
		// Lists and structs travel as JSON text, which parseJson reads.
		vars["string_value"] = compactJSON(v.AsInterface())
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("parameterExpressionSelector %s: %w", clip(expr), err)
	}
	native, err := out.ConvertToNative(reflect.TypeOf((*structpb.Value)(nil)))
	if err != nil {
		return nil, fmt.Errorf("parameterExpressionSelector %s: result %v: %w", clip(expr), out, err)
	}
	return native.(*structpb.Value), nil
}
