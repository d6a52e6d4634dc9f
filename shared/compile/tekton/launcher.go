package tekton

// The launcher command lines come from shared/launch (TaskConfig.Args,
// ImporterArgs, CondConfig.Args). Loops need more than that contract
// carries, so this compiler appends extension arguments that the launcher
// must learn (reported as contract additions; until then a loop task fails
// at run time with the launcher's "unknown flag" error, never silently):
//
//   - "--extra-b64 B": base64 JSON of extraConfig below (static).
//   - "--iteration JSON": the loop iteration of a matrixed TaskRun,
//     {"index":i,"item":x} (launch.Iteration), plus "path", "items" and
//     "pos" in nested loops (see iterationValue). The launcher appends ".i"
//     (nested: ".i.j") to the task id and binds extraConfig.IterationInputs.
//   - "--list-param NAME COUNT E1..EN" / "--list-artifact NAME COUNT E1..EN":
//     the aggregated results of a matrixed task. Tekton hands a matrixed
//     task's results on only as a whole array expanded into separate
//     arguments, so the count ($(tasks.T.matrix.length)) comes first.
//   - the "items" subcommand: "launcher items --config-b64 B --param
//     list=L --results-dir D" writes the array result "iterations" (one
//     {"index","item"} per element of the JSON list L) a matrix fans out
//     over. For nested loops and loops over artifacts it instead gets
//     extraConfig.Levels (static lists, --param level-K JSON lists,
//     --artifact/--list-artifact artifacts-K URIs, or lists inside an outer
//     level's item) and writes their product, one iterationValue each.
//
// Implemented in shared/launch so far: --extra-b64 with IterationInputs,
// ListInputs (PerIteration, ElementType), Guards, Selectors; --iteration
// {"index","item"}; --list-param/--list-artifact; "items --param list".
// Still to implement there: ResultEnvelope and ListInputs.Enveloped (every
// loop needs them: without envelopes a loop of more than ten iterations
// would silently pair values of different iterations), IterationLevels,
// IterationArtifacts, ListInputs.Level, OneOf, Levels and the nested
// iteration fields. The launcher rejects unknown --extra-b64 fields, so a
// pipeline needing them fails loudly at run time rather than misbehaving.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pipefn/pipefn/shared/launch"
)

// extraConfig is the static part of the extension arguments.
type extraConfig struct {
	// IterationInputs maps an input bound to a loop item to the
	// parameterExpressionSelector applied to the item ("" = the whole item).
	IterationInputs map[string]string `json:"iterationInputs,omitempty"`
	// IterationLevels, in nested loops only, gives the level (0 =
	// outermost) whose item (iterationValue.Items[level]) an iteration
	// input takes.
	IterationLevels map[string]int `json:"iterationLevels,omitempty"`
	// IterationArtifacts are iteration inputs that are artifacts: the item
	// is the artifact's URI (ParallelFor over artifacts).
	IterationArtifacts []string `json:"iterationArtifacts,omitempty"`
	// Levels (items subcommand only) describe the loop levels to expand.
	Levels []levelSpec `json:"levels,omitempty"`
	// ListInputs describes every --list-param / --list-artifact input.
	ListInputs map[string]listInput `json:"listInputs,omitempty"`
	// ResultEnvelope (matrixed tasks): write every result as compact JSON
	// {"path":[i,..],"value":V}, V the result as it would otherwise be
	// written and path the iteration's index path ([index] for a single
	// loop), so consumers can tell which iteration produced it.
	ResultEnvelope bool `json:"resultEnvelope,omitempty"`
	// Guards name inputs holding condition results ("true"/"false"): a
	// --param, or a per-iteration --list-param in a loop body. Unless all
	// are "true" (for this iteration) the launcher skips the user command,
	// writes empty results (cond writes ok=false) and reports the task
	// SKIPPED.
	Guards []string `json:"guards,omitempty"`
	// OneOf maps an input bound to dsl.OneOf to its candidates in order:
	// the launcher binds the input to the first candidate whose guards are
	// all "true"; the candidates' own inputs are not passed to the user.
	OneOf map[string][]oneOfCandidate `json:"oneOf,omitempty"`
	// Selectors maps an input to the parameterExpressionSelector to apply to
	// the value it receives (outside loop items).
	Selectors map[string]string `json:"selectors,omitempty"`
}

func (e extraConfig) empty() bool {
	return len(e.IterationInputs) == 0 && len(e.ListInputs) == 0 && len(e.Guards) == 0 && len(e.Selectors) == 0 &&
		len(e.OneOf) == 0 && len(e.Levels) == 0 && len(e.IterationLevels) == 0 && len(e.IterationArtifacts) == 0 && !e.ResultEnvelope
}

// oneOfCandidate is one branch of a dsl.OneOf.
type oneOfCandidate struct {
	Input  string   `json:"input"`  // the --param/--artifact carrying the value
	Guards []string `json:"guards"` // the --param inputs that must all be "true"
}

// listInput tells the launcher what to do with an aggregated result array.
type listInput struct {
	// Enveloped: each element is a result envelope {"path":[..],"value":V}
	// written by a matrixed task (see extraConfig.ResultEnvelope). Always
	// true: Tekton orders aggregated results by TaskRun name ("-10" before
	// "-2", hashed names when long), so position means nothing.
	Enveloped bool `json:"enveloped,omitempty"`
	// PerIteration: take the element whose path equals this iteration's
	// path[:Level+1] (a single loop: [index]); otherwise collect
	// (dsl.Collected): the elements whose path[:Level] equals this task's
	// own, ordered by path and nested into one list per remaining level (a
	// loop two levels below gives a list of lists, as KFP does).
	PerIteration bool `json:"perIteration,omitempty"`
	Level        int  `json:"level,omitempty"`
	// ElementType is the KFP parameter type of each element ("" for artifacts).
	ElementType string `json:"elementType,omitempty"`
}

// listArg is one aggregated input passed with --list-param/--list-artifact.
type listArg struct {
	artifact bool
	name     string
	count    string // $(params.n...-NAME)
	elements string // $(params.l...-NAME[*])
}

// extend appends the extension arguments to a launch-built command line.
func extend(args []string, ext extraConfig, iteration string, lists []listArg) ([]string, error) {
	if !ext.empty() {
		b, err := json.Marshal(ext)
		if err != nil {
			return nil, fmt.Errorf("encoding launcher extension config: %w", err)
		}
		args = append(args, "--extra-b64", base64.StdEncoding.EncodeToString(b))
	}
	if iteration != "" {
		args = append(args, "--iteration", iteration)
	}
	sort.Slice(lists, func(i, j int) bool {
		if lists[i].artifact != lists[j].artifact {
			return !lists[i].artifact
		}
		return lists[i].name < lists[j].name
	})
	for _, l := range lists {
		flag := "--list-param"
		if l.artifact {
			flag = "--list-artifact"
		}
		args = append(args, flag, l.name, l.count, l.elements)
	}
	return args, nil
}

const resultsDir = "/tekton/results"

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

var (
	paramResult    = launch.ParamResult
	artifactResult = launch.ArtifactResult
)
