package launch

import (
	"fmt"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/ir"
)

// This file adapts the launcher's state to shared/ir's placeholder resolver,
// which owns the placeholder grammar (including Concat and IfPresent).

// resolveString resolves the placeholders of one string (an env value or an
// importer metadata entry).
func resolveString(s string, r ir.Resolver) (string, error) {
	out, err := ir.ResolveArgs([]string{s}, r)
	if err != nil {
		return "", err
	}
	if len(out) != 1 {
		return "", fmt.Errorf("%s expands to %d values where one is needed", clip(s), len(out))
	}
	return out[0], nil
}

// Value implements ir.Resolver for a running task.
func (x *execution) Value(p ir.Placeholder) (string, error) {
	switch p.Kind {
	case ir.ExecutorInput:
		return ir.JSONEscape(x.inputJSON, p.Escapes), nil
	case ir.InputParameter:
		v, ok := x.params[p.Name]
		if !ok {
			return "", fmt.Errorf("%s: input parameter %q has no value", p.Text, p.Name)
		}
		return EncodeParam(v, ir.InputParameterType(x.spec.GetInputDefinitions().GetParameters()[p.Name])), nil
	case ir.InputArtifactURI, ir.InputArtifactPath, ir.InputArtifactMetadata:
		list := x.inArtifacts[p.Name]
		if len(list) == 0 {
			return "", fmt.Errorf("%s: input artifact %q has no value", p.Text, p.Name)
		}
		return artifactField(p, list[0], x.inPaths[p.Name][0])
	case ir.OutputParameterFile:
		f, ok := x.outParams[p.Name]
		if !ok {
			return "", fmt.Errorf("%s: the component declares no output parameter %q", p.Text, p.Name)
		}
		return f, nil
	case ir.OutputArtifactURI, ir.OutputArtifactPath, ir.OutputArtifactMetadata:
		a, ok := x.outArts[p.Name]
		if !ok {
			return "", fmt.Errorf("%s: the component declares no output artifact %q", p.Text, p.Name)
		}
		return artifactField(p, a, x.outPaths[p.Name])
	case ir.OutputMetadataFile:
		return x.outputFile, nil
	case ir.System:
		if v, ok := x.system(p.Name); ok {
			return v, nil
		}
		return "", fmt.Errorf("%s: the launcher has no value for %s", p.Text, p.Name)
	}
	return "", fmt.Errorf("%s: unsupported placeholder", p.Text)
}

// IsPresent implements ir.Resolver.
func (x *execution) IsPresent(name string) bool {
	if _, ok := x.params[name]; ok {
		return true
	}
	return len(x.inArtifacts[name]) > 0
}

// artifactField answers the uri, path and metadata placeholders of a.
func artifactField(p ir.Placeholder, a *pipelinespec.RuntimeArtifact, path string) (string, error) {
	switch p.Kind {
	case ir.InputArtifactURI, ir.OutputArtifactURI:
		return a.GetUri(), nil
	case ir.InputArtifactPath, ir.OutputArtifactPath:
		return path, nil
	}
	md := map[string]any{}
	if a.GetMetadata() != nil {
		md = a.GetMetadata().AsMap()
	}
	s, err := ir.MetadataText(md, p.Key)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p.Text, err)
	}
	return s, nil
}

// systemOnly resolves system placeholders and leaves every other placeholder
// as written; parameter values pass through it.
type systemOnly func(string) (string, bool)

func (f systemOnly) Value(p ir.Placeholder) (string, error) {
	if p.Kind == ir.System {
		if v, ok := f(p.Name); ok {
			return v, nil
		}
	}
	return p.Text, nil
}

func (systemOnly) IsPresent(string) bool { return false }

// paramResolver answers input-parameter placeholders only (importer metadata).
type paramResolver struct {
	params map[string]*structpb.Value
	types  map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec
}

func (r paramResolver) Value(p ir.Placeholder) (string, error) {
	if p.Kind != ir.InputParameter {
		return "", fmt.Errorf("%s: an importer can only use input parameters", p.Text)
	}
	v, ok := r.params[p.Name]
	if !ok {
		return "", fmt.Errorf("%s: input parameter %q has no value", p.Text, p.Name)
	}
	return EncodeParam(v, ir.InputParameterType(r.types[p.Name])), nil
}

func (r paramResolver) IsPresent(name string) bool { _, ok := r.params[name]; return ok }
