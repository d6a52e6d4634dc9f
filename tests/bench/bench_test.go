// Package bench measures the run-life path against a real redis-server: submit to
// dispatched latency under concurrent clients, a page of the run listing as the number of
// stored runs grows, and the status handler's event throughput. Figures come from
// `go test -bench`, never from assertions.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	compilefn "github.com/pipefn/pipefn/functions/compile/handler"
	statusfn "github.com/pipefn/pipefn/functions/status/handler"
	submitfn "github.com/pipefn/pipefn/functions/submit/handler"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

var big = flag.Bool("pipefn.bench-big", false, "also run the 10^6-run listing (needs several GB of Redis memory and minutes to fill)")

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func example(b *testing.B, name string) json.RawMessage {
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "examples", name))
	if err != nil {
		b.Fatal(err)
	}
	spec, err := ir.SpecJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	return spec
}

// recorder is a backend that records when each run was dispatched.
type recorder struct {
	mu      sync.Mutex
	waiters map[string]chan time.Time
}

func (r *recorder) ch(id string) chan time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.waiters[id]
	if !ok {
		c = make(chan time.Time, 1)
		r.waiters[id] = c
	}
	return c
}

func (r *recorder) Dispatch(_ context.Context, job compilefn.Job) (events.RunDispatched, error) {
	r.ch(job.Run.RunID) <- time.Now()
	return events.RunDispatched{RunID: job.Run.RunID, Team: job.Team, Backend: "bench", Attempt: job.Attempt}, nil
}

func (r *recorder) Cancel(context.Context, string, string) error { return nil }

// BenchmarkSubmitToDispatched measures the time from POST /apis/v2beta1/runs (over HTTP,
// IR validated, run stored in Redis, run.submitted published) to the compile function's
// dispatch of that run (IR loaded and bound again), with 1, 16 and 64 clients at once.
// It reports p50 and p99 in milliseconds.
func BenchmarkSubmitToDispatched(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			st := state.New(redistest.Start(b), nil)
			router := events.NewRouter(quiet())
			bus := events.NewBus(router, events.BusOptions{Concurrency: 64, Logger: quiet()})
			rec := &recorder{waiters: map[string]chan time.Time{}}
			compile := &compilefn.Handler{Runs: st, Backends: map[string]compilefn.Backend{"bench": rec},
				DefaultBackend: "bench", Source: "bench", Now: time.Now, Log: quiet()}
			router.Handle(events.TypeRunSubmitted, events.Dedupe(st, time.Hour, compile.Submitted))
			router.Handle(events.TypeRunDispatched, func(context.Context, cloudevents.Event) (*cloudevents.Event, error) { return nil, nil })
			submit := &submitfn.Handler{Store: st, Events: bus, DefaultBackend: "bench", Backends: []string{"bench"},
				TeamOf: func(*http.Request) (string, error) { return "bench", nil }, Source: "bench", Log: quiet()}
			mux := http.NewServeMux()
			submit.Routes(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			body, _ := json.Marshal(api.Run{PipelineSpec: example(b, "hello-artifacts.yaml")})
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}

			lat := make([]time.Duration, 0, b.N)
			var mu sync.Mutex
			work := make(chan struct{}, b.N)
			for i := 0; i < b.N; i++ {
				work <- struct{}{}
			}
			close(work)
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						t0 := time.Now()
						resp, err := hc.Post(srv.URL+"/apis/v2beta1/runs", "application/json", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						var run api.Run
						err = json.NewDecoder(resp.Body).Decode(&run)
						resp.Body.Close()
						if err != nil || resp.StatusCode != 200 {
							b.Errorf("create: %d %v", resp.StatusCode, err)
							return
						}
						t1 := <-rec.ch(run.RunID)
						mu.Lock()
						lat = append(lat, t1.Sub(t0))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			_ = bus.Close(context.Background())
			report(b, lat)
		})
	}
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkListRunsPage measures GET /apis/v2beta1/runs?page_size=50 over HTTP with 10^4
// and 10^5 runs stored (10^6 with -pipefn.bench-big): the first page and a page deep in
// the listing (by token). Its cost must not grow with the count.
func BenchmarkListRunsPage(b *testing.B) {
	counts := []int{10_000, 100_000}
	if *big {
		counts = append(counts, 1_000_000)
	}
	rdb := redistest.Start(b)
	st := state.New(rdb, nil)
	status := &statusfn.Handler{Store: st, TeamOf: func(*http.Request) (string, error) { return "bench", nil }, Log: quiet()}
	mux := http.NewServeMux()
	status.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	stored := 0
	for _, n := range counts {
		fill(b, st, stored, n)
		stored = n
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			// A token deep in the listing: page through once, keep the 20th token.
			deep := ""
			for i := 0; i < 20; i++ {
				_, next := page(b, srv.URL, deep)
				deep = next
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tok := ""
				if i%2 == 1 {
					tok = deep
				}
				if runs, _ := page(b, srv.URL, tok); runs != 50 {
					b.Fatalf("page has %d runs", runs)
				}
			}
		})
	}
}

func page(b *testing.B, base, token string) (int, string) {
	url := base + "/apis/v2beta1/runs?page_size=50"
	if token != "" {
		url += "&page_token=" + token
	}
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Runs []json.RawMessage `json:"runs"`
		Next string            `json:"next_page_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		b.Fatal(err)
	}
	return len(out.Runs), out.Next
}

// fill stores runs from..to with 32 writers.
func fill(b *testing.B, st *state.Store, from, to int) {
	b.Helper()
	ctx := context.Background()
	spec := json.RawMessage(`{"pipelineInfo":{"name":"p"}}`)
	var wg sync.WaitGroup
	ch := make(chan int, 1024)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				r := api.Run{DisplayName: fmt.Sprintf("run-%d", i), PipelineSpec: spec, Backend: "local"}
				if _, _, err := st.CreateRun(ctx, "bench", r, state.CreateRunOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// BenchmarkStatusEvents measures run.status events handled per second by the status
// function's handler (decode, run read, task merge, state transition) on real Redis, each
// event carrying one task update of one of 100 runs.
func BenchmarkStatusEvents(b *testing.B) {
	st := state.New(redistest.Start(b), nil)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 100; i++ {
		r, _, err := st.CreateRun(ctx, "bench", api.Run{DisplayName: "r", PipelineSpec: json.RawMessage(`{}`)}, state.CreateRunOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	h := &statusfn.Handler{Store: st, Log: quiet()}
	evs := make([]cloudevents.Event, 0, 1000)
	for i := 0; i < 1000; i++ {
		now := time.Now()
		td := api.TaskDetail{TaskID: fmt.Sprintf("task-%d", i%20), DisplayName: "t", State: []string{api.StateRunning, api.StateSucceeded}[i%2], StartTime: &now}
		e, err := events.NewRunStatus("bench", now, events.RunStatus{RunID: ids[i%100], Team: "bench", State: api.StateRunning, Tasks: []api.TaskDetail{td}})
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e)
	}
	b.ResetTimer()
	b.SetParallelism(4)
	var n int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := h.RunStatus(ctx, evs[i%len(evs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
		mu.Lock()
		n += int64(i)
		mu.Unlock()
	})
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
