// Package k8s_test runs pipefn against a real kube-apiserver and etcd (controller-runtime's
// envtest) with the Tekton and Argo CRDs installed from the modules' own manifests. No
// controllers run: the tests move the objects' status the way the Tekton and Argo
// controllers do, and check every transition in pipefn's run state.
package k8s_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cluster is the one API server the package's tests share (it takes seconds to start).
var cluster struct {
	cfg        *rest.Config
	kubeconfig string // a kubeconfig file for pipefn up
	skip       string // why the suite cannot run, when it cannot
}

// assets finds kube-apiserver and etcd: KUBEBUILDER_ASSETS, else where
// scripts/install-kube.sh puts them.
func assets() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	cache := os.Getenv("PIPEFN_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "pipefn")
	}
	return filepath.Join(cache, "kube", "bin")
}

// moduleDir is where a required module's source lies in the module cache.
func moduleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir := assets()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			cluster.skip = fmt.Sprintf("%s not found in %s: run scripts/install-kube.sh (make test-deps) or set KUBEBUILDER_ASSETS", bin, dir)
		}
	}
	if cluster.skip != "" {
		if os.Getenv("PIPEFN_REQUIRE_KUBE") != "" {
			fmt.Fprintln(os.Stderr, "tests/k8s:", cluster.skip)
			return 1
		}
		return m.Run()
	}
	tekton, err := moduleDir("github.com/tektoncd/pipeline")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s:", err)
		return 1
	}
	argo, err := moduleDir("github.com/argoproj/argo-workflows/v3")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s:", err)
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(tekton, "config", "300-crds"),
			filepath.Join(argo, "manifests", "base", "crds", "minimal"),
		},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	if _, err := env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s: start kube-apiserver and etcd:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "pipefn-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s: add user:", err)
		return 1
	}
	kc, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s: kubeconfig:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "pipefn-k8s-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	cluster.kubeconfig = filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(cluster.kubeconfig, kc, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "tests/k8s:", err)
		return 1
	}
	cluster.cfg = user.Config()
	return m.Run()
}

// needCluster skips a test (loudly) when the API server binaries are missing and
// PIPEFN_REQUIRE_KUBE is unset.
func needCluster(tb testing.TB) {
	tb.Helper()
	if cluster.skip != "" {
		tb.Skip(cluster.skip)
	}
}
