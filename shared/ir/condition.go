package ir

import (
	"errors"

	"google.golang.org/protobuf/types/known/structpb"
)

// CheckCondition parses and type-checks a KFP trigger condition (CEL).
func CheckCondition(expr string) error {
	return errors.New("ir.CheckCondition: not implemented yet")
}

// EvalCondition evaluates a KFP trigger condition with
// inputs.parameter_values bound to params.
func EvalCondition(expr string, params map[string]*structpb.Value) (bool, error) {
	return false, errors.New("ir.EvalCondition: not implemented yet")
}
