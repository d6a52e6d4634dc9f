package allinone

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	compilefn "github.com/pipefn/pipefn/functions/compile/handler"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

func TestLauncherReport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		authn *auth.Authenticator
		want  compilefn.LauncherReport
	}{
		{name: "own address", cfg: Config{Addr: "10.0.0.5:8080", CacheMaxAge: time.Hour}, authn: auth.Off("t"),
			want: compilefn.LauncherReport{EventsURL: "http://10.0.0.5:8080/events", CacheURL: "http://10.0.0.5:8080", CacheMaxAge: time.Hour}},
		{name: "explicit URL", cfg: Config{Addr: "127.0.0.1:0", LauncherURL: "http://host.docker.internal:8080/"}, authn: auth.Off("t"),
			want: compilefn.LauncherReport{EventsURL: "http://host.docker.internal:8080/events", CacheURL: "http://host.docker.internal:8080"}},
		{name: "port unknown", cfg: Config{Addr: "127.0.0.1:0"}, authn: auth.Off("t")},
		{name: "authentication on", cfg: Config{Addr: "10.0.0.5:8080", LauncherURL: "http://x"}, authn: &auth.Authenticator{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, launcherReport(tc.cfg, tc.authn)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestLauncherTaskFinishedReachesStatus: a launcher's task.finished posted to /events
// reaches both the lineage function and the status function, which shows the task CACHED.
func TestLauncherTaskFinishedReachesStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := Start(ctx, Config{Addr: "127.0.0.1:0", RedisURL: "redis://" + redistest.StartServer(t).Addr(), DataDir: t.TempDir(), Tick: -1})
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := srv.Store.CreateRun(ctx, "default", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`), Backend: "tekton"}, state.CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	from := "exe-0123456789abcdef0123456789abcdef"
	e, err := events.NewTaskFinished(launch.EventSource, time.Now(), events.TaskFinished{RunID: run.RunID, Team: "default",
		Task: api.TaskDetail{RunID: run.RunID, TaskID: "train", State: api.StateCached, CachedFrom: from}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(e)
	resp, err := http.Post(srv.URL+"/events", "application/cloudevents+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /events: %s", resp.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := srv.Store.GetRun(ctx, "default", run.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if r.RunDetails != nil && len(r.RunDetails.TaskDetails) == 1 {
			td := r.RunDetails.TaskDetails[0]
			if diff := cmp.Diff([]string{"train", api.StateCached, from}, []string{td.TaskID, td.State, td.CachedFrom}); diff != "" {
				t.Errorf("task (-want +got):\n%s", diff)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the launcher's report never reached the run's tasks")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
