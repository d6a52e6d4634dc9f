package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

// recorder is the event transport of these tests: it keeps what was sent.
type recorder struct {
	mu  sync.Mutex
	got []cloudevents.Event
}

func (r *recorder) Send(_ context.Context, e cloudevents.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	return nil
}

type triggerEnv struct {
	st       *state.Store
	tr       *Triggers
	srv      *httptest.Server
	pipeline api.Pipeline
	chat     chan ChatAnswer
	sent     *recorder
}

const team = "red"

func newTriggerEnv(t testing.TB) *triggerEnv {
	t.Helper()
	st := state.New(redistest.Start(t), nil)
	ir, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "hello-artifacts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := st.CreatePipeline(ctx, team, api.Pipeline{DisplayName: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreatePipelineVersion(ctx, team, api.PipelineVersion{PipelineID: p.PipelineID, DisplayName: "v1"}, ir); err != nil {
		t.Fatal(err)
	}
	env := &triggerEnv{st: st, pipeline: p, chat: make(chan ChatAnswer, 10), sent: &recorder{}}
	chatSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a ChatAnswer
		_ = json.NewDecoder(r.Body).Decode(&a)
		env.chat <- a
	}))
	t.Cleanup(chatSrv.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &Handler{Store: st, Events: env.sent, TeamOf: func(*http.Request) (string, error) { return team, nil },
		DefaultBackend: "local", Backends: []string{"local"}, Source: "test/submit", Log: log, Team: team}
	env.tr = h.Triggers()
	env.tr.MaxBody = 64 << 10
	env.tr.AllowResponseURL = func(u string) bool { return strings.HasPrefix(u, chatSrv.URL) }
	mux := http.NewServeMux()
	h.Routes(mux) // mounts the triggers too
	env.srv = httptest.NewServer(mux)
	t.Cleanup(env.srv.Close)
	return env
}

func (e *triggerEnv) trigger(t testing.TB, tr state.Trigger) state.Trigger {
	t.Helper()
	created, err := e.st.CreateTrigger(context.Background(), team, tr)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// runs waits for pending submissions and lists the team's runs.
func (e *triggerEnv) runs(t testing.TB) []api.Run {
	t.Helper()
	if err := e.tr.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	runs, _, err := e.st.ListRuns(context.Background(), team, state.ListOptions{PageSize: 100}, state.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func (e *triggerEnv) post(t testing.TB, path string, hdr map[string]string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func params(r api.Run) map[string]any {
	if r.RuntimeConfig == nil {
		return nil
	}
	return r.RuntimeConfig.Parameters
}

const secret = "s3cr3t-webhook-key-0123456789"

func TestGitHubWebhook(t *testing.T) {
	env := newTriggerEnv(t)
	tr := env.trigger(t, state.Trigger{Kind: state.TriggerGitHub, PipelineID: env.pipeline.PipelineID, Secret: secret,
		Parameters: map[string]string{"message": "sha", "count": "number"}})
	push, _ := os.ReadFile("testdata/github-push.json")
	pr, _ := os.ReadFile("testdata/github-pull_request.json")
	closed := bytes.Replace(pr, []byte(`"action": "opened"`), []byte(`"action": "closed"`), 1)
	sign := func(b []byte) string { return "sha256=" + SignHMAC(secret, b) }
	hook := HookPath(team, tr.TriggerID)
	hdr := func(event, delivery, sig string) map[string]string {
		return map[string]string{HeaderGitHubEvent: event, HeaderGitHubDelivery: delivery, HeaderGitHubSignature: sig}
	}
	for _, tc := range []struct {
		name   string
		path   string
		hdr    map[string]string
		body   []byte
		status int
		runs   int // total runs of the team after the request
	}{
		{"bad signature", hook, hdr("push", "d1", sign([]byte("other"))), push, 401, 0},
		{"no signature", hook, hdr("push", "d1", ""), push, 401, 0},
		{"sha1 signature", hook, hdr("push", "d1", "sha1="+SignHMAC(secret, push)), push, 401, 0},
		{"wrong secret", hook, hdr("push", "d1", "sha256="+SignHMAC("another-secret-entirely", push)), push, 401, 0},
		{"unknown trigger", HookPath(team, "nope"), hdr("push", "d1", sign(push)), push, 401, 0},
		{"another team's path", HookPath("blue", tr.TriggerID), hdr("push", "d1", sign(push)), push, 401, 0},
		{"oversized", hook, hdr("push", "d1", sign(bytes.Repeat([]byte(" "), 65<<10))), bytes.Repeat([]byte(" "), 65<<10), 413, 0},
		{"ping", hook, hdr("ping", "d0", sign([]byte(`{"zen":"x"}`))), []byte(`{"zen":"x"}`), 200, 0},
		{"issues are not wanted", hook, hdr("issues", "d2", sign(push)), push, 200, 0},
		{"closed pull request", hook, hdr("pull_request", "d3", sign(closed)), closed, 200, 0},
		{"push", hook, hdr("push", "d4", sign(push)), push, 202, 1},
		{"redelivered push", hook, hdr("push", "d4", sign(push)), push, 202, 1},
		{"pull request", hook, hdr("pull_request", "d5", sign(pr)), pr, 202, 2},
		{"signed garbage", hook, hdr("push", "d6", sign([]byte("{"))), []byte("{"), 400, 2},
		{"no delivery id", hook, hdr("push", "", sign(push)), push, 400, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := env.post(t, tc.path, tc.hdr, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			if strings.Contains(body, secret) {
				t.Errorf("answer carries the secret: %s", body)
			}
			if n := len(env.runs(t)); n != tc.runs {
				t.Errorf("team has %d runs, want %d", n, tc.runs)
			}
		})
	}
	got := map[string]map[string]any{}
	for _, r := range env.runs(t) {
		got[r.DisplayName] = params(r)
	}
	want := map[string]map[string]any{
		"acme/models main@0d1a26e":     {"message": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		"acme/models lr-sweep@ec26c3e": {"message": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "count": float64(42)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	// A redelivery announces a still-PENDING run again (SubmitRun heals a lost
	// announcement that way); the event id is the same, so downstream dedupe drops it.
	ids := map[string]bool{}
	for _, e := range env.sent.got {
		ids[e.ID()] = true
	}
	if len(ids) != 2 {
		t.Errorf("%d distinct run.submitted events, want 2", len(ids))
	}
}

func TestGenericWebhook(t *testing.T) {
	env := newTriggerEnv(t)
	tr := env.trigger(t, state.Trigger{Kind: state.TriggerWebhook, PipelineID: env.pipeline.PipelineID, Secret: secret,
		Parameters: map[string]string{"message": "image.tag"}})
	body := []byte(`{"image":{"repo":"ghcr.io/acme/trainer","tag":"v1.4.2"}}`)
	hook := HookPath(team, tr.TriggerID)
	now := time.Now()
	signed := func(at time.Time, b []byte) map[string]string {
		ts := strconv.FormatInt(at.Unix(), 10)
		return map[string]string{HeaderTimestamp: ts, HeaderSignature: "v1=" + SignHMAC(secret, []byte(ts), []byte("."), b)}
	}
	fresh := signed(now, body)
	tampered := map[string]string{HeaderTimestamp: strconv.FormatInt(now.Unix()+1, 10), HeaderSignature: fresh[HeaderSignature]}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   []byte
		status int
		runs   int
	}{
		{"unsigned", nil, body, 401, 0},
		{"bad signature", map[string]string{HeaderTimestamp: fresh[HeaderTimestamp], HeaderSignature: "v1=00"}, body, 401, 0},
		{"timestamp changed", tampered, body, 401, 0},
		{"body changed", fresh, []byte(`{"image":{"tag":"evil"}}`), 401, 0},
		{"expired", signed(now.Add(-6*time.Minute), body), body, 401, 0},
		{"from the future", signed(now.Add(6*time.Minute), body), body, 401, 0},
		{"oversized", signed(now, bytes.Repeat([]byte("x"), 65<<10)), bytes.Repeat([]byte("x"), 65<<10), 413, 0},
		{"not an object", signed(now, []byte(`[1,2]`)), []byte(`[1,2]`), 400, 0},
		{"good", fresh, body, 202, 1},
		{"replayed", fresh, body, 202, 1},
		{"another delivery", signed(now.Add(-time.Second), body), body, 202, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := env.post(t, hook, tc.hdr, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, answer, tc.status)
			}
			if n := len(env.runs(t)); n != tc.runs {
				t.Errorf("team has %d runs, want %d", n, tc.runs)
			}
		})
	}
	for _, r := range env.runs(t) {
		if diff := cmp.Diff(map[string]any{"message": "v1.4.2"}, params(r)); diff != "" {
			t.Errorf("run parameters (-want +got):\n%s", diff)
		}
	}
}

func TestSlack(t *testing.T) {
	env := newTriggerEnv(t)
	tr := env.trigger(t, state.Trigger{Kind: state.TriggerSlack, Secret: secret})
	hook := HookPath(team, tr.TriggerID)
	send := func(t *testing.T, text string, at time.Time) (int, ChatAnswer) {
		// No response_url: the delayed answer is TestSlackDelayedAnswer's subject.
		body := []byte(url.Values{"command": {"/pipefn"}, "text": {text}, "user_name": {"ada"}}.Encode())
		ts := strconv.FormatInt(at.Unix(), 10)
		status, raw := env.post(t, hook, map[string]string{
			HeaderSlackTimestamp: ts, HeaderSlackSignature: "v0=" + SignHMAC(secret, []byte("v0:"+ts+":"), body),
			"Content-Type": "application/x-www-form-urlencoded"}, body)
		var a ChatAnswer
		_ = json.Unmarshal([]byte(raw), &a)
		return status, a
	}
	now := time.Now()
	if status, _ := send(t, "list", now.Add(-6*time.Minute)); status != 401 {
		t.Errorf("expired slack request: status %d, want 401", status)
	}
	status, a := send(t, "run hello count=2 message=hi", now)
	if status != 200 || a.ResponseType != "ephemeral" || !strings.HasPrefix(a.Text, "starting a run of hello") {
		t.Fatalf("run: %d %+v", status, a)
	}
	runs := env.runs(t)
	if len(runs) != 1 {
		t.Fatalf("%d runs after the run command", len(runs))
	}
	if diff := cmp.Diff(map[string]any{"count": float64(2), "message": "hi"}, params(runs[0])); diff != "" {
		t.Errorf("chat run parameters (-want +got):\n%s", diff)
	}
	id := runs[0].RunID
	for _, tc := range []struct{ text, kind, want string }{
		{"status " + id, "ephemeral", id + "  hello (chat, ada)  PENDING"},
		{"list", "ephemeral", id + "  hello (chat, ada)  PENDING"},
		{"schedules", "ephemeral", "no recurring runs"},
		{"status nope", "ephemeral", "not found"},
		{"run missing", "ephemeral", `pipeline named "missing" not found`},
		{"cancel " + id, "in_channel", "ada asked to cancel run " + id},
		{"status " + id, "ephemeral", id + "  hello (chat, ada)  CANCELING"},
		{"dance", "ephemeral", `unknown command "dance"`},
		{"", "ephemeral", "usage: run PIPELINE"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			status, a := send(t, tc.text, now)
			if status != 200 || a.ResponseType != tc.kind || !strings.Contains(a.Text, tc.want) {
				t.Errorf("%q: %d %+v; want %s containing %q", tc.text, status, a, tc.kind, tc.want)
			}
		})
	}
}

func TestSlackDelayedAnswer(t *testing.T) {
	env := newTriggerEnv(t)
	tr := env.trigger(t, state.Trigger{Kind: state.TriggerSlack, Secret: secret})
	var chatURL string
	env.tr.AllowResponseURL = func(u string) bool { chatURL = u; return true }
	chat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a ChatAnswer
		_ = json.NewDecoder(r.Body).Decode(&a)
		env.chat <- a
	}))
	defer chat.Close()
	body := []byte(url.Values{"text": {"run hello"}, "user_name": {"ada"}, "response_url": {chat.URL + "/resp"}}.Encode())
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	status, raw := env.post(t, HookPath(team, tr.TriggerID), map[string]string{
		HeaderSlackTimestamp: ts, HeaderSlackSignature: "v0=" + SignHMAC(secret, []byte("v0:"+ts+":"), body)}, body)
	if status != 200 {
		t.Fatalf("status %d: %s", status, raw)
	}
	select {
	case a := <-env.chat:
		if a.ResponseType != "in_channel" || !strings.HasPrefix(a.Text, "started ") || !strings.HasSuffix(a.Text, "PENDING") {
			t.Errorf("delayed answer %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delayed answer")
	}
	if chatURL != chat.URL+"/resp" {
		t.Errorf("answer went to %q", chatURL)
	}
}

func TestCloudEventBinding(t *testing.T) {
	env := newTriggerEnv(t)
	env.trigger(t, state.Trigger{Kind: state.TriggerCloudEvent, PipelineID: env.pipeline.PipelineID,
		EventType: "com.example.image.pushed", EventSource: "https://registry.example/*",
		Parameters: map[string]string{"message": "data.tag"}})
	event := func(id, typ, source, team string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID(id)
		e.SetType(typ)
		e.SetSource(source)
		if team != "" {
			e.SetExtension(events.ExtTeam, team)
		}
		_ = e.SetData(cloudevents.ApplicationJSON, map[string]string{"tag": "v9"})
		return e
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		e         cloudevents.Event
		permanent bool
		runs      int
	}{
		{"wrong type", event("1", "com.example.other", "https://registry.example/a", ""), true, 0},
		{"wrong source", event("2", "com.example.image.pushed", "https://evil.example/a", ""), true, 0},
		{"another team", event("3", "com.example.image.pushed", "https://registry.example/a", "blue"), true, 0},
		{"bound", event("4", "com.example.image.pushed", "https://registry.example/a", ""), false, 1},
		{"redelivered", event("4", "com.example.image.pushed", "https://registry.example/a", team), false, 1},
		{"next", event("5", "com.example.image.pushed", "https://registry.example/b", team), false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.tr.Event(ctx, tc.e)
			if tc.permanent != (err != nil && events.IsPermanent(err)) || (!tc.permanent && err != nil) {
				t.Fatalf("Event: %v (want permanent error: %v)", err, tc.permanent)
			}
			runs := env.runs(t)
			if len(runs) != tc.runs {
				t.Fatalf("%d runs, want %d", len(runs), tc.runs)
			}
			for _, r := range runs {
				if diff := cmp.Diff(map[string]any{"message": "v9"}, params(r)); diff != "" {
					t.Errorf("run parameters (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestTriggerREST(t *testing.T) {
	env := newTriggerEnv(t)
	do := func(method, path string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, env.srv.URL+path, rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, created := do("POST", "/apis/v2beta1/triggers", map[string]any{"kind": "github", "pipeline_id": env.pipeline.PipelineID, "secret": secret})
	if status != 200 {
		t.Fatalf("create: %d %v", status, created)
	}
	id, _ := created["trigger_id"].(string)
	if _, has := created["secret"]; has || created["webhook_path"] != HookPath(team, id) {
		t.Errorf("create answer: %v", created)
	}
	if status, got := do("GET", "/apis/v2beta1/triggers/"+id, nil); status != 200 || got["secret"] != nil || got["kind"] != "github" {
		t.Errorf("get: %d %v", status, got)
	}
	if status, got := do("GET", "/apis/v2beta1/triggers", nil); status != 200 || fmt.Sprint(got["total_size"]) != "1" || strings.Contains(fmt.Sprint(got), secret) {
		t.Errorf("list: %d %v", status, got)
	}
	if status, got := do("POST", "/apis/v2beta1/triggers", map[string]any{"kind": "github", "pipeline_id": "not-mine", "secret": secret}); status != 404 {
		t.Errorf("trigger on an unknown pipeline: %d %v", status, got)
	}
	if status, got := do("POST", "/apis/v2beta1/triggers", map[string]any{"kind": "github", "pipeline_id": env.pipeline.PipelineID}); status != 400 {
		t.Errorf("trigger without a secret: %d %v", status, got)
	}
	if status, _ := do("DELETE", "/apis/v2beta1/triggers/"+id, nil); status != 200 {
		t.Errorf("delete: %d", status)
	}
	if status, _ := do("GET", "/apis/v2beta1/triggers/"+id, nil); status != 404 {
		t.Errorf("get after delete: %d", status)
	}
}

// TestBindingsEntry: a single-team install receives bound CloudEvents over HTTP at
// /bindings, as its Broker's Trigger delivers them.
func TestBindingsEntry(t *testing.T) {
	env := newTriggerEnv(t)
	env.trigger(t, state.Trigger{Kind: state.TriggerCloudEvent, PipelineID: env.pipeline.PipelineID,
		EventType: "com.example.dataset.ready", Parameters: map[string]string{"message": "subject"}})
	hdr := func(typ string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "b1", "Ce-Source": "lake", "Ce-Type": typ,
			"Ce-Subject": "sales-2026-11", "Content-Type": "application/json"}
	}
	if status, body := env.post(t, "/bindings", hdr("com.example.other"), []byte(`{}`)); status/100 != 4 {
		t.Errorf("unbound type: %d %s, want a 4xx (no redelivery)", status, body)
	}
	if status, body := env.post(t, "/bindings", hdr("com.example.dataset.ready"), []byte(`{}`)); status/100 != 2 {
		t.Fatalf("bound type: %d %s", status, body)
	}
	runs := env.runs(t)
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	if diff := cmp.Diff(map[string]any{"message": "sales-2026-11"}, params(runs[0])); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
}
