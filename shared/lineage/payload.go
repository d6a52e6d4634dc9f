package lineage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/pipefn/pipefn/shared/api"
)

// TaskFinished is the lineage content of a dev.pipefn.task.finished.v1 event: one
// execution with the artifacts it read and wrote, keyed by input/output name.
type TaskFinished struct {
	// Pipeline is the pipeline's name (pipelineInfo.name), the pipeline context.
	Pipeline  string                `json:"pipeline,omitempty"`
	Execution Execution             `json:"execution"`
	Inputs    map[string][]Artifact `json:"inputs,omitempty"`
	Outputs   map[string][]Artifact `json:"outputs,omitempty"`
}

// MaxArtifactsPerTask bounds one event's artifacts, so a hostile or broken payload cannot
// make one write unbounded.
const MaxArtifactsPerTask = 10000

// terminal lists the task states a task.finished event may carry.
var terminal = map[string]bool{
	api.StateSucceeded: true, api.StateFailed: true, api.StateSkipped: true,
	api.StateCached: true, api.StateCanceled: true,
}

// Clone returns a copy of tf whose artifact maps and slices are its own, so that
// Normalize on the copy leaves tf untouched (metadata and parameter maps stay shared).
func (tf TaskFinished) Clone() TaskFinished {
	cp := func(m map[string][]Artifact) map[string][]Artifact {
		if m == nil {
			return nil
		}
		out := make(map[string][]Artifact, len(m))
		for k, v := range m {
			out[k] = append([]Artifact(nil), v...)
		}
		return out
	}
	tf.Inputs, tf.Outputs = cp(tf.Inputs), cp(tf.Outputs)
	return tf
}

// Normalize checks tf and fills, in place, what follows from it: the execution id, every artifact's
// id, default names (the input/output name), and for outputs the producer and creation
// time. A CACHED execution did not write its outputs: their producer is CachedFrom. It
// returns every problem found, each with its path.
func (tf *TaskFinished) Normalize() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	e := &tf.Execution
	if e.RunID == "" {
		bad("execution.run_id", "is empty")
	}
	if e.TaskID == "" {
		bad("execution.task_id", "is empty")
	}
	if e.RunID != "" && e.TaskID != "" {
		want := ExecutionID(e.RunID, e.TaskID)
		if e.ID != "" && e.ID != want {
			bad("execution.id", "is %q, but run %q task %q gives %q", e.ID, e.RunID, e.TaskID, want)
		}
		e.ID = want
	}
	if !terminal[e.State] {
		bad("execution.state", "%q is not a terminal task state (want SUCCEEDED, FAILED, SKIPPED, CACHED or CANCELED)", e.State)
	}
	if e.CachedFrom != "" && !IsExecutionID(e.CachedFrom) {
		bad("execution.cached_from", "%q is not an execution id (exe-...)", e.CachedFrom)
	}
	if e.CacheKey != "" && !validKey(e.CacheKey) {
		bad("execution.cache_key", "%q is not a hex sha256", e.CacheKey)
	}
	if !e.Start.IsZero() && !e.End.IsZero() && e.End.Before(e.Start) {
		bad("execution.end", "%s is before start %s", e.End, e.Start)
	}
	n := 0
	norm := func(side string, m map[string][]Artifact, out bool) {
		for name, list := range m {
			if name == "" {
				bad(side, "has an empty name")
			}
			for i := range list {
				n++
				a := &list[i]
				path := fmt.Sprintf("%s[%s][%d]", side, name, i)
				if a.URI == "" {
					bad(path+".uri", "is empty")
					continue
				}
				want := ArtifactID(a.URI)
				if a.ID != "" && a.ID != want {
					bad(path+".id", "is %q, but uri %q gives %q", a.ID, a.URI, want)
				}
				a.ID = want
				if a.Size < 0 {
					bad(path+".size", "is negative (%d)", a.Size)
				}
				if a.Digest != "" && !validDigest(a.Digest) {
					bad(path+".digest", "%q is not sha256:<64 hex>", a.Digest)
				}
				if a.Name == "" {
					a.Name = name
				}
				if a.Type == "" {
					a.Type = TypeArtifact
				}
				if out {
					if e.State == api.StateCached {
						if a.ProducerExecutionID == "" {
							a.ProducerExecutionID = e.CachedFrom
						}
					} else {
						a.ProducerExecutionID = e.ID
						a.CreatedAt = e.End
					}
				}
			}
		}
	}
	norm("inputs", tf.Inputs, false)
	norm("outputs", tf.Outputs, true)
	if n > MaxArtifactsPerTask {
		bad("task", "has %d artifacts, more than %d", n, MaxArtifactsPerTask)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// Events lists tf's edges in a stable order (inputs then outputs, by name then position).
// Call it after Normalize.
func (tf *TaskFinished) Events() []Event {
	var out []Event
	add := func(m map[string][]Artifact, t EventType) {
		for _, name := range sortedKeys(m) {
			for _, a := range m[name] {
				out = append(out, Event{ExecutionID: tf.Execution.ID, ArtifactID: a.ID, Type: t, Name: name})
			}
		}
	}
	add(tf.Inputs, Input)
	add(tf.Outputs, Output)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	return ok && validKey(h)
}

func validKey(k string) bool { return ValidCacheKey(k) }

// ValidCacheKey reports whether k has the shape CacheKey returns: 64 lower-case hex
// characters.
func ValidCacheKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	for _, c := range k {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// wireTaskFinished is the JSON data of dev.pipefn.task.finished.v1 as shared/events
// writes it (events.TaskFinished: run, team, attempt, api.TaskDetail, cache key), plus the
// optional full-fidelity lineage member. The decoder reads the fields by name so that this
// package stays free of the transport.
type wireTaskFinished struct {
	RunID    string          `json:"run_id"`
	Team     string          `json:"team"`
	Task     *api.TaskDetail `json:"task"`
	CacheKey string          `json:"cache_key"`
	Lineage  *TaskFinished   `json:"lineage"`
	// Execution is set when the data is a bare TaskFinished.
	Execution *json.RawMessage `json:"execution"`
}

// DecodeTaskFinished reads the data of a dev.pipefn.task.finished.v1 event and
// normalizes it. It accepts, in order of preference: a "lineage" member holding a
// TaskFinished (types, digests, sizes and metadata of every artifact); a bare
// TaskFinished; or only the api.TaskDetail in "task", from which the artifacts are known
// by URI alone. Every error is api.KindInvalid: redelivering a malformed event cannot help.
func DecodeTaskFinished(data []byte) (TaskFinished, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return TaskFinished{}, api.Errorf(api.KindInvalid, "task.finished: no data")
	}
	var w wireTaskFinished
	if err := json.Unmarshal(data, &w); err != nil {
		return TaskFinished{}, api.Errorf(api.KindInvalid, "task.finished: decode data: %v", err)
	}
	var tf TaskFinished
	switch {
	case w.Lineage != nil:
		tf = *w.Lineage
		if w.RunID != "" && tf.Execution.RunID == "" {
			tf.Execution.RunID = w.RunID
		}
	case w.Execution != nil:
		if err := json.Unmarshal(data, &tf); err != nil {
			return TaskFinished{}, api.Errorf(api.KindInvalid, "task.finished: decode data: %v", err)
		}
	case w.Task != nil:
		tf = FromTaskDetail(w.RunID, *w.Task, w.CacheKey)
	default:
		return TaskFinished{}, api.Errorf(api.KindInvalid, "task.finished: data has none of lineage, execution, task")
	}
	if w.RunID != "" && tf.Execution.RunID != w.RunID {
		return TaskFinished{}, api.Errorf(api.KindInvalid, "task.finished: run_id %q differs from execution.run_id %q", w.RunID, tf.Execution.RunID)
	}
	if err := tf.Normalize(); err != nil {
		return TaskFinished{}, api.Errorf(api.KindInvalid, "task.finished: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return tf, nil
}

// FromTaskDetail builds a TaskFinished from a task as the status function reports it.
// The detail names artifacts only by URI, so their type stays system.Artifact until the
// producer's full record arrives; its CachedFrom (a run id) maps to the same task's
// execution in that run.
func FromTaskDetail(runID string, td api.TaskDetail, cacheKey string) TaskFinished {
	if runID == "" {
		runID = td.RunID
	}
	e := Execution{
		RunID:            runID,
		TaskID:           td.TaskID,
		TaskName:         td.DisplayName,
		Parameters:       td.InputParameters,
		OutputParameters: td.OutputParameters,
		State:            td.State,
		CacheKey:         cacheKey,
	}
	if td.StartTime != nil {
		e.Start = *td.StartTime
	}
	if td.EndTime != nil {
		e.End = *td.EndTime
	}
	if td.Error != nil {
		e.Error = td.Error.Message
	}
	if td.CachedFrom != "" && td.TaskID != "" {
		e.CachedFrom = ExecutionID(td.CachedFrom, td.TaskID)
	}
	conv := func(m map[string]api.ArtifactList) map[string][]Artifact {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string][]Artifact, len(m))
		for name, l := range m {
			for _, u := range l.URIs {
				out[name] = append(out[name], Artifact{URI: u})
			}
		}
		return out
	}
	return TaskFinished{Execution: e, Inputs: conv(td.Inputs), Outputs: conv(td.Outputs)}
}

// Metadata keys under which the launcher records what it uploaded (shared/launch's
// MetaSize and MetaDigest).
const (
	MetaSize   = "pipefn.size"
	MetaDigest = "pipefn.digest"
)

// FromRuntimeArtifact converts a KFP runtime artifact as the launcher sees it. The
// launcher records the size and digest of what it uploads in the metadata (MetaSize,
// MetaDigest); they become fields and leave the metadata.
func FromRuntimeArtifact(ra *pipelinespec.RuntimeArtifact) Artifact {
	a := Artifact{Name: ra.GetName(), Type: ra.GetType().GetSchemaTitle(), URI: ra.GetUri()}
	if md := ra.GetMetadata(); md != nil {
		a.Metadata = md.AsMap()
		if d, ok := a.Metadata[MetaDigest].(string); ok {
			a.Digest = d
			delete(a.Metadata, MetaDigest)
		}
		if s, ok := a.Metadata[MetaSize].(float64); ok && s >= 0 {
			a.Size = int64(s)
			delete(a.Metadata, MetaSize)
		}
		if len(a.Metadata) == 0 {
			a.Metadata = nil
		}
	}
	return a
}

// FromRuntimeArtifacts converts a name -> artifacts map (launch.Inputs/Outputs.Artifacts).
func FromRuntimeArtifacts(m map[string][]*pipelinespec.RuntimeArtifact) map[string][]Artifact {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string][]Artifact, len(m))
	for name, list := range m {
		for _, ra := range list {
			if ra == nil {
				continue
			}
			out[name] = append(out[name], FromRuntimeArtifact(ra))
		}
	}
	return out
}
