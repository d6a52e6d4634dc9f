// Package tenancy tries every route, webhook and event entry of `pipefn up` with another
// team's token and the first team's ids, and asserts that nothing leaks: every such
// request answers like a missing resource (404, or a list without the other team's ids),
// never 403, never data, and nothing of the first team changes.
package tenancy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/functions/submit/handler"
	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/auth"
	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

type env struct {
	url    string
	tokens map[string]string // team/role -> token
}

func start(t *testing.T) *env {
	t.Helper()
	redisURL := "redis://" + redistest.StartServer(t).Addr()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := state.Open(ctx, redisURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{tokens: map[string]string{}}
	for _, team := range []string{"red", "blue"} {
		if _, err := st.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
		for _, r := range []auth.Role{auth.RoleViewer, auth.RoleEditor, auth.RoleAdmin} {
			tok, _, err := auth.Issue(ctx, st, team, r, "tenancy")
			if err != nil {
				t.Fatal(err)
			}
			e.tokens[team+"/"+r.String()] = tok
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := allinone.Start(ctx, allinone.Config{Addr: "127.0.0.1:0", RedisURL: redisURL, DataDir: t.TempDir(),
		Tick: 200 * time.Millisecond, Log: log, Auth: &auth.Authenticator{Tokens: auth.FromStore(st)}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			t.Errorf("pipefn up stopped with %v", err)
		}
	})
	e.url = srv.URL
	return e
}

type answer struct {
	status int
	body   string
}

func (e *env) do(t *testing.T, token, method, path string, hdr map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil && hdr["Content-Type"] == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Streams (run events) stay open; what arrives in a moment is enough to check.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{resp.StatusCode, string(b)}
}

func (e *env) json(t *testing.T, token, method, path string, in any, out any) {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	a := e.do(t, token, method, path, nil, body)
	if a.status != 200 {
		t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(a.body), out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// red is what the first team owns.
type red struct {
	pipeline, version, experiment, run, recurring, trigger, artifact, node string
	spec                                                                   string // the IR as JSON, for inline runs
	token                                                                  string // a token id (hash prefix)
	ids                                                                    []string
}

const secret = "red-team-webhook-secret-0123"

func (e *env) seed(t *testing.T) red {
	t.Helper()
	ctx := context.Background()
	admin := e.tokens["red/admin"]
	ir, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello-artifacts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(e.url, admin)
	p, err := c.UploadPipeline(ctx, "red-hello", "", ir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.UploadVersion(ctx, p.PipelineID, "red-v2", ir)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := c.CreateExperiment(ctx, "red-exp", "")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.YAMLToJSON(ir)
	if err != nil {
		t.Fatal(err)
	}
	r := red{pipeline: p.PipelineID, version: v.PipelineVersionID, experiment: exp.ExperimentID, spec: string(spec)}
	run, err := c.CreateRun(ctx, &api.Run{DisplayName: "red-run", ExperimentID: r.experiment,
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: r.pipeline, PipelineVersionID: r.version}}, "")
	if err != nil {
		t.Fatal(err)
	}
	r.run = run.RunID
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := c.GetRun(ctx, r.run)
		if err != nil {
			t.Fatal(err)
		}
		if api.Terminal(got.State) {
			if got.State != api.StateSucceeded {
				t.Fatalf("red's run ended %s", got.State)
			}
			if got.RunDetails != nil {
				for _, td := range got.RunDetails.TaskDetails {
					if r.node == "" && td.PodName == "" {
						r.node = td.TaskID
					}
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("red's run did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var arts struct {
		Artifacts []struct {
			ArtifactID string `json:"artifact_id"`
		} `json:"artifacts"`
	}
	e.json(t, admin, "GET", "/apis/v2beta1/runs/"+r.run+"/artifacts", nil, &arts)
	if len(arts.Artifacts) == 0 {
		t.Fatal("red's run has no artifacts")
	}
	r.artifact = arts.Artifacts[0].ArtifactID
	var rr api.RecurringRun
	e.json(t, admin, "POST", "/apis/v2beta1/recurringruns", map[string]any{"display_name": "red-nightly",
		"pipeline_version_reference": map[string]string{"pipeline_id": r.pipeline},
		"trigger":                    map[string]any{"cron_schedule": map[string]string{"cron": "0 3 * * *"}}, "mode": "ENABLE"}, &rr)
	r.recurring = rr.RecurringRunID
	var tr handler.TriggerAnswer
	e.json(t, admin, "POST", "/apis/v2beta1/triggers", map[string]any{"kind": "webhook", "pipeline_id": r.pipeline, "secret": secret}, &tr)
	r.trigger = tr.TriggerID
	var tok map[string]any
	e.json(t, admin, "POST", "/apis/v2beta1/tokens", map[string]string{"role": "viewer", "name": "red-dashboards"}, &tok)
	r.token, _ = tok["token_id"].(string)
	if tok["token"] == nil || r.token != auth.HashToken(tok["token"].(string))[:16] {
		t.Fatalf("token answer: %v", tok)
	}
	r.ids = []string{r.pipeline, r.version, r.experiment, r.run, r.recurring, r.trigger, r.artifact, r.token,
		"red-hello", "red-exp", "red-run", "red-nightly", "red-dashboards"}
	for _, id := range r.ids {
		if id == "" {
			t.Fatalf("seeding left an empty id: %+v", r)
		}
	}
	return r
}

func TestNothingLeaks(t *testing.T) {
	e := start(t)
	r := e.seed(t)
	p := "/apis/v2beta1"
	const (
		missing = iota // 404 and no red id in the body
		list           // 200 and no red id in the body
	)
	type call struct {
		method, path string
		body         string
		want         int
	}
	calls := []call{
		{"GET", p + "/pipelines", "", list},
		{"GET", p + "/pipelines/" + r.pipeline, "", missing},
		{"DELETE", p + "/pipelines/" + r.pipeline, "", missing},
		{"POST", p + "/pipelines/" + r.pipeline + "/versions", `{"display_name":"x","package_url":{"pipeline_url":"http://example.invalid/x.yaml"}}`, missing},
		{"GET", p + "/pipelines/" + r.pipeline + "/versions", "", missing},
		{"GET", p + "/pipelines/" + r.pipeline + "/versions/" + r.version, "", missing},
		{"DELETE", p + "/pipelines/" + r.pipeline + "/versions/" + r.version, "", missing},
		{"GET", p + "/experiments", "", list},
		{"GET", p + "/experiments/" + r.experiment, "", missing},
		{"POST", p + "/experiments/" + r.experiment + ":archive", "", missing},
		{"POST", p + "/experiments/" + r.experiment + ":unarchive", "", missing},
		{"POST", p + "/runs", `{"display_name":"x","pipeline_version_reference":{"pipeline_id":"` + r.pipeline + `"}}`, missing},
		{"POST", p + "/runs", `{"display_name":"x","experiment_id":"` + r.experiment + `","pipeline_spec":` + r.spec + `}`, missing},
		{"GET", p + "/runs", "", list},
		{"GET", p + "/runs?experiment_id=" + r.experiment, "", list},
		{"GET", p + "/runs/" + r.run, "", missing},
		{"GET", p + "/runs/" + r.run + "/events", "", missing},
		{"GET", p + "/runs/" + r.run + "/nodes/" + r.node + "/log", "", missing},
		{"POST", p + "/runs/" + r.run + ":terminate", "", missing},
		{"POST", p + "/runs/" + r.run + ":retry", "", missing},
		{"POST", p + "/runs/" + r.run + ":archive", "", missing},
		{"POST", p + "/runs/" + r.run + ":unarchive", "", missing},
		{"POST", p + "/runs/" + r.run + ":clone", "", missing},
		{"GET", p + "/runs/" + r.run + "/artifacts", "", missing},
		{"GET", p + "/runs/" + r.run + "/metrics", "", missing},
		{"GET", p + "/runs:compare?run_ids=" + r.run, "", missing},
		{"GET", p + "/artifacts/" + r.artifact, "", missing},
		{"GET", p + "/artifacts/" + r.artifact + "/lineage", "", missing},
		{"GET", p + "/recurringruns", "", list},
		{"GET", p + "/recurringruns/" + r.recurring, "", missing},
		{"POST", p + "/recurringruns/" + r.recurring + ":disable", "", missing},
		{"DELETE", p + "/recurringruns/" + r.recurring, "", missing},
		{"GET", p + "/triggers", "", list},
		{"GET", p + "/triggers/" + r.trigger, "", missing},
		{"DELETE", p + "/triggers/" + r.trigger, "", missing},
		{"GET", p + "/tokens", "", list},
		{"DELETE", p + "/tokens/" + r.token, "", missing},
	}
	blue := e.tokens["blue/admin"]
	// twin replaces red's ids with ids that never existed, of the same shape.
	fakes := map[string]string{}
	for i, id := range r.ids {
		fakes[id] = fmt.Sprintf("%s%0*d", id[:min(len(id), 4)], max(len(id)-4, 1), i)
	}
	twin := func(s string) string {
		for id, f := range fakes {
			s = strings.ReplaceAll(s, id, f)
		}
		return s
	}
	// normal hides ids (real or fake) so that two answers compare by everything else.
	normal := func(s string) string {
		for id, f := range fakes {
			s = strings.ReplaceAll(strings.ReplaceAll(s, id, "<ID>"), f, "<ID>")
		}
		return s
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var body, fakeBody []byte
			if c.body != "" {
				body, fakeBody = []byte(c.body), []byte(twin(c.body))
			}
			a := e.do(t, blue, c.method, c.path, nil, body)
			switch c.want {
			case missing:
				// Exactly what a never-existing id gets.
				f := e.do(t, blue, c.method, twin(c.path), nil, fakeBody)
				if a.status != f.status || normal(a.body) != normal(f.body) {
					t.Errorf("red's id and a made-up id answer differently:\n red's: %d %.300s\n fake:  %d %.300s", a.status, a.body, f.status, f.body)
				}
				if a.status/100 == 2 && c.method != "GET" {
					t.Errorf("blue's %s succeeded: %d %.300s", c.method, a.status, a.body)
				}
				if a.status == http.StatusForbidden {
					t.Errorf("403 tells blue that red's resource exists")
				}
			case list:
				if a.status != http.StatusOK {
					t.Errorf("blue got %d, want 200: %.300s", a.status, a.body)
				}
				for _, id := range r.ids {
					if strings.Contains(a.body, id) {
						t.Errorf("blue's list names red's %q: %.300s", id, a.body)
					}
				}
			}
			// Without a token: 401 before anything else.
			if a := e.do(t, "", c.method, c.path, nil, body); a.status != http.StatusUnauthorized {
				t.Errorf("no token: %d, want 401", a.status)
			}
		})
	}

	// Webhooks: red's trigger cannot be reached through blue's path, and nothing signed
	// without red's secret gets in.
	t.Run("webhooks", func(t *testing.T) {
		body := []byte(`{"x":1}`)
		ts := fmt.Sprint(time.Now().Unix())
		good := map[string]string{handler.HeaderTimestamp: ts, handler.HeaderSignature: "v1=" + handler.SignHMAC(secret, []byte(ts), []byte("."), body)}
		forged := map[string]string{handler.HeaderTimestamp: ts, handler.HeaderSignature: "v1=" + handler.SignHMAC("blue-guesses-a-secret-000", []byte(ts), []byte("."), body)}
		for name, c := range map[string]struct {
			path string
			hdr  map[string]string
		}{
			"red's trigger under blue": {handler.HookPath("blue", r.trigger), good},
			"forged signature":         {handler.HookPath("red", r.trigger), forged},
			"unknown trigger":          {handler.HookPath("red", "nope"), good},
		} {
			if a := e.do(t, blue, "POST", c.path, c.hdr, body); a.status != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401: %s", name, a.status, a.body)
			}
		}
	})

	// Events: blue may not post into red's team, nor post pipefn's internal events.
	t.Run("events", func(t *testing.T) {
		ce := func(typ, team string) map[string]string {
			h := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e-" + typ, "Ce-Source": "tenancy", "Ce-Type": typ, "Content-Type": "application/json"}
			if team != "" {
				h["Ce-Pfteam"] = team
			}
			return h
		}
		for name, c := range map[string]struct {
			hdr  map[string]string
			want int
		}{
			"into red":        {ce("com.example.built", "red"), http.StatusNotFound},
			"run status":      {ce("dev.pipefn.run.status.v1", ""), http.StatusForbidden},
			"tekton":          {ce("dev.tekton.event.pipelinerun.successful.v1", ""), http.StatusForbidden},
			"viewer may not":  {ce("com.example.built", ""), http.StatusForbidden},
			"no token at all": {ce("com.example.built", ""), http.StatusUnauthorized},
		} {
			tok := blue
			switch name {
			case "viewer may not":
				tok = e.tokens["blue/viewer"]
			case "no token at all":
				tok = ""
			}
			body := []byte(`{"run_id":"` + r.run + `","team":"red","state":"FAILED"}`)
			if a := e.do(t, tok, "POST", "/events", c.hdr, body); a.status != c.want {
				t.Errorf("%s: %d, want %d: %s", name, a.status, c.want, a.body)
			}
		}
	})

	// Roles inside a team: a viewer reads but does not write; an editor does not manage
	// triggers.
	t.Run("roles", func(t *testing.T) {
		if a := e.do(t, e.tokens["red/viewer"], "GET", p+"/runs/"+r.run, nil, nil); a.status != 200 {
			t.Errorf("red viewer reading red's run: %d", a.status)
		}
		if a := e.do(t, e.tokens["red/viewer"], "POST", p+"/runs/"+r.run+":archive", nil, nil); a.status != 403 {
			t.Errorf("red viewer archiving: %d, want 403", a.status)
		}
		if a := e.do(t, e.tokens["red/editor"], "GET", p+"/triggers", nil, nil); a.status != 403 {
			t.Errorf("red editor listing triggers: %d, want 403", a.status)
		}
		if a := e.do(t, e.tokens["red/editor"], "POST", p+"/tokens", nil, []byte(`{"role":"admin"}`)); a.status != 403 {
			t.Errorf("red editor issuing an admin token: %d, want 403", a.status)
		}
		// A token issued over REST works at once and stops at once when revoked.
		var tok map[string]string
		e.json(t, e.tokens["red/admin"], "POST", p+"/tokens", map[string]string{"role": "editor"}, &tok)
		if a := e.do(t, tok["token"], "GET", p+"/runs/"+r.run, nil, nil); a.status != 200 {
			t.Errorf("new token: %d", a.status)
		}
		e.json(t, e.tokens["red/admin"], "DELETE", p+"/tokens/"+tok["token_id"], nil, nil)
		if a := e.do(t, tok["token"], "GET", p+"/runs/"+r.run, nil, nil); a.status != 401 {
			t.Errorf("revoked token: %d, want 401", a.status)
		}
	})

	// Nothing of red's changed.
	t.Run("red intact", func(t *testing.T) {
		admin := e.tokens["red/admin"]
		var run api.Run
		e.json(t, admin, "GET", p+"/runs/"+r.run, nil, &run)
		if run.State != api.StateSucceeded || run.StorageState != api.StorageAvailable {
			t.Errorf("red's run: %s %s", run.State, run.StorageState)
		}
		var exp api.Experiment
		e.json(t, admin, "GET", p+"/experiments/"+r.experiment, nil, &exp)
		if exp.StorageState != api.StorageAvailable {
			t.Errorf("red's experiment: %s", exp.StorageState)
		}
		var rr api.RecurringRun
		e.json(t, admin, "GET", p+"/recurringruns/"+r.recurring, nil, &rr)
		if rr.Status != api.StatusEnabled {
			t.Errorf("red's recurring run: %s", rr.Status)
		}
		e.json(t, admin, "GET", p+"/pipelines/"+r.pipeline+"/versions/"+r.version, nil, nil)
		e.json(t, admin, "GET", p+"/triggers/"+r.trigger, nil, nil)
		var toks map[string]any
		e.json(t, admin, "GET", p+"/tokens", nil, &toks)
		if !strings.Contains(fmt.Sprint(toks), r.token) {
			t.Errorf("red's token %s is gone: %v", r.token, toks)
		}
		var runs struct {
			Runs []api.Run `json:"runs"`
		}
		e.json(t, admin, "GET", p+"/runs", nil, &runs)
		if len(runs.Runs) != 1 {
			t.Errorf("red has %d runs, want 1 (blue created none in red)", len(runs.Runs))
		}
	})
}
