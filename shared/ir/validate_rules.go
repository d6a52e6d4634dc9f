package ir

import "fmt"

type validator struct {
	p  *Pipeline
	ps *problems
}

func (v *validator) run() {
	s := v.p.Spec
	switch s.GetSchemaVersion() {
	case "2.0.0", "2.1.0":
	default:
		v.ps.add("schemaVersion", "unsupported schema version %q (want 2.0.0 or 2.1.0)", s.GetSchemaVersion())
	}
	if s.GetPipelineInfo().GetName() == "" {
		v.ps.add("pipelineInfo.name", "pipelineInfo.name is empty")
	}
	if s.GetRoot() == nil {
		v.ps.add("root", "missing root component")
	}
	_ = fmt.Sprint
}
