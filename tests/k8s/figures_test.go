package k8s_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	compilefn "github.com/pipefn/pipefn/functions/compile/handler"
	statusfn "github.com/pipefn/pipefn/functions/status/handler"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

// The figures of the closing note, against the real API server (about 20 s, so it runs
// in every `make test`; -v shows them):
//
//	go test -count=1 -run TestFigures -v ./tests/k8s
func TestFigures(t *testing.T) {
	needCluster(t)
	t.Run("dispatch", figureDispatch)
	t.Run("burst", figureBurst)
	t.Run("resync", figureResync)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// countingConfig counts the HTTP requests a client makes.
func countingConfig(n *atomic.Int64) *rest.Config {
	cfg := rest.CopyConfig(cluster.cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { n.Add(1); return rt.RoundTrip(r) })
	}
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// figureDispatch: event in (run.submitted handed to the compile function) to object
// created (the Create call answered), one submission at a time, with the create limiter
// out of the way so the figure is the pipeline's own cost: Redis read, IR load and bind,
// compile, Create.
func figureDispatch(t *testing.T) {
	const n = 200
	ctx := context.Background()
	st := state.New(redistest.Start(t), nil)
	kube, err := k8s.New(cluster.cfg, k8s.Options{QPS: 1000, Burst: 1000, CreatesPerSecond: 1e6, CreateBurst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, kube)
	h := &compilefn.Handler{Runs: st, Backends: compilefn.KubeBackends(kube, "", quiet()), DefaultBackend: "tekton",
		Source: "figures", Now: time.Now, Log: quiet()}
	spec := helloIR(t)
	for _, backend := range []string{"tekton", "argo"} {
		var lat []time.Duration
		for range n {
			run, _, err := st.CreateRun(ctx, ns, api.Run{DisplayName: "f", PipelineSpec: spec, Backend: backend}, state.CreateRunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e, err := events.NewRunSubmitted("figures", time.Now(), events.RunSubmitted{RunID: run.RunID, Team: ns, Backend: backend})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			reply, err := h.Submitted(ctx, e)
			d := time.Since(t0)
			if err != nil || reply == nil || reply.Type() != events.TypeRunDispatched {
				t.Fatalf("dispatch %s: %v %v", run.RunID, reply, err)
			}
			lat = append(lat, d)
		}
		slices.Sort(lat)
		t.Logf("dispatch latency %s (event in -> object created), %d runs one at a time: p50 %v p99 %v max %v",
			backend, n, lat[n/2].Round(100*time.Microsecond), lat[n*99/100].Round(100*time.Microsecond), lat[n-1].Round(100*time.Microsecond))
	}
}

// figureResync: the cost of one tick's resync with 1,000 active Tekton runs (each a
// running PipelineRun with two TaskRuns): API requests and wall time, for the first tick
// (every run moves to RUNNING and its tasks are written) and a steady one (nothing
// changed).
func figureResync(t *testing.T) {
	const n = 1000
	ctx := context.Background()
	st := state.New(redistest.Start(t), nil)
	setup, err := k8s.New(cluster.cfg, k8s.Options{QPS: 1000, Burst: 1000, CreatesPerSecond: 1e6, CreateBurst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, setup)
	spec := helloIR(t)
	pr0, _ := compiled(t, "template", ns)
	start := time.Now()
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		run, _, err := st.CreateRun(ctx, ns, api.Run{DisplayName: "r", PipelineSpec: spec, Backend: "tekton"}, state.CreateRunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sem <- struct{}{}
		go func(i int, runID string) {
			defer func() { <-sem }()
			errs <- populate(ctx, setup, ns, pr0, runID)
		}(i, run.RunID)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("setup: %d runs, %d PipelineRuns and %d TaskRuns with status in %v", n, n, 2*n, time.Since(start).Round(time.Millisecond))

	var calls atomic.Int64
	kube, err := k8s.New(countingConfig(&calls), k8s.Options{QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	h := &statusfn.Handler{Store: st, Observers: statusfn.KubeObservers(kube), Source: "figures", Log: quiet(), ResubmitAfter: time.Hour}
	for _, which := range []string{"first", "steady"} {
		calls.Store(0)
		e := cloudevents.NewEvent()
		e.SetID(which)
		e.SetType(events.TypePing)
		e.SetSource("figures")
		e.SetTime(time.Now())
		t0 := time.Now()
		if _, err := h.Tick(ctx, e); err != nil {
			t.Fatal(err)
		}
		t.Logf("resync of %d active runs (%s tick): %v, %d API requests", n, which, time.Since(t0).Round(time.Millisecond), calls.Load())
	}
	runs, _, err := st.ListRuns(ctx, ns, state.ListOptions{PageSize: 5}, state.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.State != api.StateRunning {
			t.Errorf("run %s is %s after the resync, want RUNNING", r.RunID, r.State)
		}
	}
}

// populate creates a run's PipelineRun with a running status and two TaskRuns.
func populate(ctx context.Context, kube *k8s.Client, ns string, tmpl *tektonv1.PipelineRun, runID string) error {
	pr := tmpl.DeepCopy()
	pr.Labels["pipefn.dev/run-id"] = runID
	name, _, err := kube.CreatePipelineRun(ctx, pr, k8s.Attempt{RunID: runID, Team: ns})
	if err != nil {
		return err
	}
	got, err := kube.Tekton.TektonV1().PipelineRuns(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	got.Status.StartTime = now()
	got.Status.Conditions = succeeded(corev1.ConditionUnknown, "Running", "")
	if _, err := kube.Tekton.TektonV1().PipelineRuns(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return err
	}
	for _, pt := range []string{"produce", "summarise"} {
		labels := map[string]string{"tekton.dev/pipelineRun": name, "tekton.dev/pipelineTask": pt}
		for k, v := range got.Labels {
			labels[k] = v
		}
		tr := &tektonv1.TaskRun{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-" + pt, Namespace: ns, Labels: labels, Annotations: got.Annotations},
			Spec:       tektonv1.TaskRunSpec{TaskSpec: &tektonv1.TaskSpec{Steps: []tektonv1.Step{{Name: "main", Image: "busybox"}}}},
		}
		tr, err := kube.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		tr.Status.PodName = tr.Name + "-pod"
		tr.Status.StartTime = now()
		tr.Status.Conditions = succeeded(corev1.ConditionUnknown, "Running", "")
		if _, err := kube.Tekton.TektonV1().TaskRuns(ns).UpdateStatus(ctx, tr, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// figureBurst: 100 submissions at once through the default limits (10 creates/s after a
// burst of 20): how long the burst takes to drain and the create rate the API server saw.
func figureBurst(t *testing.T) {
	const n = 100
	ctx := context.Background()
	st := state.New(redistest.Start(t), nil)
	kube, err := k8s.New(cluster.cfg, k8s.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, kube)
	h := &compilefn.Handler{Runs: st, Backends: compilefn.KubeBackends(kube, "", quiet()), DefaultBackend: "argo",
		Source: "figures", Now: time.Now, Log: quiet()}
	var evs []cloudevents.Event
	for range n {
		run, _, err := st.CreateRun(ctx, ns, api.Run{DisplayName: "b", PipelineSpec: helloIR(t), Backend: "argo"}, state.CreateRunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := events.NewRunSubmitted("figures", time.Now(), events.RunSubmitted{RunID: run.RunID, Team: ns, Backend: "argo"})
		evs = append(evs, e)
	}
	start := time.Now()
	done := make(chan time.Duration, n)
	for _, e := range evs {
		go func() {
			if _, err := h.Submitted(ctx, e); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
	}
	var lat []time.Duration
	for range n {
		lat = append(lat, <-done)
	}
	slices.Sort(lat)
	total := lat[n-1]
	t.Logf("burst of %d submissions under the default limits: drained in %v (%.1f creates/s); p50 %v p99 %v",
		n, total.Round(time.Millisecond), float64(n)/total.Seconds(), lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond))
	if total < 7*time.Second {
		t.Errorf("100 creates in %v: faster than 10/s after a burst of 20, the limiter is not applied", total)
	}
}
