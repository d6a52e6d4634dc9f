package launch

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Invocation is a parsed launcher command line (see TaskConfig.Args).
type Invocation struct {
	Command    string            // run, cond, importer or items
	ConfigB64  string            // --config-b64
	Params     map[string]string // --param NAME=VALUE, VALUE as the engine substituted it
	Artifacts  map[string]string // --artifact NAME=URIS
	ResultsDir string            // --results-dir

	// Loop extensions used by the Tekton compiler (see Extra).
	ExtraB64      string              // --extra-b64: base64 JSON of Extra
	Iteration     string              // --iteration: {"index":N,"item":<JSON>}
	ListParams    map[string][]string // --list-param NAME COUNT E1..EN
	ListArtifacts map[string][]string // --list-artifact NAME COUNT E1..EN
}

// ParseInvocation parses the launcher's arguments after the binary name:
// SUBCOMMAND then --config-b64 B, --param K=V (repeatable), --artifact K=V
// (repeatable), --results-dir D, each as "--flag value" or "--flag=value",
// plus the loop extensions --extra-b64 B, --iteration JSON and
// --list-param/--list-artifact NAME COUNT E1..EN (COUNT separate elements,
// because Tekton expands an array result into separate arguments).
// VALUE may contain '='; only the first separates the name.
func ParseInvocation(args []string) (Invocation, error) {
	if len(args) == 0 {
		return Invocation{}, fmt.Errorf("missing subcommand (run, cond, importer, items, copy)")
	}
	inv := Invocation{Command: args[0], Params: map[string]string{}, Artifacts: map[string]string{},
		ListParams: map[string][]string{}, ListArtifacts: map[string][]string{}}
	switch inv.Command {
	case "run", "cond", "importer", "items":
	default:
		return Invocation{}, fmt.Errorf("unknown subcommand %q (want run, cond, importer, items or copy)", inv.Command)
	}
	seen := map[string]bool{}
	for i := 1; i < len(args); i++ {
		flag, value, inline := strings.Cut(args[i], "=")
		if !strings.HasPrefix(flag, "--") {
			return Invocation{}, fmt.Errorf("argument %d: unexpected %q (flags start with --)", i, clip(args[i]))
		}
		if flag == "--list-param" || flag == "--list-artifact" {
			if inline {
				return Invocation{}, fmt.Errorf("argument %d: %s takes NAME COUNT ELEMENTS... as separate arguments", i, flag)
			}
			if i+2 >= len(args) {
				return Invocation{}, fmt.Errorf("argument %d: %s needs NAME and COUNT", i, flag)
			}
			name, countText := args[i+1], args[i+2]
			count, err := strconv.Atoi(countText)
			if err != nil || count < 0 {
				return Invocation{}, fmt.Errorf("argument %d: %s %s: count %q is not a non-negative integer", i, flag, name, clip(countText))
			}
			if name == "" || count > len(args)-(i+3) {
				return Invocation{}, fmt.Errorf("argument %d: %s %q announces %d elements, %d arguments follow", i, flag, name, count, len(args)-(i+3))
			}
			m := inv.ListParams
			if flag == "--list-artifact" {
				m = inv.ListArtifacts
			}
			if _, dup := m[name]; dup {
				return Invocation{}, fmt.Errorf("argument %d: %s %s given twice", i, flag, name)
			}
			m[name] = slices.Clone(args[i+3 : i+3+count])
			i += 2 + count
			continue
		}
		if !inline {
			if i+1 >= len(args) {
				return Invocation{}, fmt.Errorf("argument %d: %s needs a value", i, flag)
			}
			i++
			value = args[i]
		}
		switch flag {
		case "--config-b64", "--results-dir", "--extra-b64", "--iteration":
			if seen[flag] {
				return Invocation{}, fmt.Errorf("argument %d: %s given twice", i, flag)
			}
			seen[flag] = true
			switch flag {
			case "--config-b64":
				inv.ConfigB64 = value
			case "--results-dir":
				inv.ResultsDir = value
			case "--extra-b64":
				inv.ExtraB64 = value
			case "--iteration":
				inv.Iteration = value
			}
		case "--param", "--artifact":
			name, v, ok := strings.Cut(value, "=")
			if !ok || name == "" {
				return Invocation{}, fmt.Errorf("argument %d: %s wants NAME=VALUE, got %q", i, flag, clip(value))
			}
			m := inv.Params
			if flag == "--artifact" {
				m = inv.Artifacts
			}
			if _, dup := m[name]; dup {
				return Invocation{}, fmt.Errorf("argument %d: %s %s given twice", i, flag, name)
			}
			m[name] = v
		default:
			return Invocation{}, fmt.Errorf("argument %d: unknown flag %s", i, flag)
		}
	}
	if inv.ConfigB64 == "" {
		return Invocation{}, fmt.Errorf("%s: --config-b64 is required", inv.Command)
	}
	if inv.ResultsDir == "" {
		return Invocation{}, fmt.Errorf("%s: --results-dir is required", inv.Command)
	}
	if inv.Command == "cond" && (len(inv.Artifacts) > 0 || len(inv.ListArtifacts) > 0) {
		return Invocation{}, fmt.Errorf("cond takes no --artifact")
	}
	return inv, nil
}

// Args renders inv back into a command line (canonical order).
func (inv Invocation) Args() []string {
	out := buildArgs(inv.Command, inv.ConfigB64, inv.Params, inv.Artifacts, inv.ResultsDir)
	if inv.ExtraB64 != "" {
		out = append(out, "--extra-b64", inv.ExtraB64)
	}
	if inv.Iteration != "" {
		out = append(out, "--iteration", inv.Iteration)
	}
	for _, k := range slices.Sorted(maps.Keys(inv.ListParams)) {
		out = append(append(out, "--list-param", k, strconv.Itoa(len(inv.ListParams[k]))), inv.ListParams[k]...)
	}
	for _, k := range slices.Sorted(maps.Keys(inv.ListArtifacts)) {
		out = append(append(out, "--list-artifact", k, strconv.Itoa(len(inv.ListArtifacts[k]))), inv.ListArtifacts[k]...)
	}
	return out
}

// ItemsResult is the array result of the `items` subcommand.
const ItemsResult = "iterations"

// TaskIDParam is the reserved --param carrying the task id of a task whose id
// is only known at run time (Argo loops: "for-loop-1.2.train"). It overrides
// TaskConfig.TaskID and CondConfig.TaskID and is not an input.
const TaskIDParam = "pipefn.task-id"

// EncodeIterations renders a JSON list as the items subcommand's result: a
// JSON array of strings, each the compact {"index":N,"item":<item>}.
func EncodeIterations(list []any) (string, error) {
	out := make([]string, 0, len(list))
	for i, x := range list {
		b, err := json.Marshal(map[string]any{"index": i, "item": x})
		if err != nil {
			return "", fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, string(b))
	}
	b, err := json.Marshal(out)
	return string(b), err
}
