package controllers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/client"
)

// runTimeout bounds one run through a real controller: seconds of work, but the
// controllers' queues and the 2-core machine under a parallel `go test ./...` are slow.
const runTimeout = 3 * time.Minute

// fixture is one team: its namespace and a `pipefn up --backend B --kubeconfig K` that
// dispatches there and resyncs on a one-second tick.
type fixture struct {
	t   *testing.T
	ctx context.Context
	ns  string
	srv *allinone.Server
	api *client.Client
	// logs are the controller logs to show when the test fails.
	logs []string
}

func needCluster(tb testing.TB) {
	tb.Helper()
	if cluster.skip != "" {
		tb.Skip("SKIPPING: " + cluster.skip)
	}
}

func start(t *testing.T, backend string) *fixture {
	t.Helper()
	return startTick(t, backend, time.Second)
}

// startTick is start with pipefn's schedule and resync tick every tick (<0: none, so
// only the engines' own events move runs).
func startTick(t *testing.T, backend string, tick time.Duration) *fixture {
	t.Helper()
	needCluster(t)
	ns := "team-" + strings.ToLower(rand.Text()[:8])
	ctx, cancel := context.WithCancel(context.Background())
	if err := createNamespace(ctx, ns, "pipeline-runner"); err != nil {
		cancel()
		t.Fatal(err)
	}
	// A fixed port, so that pipefn up points the task pods' launchers at itself (its
	// /events and step-cache API), as a cluster install points them at the Broker and
	// the lineage function: the stand-in kubelet's processes reach it on loopback.
	srv, err := allinone.Start(ctx, allinone.Config{
		Addr: fmt.Sprintf("127.0.0.1:%d", freePort()), Backend: backend, Kubeconfig: cluster.kubeconfig, Tick: tick, Team: ns,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatalf("pipefn up --backend %s: %v", backend, err)
	}
	f := &fixture{t: t, ctx: ctx, ns: ns, srv: srv, api: client.New(srv.URL, "")}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range f.logs {
				t.Logf("last lines of %s:\n%s", filepath.Base(l), tail(l, 60))
			}
		}
		cancel()
		_ = srv.Wait()
	})
	return f
}

// corpus reads a file of the KFP IR corpus as JSON.
func corpus(t testing.TB, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "kfp-ir-corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (f *fixture) submit(name string, spec json.RawMessage, params map[string]any) api.Run {
	f.t.Helper()
	r := &api.Run{DisplayName: name, PipelineSpec: spec}
	if params != nil {
		r.RuntimeConfig = &api.RuntimeConfig{Parameters: params}
	}
	got, err := f.api.CreateRun(f.ctx, r, "")
	if err != nil {
		f.t.Fatalf("create run %s: %v", name, err)
	}
	return *got
}

// waitRun polls the run until ok holds and returns it; it fails with the last state.
func (f *fixture) waitRun(id, what string, ok func(api.Run) bool) api.Run {
	f.t.Helper()
	r, err := f.pollRun(id, what, ok)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// pollRun polls the run until ok holds, for runTimeout; its error shows the last state.
func (f *fixture) pollRun(id, what string, ok func(api.Run) bool) (api.Run, error) {
	var last api.Run
	deadline := time.Now().Add(runTimeout)
	for time.Now().Before(deadline) {
		r, err := f.api.GetRun(f.ctx, id)
		if err != nil {
			return last, fmt.Errorf("get run %s: %w", id, err)
		}
		last = *r
		if ok(last) {
			return last, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(struct {
		State   string
		Tasks   any
		Error   any
		History any
	}{last.State, last.RunDetails, last.Error, last.StateHistory}, "", "  ")
	return last, fmt.Errorf("run %s: %s: not reached in %s; last seen:\n%s", id, what, runTimeout, b)
}

func stateIs(states ...string) func(api.Run) bool {
	return func(r api.Run) bool {
		for _, s := range states {
			if r.State == s {
				return true
			}
		}
		return false
	}
}

func taskOf(r api.Run, id string) (api.TaskDetail, bool) {
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

func runStates(r api.Run) []string {
	var out []string
	for _, c := range r.StateHistory {
		out = append(out, c.State)
	}
	return out
}

// taskLog reads a task's log through pipefn, which reads the pod's log through the API
// server, which reads it from the (fake) kubelet.
func (f *fixture) taskLog(runID, task string) (string, error) {
	var b bytes.Buffer
	err := f.api.RunLog(f.ctx, runID, task, &b)
	return b.String(), err
}
