package tekton

// This file is a TEMPORARY adapter for shared/launch, which is being written
// in parallel. It follows the launcher section of docs/CONTRACTS.md; replace
// it with launch.TaskConfig / launch.TaskConfig.Args / launch.ParamResult /
// launch.ArtifactResult / launch.EncodeParam once that package lands.
//
// Beyond the contract, the Tekton compiler needs three things the launcher
// must understand (reported as contract additions):
//   - "--iteration JSON": the loop iteration of a matrixed TaskRun,
//     {"index":N,"item":<JSON item>}; TaskConfig.IterationInputs names the
//     inputs bound to the loop item (and the selector applied to it).
//   - "--list-param NAME COUNT E1..EN" / "--list-artifact NAME COUNT E1..EN":
//     the aggregated results of a matrixed task. Tekton can only hand a
//     matrixed task's results on as a whole array, expanded into separate
//     arguments, so the count comes first. TaskConfig.ListInputs says whether
//     the launcher picks element [iteration index] (a per-iteration value
//     inside a loop body) or collects them all (dsl.Collected fan-in).
//   - "launcher items": turns a JSON list parameter into the array result
//     "iterations" of {"index","item"} elements that a dynamic matrix fans
//     out over.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// taskConfig is the static, base64-JSON part of a launcher command line.
type taskConfig struct {
	RunID        string          `json:"runId"`
	TaskID       string          `json:"taskId"`
	TaskName     string          `json:"taskName"`
	PipelineRoot string          `json:"pipelineRoot"`
	Caching      bool            `json:"caching"`
	Component    json.RawMessage `json:"component,omitempty"` // pipelinespec.ComponentSpec (protojson)
	Container    json.RawMessage `json:"container,omitempty"` // PipelineContainerSpec (protojson)
	Importer     json.RawMessage `json:"importer,omitempty"`  // ImporterSpec (protojson)
	// Condition is the CEL trigger condition (launcher cond only).
	Condition string `json:"condition,omitempty"`
	// ParamTypes are the KFP types of the --param values, so the launcher
	// can decode them (cond/items tasks have no component of their own).
	ParamTypes map[string]string `json:"paramTypes,omitempty"`
	// IterationInputs maps an input bound to the loop item to the selector
	// applied to the item ("" = the whole item).
	IterationInputs map[string]string `json:"iterationInputs,omitempty"`
	// ListInputs describes every --list-param / --list-artifact input.
	ListInputs map[string]listInput `json:"listInputs,omitempty"`
	// Guards name --list-param inputs holding per-iteration condition
	// results ("true"/"false"); unless all are "true" for this iteration the
	// launcher skips the user command, writes empty results (cond writes
	// ok=false) and reports the task SKIPPED.
	Guards []string `json:"guards,omitempty"`
	// Selectors maps an input to the parameterExpressionSelector applied to
	// the value it receives.
	Selectors map[string]string `json:"selectors,omitempty"`
}

// listInput tells the launcher what to do with an aggregated result array.
type listInput struct {
	// PerIteration: take element [iteration index]; otherwise collect all.
	PerIteration bool `json:"perIteration,omitempty"`
	// ElementType is the KFP parameter type of each element ("" for artifacts).
	ElementType string `json:"elementType,omitempty"`
}

// listArg is one aggregated input passed with --list-param/--list-artifact.
type listArg struct {
	artifact bool
	name     string
	count    string // usually $(params.n-NAME)
	elements string // $(params.l-NAME[*])
}

// launcherArgs builds the launcher command line: the subcommand, the base64
// config, the dynamic values (sorted for determinism), the results dir.
func launcherArgs(sub string, cfg taskConfig, params, artifacts map[string]string, iteration string, lists []listArg) ([]string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding launcher config: %w", err)
	}
	args := []string{sub, "--config-b64", base64.StdEncoding.EncodeToString(b)}
	for _, k := range sortedKeys(params) {
		args = append(args, "--param", k+"="+params[k])
	}
	for _, k := range sortedKeys(artifacts) {
		args = append(args, "--artifact", k+"="+artifacts[k])
	}
	if iteration != "" {
		args = append(args, "--iteration", iteration)
	}
	sort.Slice(lists, func(i, j int) bool { return lists[i].name < lists[j].name })
	for _, l := range lists {
		flag := "--list-param"
		if l.artifact {
			flag = "--list-artifact"
		}
		args = append(args, flag, l.name, l.count, l.elements)
	}
	return append(args, "--results-dir", resultsDir), nil
}

const resultsDir = "/tekton/results"

var resultNameBad = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// paramResult is the result name of output parameter name (launch.ParamResult).
func paramResult(name string) string { return "p-" + resultNameBad.ReplaceAllString(name, "_") }

// artifactResult is the result name of output artifact name (launch.ArtifactResult).
func artifactResult(name string) string { return "a-" + resultNameBad.ReplaceAllString(name, "_") }

// encodeParam is the value encoding of CONTRACTS.md: a STRING is its raw
// text, every other type is compact JSON (launch.EncodeParam).
func encodeParam(v *structpb.Value, t pipelinespec.ParameterType_ParameterTypeEnum) (string, error) {
	if v == nil {
		return "", nil
	}
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok && (t == pipelinespec.ParameterType_STRING || t == pipelinespec.ParameterType_PARAMETER_TYPE_ENUM_UNSPECIFIED) {
		return s.StringValue, nil
	}
	out, err := stableJSON(v)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// stableJSON encodes a protobuf message deterministically: protojson's
// output may vary between runs, so it is re-encoded through encoding/json,
// which sorts object keys.
func stableJSON(m proto.Message) (json.RawMessage, error) {
	if m == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// engineRefs are the Tekton variable prefixes that substitution would act
// on; a literal value carrying one cannot be passed through unchanged.
var engineRefs = []string{"$(params.", "$(tasks.", "$(context.", "$(workspaces.", "$(results.", "$(steps.", "$(step.", "$(inputs.", "$(outputs.", "$(finally."}

func hasEngineRef(s string) bool {
	for _, r := range engineRefs {
		if strings.Contains(s, r) {
			return true
		}
	}
	return false
}
