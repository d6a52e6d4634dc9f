package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/ir"
)

// Inputs are a task's resolved input values.
type Inputs struct {
	Params    map[string]*structpb.Value
	Artifacts map[string][]*pipelinespec.RuntimeArtifact
}

// Outputs are a task's produced values. Each uploaded artifact's metadata
// carries MetaSize and MetaDigest.
type Outputs struct {
	Params    map[string]*structpb.Value
	Artifacts map[string][]*pipelinespec.RuntimeArtifact
}

// Metadata keys Execute adds to every uploaded output artifact.
const (
	MetaSize   = "pipefn.size"   // number: bytes (sum over files for a directory)
	MetaDigest = "pipefn.digest" // string: "sha256:<hex>" (of the manifest for a directory)
)

// Env is the environment a task executes in.
type Env struct {
	Store    artifacts.Store // where input artifacts are read and outputs written
	WorkDir  string          // scratch space for this execution; empty: a temporary directory removed afterwards
	Stdout   io.Writer       // the user command's output; nil discards it
	Stderr   io.Writer
	ExtraEnv []string // KEY=VALUE added to the user command's environment

	// MountRoot is where remote artifacts are placed locally, at KFP's paths
	// below it (s3://b/k -> <MountRoot>/s3/b/k). The launcher in a pod uses
	// "/" so the paths are exactly those KFP's Python executor derives from
	// artifact URIs. Empty: <work>/mnt (in-process use, where / is not ours).
	MountRoot string
	// GracePeriod between SIGTERM and SIGKILL when ctx is cancelled; 0: 10s.
	GracePeriod time.Duration
}

// ExitError reports that the user command ran and failed.
type ExitError struct {
	TaskID string
	Code   int // exit status; 128+signal when killed by a signal
	Err    error
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("task %s: command exited with code %d", e.TaskID, e.Code)
}

func (e *ExitError) Unwrap() error { return e.Err }

// execution is the state of one Execute call.
type execution struct {
	cfg  TaskConfig
	spec *pipelinespec.ComponentSpec
	env  Env
	work string
	// mountRoot is Env.MountRoot made absolute; kfpPaths says whether it is
	// "/" so KFP's path convention holds and real URIs can be shown.
	mountRoot string
	kfpPaths  bool

	params      map[string]*structpb.Value
	inArtifacts map[string][]*pipelinespec.RuntimeArtifact // as given, real URIs
	inPaths     map[string][]string                        // local paths, parallel to inArtifacts
	outArts     map[string]*pipelinespec.RuntimeArtifact   // real URIs
	outPaths    map[string]string
	outParams   map[string]string // output parameter name -> output file
	outputFile  string            // executor output JSON
	input       *pipelinespec.ExecutorInput
	inputJSON   string
}

// Execute runs the task's user command: it fetches input artifacts to local
// paths, writes the KFP ExecutorInput, resolves placeholders, runs the
// command in its own process group (a cancelled ctx terminates the whole
// tree), then collects output parameters and uploads output artifacts to
// <root>/<run-id>/<task-id>/<output-name>. A failing command yields an
// *ExitError.
func Execute(ctx context.Context, cfg TaskConfig, in Inputs, env Env) (Outputs, error) {
	if cfg.Container == nil {
		return Outputs{}, fmt.Errorf("launch: task %s: the config has no container to run", cfg.TaskID)
	}
	if env.Store == nil {
		return Outputs{}, fmt.Errorf("launch: task %s: no artifact store", cfg.TaskID)
	}
	spec, err := cfg.ComponentSpec()
	if err != nil {
		return Outputs{}, err
	}
	work, cleanup, err := workDir(env.WorkDir)
	if err != nil {
		return Outputs{}, fmt.Errorf("launch: task %s: %w", cfg.TaskID, err)
	}
	defer cleanup()
	x := &execution{cfg: cfg, spec: spec, env: env, work: work}
	x.mountRoot = env.MountRoot
	if x.mountRoot == "" {
		x.mountRoot = filepath.Join(work, "mnt")
	}
	x.kfpPaths = filepath.Clean(x.mountRoot) == "/"
	if x.kfpPaths && !writableDir("/") {
		// KFP's /s3/... paths need a writable root filesystem (KFP's own
		// launcher assumes one); an image running as non-root gets the
		// artifacts under its work dir instead, with the executor input
		// showing those paths as URIs.
		slog.Warn("launch: / is not writable, remote artifacts go below the work dir", "task", cfg.TaskID)
		x.mountRoot, x.kfpPaths = filepath.Join(work, "mnt"), false
	}
	if err := x.prepare(ctx, in); err != nil {
		return Outputs{}, fmt.Errorf("launch: task %s: %w", cfg.TaskID, err)
	}
	argv, childEnv, err := x.command()
	if err != nil {
		return Outputs{}, fmt.Errorf("launch: task %s: %w", cfg.TaskID, err)
	}
	if err := runCommand(ctx, cfg.TaskID, argv, childEnv, env); err != nil {
		return Outputs{}, err
	}
	out, err := x.collect(ctx)
	if err != nil {
		return Outputs{}, fmt.Errorf("launch: task %s: %w", cfg.TaskID, err)
	}
	return out, nil
}

// workDir returns dir, or a fresh temporary directory that cleanup removes.
func workDir(dir string) (string, func(), error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("work dir: %w", err)
		}
		abs, err := filepath.Abs(dir)
		return abs, func() {}, err
	}
	d, err := os.MkdirTemp("", "pipefn-task-")
	if err != nil {
		return "", nil, fmt.Errorf("work dir: %w", err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}

// prepare binds parameters, downloads input artifacts, lays out output paths
// and builds the ExecutorInput.
func (x *execution) prepare(ctx context.Context, in Inputs) error {
	var err error
	if x.params, err = bindParams(x.spec, in.Params, x.system); err != nil {
		return err
	}
	x.input = &pipelinespec.ExecutorInput{
		Inputs: &pipelinespec.ExecutorInput_Inputs{
			ParameterValues: x.params,
			Artifacts:       map[string]*pipelinespec.ArtifactList{},
		},
		Outputs: &pipelinespec.ExecutorInput_Outputs{
			Parameters: map[string]*pipelinespec.ExecutorInput_OutputParameter{},
			Artifacts:  map[string]*pipelinespec.ArtifactList{},
			OutputFile: filepath.Join(x.work, "outputs", "executor_output.json"),
		},
	}
	x.outputFile = x.input.Outputs.OutputFile
	if err := x.fetchInputs(ctx, in.Artifacts); err != nil {
		return err
	}
	if err := x.layoutOutputs(); err != nil {
		return err
	}
	b, err := marshalProto(x.input)
	if err != nil {
		return fmt.Errorf("encode executor input: %w", err)
	}
	x.inputJSON = string(b)
	return nil
}

// bindParams checks the given parameters against the component's inputs,
// fills defaults and resolves KFP's system placeholders in string values
// ({{$.pipeline_job_uuid}} and friends arrive as runtime constants).
func bindParams(spec *pipelinespec.ComponentSpec, given map[string]*structpb.Value, system func(string) (string, bool)) (map[string]*structpb.Value, error) {
	out := map[string]*structpb.Value{}
	defs := spec.GetInputDefinitions().GetParameters()
	for name, v := range given {
		if _, ok := defs[name]; !ok && len(defs) > 0 {
			// Extra values are harmless (the engine may pass iteration items
			// the component does not use); keep them for placeholders.
			slog.Debug("launch: parameter not declared by the component", "param", name)
		}
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok && strings.Contains(s.StringValue, "{{$.") {
			out[name] = structpb.NewStringValue(resolveSystem(s.StringValue, system))
			continue
		}
		out[name] = v
	}
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		if _, ok := out[name]; ok {
			continue
		}
		d := defs[name]
		switch {
		case d.GetDefaultValue() != nil:
			out[name] = d.GetDefaultValue()
		case d.GetIsOptional():
		default:
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("input parameters without a value or default: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// resolveSystem replaces only system placeholders ({{$.pipeline_...}}) in s,
// leaving everything else, including malformed text, as the user wrote it.
func resolveSystem(s string, system func(string) (string, bool)) string {
	if out, err := resolveString(s, systemOnly(system)); err == nil {
		return out
	}
	return s
}

// system answers KFP's run-level placeholders.
func (x *execution) system(name string) (string, bool) {
	switch name {
	case "pipeline_job_name", "pipeline_job_resource_name", "pipeline_job_uuid":
		return x.cfg.RunID, true
	case "pipeline_task_name":
		return x.cfg.TaskName, true
	case "pipeline_task_uuid":
		return x.cfg.TaskID, true
	case "pipeline_root":
		return x.cfg.PipelineRoot, true
	}
	return "", false
}

// kfpMountPath is the path KFP's Python executor derives from a remote URI
// (Artifact._get_path): s3://b/k -> /s3/b/k, gs://b/k -> /gcs/b/k,
// minio://b/k -> /minio/b/k. Other schemes have none.
func kfpMountPath(uri string) (string, bool) {
	for _, p := range []struct{ scheme, dir string }{{"s3://", "/s3/"}, {"gs://", "/gcs/"}, {"minio://", "/minio/"}} {
		if rest, ok := strings.CutPrefix(uri, p.scheme); ok && rest != "" {
			return p.dir + rest, true
		}
	}
	return "", false
}

// localPathFor chooses where the user program sees the artifact at uri and
// the URI the ExecutorInput shows for it. With KFP's mount convention in force
// (MountRoot "/") remote artifacts keep their real URI and live at KFP's path.
// Otherwise, and always for file:// URIs, the artifact lives at fallback and
// the ExecutorInput shows that path as its URI: KFP's executor treats a
// scheme-less URI as the local path itself ("uri == path" local execution).
func (x *execution) localPathFor(uri, fallback string) (path, shown string) {
	if p, ok := kfpMountPath(uri); ok {
		local := filepath.Join(x.mountRoot, filepath.FromSlash(p))
		if x.kfpPaths {
			return local, uri
		}
		return local, local
	}
	return fallback, fallback
}

func (x *execution) fetchInputs(ctx context.Context, given map[string][]*pipelinespec.RuntimeArtifact) error {
	defs := x.spec.GetInputDefinitions().GetArtifacts()
	x.inArtifacts = map[string][]*pipelinespec.RuntimeArtifact{}
	x.inPaths = map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(given)) {
		list := given[name]
		shownList := &pipelinespec.ArtifactList{}
		for i, a := range list {
			if a.GetUri() == "" {
				return fmt.Errorf("input artifact %s[%d] has no URI", name, i)
			}
			a = proto.Clone(a).(*pipelinespec.RuntimeArtifact) // never modify the caller's
			if err := loadMetadata(ctx, x.env.Store, a); err != nil {
				return fmt.Errorf("input artifact %s: %w", name, err)
			}
			base := pathSegment(filepath.Base(strings.TrimRight(a.GetUri(), "/")))
			fallback := filepath.Join(x.work, "inputs", pathSegment(name), fmt.Sprint(i), base)
			path, shown := x.localPathFor(a.GetUri(), fallback)
			if err := download(ctx, x.env.Store, a.GetUri(), path); err != nil {
				return fmt.Errorf("input artifact %s: %w", name, err)
			}
			c := proto.Clone(a).(*pipelinespec.RuntimeArtifact)
			c.Uri = shown
			if c.Type == nil && defs[name] != nil {
				c.Type = defs[name].GetArtifactType()
			}
			if c.Name == "" {
				c.Name = name
			}
			shownList.Artifacts = append(shownList.Artifacts, c)
			x.inArtifacts[name] = append(x.inArtifacts[name], a)
			x.inPaths[name] = append(x.inPaths[name], path)
		}
		x.input.Inputs.Artifacts[name] = shownList
	}
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		if _, ok := given[name]; !ok && !defs[name].GetIsOptional() {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("input artifacts without a value: %s", strings.Join(missing, ", "))
	}
	return nil
}

// OutputURI is where output artifact name of a task is stored:
// <root>/<run-id>/<task-id>/<output-name>.
func OutputURI(cfg TaskConfig, name string) string {
	return artifacts.Join(cfg.PipelineRoot, cfg.RunID, cfg.TaskID, name)
}

func (x *execution) layoutOutputs() error {
	if x.cfg.PipelineRoot == "" && len(x.spec.GetOutputDefinitions().GetArtifacts()) > 0 {
		return errors.New("the task has output artifacts but the config has no pipeline root")
	}
	x.outArts = map[string]*pipelinespec.RuntimeArtifact{}
	x.outPaths = map[string]string{}
	x.outParams = map[string]string{}
	for name, def := range x.spec.GetOutputDefinitions().GetArtifacts() {
		uri := OutputURI(x.cfg, name)
		fallback := filepath.Join(x.work, "outputs", "artifacts", pathSegment(name), pathSegment(name))
		path, shown := x.localPathFor(uri, fallback)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("output artifact %s: %w", name, err)
		}
		a := &pipelinespec.RuntimeArtifact{Name: name, Type: def.GetArtifactType(), Uri: uri, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{}}}
		x.outArts[name] = a
		x.outPaths[name] = path
		shownArt := proto.Clone(a).(*pipelinespec.RuntimeArtifact)
		shownArt.Uri = shown
		x.input.Outputs.Artifacts[name] = &pipelinespec.ArtifactList{Artifacts: []*pipelinespec.RuntimeArtifact{shownArt}}
	}
	for name := range x.spec.GetOutputDefinitions().GetParameters() {
		f := filepath.Join(x.work, "outputs", "parameters", pathSegment(name), "data")
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return fmt.Errorf("output parameter %s: %w", name, err)
		}
		x.outParams[name] = f
		x.input.Outputs.Parameters[name] = &pipelinespec.ExecutorInput_OutputParameter{OutputFile: f}
	}
	return os.MkdirAll(filepath.Dir(x.outputFile), 0o755)
}

// pathSegment makes name safe as one path element.
func pathSegment(name string) string {
	if name == "" || name == "." || name == ".." {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' {
			return '_'
		}
		return r
	}, name)
}

// command resolves placeholders in the container's command, args and env.
func (x *execution) command() ([]string, []string, error) {
	cmd, err := ir.ResolveArgs(x.cfg.Container.Command, x)
	if err != nil {
		return nil, nil, fmt.Errorf("command: %w", err)
	}
	args, err := ir.ResolveArgs(x.cfg.Container.Args, x)
	if err != nil {
		return nil, nil, fmt.Errorf("args: %w", err)
	}
	argv := append(cmd, args...)
	if len(argv) == 0 {
		return nil, nil, errors.New("the container has neither command nor args; the launcher cannot use an image's entrypoint")
	}
	env := append(os.Environ(), x.env.ExtraEnv...)
	for _, e := range x.cfg.Container.Env {
		v, err := resolveString(e.Value, x)
		if err != nil {
			return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		env = append(env, e.Name+"="+v)
	}
	return argv, env, nil
}

// collect reads output parameters and uploads output artifacts.
func (x *execution) collect(ctx context.Context) (Outputs, error) {
	eo := &pipelinespec.ExecutorOutput{}
	if b, err := os.ReadFile(x.outputFile); err == nil {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, eo); err != nil {
			return Outputs{}, fmt.Errorf("executor output %s is not valid ExecutorOutput JSON: %w", x.outputFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Outputs{}, fmt.Errorf("executor output: %w", err)
	}
	out := Outputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	defs := x.spec.GetOutputDefinitions().GetParameters()
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		v, err := x.outputParam(name, ir.OutputParameterType(defs[name]), eo)
		if err != nil {
			return Outputs{}, err
		}
		out.Params[name] = v
	}
	for _, name := range slices.Sorted(maps.Keys(x.outArts)) {
		a, err := x.uploadOutput(ctx, name, eo)
		if err != nil {
			return Outputs{}, err
		}
		out.Artifacts[name] = []*pipelinespec.RuntimeArtifact{a}
	}
	return out, nil
}

// outputParam takes the value from the executor output (KFP's Python
// executor) or else from the parameter's output file (container components).
func (x *execution) outputParam(name string, t ParameterType, eo *pipelinespec.ExecutorOutput) (*structpb.Value, error) {
	if v, ok := eo.GetParameterValues()[name]; ok {
		return v, nil
	}
	if v, ok := eo.GetParameters()[name]; ok {
		switch k := v.GetValue().(type) {
		case *pipelinespec.Value_IntValue:
			return structpb.NewNumberValue(float64(k.IntValue)), nil
		case *pipelinespec.Value_DoubleValue:
			return structpb.NewNumberValue(k.DoubleValue), nil
		case *pipelinespec.Value_StringValue:
			return DecodeParam(k.StringValue, t)
		}
	}
	f := x.outParams[name]
	b, err := os.ReadFile(f)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("output parameter %q: the command wrote neither %s nor a value in the executor output", name, f)
	}
	if err != nil {
		return nil, fmt.Errorf("output parameter %q: %w", name, err)
	}
	v, err := DecodeParam(string(b), t)
	if err != nil {
		return nil, fmt.Errorf("output parameter %q (%s): %w", name, f, err)
	}
	return v, nil
}

// uploadOutput stores one output artifact. Metadata reported by the executor
// output is kept; an artifact whose file was never written is accepted only
// when the executor reported metadata for it (metrics-style artifacts).
func (x *execution) uploadOutput(ctx context.Context, name string, eo *pipelinespec.ExecutorOutput) (*pipelinespec.RuntimeArtifact, error) {
	a := proto.Clone(x.outArts[name]).(*pipelinespec.RuntimeArtifact)
	// Clone turns an empty map into nil.
	if a.Metadata == nil {
		a.Metadata = &structpb.Struct{}
	}
	if a.Metadata.Fields == nil {
		a.Metadata.Fields = map[string]*structpb.Value{}
	}
	reported := false
	if l := eo.GetArtifacts()[name].GetArtifacts(); len(l) > 0 {
		for k, v := range l[0].GetMetadata().GetFields() {
			a.Metadata.Fields[k] = v
		}
		reported = true
	}
	path := x.outPaths[name]
	st, err := os.Stat(path)
	var info artifacts.Info
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !reported {
			return nil, fmt.Errorf("output artifact %q: the command did not write %s", name, path)
		}
		// A metadata-only artifact (KFP Metrics): store an empty object so
		// every output URI names something a consumer can download.
		info, err = x.env.Store.Put(ctx, a.Uri, strings.NewReader(""))
	case err != nil:
		return nil, fmt.Errorf("output artifact %q: %w", name, err)
	case st.IsDir():
		info, err = uploadDir(ctx, x.env.Store, path, a.Uri)
	default:
		info, err = uploadFile(ctx, x.env.Store, path, a.Uri)
	}
	if err != nil {
		return nil, fmt.Errorf("output artifact %q: %w", name, err)
	}
	if err := putMetadata(ctx, x.env.Store, a); err != nil {
		return nil, fmt.Errorf("output artifact %q: %w", name, err)
	}
	a.Metadata.Fields[MetaSize] = structpb.NewNumberValue(float64(info.Size))
	a.Metadata.Fields[MetaDigest] = structpb.NewStringValue(info.Digest)
	return a, nil
}

// MetadataSuffix names the object next to an output artifact that holds its
// metadata (<uri>.pipefn-meta.json), written when the program reported any.
// Engines pass only URIs between pods, so a consumer's launcher reads the
// metadata back from there ({{$.inputs.artifacts['m'].metadata['k']}}, and
// the ExecutorInput KFP's Python executor reads). KFP output names are
// identifiers, so the suffix cannot collide with another output.
const MetadataSuffix = ".pipefn-meta.json"

func putMetadata(ctx context.Context, store artifacts.Store, a *pipelinespec.RuntimeArtifact) error {
	if len(a.GetMetadata().GetFields()) == 0 {
		return nil
	}
	b, err := protojson.Marshal(a.GetMetadata())
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	if _, err := store.Put(ctx, a.GetUri()+MetadataSuffix, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("store metadata: %w", err)
	}
	return nil
}

// loadMetadata fills the metadata of an input artifact that arrived as a bare
// URI from the sidecar its producer wrote; an artifact without one (imported,
// or produced elsewhere) keeps empty metadata.
func loadMetadata(ctx context.Context, store artifacts.Store, a *pipelinespec.RuntimeArtifact) error {
	if len(a.GetMetadata().GetFields()) > 0 {
		return nil
	}
	rc, err := store.Get(ctx, a.GetUri()+MetadataSuffix)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read metadata: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	md := &structpb.Struct{}
	if err := protojson.Unmarshal(b, md); err != nil {
		return fmt.Errorf("metadata %s%s: %w", a.GetUri(), MetadataSuffix, err)
	}
	a.Metadata = md
	return nil
}

// DecodeArtifactURIs parses an --artifact value: one URI, or a JSON array of
// URIs (an artifact list). Nested arrays, which collecting artifacts over nested
// loops yields on engines that keep one list level per loop (Argo), are
// flattened in order: a List[Artifact] input is one flat list in KFP.
func DecodeArtifactURIs(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var v any
		if err := json.NewDecoder(bytes.NewReader([]byte(s))).Decode(&v); err != nil {
			return nil, fmt.Errorf("artifact list %q is not a JSON array of URIs: %w", clip(s), err)
		}
		uris := []string{}
		if err := flattenURIs(v, &uris); err != nil {
			return nil, fmt.Errorf("artifact list %q: %w", clip(s), err)
		}
		return uris, nil
	}
	if s == "" {
		return nil, errors.New("empty artifact URI")
	}
	return []string{s}, nil
}

func flattenURIs(v any, out *[]string) error {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			if err := flattenURIs(e, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("element %v is not a URI (a JSON string) or a list of them", v)
	}
	return nil
}

// writableDir reports whether a directory can be created in dir.
func writableDir(dir string) bool {
	d, err := os.MkdirTemp(dir, ".pipefn-probe-")
	if err != nil {
		return false
	}
	os.Remove(d)
	return true
}
