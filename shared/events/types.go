// Package events is pipefn's CloudEvents vocabulary (types, data, constructors) and its two
// transports: HTTP as a Knative Broker delivers events, and an in-process Bus for
// `pipefn up` and tests. One Handler signature serves both, so a function's handler code
// does not know how it is wired.
package events

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/lineage"
)

// Event types. pipefn's own are versioned and owned by one function each; extend with new
// names, never reuse one with a different shape.
const (
	TypeRunSubmitted  = "dev.pipefn.run.submitted.v1"
	TypeRunDispatched = "dev.pipefn.run.dispatched.v1"
	TypeRunStatus     = "dev.pipefn.run.status.v1"
	TypeTaskFinished  = "dev.pipefn.task.finished.v1"
	TypeScheduleFired = "dev.pipefn.schedule.fired.v1"

	// TypePing is Knative PingSource's tick.
	TypePing = "dev.knative.sources.ping"
	// Tekton's own CloudEvents start with these prefixes (…started.v1, …successful.v1, …).
	TektonPipelineRunPrefix = "dev.tekton.event.pipelinerun."
	TektonTaskRunPrefix     = "dev.tekton.event.taskrun."
)

// ExtTeam is the CloudEvents extension attribute that carries the team.
const ExtTeam = "pfteam"

// RunSubmitted says a run was stored and should be compiled and dispatched.
type RunSubmitted struct {
	RunID             string `json:"run_id"`
	Team              string `json:"team"`
	Backend           string `json:"backend"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
	// Attempt starts at 0 (1, 2, ... after :retry), so a retried run is a new event id.
	Attempt int `json:"attempt"`
}

// RunDispatched says the run's backend object exists (or the local executor started it).
type RunDispatched struct {
	RunID   string `json:"run_id"`
	Team    string `json:"team"`
	Backend string `json:"backend"`
	Attempt int    `json:"attempt"`
	// Namespace and Object name the backend object ("pf-<run>"), empty for local runs.
	Namespace string `json:"namespace,omitempty"`
	Object    string `json:"object,omitempty"`
}

// RunStatus reports a run's state and the tasks that changed.
type RunStatus struct {
	RunID   string           `json:"run_id"`
	Team    string           `json:"team"`
	Attempt int              `json:"attempt"`
	State   string           `json:"state"`
	Tasks   []api.TaskDetail `json:"tasks,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// TaskFinished reports one task that reached a terminal state, with its inputs and outputs
// (for lineage and the step cache).
type TaskFinished struct {
	RunID   string         `json:"run_id"`
	Team    string         `json:"team"`
	Attempt int            `json:"attempt"`
	Task    api.TaskDetail `json:"task"`
	// CacheKey is the step-cache fingerprint of the task's execution, if caching applied.
	CacheKey string `json:"cache_key,omitempty"`
	// Lineage is the full record (execution with image, command and cache key; artifacts
	// with types, digests and metadata) when the reporter has it; the lineage function
	// prefers it over Task.
	Lineage *lineage.TaskFinished `json:"lineage,omitempty"`
}

// ScheduleFired says a recurring run is due at ScheduledAt; the schedule function turns it
// into a run whose idempotency key is derived from (RecurringRunID, ScheduledAt).
type ScheduleFired struct {
	RecurringRunID string    `json:"recurring_run_id"`
	Team           string    `json:"team"`
	ScheduledAt    time.Time `json:"scheduled_at"`
}

// newEvent fills the attributes every pipefn event has. id is a natural key where one
// exists, so that re-emitting the same fact yields the same id and downstream dedupe
// (Dedupe) drops it.
func newEvent(typ, source, team, subject, id string, at time.Time, data any) (cloudevents.Event, error) {
	if team == "" {
		return cloudevents.Event{}, fmt.Errorf("event %s for %q: team is empty", typ, subject)
	}
	e := cloudevents.NewEvent()
	if id == "" {
		id = rand.Text()
	}
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(source)
	e.SetSubject(subject)
	e.SetTime(at.UTC())
	e.SetExtension(ExtTeam, team)
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return cloudevents.Event{}, fmt.Errorf("event %s for %q: encode data: %w", typ, subject, err)
	}
	if err := e.Validate(); err != nil {
		return cloudevents.Event{}, fmt.Errorf("event %s for %q: %w", typ, subject, err)
	}
	return e, nil
}

// NewRunSubmitted builds a run.submitted event; its id is stable per run attempt.
func NewRunSubmitted(source string, at time.Time, d RunSubmitted) (cloudevents.Event, error) {
	return newEvent(TypeRunSubmitted, source, d.Team, d.RunID,
		"submitted:"+d.RunID+":"+strconv.Itoa(d.Attempt), at, d)
}

// NewRunDispatched builds a run.dispatched event; its id is stable per run attempt.
func NewRunDispatched(source string, at time.Time, d RunDispatched) (cloudevents.Event, error) {
	return newEvent(TypeRunDispatched, source, d.Team, d.RunID,
		"dispatched:"+d.RunID+":"+strconv.Itoa(d.Attempt), at, d)
}

// NewRunStatus builds a run.status event. Status reports of the same state may carry
// different tasks, so its id is random.
func NewRunStatus(source string, at time.Time, d RunStatus) (cloudevents.Event, error) {
	return newEvent(TypeRunStatus, source, d.Team, d.RunID, "", at, d)
}

// NewTaskFinished builds a task.finished event; its id is stable per task, attempt and
// final state.
func NewTaskFinished(source string, at time.Time, d TaskFinished) (cloudevents.Event, error) {
	return newEvent(TypeTaskFinished, source, d.Team, d.RunID,
		"task:"+d.RunID+":"+strconv.Itoa(d.Attempt)+":"+d.Task.TaskID+":"+d.Task.State, at, d)
}

// NewScheduleFired builds a schedule.fired event. Its subject is the recurring run and its
// id is stable per firing, so a tick processed twice fires once.
func NewScheduleFired(source string, at time.Time, d ScheduleFired) (cloudevents.Event, error) {
	return newEvent(TypeScheduleFired, source, d.Team, d.RecurringRunID,
		"fired:"+d.RecurringRunID+":"+strconv.FormatInt(d.ScheduledAt.Unix(), 10), at, d)
}

// Team returns the event's pfteam extension, "" when absent.
func Team(e cloudevents.Event) string {
	v, ok := e.Extensions()[ExtTeam]
	if !ok {
		return ""
	}
	s, err := types.ToString(v)
	if err != nil {
		return ""
	}
	return s
}

// Decode unmarshals e's JSON data into a T. A malformed payload is a Permanent error:
// redelivering it cannot help.
func Decode[T any](e cloudevents.Event) (T, error) {
	var v T
	if len(e.Data()) == 0 {
		return v, Permanent(fmt.Errorf("event %s (%s): no data", e.ID(), e.Type()))
	}
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		return v, Permanent(fmt.Errorf("event %s (%s): decode data: %w", e.ID(), e.Type(), err))
	}
	return v, nil
}
