package tekton

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pipefn/pipefn/shared/launch"
)

var (
	arrayRef = regexp.MustCompile(`^\$\(params\.[^)\[]+\[\*\]\)$`)
	countRef = regexp.MustCompile(`^\$\(params\.n[^)]*\)$`)
)

// TestLauncherAcceptsArgs feeds every compiled launcher command line of the
// golden pipelines, with Tekton's array expansion simulated, to the
// launcher's own parser, and decodes the extension config and iteration
// values strictly into shared/launch's types. (tests/tektonsim runs such
// command lines for real.)
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
					if _, err := launch.DecodeExtra(inv.ExtraB64); err != nil {
						t.Errorf("task %s: %v", pt.Name, err)
					}
				}
				if pt.Matrix != nil {
					for _, v := range pt.Matrix.Params[0].Value.ArrayVal {
						if strings.HasPrefix(v, "$(") {
							continue
						}
						dec := json.NewDecoder(strings.NewReader(v))
						dec.DisallowUnknownFields()
						var it launch.Iteration
						if err := dec.Decode(&it); err != nil {
							t.Errorf("task %s: iteration %s is not a launch.Iteration: %v", pt.Name, v, err)
						}
					}
				}
			}
		})
	}
}
