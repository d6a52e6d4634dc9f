// Package compile holds what the back-end compilers (shared/compile/tekton,
// shared/compile/argo) share: the run options and the naming rules. It is pure: no
// engine types, no I/O.
package compile

import (
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// Options are the run-specific inputs of a compilation. Compilers read nothing else:
// no environment, no clock, no globals, so the same IR and Options always give the
// same object.
type Options struct {
	// RunID is pipefn's run id; the compiled object's name derives from it.
	RunID string
	// Team owns the run; it becomes a label.
	Team string
	// Namespace is the team's Kubernetes namespace.
	Namespace string
	// PipelineRoot is where artifacts go (s3://bucket/team/... or file:///...).
	PipelineRoot string
	// Params are the bound root parameters (ir.Pipeline.BindParameters).
	Params map[string]*structpb.Value
	// LauncherImage is the image that carries /pipefn/launcher.
	LauncherImage string
	// ServiceAccount runs the task pods; empty means the namespace default.
	ServiceAccount string
	// PipelineVersionID labels the object for traceability; may be empty.
	PipelineVersionID string
	// Labels are extra labels for the object (never override pipefn's own).
	Labels map[string]string
	// CachingDisabled turns step caching off for the whole run.
	CachingDisabled bool

	// In-pod reporting (all optional). With none of them set the compiled object is
	// exactly what it was before they existed.
	//
	// EventsURL, when set, makes the launcher of every container and importer task POST
	// its own dev.pipefn.task.finished.v1 (with the full lineage record) there: in a
	// cluster, the Knative Broker's ingress. The object is then annotated
	// launch.AnnotationLauncherReports.
	EventsURL string
	// CacheURL, when set, is the base URL of the lineage function's cache API, which the
	// launcher of a task with caching on asks before running it (never when
	// CachingDisabled).
	CacheURL string
	// CacheMaxAge bounds the age of a reused execution (0: any age).
	CacheMaxAge time.Duration
	// CacheTokenSecret names a Secret in Namespace whose key "token" the launchers present
	// to the cache API (launch.EnvCacheToken); empty: they present none.
	CacheTokenSecret string
	// Attempt is the run attempt the object executes; the launchers' events carry it.
	Attempt int
}

// Reports reports whether the launchers of this run POST their own task.finished events.
func (o Options) Reports() bool { return o.EventsURL != "" }

// Label keys that tie a compiled object to its pipefn run.
const (
	LabelRunID           = "pipefn.dev/run-id"
	LabelTeam            = "pipefn.dev/team"
	LabelPipelineVersion = "pipefn.dev/pipeline-version-id"
	LabelTask            = "pipefn.dev/task"
)

// DefaultLauncherImage is used when Options.LauncherImage is empty.
const DefaultLauncherImage = "ghcr.io/pipefn/launcher:latest"
