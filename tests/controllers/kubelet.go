// Package controllers is pipefn's end-to-end suite against the real Tekton Pipelines
// controller and the real Argo workflow-controller, both reconciling against a real
// kube-apiserver and etcd (make e2e; see env_test.go). There is no container runtime
// here, so Kubelet plays the kubelet and the scheduler of one node: it binds pending
// pods to its node, runs their containers' commands as local processes (the launcher
// binary, which runs the task's own command), serves their logs to the API server, and
// reports their state the way the engines read it.
package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	wfclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// Container and label names the engines use (Tekton v1.11, Argo v3.7), as facts read
// from their sources: Tekton runs each step as a container named step-<name> whose
// command is its entrypoint binary with the step's own command after `-entrypoint X --`,
// and reads task results from the logs of its results sidecar as JSON lines; Argo runs
// the template's container as `main` behind `argoexec emissary ... --`, and a `wait`
// container reports the outputs as a WorkflowTaskResult named after the node.
const (
	tektonTaskRunLabel   = "tekton.dev/taskRun"
	tektonResultsSidecar = "sidecar-tekton-log-results"
	argoWorkflowLabel    = "workflows.argoproj.io/workflow"
	argoCompletedLabel   = "workflows.argoproj.io/report-outputs-completed"
	argoNodeIDEnv        = "ARGO_NODE_ID"
	argoTemplateEnv      = "ARGO_TEMPLATE"
	launcherInPod        = "/pipefn/launcher"
)

// Kubelet is the node agent of one fake node.
type Kubelet struct {
	Kube kubernetes.Interface
	Argo wfclient.Interface
	// Node is the node's name.
	Node string
	// Launcher is the launcher binary that stands for /pipefn/launcher in every pod.
	Launcher string
	// WorkDir holds each pod's directories (its /tekton, /tmp and mount roots).
	WorkDir string
	// Env is added to every process's environment (after the container's own).
	Env []string
	Log *slog.Logger

	srv     *httptest.Server
	mu      sync.Mutex
	logs    map[string]*bytes.Buffer // ns/pod/container -> output
	started map[types.UID]context.CancelFunc
	nodes   map[string]string // Argo node id -> ns/pod
	procs   map[string]int    // ns/pod/container -> process group of its running command
}

// Start registers the node, serves container logs and runs pods until ctx ends.
func (k *Kubelet) Start(ctx context.Context) error {
	k.logs = map[string]*bytes.Buffer{}
	k.started = map[types.UID]context.CancelFunc{}
	k.nodes = map[string]string{}
	k.procs = map[string]int{}
	// The API server proxies `pods/log` to the node's kubelet port over TLS; without
	// --kubelet-certificate-authority it does not verify the serving certificate.
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/", k.serveLogs)
	mux.HandleFunc("/exec/", k.serveExec)
	k.srv = httptest.NewUnstartedServer(mux)
	k.srv.StartTLS()
	context.AfterFunc(ctx, k.srv.Close)
	_, port, err := net.SplitHostPort(k.srv.Listener.Addr().String())
	if err != nil {
		return err
	}
	p, _ := strconv.Atoi(port)
	if err := k.registerNode(ctx, int32(p)); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(k.Kube, 0)
	inf := factory.Core().V1().Pods().Informer()
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.sync(ctx, obj) },
		UpdateFunc: func(_, obj any) { k.sync(ctx, obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				k.stop(pod.UID)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return nil
}

func (k *Kubelet) registerNode(ctx context.Context, port int32) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.Node, Labels: map[string]string{"kubernetes.io/hostname": k.Node, "kubernetes.io/os": "linux"}}}
	created, err := k.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("register node %s: %w", k.Node, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity, Phase: corev1.NodeRunning,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: "127.0.0.1"},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
		NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.35.4-pipefn-e2e"},
	}
	if _, err := k.Kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s status: %w", k.Node, err)
	}
	return nil
}

// sync binds an unscheduled pod to the node (the scheduler's part) and starts a pod
// bound to it once (the kubelet's part).
func (k *Kubelet) sync(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		if pod.Spec.NodeName == k.Node {
			// A graceful deletion: stop the containers, then remove the pod (a delete
			// with grace period 0), as a kubelet does.
			k.stop(pod.UID)
			go func() {
				err := k.Kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
					GracePeriodSeconds: ptr(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
					k.Log.Error("finish pod deletion", "pod", pod.Namespace+"/"+pod.Name, "err", err)
				}
			}()
		}
		return
	}
	if pod.Spec.NodeName == "" {
		err := k.Kube.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.Node},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			k.Log.Error("bind pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		return
	}
	if pod.Spec.NodeName != k.Node || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	k.mu.Lock()
	if _, seen := k.started[pod.UID]; seen {
		k.mu.Unlock()
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	k.started[pod.UID] = cancel
	k.mu.Unlock()
	go k.run(pctx, pod.DeepCopy())
}

func (k *Kubelet) stop(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cancel, ok := k.started[uid]; ok {
		cancel()
	}
}

// run is one pod's life: running, its containers in order, then its end.
func (k *Kubelet) run(ctx context.Context, pod *corev1.Pod) {
	log := k.Log.With("pod", pod.Namespace+"/"+pod.Name)
	dir := filepath.Join(k.WorkDir, pod.Namespace, pod.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Error("pod dir", "err", err)
		return
	}
	start := metav1.Now()
	status := corev1.PodStatus{
		Phase: corev1.PodRunning, StartTime: &start, HostIP: "127.0.0.1", PodIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: start}},
	}
	for _, c := range pod.Spec.InitContainers {
		status.InitContainerStatuses = append(status.InitContainerStatuses, terminated(c, 0, "", start, start))
	}
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, running(c, start))
	}
	if err := k.setStatus(ctx, pod, status); err != nil {
		log.Error("pod running", "err", err)
		return
	}
	var final corev1.PodStatus
	switch {
	case pod.Labels[tektonTaskRunLabel] != "":
		final = k.runTekton(ctx, pod, dir, status)
	case pod.Labels[argoWorkflowLabel] != "":
		final = k.runArgo(ctx, pod, dir, status)
	default:
		final = k.runPlain(ctx, pod, dir, status)
	}
	if ctx.Err() != nil {
		return // deleted while running: nobody reads its end
	}
	if err := k.setStatus(ctx, pod, final); err != nil {
		log.Error("pod end", "err", err)
		return
	}
	log.Debug("pod ended", "phase", final.Phase)
}

// runTekton runs the step containers in order (a failed step skips the rest, as
// Tekton's entrypoint does) and writes the task results as the results sidecar would
// print them.
func (k *Kubelet) runTekton(ctx context.Context, pod *corev1.Pod, dir string, st corev1.PodStatus) corev1.PodStatus {
	remap := map[string]string{"/tekton/": filepath.Join(dir, "tekton") + "/"}
	resultsDir := filepath.Join(dir, "tekton", "results")
	_ = os.MkdirAll(resultsDir, 0o755)
	failed := false
	var resultNames []string
	for i, c := range pod.Spec.Containers {
		if !strings.HasPrefix(c.Name, "step-") {
			continue
		}
		began := metav1.Now()
		if failed {
			st.ContainerStatuses[i] = terminated(c, 1, `[{"key":"StartedAt","value":"`+began.UTC().Format(time.RFC3339)+`","type":3}]`, began, began)
			continue
		}
		argv, results, err := tektonCommand(c)
		resultNames = append(resultNames, results...)
		code := 0
		if err != nil {
			k.appendLog(pod, c.Name, err.Error()+"\n")
			code = 127
		} else {
			code = k.exec(ctx, pod, c, argv, remap, dir)
		}
		msg := `[{"key":"StartedAt","value":"` + began.UTC().Format(time.RFC3339Nano) + `","type":3}]`
		st.ContainerStatuses[i] = terminated(c, int32(code), msg, began, metav1.Now())
		failed = code != 0
	}
	// The results sidecar prints one JSON line per result file; the controller reads
	// them through the API server's pods/log, which lands in serveLogs.
	for _, name := range resultNames {
		b, err := os.ReadFile(filepath.Join(resultsDir, name))
		if err != nil {
			continue
		}
		line, _ := json.Marshal(map[string]string{"name": name, "value": string(b), "type": "task"})
		k.appendLog(pod, tektonResultsSidecar, string(line)+"\n")
	}
	end := metav1.Now()
	for i, c := range pod.Spec.Containers {
		if !strings.HasPrefix(c.Name, "step-") {
			st.ContainerStatuses[i] = terminated(c, 0, "", *st.StartTime, end)
		}
	}
	return ended(st, failed)
}

// tektonCommand finds a step's own command inside Tekton's entrypoint invocation
// (`/tekton/bin/entrypoint ... -results a,b ... -entrypoint CMD -- ARGS`) and the task
// results the step may write.
func tektonCommand(c corev1.Container) (argv, results []string, err error) {
	args := append(append([]string(nil), c.Command...), c.Args...)
	cmd := ""
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-results":
			if i+1 < len(args) {
				results = strings.Split(args[i+1], ",")
			}
		case "-entrypoint":
			if i+1 < len(args) {
				cmd = args[i+1]
			}
		case "--":
			if cmd == "" {
				return nil, nil, fmt.Errorf("fake kubelet: step %s: no -entrypoint before --: %q", c.Name, args)
			}
			return append([]string{cmd}, args[i+1:]...), results, nil
		}
	}
	return nil, nil, fmt.Errorf("fake kubelet: step %s is not run by Tekton's entrypoint: %q", c.Name, args)
}

// runArgo runs `main` and reports its outputs as Argo's wait container does: a
// WorkflowTaskResult named after the node, marked complete.
func (k *Kubelet) runArgo(ctx context.Context, pod *corev1.Pod, dir string, st corev1.PodStatus) corev1.PodStatus {
	remap := map[string]string{"/tmp/": filepath.Join(dir, "tmp") + "/"}
	code := 0
	var tmpl wfv1.Template
	nodeID := ""
	// Argo gives the (simplified) template to the init containers only, the node id to
	// every container.
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, e := range c.Env {
			switch e.Name {
			case argoNodeIDEnv:
				nodeID = e.Value
			case argoTemplateEnv:
				if err := json.Unmarshal([]byte(e.Value), &tmpl); err != nil {
					k.appendLog(pod, "wait", "fake kubelet: "+argoTemplateEnv+": "+err.Error()+"\n")
				}
			}
		}
	}
	for i, c := range pod.Spec.Containers {
		if c.Name != "main" {
			continue
		}
		began := metav1.Now()
		argv, err := argoCommand(c)
		if err != nil {
			k.appendLog(pod, c.Name, err.Error()+"\n")
			code = 127
		} else {
			code = k.exec(ctx, pod, c, argv, remap, dir)
		}
		st.ContainerStatuses[i] = terminated(c, int32(code), "", began, metav1.Now())
	}
	k.mu.Lock()
	k.nodes[nodeID] = pod.Namespace + "/" + pod.Name
	k.mu.Unlock()
	if nodeID == "" {
		k.appendLog(pod, "wait", "fake kubelet: pod has no "+argoNodeIDEnv+"\n")
		code = 1
	} else if err := k.reportArgoOutputs(ctx, pod, nodeID, tmpl, remap, code); err != nil {
		k.appendLog(pod, "wait", "fake kubelet: "+err.Error()+"\n")
		code = 1
	}
	end := metav1.Now()
	for i, c := range pod.Spec.Containers {
		if c.Name != "main" {
			st.ContainerStatuses[i] = terminated(c, 0, "", *st.StartTime, end)
		}
	}
	return ended(st, code != 0)
}

// argoCommand finds the template's own command after `argoexec emissary ... --`.
func argoCommand(c corev1.Container) ([]string, error) {
	args := append(append([]string(nil), c.Command...), c.Args...)
	for i, a := range args {
		if a == "--" && i+1 < len(args) {
			return args[i+1:], nil
		}
	}
	return nil, fmt.Errorf("fake kubelet: container %s is not run by argoexec emissary: %q", c.Name, args)
}

func (k *Kubelet) reportArgoOutputs(ctx context.Context, pod *corev1.Pod, nodeID string, tmpl wfv1.Template, remap map[string]string, code int) error {
	exit := strconv.Itoa(code)
	out := wfv1.Outputs{ExitCode: &exit}
	if tmpl.Outputs.Parameters != nil && code == 0 {
		for _, p := range tmpl.Outputs.Parameters {
			if p.ValueFrom == nil || p.ValueFrom.Path == "" {
				continue
			}
			b, err := os.ReadFile(remapPath(p.ValueFrom.Path, remap))
			if err != nil {
				if p.ValueFrom.Default == nil {
					continue // Argo fails the node for a missing output; the launcher wrote all it had
				}
				b = []byte(p.ValueFrom.Default.String())
			}
			out.Parameters = append(out.Parameters, wfv1.Parameter{Name: p.Name, Value: wfv1.AnyStringPtr(string(b))})
		}
	}
	wf := pod.Labels[argoWorkflowLabel]
	var owner []metav1.OwnerReference
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Workflow" {
			owner = append(owner, metav1.OwnerReference{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID})
		}
	}
	tr := &wfv1.WorkflowTaskResult{
		ObjectMeta: metav1.ObjectMeta{Name: nodeID, Namespace: pod.Namespace, OwnerReferences: owner,
			Labels: map[string]string{argoWorkflowLabel: wf, argoCompletedLabel: "true"}},
		NodeResult: wfv1.NodeResult{Outputs: &out},
	}
	_, err := k.Argo.ArgoprojV1alpha1().WorkflowTaskResults(pod.Namespace).Create(ctx, tr, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("report outputs of node %s: %w", nodeID, err)
	}
	return nil
}

// runPlain runs any other pod's containers in order (none of pipefn's engines make
// them, but a pod left pending forever would hide a bug).
func (k *Kubelet) runPlain(ctx context.Context, pod *corev1.Pod, dir string, st corev1.PodStatus) corev1.PodStatus {
	failed := false
	for i, c := range pod.Spec.Containers {
		began := metav1.Now()
		code := k.exec(ctx, pod, c, append(append([]string(nil), c.Command...), c.Args...), nil, dir)
		st.ContainerStatuses[i] = terminated(c, int32(code), "", began, metav1.Now())
		failed = failed || code != 0
	}
	return ended(st, failed)
}

// exec runs one container command as a local process and returns its exit code. Only
// the launcher is runnable (it is what pipefn puts in every pod, and it runs the
// task's own command); `launcher copy` is the init step that places it, already done.
func (k *Kubelet) exec(ctx context.Context, pod *corev1.Pod, c corev1.Container, argv []string, remap map[string]string, dir string) int {
	if len(argv) >= 2 && argv[0] == "/launcher" && argv[1] == "copy" {
		return 0
	}
	// Steps that need no user image (loop items) run in the launcher's own image,
	// where the binary is /launcher.
	if len(argv) == 0 || (argv[0] != launcherInPod && argv[0] != "/launcher") {
		k.appendLog(pod, c.Name, fmt.Sprintf("fake kubelet: can only run %s, not %q\n", launcherInPod, argv))
		return 127
	}
	args := make([]string, 0, len(argv)-1)
	for _, a := range argv[1:] {
		args = append(args, remapPath(a, remap))
	}
	cmd := exec.CommandContext(ctx, k.Launcher, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	env := append(os.Environ(), "PIPEFN_MOUNT_ROOT="+filepath.Join(dir, "mnt"), "HOME="+dir)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+remapPath(e.Value, remap))
		case e.ValueFrom.FieldRef != nil:
			// The downward API, as the kubelet resolves it.
			if v, ok := fieldValue(pod, e.ValueFrom.FieldRef.FieldPath); ok {
				env = append(env, e.Name+"="+v)
			}
		}
	}
	cmd.Env = append(env, k.Env...)
	w := k.logWriter(pod, c.Name)
	cmd.Stdout, cmd.Stderr = w, w
	key := pod.Namespace + "/" + pod.Name + "/" + c.Name
	err := cmd.Start()
	if err == nil {
		k.mu.Lock()
		k.procs[key] = cmd.Process.Pid
		k.mu.Unlock()
		err = cmd.Wait()
		k.mu.Lock()
		delete(k.procs, key)
		k.mu.Unlock()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	default:
		fmt.Fprintf(w, "fake kubelet: %v\n", err)
		return 137
	}
}

// fieldValue resolves a downward-API field path of the pod.
func fieldValue(pod *corev1.Pod, path string) (string, bool) {
	for _, m := range []struct {
		prefix string
		from   map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if key, ok := strings.CutPrefix(path, m.prefix); ok {
			v, ok := m.from[strings.TrimSuffix(key, "']")]
			return v, ok
		}
	}
	switch path {
	case "metadata.name":
		return pod.Name, true
	case "metadata.namespace":
		return pod.Namespace, true
	case "metadata.uid":
		return string(pod.UID), true
	case "spec.nodeName":
		return pod.Spec.NodeName, true
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, true
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", true
	}
	return "", false
}

func remapPath(s string, remap map[string]string) string {
	for from, to := range remap {
		if strings.HasPrefix(s, from) {
			return to + strings.TrimPrefix(s, from)
		}
		if s == strings.TrimSuffix(from, "/") {
			return strings.TrimSuffix(to, "/")
		}
	}
	return s
}

// setStatus writes the pod's status on the pod's latest version.
func (k *Kubelet) setStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.Kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		cur.Status = st
		_, err = k.Kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func ended(st corev1.PodStatus, failed bool) corev1.PodStatus {
	st.Phase = corev1.PodSucceeded
	if failed {
		st.Phase = corev1.PodFailed
	}
	return st
}

func running(c corev1.Container, at metav1.Time) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "docker-pullable://" + c.Image, Ready: true, Started: ptr(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}}
}

func terminated(c corev1.Container, code int32, msg string, from, to metav1.Time) corev1.ContainerStatus {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "docker-pullable://" + c.Image, Started: ptr(false),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: msg, StartedAt: from, FinishedAt: to}}}
}

func ptr[T any](v T) *T { return &v }

// logWriter appends a container's output to its log.
func (k *Kubelet) logWriter(pod *corev1.Pod, container string) *logSink {
	return &logSink{k: k, key: pod.Namespace + "/" + pod.Name + "/" + container}
}

type logSink struct {
	k   *Kubelet
	key string
}

func (s *logSink) Write(p []byte) (int, error) {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	b, ok := s.k.logs[s.key]
	if !ok {
		b = &bytes.Buffer{}
		s.k.logs[s.key] = b
	}
	return b.Write(p)
}

func (k *Kubelet) appendLog(pod *corev1.Pod, container, s string) {
	_, _ = k.logWriter(pod, container).Write([]byte(s))
}

// serveExec plays the part of the kubelet's /exec/{ns}/{pod}/{container}?command=...
// that matters to the engines: Argo stops a terminated workflow's containers by exec'ing
// `argoexec kill SIGNAL 1` (or `kill`) into them. The signal is delivered to the
// container's process group; the streaming exec session itself (SPDY or WebSocket) is
// not served, so the caller sees the upgrade refused after the signal took effect.
func (k *Kubelet) serveExec(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/exec/")
	if len(strings.Split(rest, "/")) != 3 {
		http.NotFound(w, r)
		return
	}
	argv := r.URL.Query()["command"]
	sig := 0
	switch {
	case len(argv) == 4 && strings.HasSuffix(argv[0], "argoexec") && argv[1] == "kill":
		sig, _ = strconv.Atoi(argv[2])
	case len(argv) == 3 && argv[0] == "kill" && strings.HasPrefix(argv[1], "-"):
		sig, _ = strconv.Atoi(strings.TrimPrefix(argv[1], "-"))
	}
	k.mu.Lock()
	pid, running := k.procs[rest]
	k.mu.Unlock()
	k.Log.Info("exec", "container", rest, "command", argv, "signal", sig, "running", running)
	if sig <= 0 {
		http.Error(w, "the stand-in kubelet runs no exec sessions but kill signals", http.StatusNotImplemented)
		return
	}
	if running {
		_ = syscall.Kill(-pid, syscall.Signal(sig))
	}
	http.Error(w, "signal delivered; exec streams are not served by the stand-in kubelet", http.StatusNotImplemented)
}

// serveLogs answers the kubelet's /containerLogs/{ns}/{pod}/{container}, which the API
// server calls for `pods/log`.
func (k *Kubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/containerLogs/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	k.mu.Lock()
	b, ok := k.logs[rest]
	var out []byte
	if ok {
		out = append(out, b.Bytes()...)
	}
	k.mu.Unlock()
	if !ok {
		// A container that printed nothing has an empty log, not a missing one.
		w.Header().Set("Content-Type", "text/plain")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(out)
}

// argoLog is what the main container of an Argo node's pod printed.
func (k *Kubelet) argoLog(nodeID string) string {
	k.mu.Lock()
	pod := k.nodes[nodeID]
	k.mu.Unlock()
	ns, name, _ := strings.Cut(pod, "/")
	return k.logOf(ns, name, "main")
}

// logOf is what a container printed so far.
func (k *Kubelet) logOf(ns, pod, container string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if b, ok := k.logs[ns+"/"+pod+"/"+container]; ok {
		return b.String()
	}
	return ""
}
