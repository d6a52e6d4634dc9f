// Package launch is the task runtime that cmd/launcher runs inside every task
// of a compiled pipeline (and that shared/local calls in-process): it turns a
// static TaskConfig plus dynamic parameter and artifact values into a KFP
// ExecutorInput, runs the user's command, and collects and uploads outputs.
//
// # Where artifacts live locally
//
// KFP's Python executor does not read an artifact's local path from the
// ExecutorInput; it derives it from the URI (s3://b/k -> /s3/b/k, gs:// ->
// /gcs/, minio:// -> /minio/, anything else: the URI itself is the path). The
// launcher therefore places artifacts where that rule points:
//
//   - In a pod (Env.MountRoot "/"), remote artifacts live at exactly
//     /s3/<bucket>/<key> and the ExecutorInput carries their real URIs.
//   - In-process (MountRoot empty: <work>/mnt) and for file:// pipeline
//     roots, artifacts live under the work dir (<work>/inputs/<name>/<i>/...,
//     <work>/outputs/artifacts/<name>/<name>) and the ExecutorInput carries
//     that local path as the URI, which KFP's executor takes as the path.
//
// Inputs are always copies (a program cannot corrupt its producer's output)
// and outputs are uploaded through the Store after the command succeeds, to
// <root>/<run-id>/<task-id>/<output-name>. The {{$.inputs.artifacts[..].uri}}
// and {{$.outputs.artifacts[..].uri}} placeholders always give the real URI.
// A program that writes a directory at an output path produces a directory
// artifact: its files plus a manifest (ManifestName) under the URI. Metadata
// the program reports is also stored beside the artifact (MetadataSuffix),
// because engines hand the next pod only the URI.
package launch

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TaskConfig is the static description of one task execution. It travels
// base64-encoded JSON on the launcher's command line so that neither Tekton's
// $(..) nor Argo's {{..}} substitution sees KFP's {{$...}} placeholders.
type TaskConfig struct {
	RunID    string `json:"runId"`
	TaskID   string `json:"taskId"`   // unique in the run, includes loop indices ("loop-1.2.train")
	TaskName string `json:"taskName"` // the IR task name
	// PipelineRoot is the artifact root URI (file:///..., s3://bucket/prefix).
	PipelineRoot string `json:"pipelineRoot"`
	// Component is protojson of the task's pipelinespec.ComponentSpec, reduced
	// to its input and output definitions (see SetComponent).
	Component json.RawMessage `json:"component,omitempty"`
	// Container is the executor's container; empty for importers and conditions.
	Container *Container `json:"container,omitempty"`
	// Importer is protojson of pipelinespec.PipelineDeploymentConfig_ImporterSpec
	// when the task is an importer (see SetImporter).
	Importer json.RawMessage `json:"importer,omitempty"`
	// CacheEnabled says whether the step cache may be used for this task.
	CacheEnabled bool `json:"cacheEnabled,omitempty"`
}

// Container is the user's executor container as the launcher runs it.
type Container struct {
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	Env     []EnvVar `json:"env,omitempty"`
}

// EnvVar is one environment variable of the user command; values may contain
// placeholders.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CondConfig is the static part of a `launcher cond` task: a CEL expression
// over the guarded task's inputs (KFP's triggerPolicy.condition).
type CondConfig struct {
	RunID     string `json:"runId,omitempty"`
	TaskID    string `json:"taskId,omitempty"`
	Condition string `json:"condition"`
	// ParamTypes gives the type of each --param so values decode correctly;
	// a missing entry decodes as JSON when it parses, else as a string.
	ParamTypes map[string]pipelinespec.ParameterType_ParameterTypeEnum `json:"paramTypes,omitempty"`
}

// ContainerFromSpec converts the IR's container spec into a Container.
func ContainerFromSpec(c *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec) *Container {
	if c == nil {
		return nil
	}
	out := &Container{Image: c.GetImage(), Command: slices.Clone(c.GetCommand()), Args: slices.Clone(c.GetArgs())}
	for _, e := range c.GetEnv() {
		out.Env = append(out.Env, EnvVar{Name: e.GetName(), Value: e.GetValue()})
	}
	return out
}

// marshalProto renders m as compact protojson. protojson deliberately varies
// its whitespace between builds; compacting removes that so compiled objects
// stay byte-for-byte deterministic.
func marshalProto(m proto.Message) (json.RawMessage, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SetComponent stores the input and output definitions of spec; the DAG and
// executor label are irrelevant to the launcher and are dropped.
func (c *TaskConfig) SetComponent(spec *pipelinespec.ComponentSpec) error {
	if spec == nil {
		c.Component = nil
		return nil
	}
	reduced := &pipelinespec.ComponentSpec{InputDefinitions: spec.GetInputDefinitions(), OutputDefinitions: spec.GetOutputDefinitions()}
	b, err := marshalProto(reduced)
	if err != nil {
		return fmt.Errorf("launch: task %s: encode component: %w", c.TaskID, err)
	}
	c.Component = b
	return nil
}

// ComponentSpec decodes Component; an absent component is an empty spec.
func (c TaskConfig) ComponentSpec() (*pipelinespec.ComponentSpec, error) {
	spec := &pipelinespec.ComponentSpec{}
	if len(c.Component) == 0 {
		return spec, nil
	}
	if err := protojson.Unmarshal(c.Component, spec); err != nil {
		return nil, fmt.Errorf("launch: task %s: decode component: %w", c.TaskID, err)
	}
	return spec, nil
}

// SetImporter stores the importer spec of an importer task.
func (c *TaskConfig) SetImporter(spec *pipelinespec.PipelineDeploymentConfig_ImporterSpec) error {
	if spec == nil {
		c.Importer = nil
		return nil
	}
	b, err := marshalProto(spec)
	if err != nil {
		return fmt.Errorf("launch: task %s: encode importer: %w", c.TaskID, err)
	}
	c.Importer = b
	return nil
}

// ImporterSpec decodes Importer.
func (c TaskConfig) ImporterSpec() (*pipelinespec.PipelineDeploymentConfig_ImporterSpec, error) {
	if len(c.Importer) == 0 {
		return nil, fmt.Errorf("launch: task %s: no importer spec in the task config", c.TaskID)
	}
	spec := &pipelinespec.PipelineDeploymentConfig_ImporterSpec{}
	if err := protojson.Unmarshal(c.Importer, spec); err != nil {
		return nil, fmt.Errorf("launch: task %s: decode importer: %w", c.TaskID, err)
	}
	return spec, nil
}

// Encode returns base64(json(c)), the --config-b64 value.
func (c TaskConfig) Encode() (string, error) { return encodeB64(c) }

// Encode returns base64(json(c)), the --config-b64 value.
func (c CondConfig) Encode() (string, error) { return encodeB64(c) }

func encodeB64(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("launch: encode config: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeTaskConfig reverses TaskConfig.Encode.
func DecodeTaskConfig(b64 string) (TaskConfig, error) {
	var c TaskConfig
	err := decodeB64(b64, &c)
	return c, err
}

// DecodeCondConfig reverses CondConfig.Encode.
func DecodeCondConfig(b64 string) (CondConfig, error) {
	var c CondConfig
	err := decodeB64(b64, &c)
	return c, err
}

func decodeB64(s string, v any) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("launch: --config-b64 is not base64: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("launch: --config-b64 is not a valid config: %w", err)
	}
	return nil
}

// Args builds the launcher's `run` arguments (without the binary path):
// run --config-b64 B --param k=v ... --artifact k=v ... --results-dir D, with
// keys sorted so compiled objects are deterministic. Values are passed
// through untouched; they are usually engine substitution expressions. A
// config that cannot be encoded (impossible for configs built with
// SetComponent/SetImporter) yields an empty --config-b64, which the launcher
// rejects at run time with a clear message.
func (c TaskConfig) Args(params, artifacts map[string]string, resultsDir string) []string {
	return c.argsFor("run", params, artifacts, resultsDir)
}

// ImporterArgs is Args for the `importer` subcommand.
func (c TaskConfig) ImporterArgs(params map[string]string, resultsDir string) []string {
	return c.argsFor("importer", params, nil, resultsDir)
}

func (c TaskConfig) argsFor(sub string, params, artifacts map[string]string, resultsDir string) []string {
	b64, _ := c.Encode()
	return buildArgs(sub, b64, params, artifacts, resultsDir)
}

// Args builds the launcher's `cond` arguments.
func (c CondConfig) Args(params map[string]string, resultsDir string) []string {
	b64, _ := c.Encode()
	return buildArgs("cond", b64, params, nil, resultsDir)
}

func buildArgs(sub, b64 string, params, artifacts map[string]string, resultsDir string) []string {
	out := []string{sub, "--config-b64", b64}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		out = append(out, "--param", k+"="+params[k])
	}
	for _, k := range slices.Sorted(maps.Keys(artifacts)) {
		out = append(out, "--artifact", k+"="+artifacts[k])
	}
	return append(out, "--results-dir", resultsDir)
}
