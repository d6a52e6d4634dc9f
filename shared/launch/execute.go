package launch

import (
	"context"
	"errors"
	"io"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/artifacts"
)

// Inputs are a task's resolved input values.
type Inputs struct {
	Params    map[string]*structpb.Value
	Artifacts map[string][]*pipelinespec.RuntimeArtifact
}

// Outputs are a task's produced values. Artifact metadata carries "size" and
// "digest" of each uploaded artifact.
type Outputs struct {
	Params    map[string]*structpb.Value
	Artifacts map[string][]*pipelinespec.RuntimeArtifact
}

// Env is the environment a task executes in.
type Env struct {
	Store    artifacts.Store // where input artifacts are read and outputs written
	WorkDir  string          // scratch space for this execution; empty: a new temp dir
	Stdout   io.Writer       // user command output; nil discards
	Stderr   io.Writer
	ExtraEnv []string // KEY=VALUE added to the user command's environment
}

// Execute runs the task's user command. (Implementation in progress.)
func Execute(ctx context.Context, cfg TaskConfig, in Inputs, env Env) (Outputs, error) {
	return Outputs{}, errors.New("launch: Execute not implemented yet")
}

// Import runs the importer executor. (Implementation in progress.)
func Import(ctx context.Context, cfg TaskConfig, in Inputs, env Env) (Outputs, error) {
	return Outputs{}, errors.New("launch: Import not implemented yet")
}
