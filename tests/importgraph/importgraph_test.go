// Package importgraph asserts the dependency rules of pipefn's tree: functions that never
// talk to Kubernetes never link client-go, Tekton or Argo (their cold start and image size
// depend on it), and each outside system is imported by one package only.
package importgraph

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/pipefn/pipefn"

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// heavy are the module prefixes only the compile function, the CLI and shared/k8s may link.
var heavy = []string{
	"github.com/tektoncd/",
	"github.com/argoproj/",
	"k8s.io/client-go",
	"knative.dev/",
	"sigs.k8s.io/controller-runtime",
}

func TestLightFunctionsNeverLinkKubernetes(t *testing.T) {
	for _, pkg := range []string{
		module + "/functions/submit",
		module + "/functions/schedule",
		module + "/functions/lineage",
		module + "/shared/ir",
		module + "/shared/state",
		module + "/shared/events",
		module + "/shared/launch",
		module + "/cmd/launcher",
	} {
		t.Run(strings.TrimPrefix(pkg, module+"/"), func(t *testing.T) {
			var bad []string
			for _, dep := range goList(t, "-deps", pkg) {
				for _, h := range heavy {
					if strings.HasPrefix(dep, h) {
						bad = append(bad, dep)
					}
				}
			}
			if len(bad) > 0 {
				sort.Strings(bad)
				t.Errorf("%s links %d heavy packages, e.g. %v", pkg, len(bad), bad[:min(5, len(bad))])
			}
		})
	}
}

// TestOneImporterPerOutsideSystem checks who imports go-redis, the AWS SDK and client-go
// directly.
func TestOneImporterPerOutsideSystem(t *testing.T) {
	rules := map[string][]string{
		"github.com/redis/go-redis/":    {module + "/shared/state", module + "/shared/redistest"},
		"github.com/aws/aws-sdk-go-v2/": {module + "/shared/artifacts"},
		// tests/controllers plays the kubelet of the end-to-end suite: a cluster part,
		// not pipefn's.
		"k8s.io/client-go/": {module + "/shared/k8s", module + "/tests/controllers"},
	}
	lines := goList(t, "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}}`, "./...")
	for prefix, allowed := range rules {
		for _, line := range lines {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			pkg := fields[0]
			ok := false
			for _, a := range allowed {
				if pkg == a || strings.HasPrefix(pkg, a+"/") {
					ok = true
				}
			}
			if ok {
				continue
			}
			for _, imp := range fields[1:] {
				if strings.HasPrefix(imp, prefix) {
					t.Errorf("%s imports %s: only %v may import %s", pkg, imp, allowed, prefix)
					break
				}
			}
		}
	}
}
