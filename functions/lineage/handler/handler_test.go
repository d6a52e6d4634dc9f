package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/lineage/cacheclient"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

const team = "ml"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// teamHeader stands in for the lead's authentication: the team comes from a header.
func teamHeader(r *http.Request) (string, error) {
	if t := r.Header.Get("X-Team"); t != "" {
		return t, nil
	}
	return "", errors.New("no X-Team header")
}

type env struct {
	h   *Handler
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	now := t0.Add(time.Hour)
	st := state.New(redistest.Start(t), func() time.Time { return now })
	h := New(st, teamHeader, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{h: h, srv: srv}
}

var cacheKey = strings.Repeat("5e", 32)

const (
	rawURI  = "s3://data/iris.csv"
	dataURI = "s3://root/r1/prep/dataset"
	mdlURI  = "s3://root/r1/train/model"
	metURI  = "s3://root/r1/eval/metrics"
	clsURI  = "s3://root/r1/eval/classification"
	mdl2URI = "s3://root/r2/train/model"
	met2URI = "s3://root/r2/eval/metrics"
)

// taskEvent builds a task.finished event carrying the full lineage member, as the
// launcher reports it.
func taskEvent(t *testing.T, teamName string, tf lineage.TaskFinished) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID("task:" + tf.Execution.RunID + ":" + tf.Execution.TaskID)
	e.SetType(events.TypeTaskFinished)
	e.SetSource("test")
	e.SetSubject(tf.Execution.RunID)
	if teamName != "" {
		e.SetExtension(events.ExtTeam, teamName)
	}
	data := map[string]any{"run_id": tf.Execution.RunID, "team": teamName, "lineage": tf}
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func tfOf(run, taskID string, end time.Time, params map[string]any, in, out map[string][]lineage.Artifact) lineage.TaskFinished {
	return lineage.TaskFinished{
		Pipeline: "iris",
		Execution: lineage.Execution{RunID: run, TaskID: taskID, TaskName: taskID, State: api.StateSucceeded,
			Image: "python:3.12", Parameters: params, Start: end.Add(-time.Minute), End: end},
		Inputs: in, Outputs: out,
	}
}

type arts = map[string][]lineage.Artifact

func record(t *testing.T, e *env) {
	t.Helper()
	cls := map[string]any{
		"confusionMatrix": map[string]any{
			"annotationSpecs": []any{map[string]any{"displayName": "setosa"}, map[string]any{"displayName": "other"}},
			"rows":            []any{map[string]any{"row": []any{9.0, 1.0}}, map[string]any{"row": []any{2.0, 8.0}}},
		},
		"confidenceMetrics": []any{map[string]any{"confidenceThreshold": 0.5, "recall": 0.9, "falsePositiveRate": 0.2}},
	}
	train := tfOf("r1", "train", t0.Add(2*time.Minute), map[string]any{"lr": 0.1},
		arts{"dataset": {{URI: dataURI}}}, arts{"model": {{URI: mdlURI, Type: lineage.TypeModel, Size: 42, Digest: "sha256:" + strings.Repeat("a", 64)}}})
	train.Execution.CacheKey = cacheKey
	train.Execution.OutputParameters = map[string]any{"epochs_run": 3.0}
	tfs := []lineage.TaskFinished{
		tfOf("r1", "prep", t0.Add(time.Minute), nil,
			arts{"raw": {{URI: rawURI, Type: lineage.TypeDataset}}}, arts{"dataset": {{URI: dataURI, Type: lineage.TypeDataset, Size: 100}}}),
		train,
		tfOf("r1", "eval", t0.Add(3*time.Minute), nil,
			arts{"model": {{URI: mdlURI}}, "test": {{URI: dataURI}}},
			arts{"metrics": {{URI: metURI, Type: lineage.TypeMetrics, Metadata: map[string]any{"accuracy": 0.9, "f1": 0.8}}},
				"classification": {{URI: clsURI, Type: lineage.TypeClassificationMetrics, Metadata: cls}}}),
		tfOf("r2", "train", t0.Add(10*time.Minute), map[string]any{"lr": 0.01},
			arts{"dataset": {{URI: dataURI}}}, arts{"model": {{URI: mdl2URI, Type: lineage.TypeModel}}}),
		tfOf("r2", "eval", t0.Add(11*time.Minute), nil,
			arts{"model": {{URI: mdl2URI}}},
			arts{"metrics": {{URI: met2URI, Type: lineage.TypeMetrics, Metadata: map[string]any{"accuracy": 0.95}}}}),
	}
	for range 2 { // the second round is a redelivery
		for _, tf := range tfs {
			if _, err := e.h.HandleTaskFinished(context.Background(), taskEvent(t, team, tf)); err != nil {
				t.Fatalf("HandleTaskFinished(%s/%s): %v", tf.Execution.RunID, tf.Execution.TaskID, err)
			}
		}
	}
}

func (e *env) get(t *testing.T, path, teamName string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if teamName != "" {
		req.Header.Set("X-Team", teamName)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode
}

func TestRunArtifacts(t *testing.T) {
	e := newEnv(t)
	record(t, e)
	var got struct{ Artifacts []ArtifactView }
	if code := e.get(t, "/apis/v2beta1/runs/r1/artifacts", team, &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	at := func(m int) *time.Time { v := t0.Add(time.Duration(m) * time.Minute); return &v }
	exe := lineage.ExecutionID
	want := []ArtifactView{
		{ArtifactID: lineage.ArtifactID(dataURI), Name: "dataset", Type: lineage.TypeDataset, URI: dataURI, ProducerTask: "prep",
			ProducerExecutionID: exe("r1", "prep"), RunID: "r1", Size: 100, CreatedAt: at(1)},
		{ArtifactID: lineage.ArtifactID(mdlURI), Name: "model", Type: lineage.TypeModel, URI: mdlURI, ProducerTask: "train",
			ProducerExecutionID: exe("r1", "train"), RunID: "r1", Size: 42, Digest: "sha256:" + strings.Repeat("a", 64), CreatedAt: at(2)},
		{ArtifactID: lineage.ArtifactID(clsURI), Name: "classification", Type: lineage.TypeClassificationMetrics, URI: clsURI,
			ProducerTask: "eval", ProducerExecutionID: exe("r1", "eval"), RunID: "r1", CreatedAt: at(3),
			Metrics: &lineage.Metrics{
				ConfusionMatrix: &lineage.ConfusionMatrix{Labels: []string{"setosa", "other"}, Rows: [][]float64{{9, 1}, {2, 8}}},
				ROC:             []lineage.ConfidencePoint{{Threshold: 0.5, Recall: 0.9, FalsePositiveRate: 0.2}},
			}},
		{ArtifactID: lineage.ArtifactID(metURI), Name: "metrics", Type: lineage.TypeMetrics, URI: metURI, ProducerTask: "eval",
			ProducerExecutionID: exe("r1", "eval"), RunID: "r1", CreatedAt: at(3),
			Metadata: map[string]any{"accuracy": 0.9, "f1": 0.8},
			Metrics:  &lineage.Metrics{Scalars: map[string]float64{"accuracy": 0.9, "f1": 0.8}}},
	}
	// Two artifacts created at the same time come in id order; sort want the same way.
	if lineage.ArtifactID(metURI) < lineage.ArtifactID(clsURI) {
		want[2], want[3] = want[3], want[2]
	}
	// Metadata of the classification artifact is the raw KFP shape; checked via Metrics.
	for i := range got.Artifacts {
		if got.Artifacts[i].Type == lineage.TypeClassificationMetrics {
			got.Artifacts[i].Metadata = nil
		}
	}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("run artifacts (-want +got):\n%s", diff)
	}
}

func TestGetArtifactAndByURI(t *testing.T) {
	e := newEnv(t)
	record(t, e)
	var got ArtifactDetailView
	if code := e.get(t, "/apis/v2beta1/artifacts/"+lineage.ArtifactID(dataURI), team, &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	var consumers []string
	for _, c := range got.Consumers {
		consumers = append(consumers, c.RunID+"/"+c.TaskName)
	}
	if diff := cmp.Diff([]string{"r1/eval", "r1/train", "r2/train"}, sorted(consumers)); diff != "" {
		t.Errorf("consumers (-want +got):\n%s", diff)
	}
	if got.Producer == nil || got.Producer.TaskName != "prep" || got.ProducerTask != "prep" {
		t.Errorf("producer = %+v, want prep", got.Producer)
	}
	var byURI struct{ Artifacts []ArtifactView }
	if code := e.get(t, "/apis/v2beta1/artifacts?uri="+url.QueryEscape(mdlURI), team, &byURI); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(byURI.Artifacts) != 1 || byURI.Artifacts[0].ArtifactID != lineage.ArtifactID(mdlURI) {
		t.Errorf("by uri = %+v", byURI.Artifacts)
	}
}

func sorted(s []string) []string {
	c := append([]string{}, s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func TestLineageEndpoint(t *testing.T) {
	e := newEnv(t)
	record(t, e)
	var got lineage.Graph
	path := "/apis/v2beta1/artifacts/" + lineage.ArtifactID(mdl2URI) + "/lineage?direction=upstream&depth=3"
	if code := e.get(t, path, team, &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	a := func(uri, name, typ string, d int) lineage.Node {
		return lineage.Node{ID: lineage.ArtifactID(uri), Kind: "artifact", Name: name, Type: typ, URI: uri, Depth: d}
	}
	x := func(run, task string, d int) lineage.Node {
		return lineage.Node{ID: lineage.ExecutionID(run, task), Kind: "execution", Name: task, RunID: run, TaskID: task, State: "SUCCEEDED", Depth: d}
	}
	want := lineage.Graph{
		Nodes: []lineage.Node{a(mdl2URI, "model", lineage.TypeModel, 0), x("r2", "train", 1), a(dataURI, "dataset", lineage.TypeDataset, 2), x("r1", "prep", 3)},
		Edges: []lineage.Edge{
			{From: lineage.ExecutionID("r2", "train"), To: lineage.ArtifactID(mdl2URI), Type: lineage.Output, Name: "model"},
			{From: lineage.ArtifactID(dataURI), To: lineage.ExecutionID("r2", "train"), Type: lineage.Input, Name: "dataset"},
			{From: lineage.ExecutionID("r1", "prep"), To: lineage.ArtifactID(dataURI), Type: lineage.Output, Name: "dataset"},
		},
	}
	// The store sorts nodes by (depth, id) and edges by (from, to).
	sortEdges := func(es []lineage.Edge) {
		for i := range es {
			for j := i + 1; j < len(es); j++ {
				if es[j].From < es[i].From || es[j].From == es[i].From && es[j].To < es[i].To {
					es[i], es[j] = es[j], es[i]
				}
			}
		}
	}
	sortEdges(want.Edges)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lineage (-want +got):\n%s", diff)
	}
	// The JSON carries the documented field names.
	var raw map[string][]map[string]any
	e.get(t, path, team, &raw)
	if n := raw["nodes"][0]; n["id"] == nil || n["kind"] != "artifact" || n["name"] != "model" {
		t.Errorf("node JSON = %v", n)
	}
	if ed := raw["edges"][0]; ed["from"] == nil || ed["to"] == nil || ed["type"] == nil {
		t.Errorf("edge JSON = %v", ed)
	}
}

func TestMetricsAndCompare(t *testing.T) {
	e := newEnv(t)
	record(t, e)
	var ms struct {
		RunID   string        `json:"run_id"`
		Metrics []MetricsView `json:"metrics"`
	}
	if code := e.get(t, "/apis/v2beta1/runs/r2/metrics", team, &ms); code != 200 {
		t.Fatalf("status %d", code)
	}
	wantMS := []MetricsView{{ArtifactID: lineage.ArtifactID(met2URI), Name: "metrics", Type: lineage.TypeMetrics, ProducerTask: "eval",
		Metrics: lineage.Metrics{Scalars: map[string]float64{"accuracy": 0.95}}}}
	if diff := cmp.Diff(wantMS, ms.Metrics); diff != "" {
		t.Errorf("run metrics (-want +got):\n%s", diff)
	}
	var got Comparison
	if code := e.get(t, "/apis/v2beta1/runs:compare?run_ids=r1,r2,r1", team, &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	want := Comparison{
		Runs: []RunComparison{
			{RunID: "r1", Parameters: map[string]any{"train.lr": 0.1}, Metrics: map[string]float64{"eval.accuracy": 0.9, "eval.f1": 0.8}},
			{RunID: "r2", Parameters: map[string]any{"train.lr": 0.01}, Metrics: map[string]float64{"eval.accuracy": 0.95}},
		},
		ParameterNames: []string{"train.lr"},
		MetricNames:    []string{"eval.accuracy", "eval.f1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("compare (-want +got):\n%s", diff)
	}
}

func TestCacheAPIAndClient(t *testing.T) {
	e := newEnv(t)
	record(t, e)
	c, err := cacheclient.New(e.srv.URL, nil, http.Header{"X-Team": {team}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The store's clock is t0+1h; train finished at t0+2m, 58 minutes earlier.
	hit, ok, err := c.Lookup(ctx, cacheKey, time.Hour)
	if err != nil || !ok {
		t.Fatalf("Lookup(1h) = ok %v, err %v; want a hit", ok, err)
	}
	want := lineage.CacheHit{
		Execution: lineage.Execution{ID: lineage.ExecutionID("r1", "train"), RunID: "r1", TaskID: "train", TaskName: "train",
			Image: "python:3.12", Parameters: map[string]any{"lr": 0.1}, OutputParameters: map[string]any{"epochs_run": 3.0},
			State: api.StateSucceeded, Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute), CacheKey: cacheKey},
		Outputs: map[string][]lineage.Artifact{"model": {{ID: lineage.ArtifactID(mdlURI), Name: "model", Type: lineage.TypeModel,
			URI: mdlURI, Size: 42, Digest: "sha256:" + strings.Repeat("a", 64), ProducerExecutionID: lineage.ExecutionID("r1", "train"),
			CreatedAt: t0.Add(2 * time.Minute)}}},
		RecordedAt: t0.Add(2 * time.Minute),
	}
	if diff := cmp.Diff(want, hit); diff != "" {
		t.Errorf("cache hit (-want +got):\n%s", diff)
	}
	if _, ok, err := c.Lookup(ctx, cacheKey, 30*time.Minute); ok || err != nil {
		t.Errorf("Lookup(30m) = ok %v, err %v; want a stale miss", ok, err)
	}
	if _, ok, err := c.Lookup(ctx, strings.Repeat("0", 64), 0); ok || err != nil {
		t.Errorf("Lookup(unknown) = ok %v, err %v; want a miss", ok, err)
	}
	// Another team sees nothing.
	other, _ := cacheclient.New(e.srv.URL, nil, http.Header{"X-Team": {"other"}})
	if _, ok, _ := other.Lookup(ctx, cacheKey, 0); ok {
		t.Error("another team hit this team's cache")
	}
	// A wrong base URL is an error, not a silent miss.
	wrong, _ := cacheclient.New(e.srv.URL+"/nothing-here", nil, http.Header{"X-Team": {team}})
	if _, _, err := wrong.Lookup(ctx, cacheKey, 0); err == nil {
		t.Error("Lookup against a wrong base URL: no error")
	}
	// max_age as a Go duration works on the wire too.
	var raw lineage.CacheHit
	if code := e.get(t, "/apis/v2beta1/cache/"+cacheKey+"?max_age=59m", team, &raw); code != 200 {
		t.Errorf("max_age=59m: status %d", code)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	record(t, e)
	art := lineage.ArtifactID(dataURI)
	tests := []struct {
		path   string
		team   string
		status int
		code   int
	}{
		{"/apis/v2beta1/artifacts/" + art, "", 401, 16},
		{"/apis/v2beta1/artifacts/" + lineage.ArtifactID("s3://none"), team, 404, 5},
		{"/apis/v2beta1/artifacts/" + art, "other", 404, 5},
		{"/apis/v2beta1/artifacts/" + art + "/lineage?depth=x", team, 400, 3},
		{"/apis/v2beta1/artifacts/" + art + "/lineage?depth=51", team, 400, 3},
		{"/apis/v2beta1/artifacts/" + art + "/lineage?direction=sideways", team, 400, 3},
		{"/apis/v2beta1/artifacts/notanid/lineage", team, 400, 3},
		{"/apis/v2beta1/artifacts", team, 400, 3},
		{"/apis/v2beta1/runs:compare", team, 400, 3},
		{"/apis/v2beta1/runs:compare?run_ids=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u", team, 400, 3},
		{"/apis/v2beta1/cache/xyz", team, 400, 3},
		{"/apis/v2beta1/cache/" + cacheKey + "?max_age=-1", team, 400, 3},
		{"/apis/v2beta1/cache/" + cacheKey + "?max_age=P30D", team, 400, 3},
		{"/apis/v2beta1/runs/r1/artifacts", "Bad Team", 400, 3},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.team, func(t *testing.T) {
			var st api.Status
			if code := e.get(t, tc.path, tc.team, &st); code != tc.status || st.Code != tc.code || st.Message == "" {
				t.Errorf("got %d %+v, want %d code %d with a message", code, st, tc.status, tc.code)
			}
		})
	}
}

func TestHandleTaskFinishedRejectsPoison(t *testing.T) {
	e := newEnv(t)
	good := tfOf("r1", "t", t0, nil, nil, nil)
	noTeam := taskEvent(t, "", good)
	badData := taskEvent(t, team, good)
	if err := badData.SetData(cloudevents.ApplicationJSON, map[string]any{"run_id": "r1"}); err != nil {
		t.Fatal(err)
	}
	badTeam := taskEvent(t, "Not A Team", good)
	for name, ev := range map[string]cloudevents.Event{"no team": noTeam, "bad data": badData, "bad team": badTeam} {
		t.Run(name, func(t *testing.T) {
			_, err := e.h.HandleTaskFinished(context.Background(), ev)
			if err == nil || !events.IsPermanent(err) {
				t.Errorf("err = %v, want a permanent error", err)
			}
		})
	}
}

// The status function's own event (events.NewTaskFinished, api.TaskDetail only) is
// recorded too, delivered over HTTP through the events router.
func TestTaskDetailEventOverHTTP(t *testing.T) {
	e := newEnv(t)
	router := events.NewRouter(nil)
	e.h.Register(router)
	srv := httptest.NewServer(events.HTTPHandler(router))
	defer srv.Close()
	end := t0.Add(time.Minute)
	ev, err := events.NewTaskFinished("test", end, events.TaskFinished{
		RunID: "r9", Team: team,
		Task: api.TaskDetail{RunID: "r9", TaskID: "train", DisplayName: "train", State: api.StateSucceeded, EndTime: &end,
			Inputs:  map[string]api.ArtifactList{"data": {URIs: []string{dataURI}}},
			Outputs: map[string]api.ArtifactList{"model": {URIs: []string{"s3://root/r9/train/model"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL, "application/cloudevents+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST event: status %d, want 202", resp.StatusCode)
	}
	var got ArtifactDetailView
	if code := e.get(t, "/apis/v2beta1/artifacts/"+lineage.ArtifactID(dataURI), team, &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(got.Consumers) != 1 || got.Consumers[0].ExecutionID != lineage.ExecutionID("r9", "train") {
		t.Errorf("consumers = %+v, want r9/train", got.Consumers)
	}
}
