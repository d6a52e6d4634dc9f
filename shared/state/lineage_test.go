package state

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/redistest"
)

const team = "ml"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture names a 3-task run (prep -> train -> eval) over an imported raw file, and a
// second run whose train reads the first run's dataset.
type fixture struct {
	raw, d1, m1, met1, m2        string // URIs
	prep1, train1, eval1, train2 string // execution ids
}

func newFixture() fixture {
	return fixture{
		raw:    "s3://data/raw.csv",
		d1:     "s3://root/r1/prep/dataset",
		m1:     "s3://root/r1/train/model",
		met1:   "s3://root/r1/eval/metrics",
		m2:     "s3://root/r2/train/model",
		prep1:  lineage.ExecutionID("r1", "prep"),
		train1: lineage.ExecutionID("r1", "train"),
		eval1:  lineage.ExecutionID("r1", "eval"),
		train2: lineage.ExecutionID("r2", "train"),
	}
}

func art(uri, typ string) lineage.Artifact { return lineage.Artifact{URI: uri, Type: typ} }

func task(run, id, state string, end time.Time, in, out map[string][]lineage.Artifact) lineage.TaskFinished {
	return lineage.TaskFinished{
		Pipeline: "training",
		Execution: lineage.Execution{
			RunID: run, TaskID: id, TaskName: id, State: state, Image: "python:3.12",
			Start: end.Add(-time.Minute), End: end,
			Parameters: map[string]any{"lr": 0.1},
		},
		Inputs: in, Outputs: out,
	}
}

func (f fixture) run1() []lineage.TaskFinished {
	return []lineage.TaskFinished{
		task("r1", "prep", api.StateSucceeded, t0.Add(1*time.Minute),
			map[string][]lineage.Artifact{"raw": {art(f.raw, lineage.TypeDataset)}},
			map[string][]lineage.Artifact{"dataset": {art(f.d1, lineage.TypeDataset)}}),
		task("r1", "train", api.StateSucceeded, t0.Add(2*time.Minute),
			map[string][]lineage.Artifact{"dataset": {{URI: f.d1}}},
			map[string][]lineage.Artifact{"model": {art(f.m1, lineage.TypeModel)}}),
		task("r1", "eval", api.StateSucceeded, t0.Add(3*time.Minute),
			map[string][]lineage.Artifact{"model": {{URI: f.m1}}, "test_data": {{URI: f.d1}}},
			map[string][]lineage.Artifact{"metrics": {{URI: f.met1, Type: lineage.TypeMetrics,
				Metadata: map[string]any{"accuracy": 0.93}}}}),
	}
}

func (f fixture) run2() []lineage.TaskFinished {
	return []lineage.TaskFinished{
		task("r2", "train", api.StateSucceeded, t0.Add(10*time.Minute),
			map[string][]lineage.Artifact{"dataset": {{URI: f.d1}}},
			map[string][]lineage.Artifact{"model": {art(f.m2, lineage.TypeModel)}}),
	}
}

func newTestStore(t testing.TB, now func() time.Time) *Store {
	t.Helper()
	return New(redistest.Start(t), now)
}

func record(t testing.TB, s *Store, tfs ...lineage.TaskFinished) {
	t.Helper()
	for _, tf := range tfs {
		if err := s.RecordTaskFinished(context.Background(), team, tf); err != nil {
			t.Fatalf("RecordTaskFinished(%s/%s): %v", tf.Execution.RunID, tf.Execution.TaskID, err)
		}
	}
}

// snapshot reads every key of the database into comparable values.
func snapshot(t *testing.T, rdb redis.UniversalClient) map[string]any {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "string":
			out[k] = rdb.Get(ctx, k).Val()
		case "set":
			m := rdb.SMembers(ctx, k).Val()
			sort.Strings(m)
			out[k] = m
		case "zset":
			out[k] = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "hash":
			out[k] = rdb.HGetAll(ctx, k).Val()
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
	}
	return out
}

func TestRecordTaskFinishedRedeliveryChangesNothing(t *testing.T) {
	s := newTestStore(t, nil)
	f := newFixture()
	record(t, s, f.run1()...)
	before := snapshot(t, s.rdb)
	if len(before) == 0 {
		t.Fatal("nothing was written")
	}
	// Redeliver every event, in reverse order, twice.
	tfs := f.run1()
	for range 2 {
		for i := len(tfs) - 1; i >= 0; i-- {
			record(t, s, tfs[i])
		}
	}
	if diff := cmp.Diff(before, snapshot(t, s.rdb)); diff != "" {
		t.Errorf("redelivery changed the store (-before +after):\n%s", diff)
	}
}

func TestOutOfOrderDeliveryProducerWins(t *testing.T) {
	s := newTestStore(t, nil)
	f := newFixture()
	tfs := f.run1()
	// The consumer's event arrives before the producer's.
	record(t, s, tfs[1], tfs[0])
	got, err := s.GetArtifact(context.Background(), team, lineage.ArtifactID(f.d1))
	if err != nil {
		t.Fatal(err)
	}
	want := lineage.ArtifactDetail{
		Artifact: lineage.Artifact{
			ID: lineage.ArtifactID(f.d1), Name: "dataset", Type: lineage.TypeDataset, URI: f.d1,
			ProducerExecutionID: f.prep1, CreatedAt: t0.Add(time.Minute),
		},
	}
	if diff := cmp.Diff(want.Artifact, got.Artifact); diff != "" {
		t.Errorf("artifact (-want +got):\n%s", diff)
	}
	if got.Producer == nil || got.Producer.ID != f.prep1 {
		t.Errorf("producer = %+v, want %s", got.Producer, f.prep1)
	}
	if len(got.Consumers) != 1 || got.Consumers[0].ID != f.train1 {
		t.Errorf("consumers = %+v, want [%s]", got.Consumers, f.train1)
	}
}

func TestRetriedTaskSuccessReplacesFailure(t *testing.T) {
	s := newTestStore(t, nil)
	ctx := context.Background()
	failed := task("r1", "train", api.StateFailed, t0, nil, nil)
	ok := task("r1", "train", api.StateSucceeded, t0.Add(time.Minute), nil, nil)
	id := lineage.ExecutionID("r1", "train")
	for _, tc := range []struct {
		name  string
		order []lineage.TaskFinished
	}{
		{"failure then success", []lineage.TaskFinished{failed, ok}},
		{"success then late failure", []lineage.TaskFinished{ok, failed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			record(t, s, tc.order...)
			exes, err := s.RunExecutions(ctx, team, "r1")
			if err != nil {
				t.Fatal(err)
			}
			if len(exes) != 1 || exes[0].ID != id || exes[0].State != api.StateSucceeded {
				t.Errorf("executions = %+v, want one SUCCEEDED %s", exes, id)
			}
		})
	}
}

func TestRecordRejectsInvalid(t *testing.T) {
	s := newTestStore(t, nil)
	for name, tf := range map[string]lineage.TaskFinished{
		"no run":        {Execution: lineage.Execution{TaskID: "a", State: api.StateSucceeded}},
		"running":       {Execution: lineage.Execution{RunID: "r", TaskID: "a", State: api.StateRunning}},
		"no uri":        {Execution: lineage.Execution{RunID: "r", TaskID: "a", State: api.StateSucceeded}, Outputs: map[string][]lineage.Artifact{"m": {{}}}},
		"wrong exec id": {Execution: lineage.Execution{ID: "exe-x", RunID: "r", TaskID: "a", State: api.StateSucceeded}},
	} {
		t.Run(name, func(t *testing.T) {
			err := s.RecordTaskFinished(context.Background(), team, tf)
			if api.KindOf(err) != api.KindInvalid {
				t.Errorf("err = %v, want an invalid-argument error", err)
			}
		})
	}
}

func anode(uri, name, typ string, depth int) lineage.Node {
	return lineage.Node{ID: lineage.ArtifactID(uri), Kind: lineage.KindArtifact, Name: name, Type: typ, URI: uri, Depth: depth}
}

func enode(run, task string, depth int) lineage.Node {
	return lineage.Node{ID: lineage.ExecutionID(run, task), Kind: lineage.KindExecution, Name: task,
		RunID: run, TaskID: task, State: api.StateSucceeded, Depth: depth}
}

func in(uri, run, task, name string) lineage.Edge {
	return lineage.Edge{From: lineage.ArtifactID(uri), To: lineage.ExecutionID(run, task), Type: lineage.Input, Name: name}
}

func out(run, task, uri, name string) lineage.Edge {
	return lineage.Edge{From: lineage.ExecutionID(run, task), To: lineage.ArtifactID(uri), Type: lineage.Output, Name: name}
}

// sortGraph orders an expected graph as Lineage does.
func sortGraph(g lineage.Graph) lineage.Graph {
	if g.Nodes == nil {
		g.Nodes = []lineage.Node{}
	}
	if g.Edges == nil {
		g.Edges = []lineage.Edge{}
	}
	sort.Slice(g.Nodes, func(i, j int) bool {
		if g.Nodes[i].Depth != g.Nodes[j].Depth {
			return g.Nodes[i].Depth < g.Nodes[j].Depth
		}
		return g.Nodes[i].ID < g.Nodes[j].ID
	})
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Type+lineage.EventType(a.Name) < b.Type+lineage.EventType(b.Name)
	})
	return g
}

func TestLineage(t *testing.T) {
	s := newTestStore(t, nil)
	f := newFixture()
	record(t, s, f.run1()...)
	record(t, s, f.run2()...)

	met := anode(f.met1, "metrics", lineage.TypeMetrics, 0)
	tests := []struct {
		name  string
		start string
		dir   lineage.Direction
		depth int
		want  lineage.Graph
	}{{
		name: "upstream depth 0", start: lineage.ArtifactID(f.met1), dir: lineage.Upstream, depth: 0,
		want: lineage.Graph{Nodes: []lineage.Node{met}},
	}, {
		name: "upstream depth 1", start: lineage.ArtifactID(f.met1), dir: lineage.Upstream, depth: 1,
		want: lineage.Graph{
			Nodes: []lineage.Node{met, enode("r1", "eval", 1)},
			Edges: []lineage.Edge{out("r1", "eval", f.met1, "metrics")},
		},
	}, {
		name: "upstream depth 3", start: lineage.ArtifactID(f.met1), dir: lineage.Upstream, depth: 3,
		want: lineage.Graph{
			Nodes: []lineage.Node{met, enode("r1", "eval", 1),
				anode(f.m1, "model", lineage.TypeModel, 2), anode(f.d1, "dataset", lineage.TypeDataset, 2),
				enode("r1", "train", 3), enode("r1", "prep", 3)},
			Edges: []lineage.Edge{out("r1", "eval", f.met1, "metrics"),
				in(f.m1, "r1", "eval", "model"), in(f.d1, "r1", "eval", "test_data"),
				out("r1", "train", f.m1, "model"), out("r1", "prep", f.d1, "dataset")},
		},
	}, {
		name: "upstream depth 5 reaches the imported file", start: lineage.ArtifactID(f.met1), dir: lineage.Upstream, depth: 5,
		want: lineage.Graph{
			Nodes: []lineage.Node{met, enode("r1", "eval", 1),
				anode(f.m1, "model", lineage.TypeModel, 2), anode(f.d1, "dataset", lineage.TypeDataset, 2),
				enode("r1", "train", 3), enode("r1", "prep", 3),
				anode(f.raw, "raw", lineage.TypeDataset, 4)},
			Edges: []lineage.Edge{out("r1", "eval", f.met1, "metrics"),
				in(f.m1, "r1", "eval", "model"), in(f.d1, "r1", "eval", "test_data"),
				out("r1", "train", f.m1, "model"), out("r1", "prep", f.d1, "dataset"),
				in(f.d1, "r1", "train", "dataset"), in(f.raw, "r1", "prep", "raw")},
		},
	}, {
		name: "downstream of the dataset crosses runs", start: lineage.ArtifactID(f.d1), dir: lineage.Downstream, depth: 2,
		want: lineage.Graph{
			Nodes: []lineage.Node{anode(f.d1, "dataset", lineage.TypeDataset, 0),
				enode("r1", "train", 1), enode("r1", "eval", 1), enode("r2", "train", 1),
				anode(f.m1, "model", lineage.TypeModel, 2), anode(f.met1, "metrics", lineage.TypeMetrics, 2),
				anode(f.m2, "model", lineage.TypeModel, 2)},
			Edges: []lineage.Edge{in(f.d1, "r1", "train", "dataset"), in(f.d1, "r1", "eval", "test_data"),
				in(f.d1, "r2", "train", "dataset"),
				out("r1", "train", f.m1, "model"), out("r1", "eval", f.met1, "metrics"), out("r2", "train", f.m2, "model")},
		},
	}, {
		name: "downstream depth 3 finds what read the model", start: lineage.ArtifactID(f.d1), dir: lineage.Downstream, depth: 3,
		want: lineage.Graph{
			Nodes: []lineage.Node{anode(f.d1, "dataset", lineage.TypeDataset, 0),
				enode("r1", "train", 1), enode("r1", "eval", 1), enode("r2", "train", 1),
				anode(f.m1, "model", lineage.TypeModel, 2), anode(f.met1, "metrics", lineage.TypeMetrics, 2),
				anode(f.m2, "model", lineage.TypeModel, 2)},
			Edges: []lineage.Edge{in(f.d1, "r1", "train", "dataset"), in(f.d1, "r1", "eval", "test_data"),
				in(f.d1, "r2", "train", "dataset"),
				out("r1", "train", f.m1, "model"), out("r1", "eval", f.met1, "metrics"), out("r2", "train", f.m2, "model"),
				in(f.m1, "r1", "eval", "model")},
		},
	}, {
		name: "from an execution", start: f.train2, dir: lineage.Upstream, depth: 2,
		want: lineage.Graph{
			Nodes: []lineage.Node{enode("r2", "train", 0), anode(f.d1, "dataset", lineage.TypeDataset, 1), enode("r1", "prep", 2)},
			Edges: []lineage.Edge{in(f.d1, "r2", "train", "dataset"), out("r1", "prep", f.d1, "dataset")},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Lineage(context.Background(), team, tc.start, tc.dir, tc.depth)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sortGraph(tc.want), got); diff != "" {
				t.Errorf("Lineage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLineageErrors(t *testing.T) {
	s := newTestStore(t, nil)
	f := newFixture()
	record(t, s, f.run1()...)
	for _, tc := range []struct {
		name  string
		start string
		dir   lineage.Direction
		depth int
		kind  api.Kind
	}{
		{"unknown artifact", lineage.ArtifactID("s3://nowhere"), lineage.Upstream, 3, api.KindNotFound},
		{"not an id", "model", lineage.Upstream, 3, api.KindInvalid},
		{"bad direction", lineage.ArtifactID(f.d1), "sideways", 3, api.KindInvalid},
		{"too deep", lineage.ArtifactID(f.d1), lineage.Upstream, lineage.MaxDepth + 1, api.KindInvalid},
		{"other team", lineage.ArtifactID(f.d1), lineage.Upstream, 1, api.KindNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := team
			if tc.name == "other team" {
				tm = "other"
			}
			_, err := s.Lineage(context.Background(), tm, tc.start, tc.dir, tc.depth)
			if api.KindOf(err) != tc.kind {
				t.Errorf("err = %v (kind %d), want kind %d", err, api.KindOf(err), tc.kind)
			}
		})
	}
}

func TestGetArtifactConsumersAcrossRuns(t *testing.T) {
	s := newTestStore(t, nil)
	f := newFixture()
	record(t, s, f.run1()...)
	record(t, s, f.run2()...)
	got, err := s.GetArtifact(context.Background(), team, lineage.ArtifactID(f.d1))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got.Consumers {
		ids = append(ids, c.RunID+"/"+c.TaskID)
	}
	if diff := cmp.Diff([]string{"r1/eval", "r1/train", "r2/train"}, sortedCopy(ids)); diff != "" {
		t.Errorf("consumers (-want +got):\n%s", diff)
	}
	if got.Producer == nil || got.Producer.TaskID != "prep" {
		t.Errorf("producer = %+v, want r1/prep", got.Producer)
	}
	_, err = s.GetArtifact(context.Background(), team, lineage.ArtifactID("s3://none"))
	if !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown artifact: err = %v, want not found", err)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string{}, s...)
	sort.Strings(c)
	return c
}

func TestRunArtifactsAndByURI(t *testing.T) {
	s := newTestStore(t, nil)
	f := newFixture()
	record(t, s, f.run1()...)
	record(t, s, f.run2()...)
	ctx := context.Background()
	got, err := s.RunArtifacts(ctx, team, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, d := range got {
		prod := ""
		if d.Producer != nil {
			prod = d.Producer.TaskName
		}
		rows = append(rows, strings.Join([]string{d.URI, d.Type, prod}, " "))
	}
	want := []string{
		f.d1 + " system.Dataset prep",
		f.m1 + " system.Model train",
		f.met1 + " system.Metrics eval",
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("RunArtifacts(r1) (-want +got):\n%s", diff)
	}
	none, err := s.RunArtifacts(ctx, team, "nope")
	if err != nil || len(none) != 0 {
		t.Errorf("RunArtifacts(unknown) = %v, %v; want none", none, err)
	}
	byURI, err := s.ArtifactsByURI(ctx, team, f.m1)
	if err != nil {
		t.Fatal(err)
	}
	if len(byURI) != 1 || byURI[0].ID != lineage.ArtifactID(f.m1) || byURI[0].ProducerExecutionID != f.train1 {
		t.Errorf("ArtifactsByURI(m1) = %+v", byURI)
	}
}

func TestCacheLookup(t *testing.T) {
	now := t0.Add(time.Hour)
	s := newTestStore(t, func() time.Time { return now })
	ctx := context.Background()
	key := strings.Repeat("ab", 32)
	other := strings.Repeat("cd", 32)
	mk := func(run, state string, end time.Time, key string) lineage.TaskFinished {
		tf := task(run, "train", state, end, nil,
			map[string][]lineage.Artifact{"model": {art("s3://root/"+run+"/train/model", lineage.TypeModel)}})
		tf.Execution.CacheKey = key
		tf.Execution.OutputParameters = map[string]any{"best_epoch": float64(7)}
		return tf
	}
	hitOf := func(run string, end time.Time) lineage.CacheHit {
		uri := "s3://root/" + run + "/train/model"
		id := lineage.ExecutionID(run, "train")
		return lineage.CacheHit{
			Execution: lineage.Execution{ID: id, RunID: run, TaskID: "train", TaskName: "train",
				Image: "python:3.12", Parameters: map[string]any{"lr": 0.1},
				OutputParameters: map[string]any{"best_epoch": float64(7)}, State: api.StateSucceeded,
				Start: end.Add(-time.Minute), End: end, CacheKey: key},
			Outputs: map[string][]lineage.Artifact{"model": {{ID: lineage.ArtifactID(uri), Name: "model",
				Type: lineage.TypeModel, URI: uri, ProducerExecutionID: id, CreatedAt: end}}},
			RecordedAt: end,
		}
	}
	// The newest success wins, whatever order the events arrive in; a later failure and a
	// cache hit (CACHED) do not become cache sources.
	cached := mk("r4", api.StateCached, t0.Add(50*time.Minute), key)
	cached.Execution.CachedFrom = lineage.ExecutionID("r2", "train")
	record(t, s,
		mk("r2", api.StateSucceeded, t0.Add(20*time.Minute), key),
		mk("r1", api.StateSucceeded, t0.Add(10*time.Minute), key),
		mk("r3", api.StateFailed, t0.Add(40*time.Minute), key),
		cached,
	)
	tests := []struct {
		name   string
		key    string
		maxAge time.Duration
		want   *lineage.CacheHit
	}{
		{"any age", key, 0, ptr(hitOf("r2", t0.Add(20*time.Minute)))},
		{"fresh enough", key, 40 * time.Minute, ptr(hitOf("r2", t0.Add(20*time.Minute)))},
		{"exactly max age", key, 40 * time.Minute, ptr(hitOf("r2", t0.Add(20*time.Minute)))},
		{"too old", key, 39 * time.Minute, nil},
		{"unknown key", other, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hit, ok, err := s.CacheLookup(ctx, team, tc.key, tc.maxAge)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if ok {
					t.Errorf("hit %+v, want a miss", hit.Execution)
				}
				return
			}
			if !ok {
				t.Fatal("miss, want a hit")
			}
			if diff := cmp.Diff(*tc.want, hit); diff != "" {
				t.Errorf("CacheLookup (-want +got):\n%s", diff)
			}
		})
	}
	// The function form the local executor uses sees the same.
	if _, ok, err := s.CacheLookupFunc(team)(ctx, key, 0); !ok || err != nil {
		t.Errorf("CacheLookupFunc: ok=%v err=%v, want a hit", ok, err)
	}
	if _, ok, _ := s.CacheLookupFunc("other")(ctx, key, 0); ok {
		t.Error("CacheLookupFunc(other team) hit, want a miss: teams must not share a cache")
	}
}

func ptr[T any](v T) *T { return &v }

func TestLineageTruncatesAtMaxNodes(t *testing.T) {
	s := newTestStore(t, nil)
	const uri = "s3://data/popular.csv"
	var tfs []lineage.TaskFinished
	for i := range lineage.MaxNodes + 10 {
		tfs = append(tfs, task("r1", "read-"+strconv.Itoa(i), api.StateSucceeded, t0, map[string][]lineage.Artifact{"in": {{URI: uri}}}, nil))
	}
	if err := s.RecordTasksFinished(context.Background(), team, tfs); err != nil {
		t.Fatal(err)
	}
	g, err := s.Lineage(context.Background(), team, lineage.ArtifactID(uri), lineage.Downstream, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Truncated || len(g.Nodes) != lineage.MaxNodes || len(g.Edges) != lineage.MaxNodes-1 {
		t.Errorf("truncated=%v nodes=%d edges=%d, want true %d %d", g.Truncated, len(g.Nodes), len(g.Edges), lineage.MaxNodes, lineage.MaxNodes-1)
	}
	in := map[string]bool{}
	for _, n := range g.Nodes {
		in[n.ID] = true
	}
	for _, e := range g.Edges {
		if !in[e.From] || !in[e.To] {
			t.Fatalf("edge %+v leaves the answer's nodes", e)
		}
	}
}
