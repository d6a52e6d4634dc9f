package launch

import (
	"fmt"
	"strings"
)

// Invocation is a parsed launcher command line (see TaskConfig.Args).
type Invocation struct {
	Command    string            // run, cond or importer
	ConfigB64  string            // --config-b64
	Params     map[string]string // --param NAME=VALUE, VALUE as the engine substituted it
	Artifacts  map[string]string // --artifact NAME=URIS
	ResultsDir string            // --results-dir
}

// ParseInvocation parses the launcher's arguments after the binary name:
// SUBCOMMAND then --config-b64 B, --param K=V (repeatable), --artifact K=V
// (repeatable), --results-dir D, each as "--flag value" or "--flag=value".
// VALUE may contain '='; only the first separates the name.
func ParseInvocation(args []string) (Invocation, error) {
	if len(args) == 0 {
		return Invocation{}, fmt.Errorf("missing subcommand (run, cond, importer, copy)")
	}
	inv := Invocation{Command: args[0], Params: map[string]string{}, Artifacts: map[string]string{}}
	switch inv.Command {
	case "run", "cond", "importer":
	default:
		return Invocation{}, fmt.Errorf("unknown subcommand %q (want run, cond, importer or copy)", inv.Command)
	}
	seen := map[string]bool{}
	for i := 1; i < len(args); i++ {
		flag, value, inline := strings.Cut(args[i], "=")
		if !strings.HasPrefix(flag, "--") {
			return Invocation{}, fmt.Errorf("argument %d: unexpected %q (flags start with --)", i, clip(args[i]))
		}
		if !inline {
			if i+1 >= len(args) {
				return Invocation{}, fmt.Errorf("argument %d: %s needs a value", i, flag)
			}
			i++
			value = args[i]
		}
		switch flag {
		case "--config-b64", "--results-dir":
			if seen[flag] {
				return Invocation{}, fmt.Errorf("argument %d: %s given twice", i, flag)
			}
			seen[flag] = true
			if flag == "--config-b64" {
				inv.ConfigB64 = value
			} else {
				inv.ResultsDir = value
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
	if inv.Command == "cond" && len(inv.Artifacts) > 0 {
		return Invocation{}, fmt.Errorf("cond takes no --artifact")
	}
	return inv, nil
}
