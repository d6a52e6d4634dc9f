package api

import (
	"encoding/json"
	"time"
)

// Pipeline is a named pipeline owned by a team (KFP v2beta1 Pipeline).
type Pipeline struct {
	PipelineID  string    `json:"pipeline_id"`
	DisplayName string    `json:"display_name"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Namespace   string    `json:"namespace,omitempty"`
}

// PipelineVersion is one uploaded IR of a pipeline (KFP v2beta1 PipelineVersion). The IR
// is kept byte for byte as uploaded; PipelineSpec carries its first document as JSON.
type PipelineVersion struct {
	PipelineID        string          `json:"pipeline_id"`
	PipelineVersionID string          `json:"pipeline_version_id"`
	DisplayName       string          `json:"display_name"`
	Name              string          `json:"name,omitempty"`
	Description       string          `json:"description,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	PackageURL        *URL            `json:"package_url,omitempty"`
	CodeSourceURL     string          `json:"code_source_url,omitempty"`
	PipelineSpec      json.RawMessage `json:"pipeline_spec,omitempty"`
	// Digest is the sha256 of the IR as uploaded ("sha256:<hex>"); pipefn's addition.
	Digest string `json:"digest,omitempty"`
}

// URL wraps a URL as KFP does.
type URL struct {
	PipelineURL string `json:"pipeline_url"`
}

// Storage states of runs and experiments.
const (
	StorageAvailable = "AVAILABLE"
	StorageArchived  = "ARCHIVED"
)

// Experiment groups runs (KFP v2beta1 Experiment).
type Experiment struct {
	ExperimentID     string     `json:"experiment_id"`
	DisplayName      string     `json:"display_name"`
	Description      string     `json:"description,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	Namespace        string     `json:"namespace,omitempty"`
	StorageState     string     `json:"storage_state"`
	LastRunCreatedAt *time.Time `json:"last_run_created_at,omitempty"`
}

// PipelineVersionReference names the pipeline version a run or recurring run uses.
type PipelineVersionReference struct {
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
}

// RuntimeConfig carries a run's parameter values and pipeline root.
type RuntimeConfig struct {
	Parameters   map[string]any `json:"parameters,omitempty"`
	PipelineRoot string         `json:"pipeline_root,omitempty"`
}

// Status is an error status as gRPC and KFP write it.
type Status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// StateChange is one entry of a run's or task's state history.
type StateChange struct {
	UpdateTime time.Time `json:"update_time"`
	State      string    `json:"state"`
	Error      *Status   `json:"error,omitempty"`
}

// Run is one execution of a pipeline (KFP v2beta1 Run). Backend, Team and Attempt are
// pipefn's additions.
type Run struct {
	ExperimentID             string                    `json:"experiment_id,omitempty"`
	RunID                    string                    `json:"run_id"`
	DisplayName              string                    `json:"display_name"`
	StorageState             string                    `json:"storage_state"`
	Description              string                    `json:"description,omitempty"`
	PipelineVersionReference *PipelineVersionReference `json:"pipeline_version_reference,omitempty"`
	PipelineSpec             json.RawMessage           `json:"pipeline_spec,omitempty"`
	RuntimeConfig            *RuntimeConfig            `json:"runtime_config,omitempty"`
	ServiceAccount           string                    `json:"service_account,omitempty"`
	CreatedAt                time.Time                 `json:"created_at"`
	ScheduledAt              *time.Time                `json:"scheduled_at,omitempty"`
	FinishedAt               *time.Time                `json:"finished_at,omitempty"`
	State                    string                    `json:"state"`
	Error                    *Status                   `json:"error,omitempty"`
	RunDetails               *RunDetails               `json:"run_details,omitempty"`
	RecurringRunID           string                    `json:"recurring_run_id,omitempty"`
	StateHistory             []StateChange             `json:"state_history,omitempty"`
	// pipefn's additions.
	Backend       string `json:"backend,omitempty"`
	Attempt       int    `json:"attempt,omitempty"`
	EnableCaching *bool  `json:"enable_caching,omitempty"`
	// ClonedFrom names the run this run was cloned from, if any.
	ClonedFrom string `json:"cloned_from,omitempty"`
}

// RunDetails holds the per-task details of a run.
type RunDetails struct {
	PipelineContextID    string       `json:"pipeline_context_id,omitempty"`
	PipelineRunContextID string       `json:"pipeline_run_context_id,omitempty"`
	TaskDetails          []TaskDetail `json:"task_details"`
}

// TaskDetail is one task of a run (KFP v2beta1 PipelineTaskDetail).
type TaskDetail struct {
	RunID        string                  `json:"run_id"`
	TaskID       string                  `json:"task_id"`
	DisplayName  string                  `json:"display_name"`
	CreateTime   *time.Time              `json:"create_time,omitempty"`
	StartTime    *time.Time              `json:"start_time,omitempty"`
	EndTime      *time.Time              `json:"end_time,omitempty"`
	State        string                  `json:"state"`
	ExecutionID  string                  `json:"execution_id,omitempty"`
	Error        *Status                 `json:"error,omitempty"`
	Inputs       map[string]ArtifactList `json:"inputs,omitempty"`
	Outputs      map[string]ArtifactList `json:"outputs,omitempty"`
	ParentTaskID string                  `json:"parent_task_id,omitempty"`
	StateHistory []StateChange           `json:"state_history,omitempty"`
	PodName      string                  `json:"pod_name,omitempty"`
	ChildTasks   []ChildTask             `json:"child_tasks,omitempty"`
	// pipefn's additions: parameter values in and out, as JSON values.
	InputParameters  map[string]any `json:"input_parameters,omitempty"`
	OutputParameters map[string]any `json:"output_parameters,omitempty"`
	// CachedFrom names the run whose execution a CACHED task reused.
	CachedFrom string `json:"cached_from,omitempty"`
}

// ArtifactList lists artifacts by id, as KFP does; pipefn adds the URIs.
type ArtifactList struct {
	ArtifactIDs []string `json:"artifact_ids,omitempty"`
	URIs        []string `json:"uris,omitempty"`
}

// ChildTask names a child of a task (a DAG's tasks, a loop's iterations).
type ChildTask struct {
	TaskID  string `json:"task_id,omitempty"`
	PodName string `json:"pod_name,omitempty"`
}

// Trigger says when a recurring run fires: a cron schedule or a fixed period.
type Trigger struct {
	CronSchedule     *CronSchedule     `json:"cron_schedule,omitempty"`
	PeriodicSchedule *PeriodicSchedule `json:"periodic_schedule,omitempty"`
}

// CronSchedule fires on a cron expression (five fields, or KFP's six with seconds).
type CronSchedule struct {
	StartTime *time.Time `json:"start_time,omitempty"`
	EndTime   *time.Time `json:"end_time,omitempty"`
	Cron      string     `json:"cron"`
}

// PeriodicSchedule fires every IntervalSecond seconds.
type PeriodicSchedule struct {
	StartTime      *time.Time `json:"start_time,omitempty"`
	EndTime        *time.Time `json:"end_time,omitempty"`
	IntervalSecond int64      `json:"interval_second,string"`
}

// Recurring run modes and statuses.
const (
	ModeEnable      = "ENABLE"
	ModeDisable     = "DISABLE"
	StatusEnabled   = "ENABLED"
	StatusDisabled  = "DISABLED"
	CatchupNone     = "none"
	CatchupLatest   = "latest"
	CatchupAll      = "all"
	DefaultCatchCap = 100
)

// RecurringRun fires runs on a schedule (KFP v2beta1 RecurringRun). TimeZone, Catchup and
// CatchupCap are pipefn's additions.
type RecurringRun struct {
	RecurringRunID           string                    `json:"recurring_run_id"`
	DisplayName              string                    `json:"display_name"`
	Description              string                    `json:"description,omitempty"`
	PipelineVersionReference *PipelineVersionReference `json:"pipeline_version_reference,omitempty"`
	PipelineSpec             json.RawMessage           `json:"pipeline_spec,omitempty"`
	RuntimeConfig            *RuntimeConfig            `json:"runtime_config,omitempty"`
	ServiceAccount           string                    `json:"service_account,omitempty"`
	MaxConcurrency           int64                     `json:"max_concurrency,string,omitempty"`
	Trigger                  Trigger                   `json:"trigger"`
	Mode                     string                    `json:"mode"`
	CreatedAt                time.Time                 `json:"created_at"`
	UpdatedAt                time.Time                 `json:"updated_at"`
	Status                   string                    `json:"status"`
	Error                    *Status                   `json:"error,omitempty"`
	NoCatchup                bool                      `json:"no_catchup,omitempty"`
	Namespace                string                    `json:"namespace,omitempty"`
	ExperimentID             string                    `json:"experiment_id,omitempty"`
	// pipefn's additions.
	TimeZone   string `json:"time_zone,omitempty"`
	Catchup    string `json:"catchup,omitempty"`
	CatchupCap int    `json:"catchup_cap,omitempty"`
	Backend    string `json:"backend,omitempty"`
}

// Page is one page of a listing: the items' cursor for the next page, empty at the end.
type Page struct {
	Size  int
	Token string
}

// IR returns the IR bytes of an inline pipeline spec as the loader takes them: the
// PipelineSpec alone, or, when spec is KFP's {"pipeline_spec", "platform_spec"} pair, the
// two documents separated by a YAML document marker (JSON is YAML).
func IR(spec json.RawMessage) []byte {
	var pair struct {
		PipelineSpec json.RawMessage `json:"pipeline_spec"`
		PlatformSpec json.RawMessage `json:"platform_spec"`
	}
	if json.Unmarshal(spec, &pair) != nil || len(pair.PipelineSpec) == 0 {
		return spec
	}
	if len(pair.PlatformSpec) == 0 || string(pair.PlatformSpec) == "null" {
		return pair.PipelineSpec
	}
	out := append([]byte{}, pair.PipelineSpec...)
	out = append(out, "\n---\n"...)
	return append(out, pair.PlatformSpec...)
}
