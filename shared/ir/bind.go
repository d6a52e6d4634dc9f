package ir

import (
	"errors"

	"google.golang.org/protobuf/types/known/structpb"
)

// BindParameters computes the root input parameter values of a run: root
// inputDefinitions defaults, then RuntimeConfig.ParameterValues, then in
// (by name). Values are type-checked and coerced to the declared type.
func (p *Pipeline) BindParameters(in map[string]any) (map[string]*structpb.Value, error) {
	return nil, errors.New("ir.BindParameters: not implemented yet")
}
