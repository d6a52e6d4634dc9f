package state

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/redistest"
)

// The -pipefn.big flag is shared with the store's other benchmarks; whichever file of the
// package is present defines it (package variables are initialized before init runs).
func init() {
	if flag.Lookup("pipefn.big") == nil {
		flag.Bool("pipefn.big", false, "also run benchmarks at 1e6 records (slow; the lineage graph needs ~1 GB of Redis memory)")
	}
}

// bigLineage reports whether -pipefn.big was given.
func bigLineage() bool {
	f := flag.Lookup("pipefn.big")
	return f != nil && f.Value.String() == "true"
}

// benchTask is task i of a synthetic run: it reads two artifacts written by earlier tasks
// (chosen among the last window outputs) and writes two, so every task adds three nodes.
func benchTask(rng *rand.Rand, i int, outputs []string) (lineage.TaskFinished, []string) {
	run := "run-" + strconv.Itoa(i/50)
	taskID := "t" + strconv.Itoa(i)
	in := map[string][]lineage.Artifact{}
	const window = 1000
	for k := 0; k < 2 && len(outputs) > 0; k++ {
		lo := max(0, len(outputs)-window)
		uri := outputs[lo+rng.IntN(len(outputs)-lo)]
		in["in"+strconv.Itoa(k)] = []lineage.Artifact{{URI: uri}}
	}
	out := map[string][]lineage.Artifact{}
	var written []string
	for k := range 2 {
		uri := fmt.Sprintf("s3://bench/%s/%s/out%d", run, taskID, k)
		out["out"+strconv.Itoa(k)] = []lineage.Artifact{{URI: uri, Type: lineage.TypeDataset, Size: 1 << 20,
			Metadata: map[string]any{"rows": 1000}}}
		written = append(written, uri)
	}
	end := time.Unix(1_700_000_000+int64(i), 0).UTC()
	return lineage.TaskFinished{
		Pipeline: "bench",
		Execution: lineage.Execution{RunID: run, TaskID: taskID, TaskName: "step", State: api.StateSucceeded,
			Image: "python:3.12", Command: []string{"python", "step.py"}, Parameters: map[string]any{"i": i},
			Start: end.Add(-time.Second), End: end},
		Inputs: in, Outputs: out,
	}, written
}

// genGraph writes a graph of about nodes nodes with pipelined batches of 500 tasks and
// returns the URI of the last artifact written.
func genGraph(b *testing.B, s *Store, nodes int) string {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var outputs []string
	batch := make([]lineage.TaskFinished, 0, 500)
	for i := 0; i*3 < nodes; i++ {
		tf, written := benchTask(rng, i, outputs)
		outputs = append(outputs, written...)
		batch = append(batch, tf)
		if len(batch) == cap(batch) {
			if err := s.RecordTasksFinished(ctx, team, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := s.RecordTasksFinished(ctx, team, batch); err != nil {
			b.Fatal(err)
		}
	}
	return outputs[len(outputs)-1]
}

// BenchmarkRecordTaskFinished: one task (1 execution, 2 inputs, 2 outputs) per
// transaction, as the event handler writes them.
func BenchmarkRecordTaskFinished(b *testing.B) {
	s := New(redistest.Start(b), nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var outputs []string
	tfs := make([]lineage.TaskFinished, b.N)
	for i := range tfs {
		var w []string
		tfs[i], w = benchTask(rng, i, outputs)
		outputs = append(outputs, w...)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := s.RecordTaskFinished(ctx, team, tfs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkRecordTasksFinishedBatch: 100 tasks per transaction (bulk import).
func BenchmarkRecordTasksFinishedBatch(b *testing.B) {
	s := New(redistest.Start(b), nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var outputs []string
	const per = 100
	tfs := make([]lineage.TaskFinished, b.N*per)
	for i := range tfs {
		var w []string
		tfs[i], w = benchTask(rng, i, outputs)
		outputs = append(outputs, w...)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := s.RecordTasksFinished(ctx, team, tfs[i*per:(i+1)*per]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkLineageUpstreamDepth5 answers the same query (upstream of the newest
// artifact, depth 5) on graphs of growing size: its cost should not grow with the graph.
func BenchmarkLineageUpstreamDepth5(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if bigLineage() {
		sizes = append(sizes, 1_000_000)
	}
	s := New(redistest.Start(b), nil)
	ctx := context.Background()
	for _, n := range sizes {
		if err := s.rdb.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		last := genGraph(b, s, n)
		keys, _ := s.rdb.DBSize(ctx).Result()
		b.Logf("graph of %d nodes: generated in %s (%d keys)", n, time.Since(start).Round(time.Millisecond), keys)
		id := lineage.ArtifactID(last)
		b.Run(fmt.Sprintf("nodes=%.0e", float64(n)), func(b *testing.B) {
			var visited int
			for range b.N {
				g, err := s.Lineage(ctx, team, id, lineage.Upstream, 5)
				if err != nil {
					b.Fatal(err)
				}
				visited = len(g.Nodes)
			}
			b.ReportMetric(float64(visited), "nodes/op")
		})
	}
}
