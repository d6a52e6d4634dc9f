// Package lineage is pipefn's model of artifacts lineage and the step cache, shaped after
// ML Metadata (MLMD) as Kubeflow Pipelines uses it: executions (one per task of a run),
// artifacts (one per object URI), events (the INPUT/OUTPUT edges between them) and
// contexts (the pipeline and the pipeline run). It is pure: no I/O. shared/state stores
// the graph; functions/lineage serves it.
package lineage

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Well-known artifact types (KFP's schema titles).
const (
	TypeArtifact                    = "system.Artifact"
	TypeDataset                     = "system.Dataset"
	TypeModel                       = "system.Model"
	TypeMetrics                     = "system.Metrics"
	TypeClassificationMetrics       = "system.ClassificationMetrics"
	TypeSlicedClassificationMetrics = "system.SlicedClassificationMetrics"
	TypeHTML                        = "system.HTML"
	TypeMarkdown                    = "system.Markdown"
)

// EventType says which way an artifact flows through an execution.
type EventType string

// Event types, as MLMD names them.
const (
	Input  EventType = "INPUT"
	Output EventType = "OUTPUT"
)

// Execution is one task of one run: what ran, on what, and how it ended.
type Execution struct {
	ID        string `json:"id"`
	RunID     string `json:"run_id"`
	TaskID    string `json:"task_id"`
	TaskName  string `json:"task_name,omitempty"`
	Component string `json:"component,omitempty"`
	Image     string `json:"image,omitempty"`
	// Command is the executor's full argv (command then args) as it ran.
	Command []string `json:"command,omitempty"`
	// Parameters are the input parameter values as JSON values.
	Parameters map[string]any `json:"parameters,omitempty"`
	// OutputParameters are the produced parameter values; a cache hit hands them on.
	OutputParameters map[string]any `json:"output_parameters,omitempty"`
	State            string         `json:"state"`
	Start            time.Time      `json:"start,omitzero"`
	End              time.Time      `json:"end,omitzero"`
	CacheKey         string         `json:"cache_key,omitempty"`
	// CachedFrom is the id of the execution whose outputs a CACHED execution reused.
	CachedFrom string `json:"cached_from,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Artifact is one object in the artifact store, named by its URI.
type Artifact struct {
	ID string `json:"id"`
	// Name is the producer's output name (a consumer names it by its input name until the
	// producer's record arrives).
	Name     string         `json:"name,omitempty"`
	Type     string         `json:"type,omitempty"`
	URI      string         `json:"uri"`
	Digest   string         `json:"digest,omitempty"` // "sha256:<hex>"
	Size     int64          `json:"size,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// ProducerExecutionID is the execution that wrote the object, empty if not known yet.
	ProducerExecutionID string `json:"producer_execution_id,omitempty"`
	// CreatedAt is the end of the producing execution.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Event is one edge of the graph: an artifact read (INPUT) or written (OUTPUT) by an
// execution under the input/output name Name.
type Event struct {
	ExecutionID string    `json:"execution_id"`
	ArtifactID  string    `json:"artifact_id"`
	Type        EventType `json:"type"`
	Name        string    `json:"name"`
}

// Context kinds: a pipeline groups its runs, a pipeline run groups its executions.
const (
	ContextPipeline    = "pipeline"
	ContextPipelineRun = "pipeline_run"
)

// Context groups executions, as MLMD contexts do.
type Context struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// PipelineContext is the context of all runs of the pipeline named name.
func PipelineContext(name string) Context {
	return Context{ID: "ctx-" + shortHash(ContextPipeline, name), Kind: ContextPipeline, Name: name}
}

// RunContext is the context of the executions of run runID.
func RunContext(runID string) Context {
	return Context{ID: "ctx-" + shortHash(ContextPipelineRun, runID), Kind: ContextPipelineRun, Name: runID}
}

// ExecutionID is the deterministic id of the execution of task taskID in run runID, so
// that a redelivered task.finished event names the same node.
func ExecutionID(runID, taskID string) string {
	return "exe-" + shortHash(runID, taskID)
}

// ArtifactID is the deterministic id of the object at uri.
//
// The id covers the URI only, not the digest: a consumer learns its inputs as bare URIs
// (the launcher's --artifact NAME=URIS), so an id that needed the digest could not be
// computed on the consumer's side and would split one object into two nodes. pipefn's
// URIs are unique per run, task and output (<root>/<run>/<task>/<output>); the digest is
// kept as an attribute and is part of the cache key.
func ArtifactID(uri string) string {
	return "art-" + shortHash(uri)
}

// IsArtifactID and IsExecutionID tell the two kinds of node id apart.
func IsArtifactID(id string) bool { return strings.HasPrefix(id, "art-") }

// IsExecutionID reports whether id names an execution.
func IsExecutionID(id string) bool { return strings.HasPrefix(id, "exe-") }

// shortHash is 128 bits of sha256 over the parts, NUL-separated so that ("ab","c") and
// ("a","bc") differ.
func shortHash(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Succeeded reports whether an execution in state may serve as a cache source.
func Succeeded(state string) bool { return state == "SUCCEEDED" }
