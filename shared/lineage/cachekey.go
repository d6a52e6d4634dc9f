package lineage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// CacheKeyInput is everything a task's result may depend on, as far as the step cache
// knows. Two tasks with equal inputs here are taken to produce equal outputs.
type CacheKeyInput struct {
	// Component's inputDefinitions and outputDefinitions are covered (names and types of
	// every parameter and artifact, defaults, optionality); its executorLabel and dag are
	// not, as they name things rather than define behaviour.
	Component *pipelinespec.ComponentSpec
	// Image, Command and Args of the executor's container as written in the IR
	// (placeholders unresolved: the values they resolve to are covered below).
	Image   string
	Command []string
	Args    []string
	// Parameters are the input parameter values after defaults and upstream outputs.
	Parameters map[string]*structpb.Value
	// Artifacts are the input artifacts by input name, each by URI and digest, in order.
	Artifacts map[string][]ArtifactRef
}

// ArtifactRef names an input artifact's content for the cache key.
type ArtifactRef struct {
	URI    string `json:"uri"`
	Digest string `json:"digest"`
}

// cacheKeyVersion changes whenever the covered fields or their encoding change, so that
// keys of different versions never collide.
const cacheKeyVersion = 1

// CacheKey fingerprints a task with KFP's semantics: the sha256 (64 lower-case hex
// characters) of the canonical JSON (object keys sorted, no insignificant space) of
//
//	{"version":1,
//	 "inputDefinitions":…, "outputDefinitions":…,   // from Component, protojson field names
//	 "image":…, "command":[…], "args":[…],
//	 "parameters":{name: JSON value, …},
//	 "artifacts":{name: [{"uri":…, "digest":…}, …], …}}
//
// Not covered, as in KFP: the task's name, the run, the pipeline, environment variables,
// resources, retries and Kubernetes settings. Unlike KFP, which names input artifacts by
// their MLMD names, pipefn covers each input's URI and content digest, so a rewritten
// object invalidates the key.
func CacheKey(in CacheKeyInput) (string, error) {
	var inDefs, outDefs any
	if in.Component != nil {
		var err error
		if inDefs, err = canonicalProto(in.Component.GetInputDefinitions()); err != nil {
			return "", fmt.Errorf("cache key: component inputDefinitions: %w", err)
		}
		if outDefs, err = canonicalProto(in.Component.GetOutputDefinitions()); err != nil {
			return "", fmt.Errorf("cache key: component outputDefinitions: %w", err)
		}
	}
	params := make(map[string]any, len(in.Parameters))
	for name, v := range in.Parameters {
		params[name] = v.AsInterface() // nil *Value is JSON null
	}
	arts := make(map[string][]ArtifactRef, len(in.Artifacts))
	for name, list := range in.Artifacts {
		arts[name] = append([]ArtifactRef{}, list...)
	}
	doc := map[string]any{
		"version":           cacheKeyVersion,
		"inputDefinitions":  inDefs,
		"outputDefinitions": outDefs,
		"image":             in.Image,
		"command":           nonNil(in.Command),
		"args":              nonNil(in.Args),
		"parameters":        params,
		"artifacts":         arts,
	}
	// encoding/json sorts map keys and writes no extra space: canonical for this shape.
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("cache key: encode: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalProto turns m into plain JSON values. protojson's output is deliberately
// unstable in whitespace, so it is decoded and re-encoded by encoding/json.
func canonicalProto(m proto.Message) (any, error) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil, nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
