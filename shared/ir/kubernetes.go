package ir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// KubernetesPlatform is the platforms.kubernetes document of a KFP IR file
// (kfp-kubernetes). pipefn keeps its own structs, mirroring the current
// kfp-kubernetes proto JSON, because the Go module pinned in go.mod predates
// many of its fields.
type KubernetesPlatform struct {
	// Executors maps an executor label (deploymentSpec.executors key) to its
	// Kubernetes settings.
	Executors map[string]*KubernetesExecutorConfig `json:"executors,omitempty"`
	// PipelineConfig holds pipeline-wide settings (workspace PVC), nil if absent.
	PipelineConfig *KubernetesPipelineConfig `json:"pipelineConfig,omitempty"`
}

// KubernetesPipelineConfig is platforms.kubernetes.pipelineConfig.
type KubernetesPipelineConfig struct {
	Workspace *WorkspaceConfig `json:"workspace,omitempty"`
	// PipelineVersionConcurrencyLimit etc. are not in the corpus; add when seen.
}

// WorkspaceConfig asks for a PVC shared by all tasks of a run.
type WorkspaceConfig struct {
	Size       string                     `json:"size,omitempty"`
	Kubernetes *KubernetesWorkspaceConfig `json:"kubernetes,omitempty"`
}

// KubernetesWorkspaceConfig patches the workspace PVC spec.
type KubernetesWorkspaceConfig struct {
	PvcSpecPatch map[string]any `json:"pvcSpecPatch,omitempty"`
}

// KubernetesExecutorConfig is the per-executor Kubernetes configuration.
type KubernetesExecutorConfig struct {
	SecretAsVolume         []SecretAsVolume         `json:"secretAsVolume,omitempty"`
	SecretAsEnv            []SecretAsEnv            `json:"secretAsEnv,omitempty"`
	PvcMount               []PvcMount               `json:"pvcMount,omitempty"`
	NodeSelector           *NodeSelector            `json:"nodeSelector,omitempty"`
	PodMetadata            *PodMetadata             `json:"podMetadata,omitempty"`
	ImagePullSecret        []ImagePullSecret        `json:"imagePullSecret,omitempty"`
	ImagePullPolicy        string                   `json:"imagePullPolicy,omitempty"` // Always, Never, IfNotPresent
	ConfigMapAsVolume      []ConfigMapAsVolume      `json:"configMapAsVolume,omitempty"`
	ConfigMapAsEnv         []ConfigMapAsEnv         `json:"configMapAsEnv,omitempty"`
	ActiveDeadlineSeconds  Int64String              `json:"activeDeadlineSeconds,omitempty"`
	FieldPathAsEnv         []FieldPathAsEnv         `json:"fieldPathAsEnv,omitempty"`
	Tolerations            []Toleration             `json:"tolerations,omitempty"`
	GenericEphemeralVolume []GenericEphemeralVolume `json:"genericEphemeralVolume,omitempty"`
	NodeAffinity           []NodeAffinityTerm       `json:"nodeAffinity,omitempty"`
	PodAffinity            []PodAffinityTerm        `json:"podAffinity,omitempty"`
	EnabledSharedMemory    *EnabledSharedMemory     `json:"enabledSharedMemory,omitempty"`
	EmptyDirMounts         []EmptyDirMount          `json:"emptyDirMounts,omitempty"`
	SecurityContext        *SecurityContext         `json:"securityContext,omitempty"`
	InitContainers         []InitContainer          `json:"initContainers,omitempty"`
	PodResourceClaims      []PodResourceClaim       `json:"podResourceClaims,omitempty"`
}

// Int64String decodes a proto int64, which protojson writes as a string but
// older SDKs wrote as a number.
type Int64String int64

// UnmarshalJSON accepts 42 and "42".
func (n *Int64String) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	*n = Int64String(v)
	return nil
}

// ParamRef is a KFP TaskInputsSpec.InputParameterSpec as kfp-kubernetes uses
// it to name a value that may come from a pipeline input, an upstream task or
// a constant. Exactly one field is set.
type ParamRef struct {
	ComponentInputParameter string               `json:"componentInputParameter,omitempty"`
	TaskOutputParameter     *TaskOutputParameter `json:"taskOutputParameter,omitempty"`
	RuntimeValue            *RuntimeValue        `json:"runtimeValue,omitempty"`
}

// TaskOutputParameter names an output parameter of an upstream task.
type TaskOutputParameter struct {
	ProducerTask       string `json:"producerTask"`
	OutputParameterKey string `json:"outputParameterKey"`
}

// RuntimeValue is a constant (any JSON value).
type RuntimeValue struct {
	Constant any `json:"constant"`
}

// Proto converts the reference into the KFP protobuf form the compilers use
// for ordinary task inputs.
func (r *ParamRef) Proto() (*pipelinespec.TaskInputsSpec_InputParameterSpec, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out := &pipelinespec.TaskInputsSpec_InputParameterSpec{}
	if err := protojson.Unmarshal(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ConstantValue returns the constant as a protobuf value (nil if not a constant).
func (r *ParamRef) ConstantValue() *structpb.Value {
	if r == nil || r.RuntimeValue == nil {
		return nil
	}
	v, err := structpb.NewValue(plainJSON(r.RuntimeValue.Constant))
	if err != nil {
		return nil
	}
	return v
}

// SecretAsVolume mounts a Secret as files.
type SecretAsVolume struct {
	SecretName          string    `json:"secretName,omitempty"` // deprecated by SecretNameParameter
	SecretNameParameter *ParamRef `json:"secretNameParameter,omitempty"`
	MountPath           string    `json:"mountPath"`
	Optional            *bool     `json:"optional,omitempty"`
}

// SecretAsEnv exposes Secret keys as environment variables.
type SecretAsEnv struct {
	SecretName          string         `json:"secretName,omitempty"`
	SecretNameParameter *ParamRef      `json:"secretNameParameter,omitempty"`
	KeyToEnv            []SecretKeyEnv `json:"keyToEnv,omitempty"`
	Optional            *bool          `json:"optional,omitempty"`
}

// SecretKeyEnv maps one Secret key to an environment variable.
type SecretKeyEnv struct {
	SecretKey string `json:"secretKey"`
	EnvVar    string `json:"envVar"`
}

// PvcMount mounts a PVC. The PVC name is PvcNameParameter or, in older
// SDKs, one of TaskOutputParameter, Constant, ComponentInputParameter.
type PvcMount struct {
	TaskOutputParameter     *TaskOutputParameter `json:"taskOutputParameter,omitempty"`
	Constant                string               `json:"constant,omitempty"`
	ComponentInputParameter string               `json:"componentInputParameter,omitempty"`
	PvcNameParameter        *ParamRef            `json:"pvcNameParameter,omitempty"`
	MountPath               string               `json:"mountPath"`
	SubPath                 string               `json:"subPath,omitempty"`
}

// NameRef returns the PVC name reference whichever form the SDK wrote.
func (m *PvcMount) NameRef() *ParamRef {
	switch {
	case m.PvcNameParameter != nil:
		return m.PvcNameParameter
	case m.TaskOutputParameter != nil:
		return &ParamRef{TaskOutputParameter: m.TaskOutputParameter}
	case m.ComponentInputParameter != "":
		return &ParamRef{ComponentInputParameter: m.ComponentInputParameter}
	case m.Constant != "":
		return &ParamRef{RuntimeValue: &RuntimeValue{Constant: m.Constant}}
	}
	return nil
}

// NodeSelector constrains scheduling by node labels; NodeSelectorJSON, when
// set, is a JSON object of labels and takes precedence.
type NodeSelector struct {
	Labels           map[string]string `json:"labels,omitempty"`
	NodeSelectorJSON *ParamRef         `json:"nodeSelectorJson,omitempty"`
}

// PodMetadata adds labels and annotations to the task pod.
type PodMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ImagePullSecret names a Secret used to pull the task image.
type ImagePullSecret struct {
	SecretName          string    `json:"secretName,omitempty"`
	SecretNameParameter *ParamRef `json:"secretNameParameter,omitempty"`
}

// ConfigMapAsVolume mounts a ConfigMap as files.
type ConfigMapAsVolume struct {
	ConfigMapName          string    `json:"configMapName,omitempty"`
	ConfigMapNameParameter *ParamRef `json:"configMapNameParameter,omitempty"`
	MountPath              string    `json:"mountPath"`
	Optional               *bool     `json:"optional,omitempty"`
}

// ConfigMapAsEnv exposes ConfigMap keys as environment variables.
type ConfigMapAsEnv struct {
	ConfigMapName          string            `json:"configMapName,omitempty"`
	ConfigMapNameParameter *ParamRef         `json:"configMapNameParameter,omitempty"`
	KeyToEnv               []ConfigMapKeyEnv `json:"keyToEnv,omitempty"`
	Optional               *bool             `json:"optional,omitempty"`
}

// ConfigMapKeyEnv maps one ConfigMap key to an environment variable.
type ConfigMapKeyEnv struct {
	ConfigMapKey string `json:"configMapKey"`
	EnvVar       string `json:"envVar"`
}

// FieldPathAsEnv exposes a pod field (downward API) as an environment variable.
type FieldPathAsEnv struct {
	Name      string `json:"name"`
	FieldPath string `json:"fieldPath"`
}

// Toleration is a Kubernetes toleration; TolerationJSON, when set, is a
// whole corev1.Toleration as JSON and takes precedence.
type Toleration struct {
	Key               string       `json:"key,omitempty"`
	Operator          string       `json:"operator,omitempty"`
	Value             string       `json:"value,omitempty"`
	Effect            string       `json:"effect,omitempty"`
	TolerationSeconds *Int64String `json:"tolerationSeconds,omitempty"`
	TolerationJSON    *ParamRef    `json:"tolerationJson,omitempty"`
}

// GenericEphemeralVolume is a per-pod PVC created from a claim template.
type GenericEphemeralVolume struct {
	VolumeName          string       `json:"volumeName"`
	MountPath           string       `json:"mountPath"`
	AccessModes         []string     `json:"accessModes,omitempty"`
	Size                string       `json:"size,omitempty"`
	DefaultStorageClass bool         `json:"defaultStorageClass,omitempty"`
	StorageClassName    string       `json:"storageClassName,omitempty"`
	Metadata            *PodMetadata `json:"metadata,omitempty"`
}

// SelectorRequirement is a label or field selector requirement.
type SelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// NodeAffinityTerm is a required (no weight) or preferred (weight) node
// affinity term; NodeAffinityJSON, when set, is a corev1.NodeAffinity as JSON.
type NodeAffinityTerm struct {
	MatchExpressions []SelectorRequirement `json:"matchExpressions,omitempty"`
	MatchFields      []SelectorRequirement `json:"matchFields,omitempty"`
	Weight           *int32                `json:"weight,omitempty"`
	NodeAffinityJSON *ParamRef             `json:"nodeAffinityJson,omitempty"`
}

// PodAffinityTerm is a pod (anti-)affinity term.
type PodAffinityTerm struct {
	MatchPodExpressions       []SelectorRequirement `json:"matchPodExpressions,omitempty"`
	MatchPodLabels            map[string]string     `json:"matchPodLabels,omitempty"`
	TopologyKey               string                `json:"topologyKey,omitempty"`
	Namespaces                []string              `json:"namespaces,omitempty"`
	MatchNamespaceExpressions []SelectorRequirement `json:"matchNamespaceExpressions,omitempty"`
	MatchNamespaceLabels      map[string]string     `json:"matchNamespaceLabels,omitempty"`
	Weight                    *int32                `json:"weight,omitempty"`
	Anti                      *bool                 `json:"anti,omitempty"`
}

// EnabledSharedMemory mounts a memory-backed emptyDir at /dev/shm.
type EnabledSharedMemory struct {
	VolumeName string `json:"volumeName,omitempty"`
	Size       string `json:"size,omitempty"`
}

// EmptyDirMount mounts an emptyDir volume.
type EmptyDirMount struct {
	VolumeName string  `json:"volumeName"`
	MountPath  string  `json:"mountPath"`
	Medium     *string `json:"medium,omitempty"`
	SizeLimit  *string `json:"sizeLimit,omitempty"`
}

// SecurityContext is the subset of the container security context KFP allows.
type SecurityContext struct {
	RunAsUser    *Int64String `json:"runAsUser,omitempty"`
	RunAsGroup   *Int64String `json:"runAsGroup,omitempty"`
	RunAsNonRoot *bool        `json:"runAsNonRoot,omitempty"`
}

// InitContainer runs before the main container (or beside it as a native
// sidecar when RestartPolicy is "Always").
type InitContainer struct {
	Name          string                  `json:"name"`
	Image         string                  `json:"image"`
	Command       []string                `json:"command,omitempty"`
	Args          []string                `json:"args,omitempty"`
	Env           []InitContainerEnv      `json:"env,omitempty"`
	VolumeMounts  []InitContainerMount    `json:"volumeMounts,omitempty"`
	RestartPolicy *string                 `json:"restartPolicy,omitempty"`
	Resources     *InitContainerResources `json:"resources,omitempty"`
}

// InitContainerEnv is one environment variable of an init container.
type InitContainerEnv struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// InitContainerMount mounts a pod volume into an init container.
type InitContainerMount struct {
	VolumeName string `json:"volumeName"`
	MountPath  string `json:"mountPath"`
}

// InitContainerResources are the requests and limits of an init container.
type InitContainerResources struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// PodResourceClaim attaches a Dynamic Resource Allocation claim.
type PodResourceClaim struct {
	ResourceClaimTemplateName string    `json:"resourceClaimTemplateName,omitempty"`
	ResourceClaimJSON         *ParamRef `json:"resourceClaimJson,omitempty"`
}

// platformDoc is the JSON shape of a PlatformSpec document.
type platformDoc struct {
	Platforms map[string]json.RawMessage `json:"platforms"`
}

type kubernetesDoc struct {
	DeploymentSpec *struct {
		Executors map[string]*KubernetesExecutorConfig `json:"executors"`
	} `json:"deploymentSpec,omitempty"`
	PipelineConfig *KubernetesPipelineConfig `json:"pipelineConfig,omitempty"`
}

// decodePlatform decodes a PlatformSpec document strictly: a member that the
// structs do not declare is an error naming its path, because silently
// dropping e.g. a toleration would run the task somewhere the user forbade.
func decodePlatform(doc map[string]any) (*KubernetesPlatform, error) {
	var ps problems
	checkKnown(doc, reflect.TypeOf(platformDoc{}), "", &ps)
	plats, _ := doc["platforms"].(map[string]any)
	for name, v := range plats {
		if name != "kubernetes" {
			ps.add(pathKey("", "platforms", name), "unsupported platform %q (pipefn runs on Kubernetes only)", name)
			continue
		}
		checkKnown(v, reflect.TypeOf(kubernetesDoc{}), "platforms.kubernetes", &ps)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var pd platformDoc
	if err := strictJSON(b, &pd); err != nil {
		return nil, fmt.Errorf("platform spec: %w", err)
	}
	raw, ok := pd.Platforms["kubernetes"]
	if !ok {
		return nil, errors.New("platform spec: no platforms.kubernetes")
	}
	var kd kubernetesDoc
	if err := strictJSON(raw, &kd); err != nil {
		return nil, fmt.Errorf("platforms.kubernetes: %w", err)
	}
	k := &KubernetesPlatform{Executors: map[string]*KubernetesExecutorConfig{}, PipelineConfig: kd.PipelineConfig}
	if kd.DeploymentSpec != nil {
		for label, cfg := range kd.DeploymentSpec.Executors {
			if cfg == nil {
				cfg = &KubernetesExecutorConfig{}
			}
			k.Executors[label] = cfg
		}
	}
	return k, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return err
	}
	return nil
}

// checkKnown reports members of v that the Go type t does not declare, with
// their paths (encoding/json's DisallowUnknownFields names the field but not
// where it is).
func checkKnown(v any, t reflect.Type, path string, ps *problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return // type errors are reported by the decoder
		}
		fields := jsonFields(t)
		for k, e := range m {
			f, ok := fields[k]
			if !ok {
				ps.add(join(path, k), "unknown field %q", k)
				continue
			}
			checkKnown(e, f.Type, join(path, k), ps)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, e := range m {
			checkKnown(e, t.Elem(), path+"['"+k+"']", ps)
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return
		}
		for i, e := range l {
			checkKnown(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", ps)
		}
	}
}

func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}
