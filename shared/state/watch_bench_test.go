package state

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/redistest"
)

// BenchmarkWatch measures live watchers of up to 50 runs on a Store with go-redis's
// default pool (10 per CPU), through the hub and through the per-watcher XREAD it
// replaced. Each iteration appends one entry to every run and waits until every live
// watcher has it. Reported: the most pooled connections in use between entries (what
// the watchers pin), connections open at the server at the end (INFO clients, the probe's
// own left out; idle pooled ones included), median delivery latency (append to callback), median latency of
// a GetRun issued meanwhile (what other requests of the replica feel), and watchers that
// ended with an error (pool timeouts). Run it with a small -benchtime (e.g. 5x): the
// per-reader path at 100 and 1000 watchers takes seconds per iteration.
func BenchmarkWatch(b *testing.B) {
	for _, path := range []string{"hub", "per-reader"} {
		for _, n := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/watchers=%d", path, n), func(b *testing.B) {
				watchPerReader = path == "per-reader"
				defer func() { watchPerReader = false }()
				benchWatch(b, n)
			})
		}
	}
}

func benchWatch(b *testing.B, watchers int) {
	srv := redistest.StartServer(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	b.Cleanup(func() { _ = rdb.Close() })
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 1})
	b.Cleanup(func() { _ = probe.Close() })
	s := New(rdb, nil)
	// Entries are appended through another client, as another function would: only the
	// watchers' replica should feel its own watchers.
	writer := New(srv.Client(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	runs := make([]string, min(watchers, 50))
	for i := range runs {
		runs[i] = newRun(b, s)
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		delivered atomic.Int64
		failed    atomic.Int64
		wg        sync.WaitGroup
	)
	for w := range watchers {
		wg.Go(func() {
			err := s.Watch(ctx, "ml", runs[w%len(runs)], "$", func(e RunEvent) error {
				sent, err := strconv.ParseInt(e.TaskID, 10, 64)
				if err == nil {
					d := time.Since(time.Unix(0, sent))
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				}
				delivered.Add(1)
				return nil
			})
			if err != nil && ctx.Err() == nil {
				failed.Add(1)
			}
		})
	}
	time.Sleep(time.Second) // every watcher is past its backlog and reading
	quiet := 200 * time.Millisecond
	var getRuns []time.Duration
	getRunErrs := 0
	conns := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Let the watchers settle into their blocking reads, as between a run's entries.
		b.StopTimer()
		time.Sleep(quiet)
		b.StartTimer()
		// Between entries: what the watchers pin while they wait.
		st := rdb.PoolStats()
		conns = max(conns, int(st.TotalConns-st.IdleConns))
		// A request of the replica while its watchers wait (a quiet moment of the runs).
		start := time.Now()
		if _, err := s.GetRun(ctx, "ml", runs[0]); err != nil {
			getRunErrs++ // a pool timeout: counted, as the replica's clients would see it
		}
		getRuns = append(getRuns, time.Since(start))
		for _, r := range runs {
			appendEntry(b, writer, r, strconv.FormatInt(time.Now().UnixNano(), 10))
		}
		// Wait for the live watchers (not those a pool timeout ended) to have the entry.
		want := int64(watchers) * int64(i+1)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if delivered.Load() >= want-failed.Load()*int64(i+1) {
				break
			}
		}
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(conns), "conns-in-use")
	b.ReportMetric(float64(connectedClients(b, probe)-1), "server-conns")
	mu.Lock()
	b.ReportMetric(median(latencies).Seconds()*1000, "deliver-p50-ms")
	mu.Unlock()
	b.ReportMetric(median(getRuns).Seconds()*1000, "getrun-p50-ms")
	b.ReportMetric(float64(failed.Load()), "failed-watchers")
	b.ReportMetric(float64(getRunErrs), "getrun-errors")
}

// connectedClients reads connected_clients from INFO clients.
func connectedClients(tb testing.TB, c *redis.Client) int {
	info, err := c.Info(context.Background(), "clients").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_clients:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				tb.Fatalf("INFO clients: connected_clients %q: %v", v, err)
			}
			return n
		}
	}
	tb.Fatalf("INFO clients has no connected_clients:\n%s", info)
	return 0
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
