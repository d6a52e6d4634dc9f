package k8s_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/k8s"
)

// fixture is one `pipefn up --backend B --kubeconfig K` serving one team, whose
// namespace exists in the shared API server.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	ns   string
	srv  *allinone.Server
	api  *client.Client
	kube *k8s.Client
}

func newNamespace(t testing.TB, kube *k8s.Client) string {
	t.Helper()
	ns := "team-" + strings.ToLower(rand.Text()[:10])
	ctx := context.Background()
	if _, err := kube.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	// No controller manager runs, so nothing creates the default ServiceAccount.
	if _, err := kube.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create default ServiceAccount in %s: %v", ns, err)
	}
	return ns
}

func newKube(t testing.TB, opts k8s.Options) *k8s.Client {
	t.Helper()
	c, err := k8s.New(cluster.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func start(t *testing.T, backend string) *fixture {
	t.Helper()
	needCluster(t)
	kube := newKube(t, k8s.Options{})
	ns := newNamespace(t, kube)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := allinone.Start(ctx, allinone.Config{
		Addr: "127.0.0.1:0", Backend: backend, Kubeconfig: cluster.kubeconfig, Tick: -1, Team: ns,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatalf("pipefn up --backend %s: %v", backend, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait()
	})
	return &fixture{t: t, ctx: ctx, ns: ns, srv: srv, api: client.New(srv.URL, ""), kube: kube}
}

// helloIR is examples/hello-artifacts.yaml as JSON: two tasks, produce -> summarise.
func helloIR(t testing.TB) json.RawMessage {
	t.Helper()
	y, err := os.ReadFile("../../examples/hello-artifacts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (f *fixture) submit(name string) api.Run {
	f.t.Helper()
	r, err := f.api.CreateRun(f.ctx, &api.Run{DisplayName: name, PipelineSpec: helloIR(f.t)}, "")
	if err != nil {
		f.t.Fatalf("create run %s: %v", name, err)
	}
	return *r
}

// send posts a CloudEvent to pipefn's event endpoint, as a Knative Broker would.
func (f *fixture) send(typ string, data any, team string) {
	f.t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(rand.Text())
	e.SetType(typ)
	e.SetSource("tests/k8s")
	e.SetTime(time.Now())
	if team != "" {
		e.SetExtension(events.ExtTeam, team)
	}
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		f.t.Fatal(err)
	}
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(f.srv.URL + "/events"))
	if err != nil {
		f.t.Fatal(err)
	}
	if res := c.Send(f.ctx, e); !cloudevents.IsACK(res) {
		f.t.Fatalf("send %s: %v", typ, res)
	}
}

// tick sends the PingSource tick that drives the status function's resync.
func (f *fixture) tick() { f.t.Helper(); f.send(events.TypePing, map[string]string{}, "") }

// waitRun polls the run until ok holds; it fails the test with the last state seen.
func (f *fixture) waitRun(id string, what string, ok func(api.Run) bool) api.Run {
	f.t.Helper()
	var last api.Run
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := f.api.GetRun(f.ctx, id)
		if err != nil {
			f.t.Fatalf("get run %s: %v", id, err)
		}
		last = *r
		if ok(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(struct {
		State   string
		Attempt int
		Tasks   any
		Error   any
	}{last.State, last.Attempt, last.RunDetails, last.Error}, "", "  ")
	f.t.Fatalf("run %s: %s: not reached in 20s; last seen:\n%s", id, what, b)
	return last
}

func stateIs(s string) func(api.Run) bool { return func(r api.Run) bool { return r.State == s } }

// stays checks that the run's state holds for a while (a stale or duplicate event
// must change nothing).
func (f *fixture) stays(id, state string) {
	f.t.Helper()
	for range 10 {
		time.Sleep(40 * time.Millisecond)
		r, err := f.api.GetRun(f.ctx, id)
		if err != nil {
			f.t.Fatal(err)
		}
		if r.State != state {
			f.t.Fatalf("run %s moved to %s; want it to stay %s", id, r.State, state)
		}
	}
}

func task(r api.Run, id string) (api.TaskDetail, bool) {
	if r.RunDetails == nil {
		return api.TaskDetail{}, false
	}
	for _, t := range r.RunDetails.TaskDetails {
		if t.TaskID == id {
			return t, true
		}
	}
	return api.TaskDetail{}, false
}

func taskState(id, state string) func(api.Run) bool {
	return func(r api.Run) bool { t, ok := task(r, id); return ok && t.State == state }
}

func history(r api.Run) []string {
	var out []string
	for _, c := range r.StateHistory {
		out = append(out, c.State)
	}
	return out
}

// eventually polls fn until it returns nil.
func eventually(t testing.TB, what string, fn func() error) {
	t.Helper()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}
