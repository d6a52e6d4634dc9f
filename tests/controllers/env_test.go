package controllers

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/tekton"
)

// The suite's one cluster: a real kube-apiserver and etcd, the real Tekton controller
// watching every namespace, and the fake kubelet. Argo's workflow-controller runs
// namespaced, one per team namespace (startArgo), as a team's light install would.
var cluster struct {
	cfg        *rest.Config
	kubeconfig string
	kube       kubernetes.Interface
	argo       wfclient.Interface
	kubelet    *Kubelet
	tektonLog  string
	bin        string // controller binaries
	argoDir    string // the Argo module (CRDs)
	tmp        string
	skip       string
}

const tektonNamespace = "tekton-pipelines"

// cacheDir is where scripts/install-kube.sh and scripts/install-controllers.sh put
// their builds.
func cacheDir() string {
	if d := os.Getenv("PIPEFN_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "pipefn")
}

func moduleDir(path string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(cacheDir(), "kube", "bin")
	}
	cluster.bin = os.Getenv("PIPEFN_CONTROLLERS_BIN")
	if cluster.bin == "" {
		cluster.bin = filepath.Join(cacheDir(), "ctrl", "bin")
	}
	for _, p := range []string{filepath.Join(assets, "kube-apiserver"), filepath.Join(assets, "etcd"),
		filepath.Join(cluster.bin, "tekton-controller"), filepath.Join(cluster.bin, "workflow-controller")} {
		if _, err := os.Stat(p); err != nil {
			cluster.skip = fmt.Sprintf("%s is missing: run make e2e-deps (scripts/install-kube.sh, scripts/install-controllers.sh)", p)
		}
	}
	if cluster.skip != "" {
		if os.Getenv("PIPEFN_REQUIRE_CONTROLLERS") != "" {
			fmt.Fprintln(os.Stderr, "tests/controllers:", cluster.skip)
			return 1
		}
		fmt.Fprintln(os.Stderr, "tests/controllers: SKIPPING the real-controller suite:", cluster.skip)
		return m.Run()
	}
	if err := setUp(assets); err != nil {
		fmt.Fprintln(os.Stderr, "tests/controllers:", err)
		stopAll()
		return 1
	}
	code := m.Run()
	stopAll()
	return code
}

// stopAll kills the controllers, stops the API server and removes the suite's files.
func stopAll() {
	for _, p := range procs {
		_ = p.Process.Kill()
	}
	stopEnv()
	if cluster.tmp != "" && os.Getenv("PIPEFN_E2E_KEEP") == "" {
		_ = os.RemoveAll(cluster.tmp)
	}
}

// setUp starts the API server with both engines' CRDs, the Tekton controller and the
// fake kubelet. Everything stops when the test binary exits (envtest's processes are
// stopped by stopAll; the controllers die with their context).
func setUp(assets string) error {
	tektonDir, err := moduleDir("github.com/tektoncd/pipeline")
	if err != nil {
		return err
	}
	cluster.argoDir, err = moduleDir("github.com/argoproj/argo-workflows/v3")
	if err != nil {
		return err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(tektonDir, "config", "300-crds"),
			filepath.Join(cluster.argoDir, "manifests", "base", "crds", "minimal"),
		},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	stopEnv = func() { _ = env.Stop() }
	user, err := env.AddUser(envtest.User{Name: "pipefn-e2e", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	if cluster.tmp, err = os.MkdirTemp("", "pipefn-e2e-"); err != nil {
		return err
	}
	cluster.kubeconfig = filepath.Join(cluster.tmp, "kubeconfig")
	if err := os.WriteFile(cluster.kubeconfig, kc, 0o600); err != nil {
		return err
	}
	cluster.cfg = user.Config()
	// The stand-in kubelet and the tests are not what is measured: lift client-go's
	// default 5 requests/s, which would make them the bottleneck of a busy suite.
	cluster.cfg.QPS, cluster.cfg.Burst = 1000, 2000
	if cluster.kube, err = kubernetes.NewForConfig(cluster.cfg); err != nil {
		return err
	}
	if cluster.argo, err = wfclient.NewForConfig(cluster.cfg); err != nil {
		return err
	}
	ctx := context.Background()

	launcher := filepath.Join(cluster.tmp, "launcher")
	build := exec.Command("go", "build", "-o", launcher, "github.com/pipefn/pipefn/cmd/launcher")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the launcher: %v\n%s", err, out)
	}
	cluster.kubelet = &Kubelet{Kube: cluster.kube, Argo: cluster.argo, Node: "pipefn-e2e-node", Launcher: launcher,
		WorkDir: filepath.Join(cluster.tmp, "pods"), Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := cluster.kubelet.Start(ctx); err != nil {
		return err
	}

	if err := createNamespace(ctx, tektonNamespace); err != nil {
		return err
	}
	if err := applyTektonConfig(ctx, tektonDir); err != nil {
		return err
	}
	cluster.tektonLog = filepath.Join(cluster.tmp, "tekton-controller.log")
	probes, profiling := freePort(), freePort()
	err = startProcess(cluster.tektonLog, filepath.Join(cluster.bin, "tekton-controller"), []string{
		"SYSTEM_NAMESPACE=" + tektonNamespace, "KUBECONFIG=" + cluster.kubeconfig,
		"CONFIG_DEFAULTS_NAME=config-defaults", "CONFIG_LOGGING_NAME=config-logging",
		"CONFIG_OBSERVABILITY_NAME=config-observability", "CONFIG_FEATURE_FLAGS_NAME=feature-flags",
		"CONFIG_LEADERELECTION_NAME=config-leader-election-controller", "CONFIG_SPIRE=config-spire",
		"METRICS_DOMAIN=tekton.dev/pipeline", "KUBERNETES_MIN_VERSION=v1.28.0",
		"PROBES_PORT=" + strconv.Itoa(probes), "PROFILING_PORT=" + strconv.Itoa(profiling),
	},
		// The images are never pulled here (the fake kubelet runs the launcher), but the
		// controller requires them to build pods.
		"-kubeconfig", cluster.kubeconfig,
		"-entrypoint-image", "ghcr.io/tektoncd/pipeline/entrypoint:v1.11.0",
		"-nop-image", "ghcr.io/tektoncd/pipeline/nop:v1.11.0",
		"-sidecarlogresults-image", "ghcr.io/tektoncd/pipeline/sidecarlogresults:v1.11.0",
		"-workingdirinit-image", "ghcr.io/tektoncd/pipeline/workingdirinit:v1.11.0",
		"-shell-image", "cgr.dev/chainguard/busybox",
		"-shell-image-win", "mcr.microsoft.com/powershell:nanoserver",
	)
	if err != nil {
		return fmt.Errorf("start the Tekton controller: %w", err)
	}
	return nil
}

// stopEnv stops the API server and etcd.
var stopEnv = func() {}

// procs are the controllers started; they are killed when the suite ends.
var procs []*exec.Cmd

func startProcess(logFile, bin string, env []string, args ...string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return err
	}
	procs = append(procs, cmd)
	go func() { _ = cmd.Wait(); _ = f.Close() }()
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func createNamespace(ctx context.Context, name string, sas ...string) error {
	if _, err := cluster.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	// No controller manager runs, so nothing creates ServiceAccounts.
	for _, sa := range append([]string{"default"}, sas...) {
		if _, err := cluster.kube.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("ServiceAccount %s/%s: %w", name, sa, err)
		}
	}
	return nil
}

// applyTektonConfig creates the module's own config/ ConfigMaps, with the feature flags
// pipefn's compiled PipelineRuns need (tekton.RequiredFeatureFlags, the same the infra
// sets) and metrics off (no port to collide on).
func applyTektonConfig(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "config", "config-*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no config maps in %s/config: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var cm corev1.ConfigMap
		if err := yaml.UnmarshalStrict(b, &cm); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if cm.Kind != "ConfigMap" {
			continue
		}
		cm.Namespace = tektonNamespace
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		switch cm.Name {
		case "feature-flags":
			for k, v := range tekton.RequiredFeatureFlags {
				cm.Data[k] = v
			}
		case "config-observability":
			cm.Data["metrics-protocol"] = "none"
			cm.Data["tracing-protocol"] = "none"
		}
		if _, err := cluster.kube.CoreV1().ConfigMaps(tektonNamespace).Create(ctx, &cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("config map %s: %w", cm.Name, err)
		}
	}
	return nil
}

// setTektonEventsSink points Tekton's CloudEvents at url (config-events `sink`), as
// pipefn's infra points them at the team's Broker; the controller reloads it live.
func setTektonEventsSink(ctx context.Context, url string) error {
	cms := cluster.kube.CoreV1().ConfigMaps(tektonNamespace)
	cm, err := cms.Get(ctx, "config-events", metav1.GetOptions{})
	if err != nil {
		return err
	}
	cm.Data["sink"] = url
	cm.Data["formats"] = "tektonv1"
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// tail returns the last n lines of a log file, for failure messages.
func tail(file string, n int) string {
	f, err := os.Open(file)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// waitFor polls fn until it returns nil or d passes.
func waitFor(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startArgo installs Argo's workflow-controller in the team's namespace, namespaced,
// as one light install per team: its ConfigMap (metrics off: no port to collide on)
// and the controller itself, stopped when the test ends.
func startArgo(t *testing.T, f *fixture) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "workflow-controller-configmap", Namespace: f.ns},
		Data: map[string]string{
			"metricsConfig":   "enabled: false\n",
			"telemetryConfig": "enabled: false\n",
		}}
	if _, err := cluster.kube.CoreV1().ConfigMaps(f.ns).Create(f.ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(cluster.tmp, "workflow-controller-"+f.ns+".log")
	f.logs = append(f.logs, logFile)
	f2, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(cluster.bin, "workflow-controller"),
		"--kubeconfig", cluster.kubeconfig, "--namespace", f.ns, "--namespaced", "--managed-namespace", f.ns,
		"--executor-image", "quay.io/argoproj/argoexec:v3.7.9", "--configmap", cm.Name, "--loglevel", "info")
	// Argo re-examines a running Workflow every DEFAULT_REQUEUE_TIME (10 s by default),
	// which sets the pace of every step; the suite runs it at 2 s
	// (PIPEFN_E2E_ARGO_REQUEUE=10s measures Argo's default).
	requeue := os.Getenv("PIPEFN_E2E_ARGO_REQUEUE")
	if requeue == "" {
		requeue = "2s"
	}
	cmd.Env = append(os.Environ(), "LEADER_ELECTION_IDENTITY=pipefn-e2e-"+f.ns, "LEADER_ELECTION_RETRY_PERIOD=1s",
		"DEFAULT_REQUEUE_TIME="+requeue)
	cmd.Stdout, cmd.Stderr = f2, f2
	if err := cmd.Start(); err != nil {
		t.Fatalf("start workflow-controller: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = f2.Close()
	})
}

// engineView shows how the engine itself saw a run (TaskRuns and their conditions, or
// the Workflow's nodes), for failure messages.
func engineView(engine string, r api.Run) string {
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: compile.LabelRunID + "=" + r.RunID}
	var b strings.Builder
	switch engine {
	case "tekton":
		tc, err := tektonclient.NewForConfig(cluster.cfg)
		if err != nil {
			return err.Error()
		}
		prs, err := tc.TektonV1().PipelineRuns("").List(ctx, sel)
		if err != nil {
			return err.Error()
		}
		for _, pr := range prs.Items {
			for _, c := range pr.Status.Conditions {
				fmt.Fprintf(&b, "PipelineRun %s: %s %s: %s\n", pr.Name, c.Status, c.Reason, c.Message)
			}
			for _, s := range pr.Status.SkippedTasks {
				fmt.Fprintf(&b, "  skipped %s: %s %v\n", s.Name, s.Reason, s.WhenExpressions)
			}
		}
		trs, err := tc.TektonV1().TaskRuns("").List(ctx, sel)
		if err != nil {
			return err.Error()
		}
		for _, tr := range trs.Items {
			for _, c := range tr.Status.Conditions {
				fmt.Fprintf(&b, "  TaskRun %s: %s %s: %.300s\n", tr.Name, c.Status, c.Reason, c.Message)
				if c.Status == "False" {
					fmt.Fprintf(&b, "    log: %.600s\n", cluster.kubelet.logOf(tr.Namespace, tr.Status.PodName, "step-main"))
				}
			}
			for _, res := range tr.Status.Results {
				fmt.Fprintf(&b, "    result %s = %.200s\n", res.Name, res.Value.StringVal+strings.Join(res.Value.ArrayVal, ","))
			}
		}
	case "argo":
		wfs, err := cluster.argo.ArgoprojV1alpha1().Workflows("").List(ctx, sel)
		if err != nil {
			return err.Error()
		}
		for _, wf := range wfs.Items {
			fmt.Fprintf(&b, "Workflow %s: %s: %s\n", wf.Name, wf.Status.Phase, wf.Status.Message)
			for _, n := range wf.Status.Nodes {
				fmt.Fprintf(&b, "  node %s (%s): %s: %.300s\n", n.DisplayName, n.Type, n.Phase, n.Message)
				if n.Phase == "Failed" || n.Phase == "Error" {
					fmt.Fprintf(&b, "    log: %.600s\n", cluster.kubelet.argoLog(n.ID))
				}
				if n.Outputs != nil {
					for _, p := range n.Outputs.Parameters {
						fmt.Fprintf(&b, "    output %s = %.200s\n", p.Name, p.Value)
					}
				}
			}
		}
	}
	return b.String()
}
