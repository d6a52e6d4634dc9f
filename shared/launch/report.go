package launch

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/lineage"
)

// Environment of a launcher `run` or `importer` task in a cluster that reports its own
// dev.pipefn.task.finished.v1 and uses the step cache. The compilers set them only when
// the run's compile options ask for it (compile.Options.EventsURL, CacheURL); a launcher
// without them behaves as before: no cache lookup, no event.
const (
	// EnvEventsURL is where the launcher POSTs its task.finished CloudEvent (in a
	// cluster, the Knative Broker's ingress).
	EnvEventsURL = "PIPEFN_EVENTS_URL"
	// EnvCacheURL is the base URL of the lineage function's cache API
	// (GET <base>/apis/v2beta1/cache/{key}); set only on tasks whose caching is on.
	EnvCacheURL = "PIPEFN_CACHE_URL"
	// EnvCacheMaxAge bounds the age of a reused execution, as a Go duration ("24h").
	EnvCacheMaxAge = "PIPEFN_CACHE_MAX_AGE"
	// EnvCacheToken is the bearer token the launcher presents to the cache API, from the
	// key CacheTokenKey of the Secret Report.CacheTokenSecret names (optional: without it
	// an authenticating lineage function refuses the lookup and the task runs). The
	// launcher removes it from its environment, so the user command never sees it.
	EnvCacheToken = "PIPEFN_CACHE_TOKEN"
	// EnvTeam and EnvAttempt name the run attempt the event reports on (the run id is
	// TaskConfig.RunID).
	EnvTeam    = "PIPEFN_TEAM"
	EnvAttempt = "PIPEFN_ATTEMPT"
	// EnvPipeline is the pipeline's name (pipelineInfo.name), the lineage pipeline context.
	EnvPipeline = "PIPEFN_PIPELINE_NAME"

	// The engine's names of the task, from the pod's own labels and annotations (the
	// Kubernetes downward API), from which the launcher derives the task id the status
	// function gives the task (ClusterTaskID).
	EnvTektonPipelineRun  = "PIPEFN_TEKTON_PIPELINERUN"  // label tekton.dev/pipelineRun
	EnvTektonPipelineTask = "PIPEFN_TEKTON_PIPELINETASK" // label tekton.dev/pipelineTask
	EnvTektonTaskRun      = "PIPEFN_TEKTON_TASKRUN"      // label tekton.dev/taskRun
	EnvArgoWorkflow       = "PIPEFN_ARGO_WORKFLOW"       // label workflows.argoproj.io/workflow
	EnvArgoNodeName       = "PIPEFN_ARGO_NODE_NAME"      // annotation workflows.argoproj.io/node-name
)

// Where the engines put their names of a task on its pod; the compilers map them into
// the Env* variables above with the downward API.
const (
	TektonPipelineRunLabel  = "tekton.dev/pipelineRun"
	TektonPipelineTaskLabel = "tekton.dev/pipelineTask"
	TektonTaskRunLabel      = "tekton.dev/taskRun"
	ArgoWorkflowLabel       = "workflows.argoproj.io/workflow"
	ArgoNodeNameAnnotation  = "workflows.argoproj.io/node-name"
)

// CacheTokenKey is the key of the cache token in Report.CacheTokenSecret.
const CacheTokenKey = "token"

// AnnotationLauncherReports marks a compiled PipelineRun or Workflow whose launchers
// report their own task.finished events: the status function then does not announce
// the engine's thinner record of the same tasks.
const AnnotationLauncherReports = "pipefn.dev/launcher-reports"

// EventSource is the CloudEvents source of the events launchers send.
const EventSource = "pipefn/launcher"

// Report is what a compiler knows of a run attempt's in-pod reporting.
type Report struct {
	EventsURL   string
	CacheURL    string
	CacheMaxAge time.Duration
	// CacheTokenSecret names a Secret in the run's namespace whose CacheTokenKey is a
	// token for the cache API (a viewer API token of the team); empty: none.
	CacheTokenSecret string
	Team             string
	Attempt          int
	Pipeline         string
}

// TokenSecret is the Secret the task's cache token comes from, "" when the task gets
// none (no cache URL for it, or no secret named).
func (r Report) TokenSecret(cacheEnabled bool) string {
	if r.CacheURL == "" || !cacheEnabled {
		return ""
	}
	return r.CacheTokenSecret
}

// Env returns the literal environment variables of a launcher run/importer task (the
// engine-specific downward-API ones are the compiler's); nil when reporting and caching
// are both off. cacheEnabled is the task's TaskConfig.CacheEnabled: a task whose caching
// is off gets no cache URL, so it never looks anything up.
func (r Report) Env(cacheEnabled bool) []EnvVar {
	cache := r.CacheURL != "" && cacheEnabled
	if r.EventsURL == "" && !cache {
		return nil
	}
	var out []EnvVar
	if r.EventsURL != "" {
		out = append(out, EnvVar{Name: EnvEventsURL, Value: r.EventsURL})
	}
	if cache {
		out = append(out, EnvVar{Name: EnvCacheURL, Value: r.CacheURL})
		if r.CacheMaxAge > 0 {
			out = append(out, EnvVar{Name: EnvCacheMaxAge, Value: r.CacheMaxAge.String()})
		}
	}
	out = append(out,
		EnvVar{Name: EnvTeam, Value: r.Team},
		EnvVar{Name: EnvAttempt, Value: strconv.Itoa(r.Attempt)},
	)
	if r.Pipeline != "" {
		out = append(out, EnvVar{Name: EnvPipeline, Value: r.Pipeline})
	}
	return out
}

// ClusterTaskID is the id the status function's Kubernetes mapping (shared/k8s TektonTask,
// ArgoStatus) gives the task this pod runs, derived from the engine's names of it in the
// environment and, on Tekton, the loop iteration the pod runs (the --iteration value,
// empty outside loops); ok is false when the names are absent (not in a cluster, or an
// object compiled without reporting). The rules must stay those of shared/k8s;
// functions/status tests check both against the same objects.
//
//   - Tekton: TektonTaskID of the pipeline task's name and the iteration.
//   - Argo: the node name without "<workflow>."; a retried pod's "(N)" suffix is cut,
//     since the status function names the retry group, not each try.
func ClusterTaskID(getenv func(string) string, iteration string) (id string, ok bool) {
	if pt := getenv(EnvTektonPipelineTask); pt != "" {
		return TektonTaskID(pt, iteration), true
	}
	if node := getenv(EnvArgoNodeName); node != "" {
		id = strings.TrimPrefix(node, getenv(EnvArgoWorkflow)+".")
		if i := strings.LastIndexByte(id, '('); i > 0 && strings.HasSuffix(id, ")") {
			if _, err := strconv.Atoi(id[i+1 : len(id)-1]); err == nil {
				id = id[:i]
			}
		}
		return id, true
	}
	return "", false
}

// TektonIterationParam is the matrix parameter of a Tekton loop body task: each TaskRun
// of the fan-out gets one launch.Iteration as JSON (the shared/compile/tekton compiler
// passes it to the launcher as --iteration).
const TektonIterationParam = "pf-iteration"

// TektonTaskID is the task id of a Tekton pipeline task pt, or of one TaskRun of its
// matrix fan-out given that TaskRun's iteration (the TektonIterationParam value): the
// name with the iteration's index per loop level, "train.2" or "train.1.0". Tekton's
// TaskRun names cannot carry it (it shortens long names to a hash).
func TektonTaskID(pt, iteration string) string {
	if iteration == "" {
		return pt
	}
	var it Iteration
	if json.Unmarshal([]byte(iteration), &it) != nil {
		return pt
	}
	id := pt
	for _, i := range it.IndexPath() {
		id += "." + strconv.Itoa(i)
	}
	return id
}

// CacheKey is KFP's step-cache key of a task about to run with inputs in: the component's
// input and output definitions, the executor's image, command and arguments as written in
// the IR, the input parameter values and every input artifact by URI and digest (from its
// MetaDigest metadata; see WithInputDigests). An importer's identity is its spec. The local
// executor and the launcher both call it, so that a key recorded by one is found by the
// other.
func CacheKey(cfg TaskConfig, in Inputs) (string, error) {
	key := lineage.CacheKeyInput{Parameters: in.Params, Artifacts: map[string][]lineage.ArtifactRef{}}
	comp, err := cfg.ComponentSpec()
	if err != nil {
		return "", err
	}
	key.Component = comp
	if c := cfg.Container; c != nil {
		key.Image, key.Command, key.Args = c.Image, c.Command, c.Args
	} else if len(cfg.Importer) > 0 {
		key.Image, key.Command = "pipefn/importer", []string{string(cfg.Importer)}
	}
	for name, list := range in.Artifacts {
		for _, a := range list {
			key.Artifacts[name] = append(key.Artifacts[name], lineage.ArtifactRef{URI: a.GetUri(), Digest: artifactDigest(a)})
		}
	}
	k, err := lineage.CacheKey(key)
	if err != nil {
		return "", fmt.Errorf("launch: task %s: %w", cfg.TaskID, err)
	}
	return k, nil
}

func artifactDigest(a *pipelinespec.RuntimeArtifact) string {
	return a.GetMetadata().GetFields()[MetaDigest].GetStringValue()
}

// WithInputDigests returns in with every input artifact that lacks a MetaDigest given the
// digest of what its URI holds now (a single object, else a directory's manifest), as
// the producer recorded it. In a pod, inputs arrive as bare URIs; without this their
// cache key would cover names only, and a rewritten object would not invalidate it. An
// artifact whose object cannot be read keeps no digest (the task then fails reading it
// anyway). in is not modified.
func WithInputDigests(ctx context.Context, store artifacts.Store, in Inputs) Inputs {
	out := Inputs{Params: in.Params, Artifacts: make(map[string][]*pipelinespec.RuntimeArtifact, len(in.Artifacts))}
	for name, list := range in.Artifacts {
		for _, a := range list {
			if a == nil || artifactDigest(a) != "" || a.GetUri() == "" {
				out.Artifacts[name] = append(out.Artifacts[name], a)
				continue
			}
			info, err := store.Stat(ctx, a.GetUri())
			if err != nil {
				info, err = store.Stat(ctx, artifacts.Join(a.GetUri(), ManifestName))
			}
			if err != nil || info.Digest == "" {
				out.Artifacts[name] = append(out.Artifacts[name], a)
				continue
			}
			c := proto.Clone(a).(*pipelinespec.RuntimeArtifact)
			if c.Metadata == nil {
				c.Metadata = &structpb.Struct{}
			}
			if c.Metadata.Fields == nil {
				c.Metadata.Fields = map[string]*structpb.Value{}
			}
			c.Metadata.Fields[MetaDigest] = structpb.NewStringValue(info.Digest)
			out.Artifacts[name] = append(out.Artifacts[name], c)
		}
	}
	return out
}

// CachedOutputs turns a cached execution's lineage record back into task outputs: its
// output parameters, and its output artifacts with their type, metadata, digest and size.
func CachedOutputs(hit lineage.CacheHit) (Outputs, error) {
	out := Outputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	for k, v := range hit.Execution.OutputParameters {
		pv, err := structpb.NewValue(v)
		if err != nil {
			return Outputs{}, fmt.Errorf("launch: cached execution %s: output parameter %q: %w", hit.Execution.ID, k, err)
		}
		out.Params[k] = pv
	}
	for name, list := range hit.Outputs {
		for _, a := range list {
			ra := &pipelinespec.RuntimeArtifact{Name: a.Name, Uri: a.URI,
				Type: &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: a.Type}}}
			md := map[string]any{}
			for k, v := range a.Metadata {
				md[k] = v
			}
			if a.Digest != "" {
				md[MetaDigest] = a.Digest
			}
			if a.Size > 0 {
				md[MetaSize] = float64(a.Size)
			}
			if len(md) > 0 {
				s, err := structpb.NewStruct(md)
				if err != nil {
					return Outputs{}, fmt.Errorf("launch: cached execution %s: output artifact %q metadata: %w", hit.Execution.ID, name, err)
				}
				ra.Metadata = s
			}
			out.Artifacts[name] = append(out.Artifacts[name], ra)
		}
	}
	return out, nil
}
