package tekton

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pipefn/pipefn/shared/launch"
)

// pendingFields are extension fields shared/launch does not decode yet
// (see launcher.go); the rest of each --extra-b64 must decode strictly.
var pendingFields = []string{"resultEnvelope", "oneOf", "levels", "iterationLevels", "iterationArtifacts"}

// pendingListFields are the listInputs fields shared/launch lacks.
var pendingListFields = []string{"enveloped", "level"}

// withoutPending drops the pending fields from an extension config.
func withoutPending(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range pendingFields {
		delete(m, f)
	}
	if raw, ok := m["listInputs"]; ok {
		var lists map[string]map[string]json.RawMessage
		if err := json.Unmarshal(raw, &lists); err != nil {
			t.Fatal(err)
		}
		for _, li := range lists {
			for _, f := range pendingListFields {
				delete(li, f)
			}
		}
		m["listInputs"], _ = json.Marshal(lists)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	arrayRef = regexp.MustCompile(`^\$\(params\.[^)\[]+\[\*\]\)$`)
	countRef = regexp.MustCompile(`^\$\(params\.n[^)]*\)$`)
)

// TestLauncherAcceptsArgs feeds every compiled launcher command line of the
// golden pipelines, with Tekton's array expansion simulated, to the
// launcher's own parser, and decodes the extension config and iteration
// values strictly into shared/launch's types.
func TestLauncherAcceptsArgs(t *testing.T) {
	for _, g := range goldenFiles {
		t.Run(g.golden, func(t *testing.T) {
			opts := goldenOptions()
			opts.Params = paramsOf(t, g.params)
			pr, err := Compile(loadCorpus(t, g.file), opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, pt := range append(pr.Spec.PipelineSpec.Tasks, pr.Spec.PipelineSpec.Finally...) {
				steps := pt.TaskSpec.Steps
				var args []string
				for _, a := range steps[len(steps)-1].Args {
					switch {
					case arrayRef.MatchString(a): // Tekton expands the array
						args = append(args, "e1", "e2")
					case countRef.MatchString(a):
						args = append(args, "2")
					default:
						args = append(args, a)
					}
				}
				inv, err := launch.ParseInvocation(args)
				if err != nil {
					t.Errorf("task %s: launcher rejects %q: %v", pt.Name, args, err)
					continue
				}
				if inv.ExtraB64 != "" {
					b, err := base64.StdEncoding.DecodeString(inv.ExtraB64)
					if err != nil {
						t.Fatal(err)
					}
					b = withoutPending(t, b)
					dec := json.NewDecoder(bytes.NewReader(b))
					dec.DisallowUnknownFields()
					var e launch.Extra
					if err := dec.Decode(&e); err != nil {
						t.Errorf("task %s: --extra-b64 %s does not decode as launch.Extra: %v", pt.Name, b, err)
					}
				}
				if pt.Matrix != nil {
					for _, v := range pt.Matrix.Params[0].Value.ArrayVal {
						if strings.HasPrefix(v, "$(") {
							continue
						}
						var it launch.Iteration
						if err := json.Unmarshal([]byte(v), &it); err != nil {
							t.Errorf("task %s: iteration %s is not a launch.Iteration: %v", pt.Name, v, err)
						}
					}
				}
			}
		})
	}
}
