package lineage

import (
	"context"
	"fmt"
	"time"
)

// Direction says which way a lineage query walks.
type Direction string

// Directions: upstream follows where things came from (artifact -> producer -> its
// inputs), downstream where they went (artifact -> consumers -> their outputs).
const (
	Upstream   Direction = "upstream"
	Downstream Direction = "downstream"
)

// ParseDirection reads a direction, defaulting to upstream when s is empty.
func ParseDirection(s string) (Direction, error) {
	switch Direction(s) {
	case "", Upstream:
		return Upstream, nil
	case Downstream:
		return Downstream, nil
	}
	return "", fmt.Errorf("direction %q: want upstream or downstream", s)
}

// Lineage query bounds: depth counts edges (artifact -> execution is one hop), and a
// query stops adding nodes once MaxNodes are visited (the graph reports Truncated).
const (
	MaxDepth     = 50
	DefaultDepth = 5
	MaxNodes     = 5000
)

// Node kinds.
const (
	KindArtifact  = "artifact"
	KindExecution = "execution"
)

// Node is one vertex of a lineage answer.
type Node struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Depth is the number of edges from the start node.
	Depth int `json:"depth"`
	// Artifact fields.
	Type string `json:"type,omitempty"`
	URI  string `json:"uri,omitempty"`
	// Execution fields.
	RunID  string `json:"run_id,omitempty"`
	TaskID string `json:"task_id,omitempty"`
	State  string `json:"state,omitempty"`
	// Missing is set for a node known only from an edge (its record is not stored yet).
	Missing bool `json:"missing,omitempty"`
}

// Edge is one INPUT (artifact -> execution) or OUTPUT (execution -> artifact) edge.
type Edge struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	Type EventType `json:"type"`
	Name string    `json:"name,omitempty"`
}

// Graph is the answer of a lineage query.
type Graph struct {
	Nodes     []Node `json:"nodes"`
	Edges     []Edge `json:"edges"`
	Truncated bool   `json:"truncated,omitempty"`
}

// ArtifactNode and ExecutionNode describe a record as a node.
func ArtifactNode(a Artifact, depth int) Node {
	return Node{ID: a.ID, Kind: KindArtifact, Name: a.Name, Depth: depth, Type: a.Type, URI: a.URI}
}

// ExecutionNode describes an execution as a node, named by its task.
func ExecutionNode(e Execution, depth int) Node {
	name := e.TaskName
	if name == "" {
		name = e.TaskID
	}
	return Node{ID: e.ID, Kind: KindExecution, Name: name, Depth: depth, RunID: e.RunID, TaskID: e.TaskID, State: e.State}
}

// ArtifactDetail is an artifact with the execution that produced it and those that read it.
type ArtifactDetail struct {
	Artifact
	Producer  *Execution  `json:"producer,omitempty"`
	Consumers []Execution `json:"consumers,omitempty"`
}

// CacheHit is a previous successful execution whose outputs a task may reuse.
type CacheHit struct {
	Execution Execution             `json:"execution"`
	Outputs   map[string][]Artifact `json:"outputs"`
	// RecordedAt is when the execution finished; max-age staleness is measured from it.
	RecordedAt time.Time `json:"recorded_at"`
}

// CacheLookupFunc finds the most recent successful execution with the given cache key,
// finished no longer than maxAge ago (0: any age). ok is false on a miss. The local
// executor binds it to the store in-process (state.Store.CacheLookup with a team); the
// launcher uses cacheclient over HTTP.
type CacheLookupFunc func(ctx context.Context, key string, maxAge time.Duration) (hit CacheHit, ok bool, err error)
