package tekton

// The launcher command lines come from shared/launch (TaskConfig.Args,
// ImporterArgs, CondConfig.Args). Loops need more than that contract
// carries, so this compiler appends the launcher's extension arguments,
// whose wire format is defined once, in shared/launch (extension.go):
//
//   - "--extra-b64 B": base64 JSON of launch.Extra (static).
//   - "--iteration JSON": the loop iteration of a matrixed TaskRun,
//     launch.Iteration {"index":i,"item":x}, plus "path" and "items" in
//     nested loops. The launcher appends ".i" (nested: ".i.j") to the task
//     id and binds Extra.IterationInputs (IterationLevels picks the level,
//     IterationArtifacts the inputs whose item is an artifact URI).
//   - "--list-param NAME COUNT E1..EN" / "--list-artifact NAME COUNT E1..EN":
//     the aggregated results of a matrixed task. Tekton hands a matrixed
//     task's results on only as a whole array expanded into separate
//     arguments, so the count ($(tasks.T.matrix.R.length)) comes first. A
//     matrixed task writes every result as a launch.Envelope
//     {"path":[..],"value":V} (Extra.ResultEnvelope) and the consumer picks
//     or orders elements by path (launch.ListInput), because Tekton orders
//     the array by TaskRun name ("-10" before "-2").
//   - Extra.OneOf: a dsl.OneOf input receives every candidate with its
//     guards; the launcher takes the first whose guards are all "true".
//   - the "items" subcommand: "launcher items --config-b64 B --param
//     list=L --results-dir D" writes the array result "iterations" (one
//     {"index","item"} per element of the JSON list L) a matrix fans out
//     over. For nested loops and loops over artifacts it instead gets
//     Extra.Levels (static lists, --param level-K JSON lists,
//     --artifact/--list-artifact artifacts-K URIs, or lists inside an outer
//     level's item) and writes their product, one launch.Iteration each.
//
//   - Extra.FinalStatus: a PipelineTaskFinalStatus input gets Tekton task
//     statuses; the launcher completes KFP's status (pipelineTaskName,
//     pipelineJobResourceName, error naming the failed tasks) from it.
//
// The launcher decodes --extra-b64 strictly, so a field one side does not
// know fails loudly at run time rather than misbehaving.

import (
	"sort"
	"strings"

	"github.com/pipefn/pipefn/shared/launch"
)

// listArg is one aggregated input passed with --list-param/--list-artifact.
type listArg struct {
	artifact bool
	name     string
	count    string // $(params.n...-NAME)
	elements string // $(params.l...-NAME[*])
}

// extend appends the extension arguments to a launch-built command line.
func extend(args []string, ext launch.Extra, iteration string, lists []listArg) ([]string, error) {
	if !ext.Empty() {
		b64, err := ext.Encode()
		if err != nil {
			return nil, err
		}
		args = append(args, "--extra-b64", b64)
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
