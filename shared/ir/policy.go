package ir

import (
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"
)

// This file is the explicit policy for members the compiled-in KFP protobuf
// types (late 2023) do not know. Found in the corpus (SDK up to 2.15):
//
//	deploymentSpec.executors[*].container.resources.resourceCpuLimit        honoured (ExecutorExtras)
//	deploymentSpec.executors[*].container.resources.resourceMemoryLimit     honoured
//	deploymentSpec.executors[*].container.resources.accelerator.resourceType  honoured
//	deploymentSpec.executors[*].container.resources.accelerator.resourceCount honoured
//	deploymentSpec.executors[*].importer.downloadToWorkspace               honoured
//	root|components[*].inputDefinitions.parameters[*].literals             honoured (InputLiterals)
//
// Also honoured because current SDKs write them: resourceCpuRequest and
// resourceMemoryRequest. Known to current SDKs but rejected with a clear
// message because pipefn cannot honour them yet: taskConfigPassthroughs and
// the TASK_CONFIG parameter type (dsl.TaskConfig). Ignored anywhere because
// they never change execution: description, displayName. Everything else is
// rejected, naming the field and its path.

// ExecutorExtras are the newer-SDK fields of one executor.
type ExecutorExtras struct {
	// String machine fields (Kubernetes quantities or KFP placeholders such
	// as {{$.inputs.parameters['pipelinechannel--cpu_limit']}}). They take
	// precedence over the deprecated double fields; see Pipeline.Resources.
	ResourceCPULimit      string
	ResourceMemoryLimit   string
	ResourceCPURequest    string
	ResourceMemoryRequest string
	AcceleratorType       string
	AcceleratorCount      string
	// DownloadToWorkspace asks an importer to also copy the artifact into
	// the run's workspace volume.
	DownloadToWorkspace bool
}

// ignoredFields never change execution, wherever they appear.
var ignoredFields = map[string]bool{"description": true, "displayName": true}

// stringResourceFields maps the newer string machine fields to setters.
var stringResourceFields = map[string]func(*ExecutorExtras, string){
	"deploymentSpec.executors[*].container.resources.resourceCpuLimit":          func(e *ExecutorExtras, s string) { e.ResourceCPULimit = s },
	"deploymentSpec.executors[*].container.resources.resourceMemoryLimit":       func(e *ExecutorExtras, s string) { e.ResourceMemoryLimit = s },
	"deploymentSpec.executors[*].container.resources.resourceCpuRequest":        func(e *ExecutorExtras, s string) { e.ResourceCPURequest = s },
	"deploymentSpec.executors[*].container.resources.resourceMemoryRequest":     func(e *ExecutorExtras, s string) { e.ResourceMemoryRequest = s },
	"deploymentSpec.executors[*].container.resources.accelerator.resourceType":  func(e *ExecutorExtras, s string) { e.AcceleratorType = s },
	"deploymentSpec.executors[*].container.resources.accelerator.resourceCount": func(e *ExecutorExtras, s string) { e.AcceleratorCount = s },
}

// rejectedWithReason are newer-SDK fields pipefn knows it cannot honour.
var rejectedWithReason = map[string]string{
	"components[*].taskConfigPassthroughs": "dsl.TaskConfig passthroughs are not supported by pipefn",
	"root.taskConfigPassthroughs":          "dsl.TaskConfig passthroughs are not supported by pipefn",
}

// applyPolicy decides about one member unknown to the compiled-in protobuf
// types: honour it (typed side structures plus Extras), ignore it, or reject it.
func (p *Pipeline) applyPolicy(u unknownField, ps *problems) {
	pattern := u.pattern()
	if u.bad != "" {
		ps.add(u.path(), "%s", u.bad)
		return
	}
	if u.enum {
		ps.add(u.path(), "unknown enum value %v (not supported by pipefn)", u.value)
		return
	}
	if ignoredFields[u.field] {
		return
	}
	if reason, ok := rejectedWithReason[pattern]; ok {
		ps.add(u.path(), "field %q: %s", u.field, reason)
		return
	}
	if u.at.pattern == "" {
		ps.add(u.path(), "unknown field %q at top level of the pipeline spec", u.field)
		return
	}
	honoured := true
	switch {
	case stringResourceFields[pattern] != nil:
		s, ok := stringOrNumber(u.value)
		if !ok {
			ps.add(u.path(), "must be a string, got %s", jsonText(u.value))
			return
		}
		stringResourceFields[pattern](p.executorExtras(u.at.keys[0]), s)
	case pattern == "deploymentSpec.executors[*].importer.downloadToWorkspace":
		b, ok := u.value.(bool)
		if !ok {
			ps.add(u.path(), "must be a boolean, got %s", jsonText(u.value))
			return
		}
		p.executorExtras(u.at.keys[0]).DownloadToWorkspace = b
	case pattern == "root.inputDefinitions.parameters[*].literals",
		pattern == "components[*].inputDefinitions.parameters[*].literals":
		comp, param := "", u.at.keys[len(u.at.keys)-1]
		if len(u.at.keys) == 2 {
			comp = u.at.keys[0]
		}
		l, ok := u.value.([]any)
		if !ok {
			ps.add(u.path(), "must be a list of allowed values, got %s", jsonText(u.value))
			return
		}
		vals := make([]*structpb.Value, 0, len(l))
		for i, e := range l {
			v, err := structpb.NewValue(plainJSON(e))
			if err != nil {
				ps.add(u.path()+"["+strconv.Itoa(i)+"]", "%v", err)
				return
			}
			vals = append(vals, v)
		}
		if p.InputLiterals == nil {
			p.InputLiterals = map[string]map[string][]*structpb.Value{}
		}
		if p.InputLiterals[comp] == nil {
			p.InputLiterals[comp] = map[string][]*structpb.Value{}
		}
		p.InputLiterals[comp][param] = vals
	default:
		honoured = false
	}
	if !honoured {
		ps.add(u.path(), "unknown field %q (not in the KFP pipeline spec pipefn understands)", u.field)
		return
	}
	if p.Extras == nil {
		p.Extras = map[string]json.RawMessage{}
	}
	raw, err := json.Marshal(u.value)
	if err != nil {
		ps.add(u.path(), "cannot re-encode: %v", err)
		return
	}
	p.Extras[u.path()] = raw
}

func (p *Pipeline) executorExtras(label string) *ExecutorExtras {
	if p.ExecutorExtras == nil {
		p.ExecutorExtras = map[string]*ExecutorExtras{}
	}
	e := p.ExecutorExtras[label]
	if e == nil {
		e = &ExecutorExtras{}
		p.ExecutorExtras[label] = e
	}
	return e
}

// stringOrNumber accepts a JSON string or number (some SDK versions wrote
// resourceCount as a number) and returns its text.
func stringOrNumber(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// compactJSON encodes v in full (for data, unlike jsonText which is for
// messages).
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// jsonText renders a value for an error message, shortened.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
