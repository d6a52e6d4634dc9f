package state

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
)

// The -pipefn.big flag is shared by every benchmark of this package (the lineage
// benchmarks define it too); package variables are initialised before init runs, so
// this only defines it when no other file has.
func init() {
	if flag.Lookup("pipefn.big") == nil {
		flag.Bool("pipefn.big", false, "also benchmark with 1e6 records stored (slow, GBs of Redis memory)")
	}
}

// bigBench reports whether -pipefn.big was given.
func bigBench() bool {
	f := flag.Lookup("pipefn.big")
	return f != nil && f.Value.String() == "true"
}

// fillRuns stores n runs with pipelined script calls (1,000 per round trip), spread over
// 10 experiments, 100 pipeline versions and PENDING/RUNNING/SUCCEEDED states.
func fillRuns(tb testing.TB, s *Store, n int) (exps []string) {
	tb.Helper()
	ctx := context.Background()
	for i := range 10 {
		e, err := s.CreateExperiment(ctx, "bench", api.Experiment{DisplayName: fmt.Sprint("e", i)})
		if err != nil {
			tb.Fatal(err)
		}
		exps = append(exps, e.ExperimentID)
	}
	if err := createRunScript.Load(ctx, s.rdb).Err(); err != nil {
		tb.Fatal(err)
	}
	states := []string{api.StatePending, api.StateRunning, api.StateSucceeded}
	for start := 0; start < n; start += 1000 {
		pipe := s.rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			r := api.Run{DisplayName: fmt.Sprint("run ", i), ExperimentID: exps[i%10], State: states[i%3],
				PipelineVersionReference: &api.PipelineVersionReference{PipelineID: "p", PipelineVersionID: fmt.Sprint("v", i%100)},
				RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"lr": 0.01, "epochs": 10}}}
			_, keys, args, err := s.prepareRun("bench", r, CreateRunOptions{})
			if err != nil {
				tb.Fatal(err)
			}
			createRunScript.EvalSha(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatalf("fill runs %d..: %v", start, err)
		}
	}
	return exps
}

// BenchmarkListRuns reads pages of 50 runs with 1e4 and 1e5 runs stored (1e6 with
// -pipefn.big), walking through the listing so that pages from the middle are measured
// too. Cost per page should not grow with the number of runs stored. Memory: about 7 KB
// per unfinished run (5 KB of it the history stream), so 1e6 needs ~7 GB.
func BenchmarkListRuns(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if bigBench() {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		c := &tickClock{t: epoch}
		s := New(redistest.Start(b), c.Now)
		exps := fillRuns(b, s, n)
		if mem, err := s.rdb.MemoryUsage(context.Background(), key("bench", "runs", "idx", "all")).Result(); err == nil {
			b.Logf("%d runs stored; the all-runs index alone takes %d bytes", n, mem)
		}
		if info, err := s.rdb.Info(context.Background(), "memory").Result(); err == nil {
			for _, line := range strings.Split(info, "\r\n") {
				if strings.HasPrefix(line, "used_memory_human:") {
					b.Logf("%d runs stored: redis %s", n, line)
				}
			}
		}
		filters := []struct {
			name string
			f    RunFilter
		}{
			{"all", RunFilter{}},
			{"experiment", RunFilter{ExperimentID: exps[3]}},
			{"state+available", RunFilter{State: api.StateRunning, StorageState: api.StorageAvailable}},
			// Two dimensions: walks the smaller index and checks the other per run.
			{"experiment+state", RunFilter{ExperimentID: exps[3], State: api.StateSucceeded}},
		}
		for _, f := range filters {
			b.Run(fmt.Sprintf("runs=%d/%s", n, f.name), func(b *testing.B) {
				ctx := context.Background()
				tok := ""
				b.ReportAllocs()
				for b.Loop() {
					runs, next, err := s.ListRuns(ctx, "bench", ListOptions{PageSize: 50, PageToken: tok}, f.f)
					if err != nil {
						b.Fatal(err)
					}
					if len(runs) == 0 && next == "" && tok == "" {
						b.Fatal("empty listing")
					}
					tok = next
				}
			})
		}
	}
}

// BenchmarkUpdateState moves runs PENDING -> RUNNING, one Lua round trip each.
func BenchmarkUpdateState(b *testing.B) {
	c := &tickClock{t: epoch}
	s := New(redistest.Start(b), c.Now)
	ctx := context.Background()
	const pool = 20_000
	fillRuns(b, s, pool)
	var ids []string
	for tok := ""; ; {
		runs, next, err := s.ListRuns(ctx, "bench", ListOptions{PageSize: 1000, PageToken: tok}, RunFilter{State: api.StatePending})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range runs {
			ids = append(ids, r.RunID)
		}
		if next == "" {
			break
		}
		tok = next
	}
	if len(ids) == 0 {
		b.Fatal("no PENDING runs stored")
	}
	states := []string{api.StateRunning, api.StateSucceeded}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		// Each run moves PENDING -> RUNNING -> SUCCEEDED; after that, reports are no-ops,
		// which cost the same round trip.
		id := ids[(i/2)%len(ids)]
		if _, err := s.UpdateState(ctx, "bench", id, states[i%2], epoch); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCreateRun stores runs one by one (Default experiment cached after the first).
func BenchmarkCreateRun(b *testing.B) {
	s := New(redistest.Start(b), nil)
	ctx := context.Background()
	exp, err := s.DefaultExperiment(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.CreateRun(ctx, "bench", api.Run{ExperimentID: exp.ExperimentID, DisplayName: "r"}, CreateRunOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
