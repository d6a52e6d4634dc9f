package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/state"
)

// wideDAG is KFP IR of n shell tasks in layers of ten: each task after the first layer
// depends on one or two tasks of the layer before, as a real fan-out/fan-in pipeline does.
func wideDAG(n int) []byte {
	var b strings.Builder
	b.WriteString(`components:
  comp-step:
    executorLabel: exec-step
    inputDefinitions:
      parameters:
        label:
          parameterType: STRING
deploymentSpec:
  executors:
    exec-step:
      container:
        image: alpine:3.20
        command: [sh, -c, 'echo "step $0"', '{{$.inputs.parameters[''label'']}}']
pipelineInfo:
  name: wide-dag
root:
  dag:
    tasks:
`)
	name := func(i int) string { return fmt.Sprintf("step-%02d", i) }
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "      %s:\n        componentRef:\n          name: comp-step\n", name(i))
		if i >= 10 {
			deps := []string{name(i - 10)}
			if i%10 != 0 {
				deps = append(deps, name(i-11))
			}
			fmt.Fprintf(&b, "        dependentTasks: [%s]\n", strings.Join(deps, ", "))
		}
		fmt.Fprintf(&b, "        inputs:\n          parameters:\n            label:\n              runtimeValue:\n                constant: %q\n", name(i))
		fmt.Fprintf(&b, "        taskInfo:\n          name: %s\n", name(i))
	}
	b.WriteString("schemaVersion: 2.1.0\nsdkVersion: kfp-2.13.0\n")
	return []byte(b.String())
}

// pageLoad is what one cold load of a page cost.
type pageLoad struct {
	Bytes    float64 // bytes transferred (encoded, as on the wire)
	Requests int
	FCP      float64 // first contentful paint, ms after navigation start
	DAG      float64 // the run's DAG drawn (the UI's pipefn:dag-drawn mark), ms
}

// loadRunPage opens url in a fresh tab with the cache disabled and waits until the DAG
// shows nodes task nodes.
func loadRunPage(tb testing.TB, browser context.Context, url string, nodes int) pageLoad {
	tb.Helper()
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	var mu sync.Mutex
	var load pageLoad
	if err := chromedp.Listen(tab, func(ev any) {
		if e, ok := ev.(*network.EventLoadingFinished); ok {
			mu.Lock()
			load.Bytes += e.EncodedDataLength
			load.Requests++
			mu.Unlock()
		}
	}); err != nil {
		tb.Fatal(err)
	}
	run(tb, tab, "disable the cache", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	}), chromedp.Navigate(url))
	waitJS(tb, tab, "the DAG", fmt.Sprintf(`document.querySelectorAll('#run-graph g.node').length === %d && performance.getEntriesByName('pipefn:dag-drawn').length`, nodes))
	var t struct{ FCP, DAG float64 }
	eval(tb, tab, `({FCP: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1, DAG: performance.getEntriesByName('pipefn:dag-drawn')[0].startTime})`, &t)
	load.FCP, load.DAG = t.FCP, t.DAG
	mu.Lock()
	defer mu.Unlock()
	return load
}

// BenchmarkRunPage50Tasks loads the page of a finished 50-task run, cold, and reports the
// bytes transferred, the first contentful paint and the time until the DAG is drawn:
//
//	go test ./tests/browser -run '^$' -bench RunPage50Tasks -benchtime 10x
func BenchmarkRunPage50Tasks(b *testing.B) {
	s := startServer(b)
	bg := context.Background()
	p, err := s.c.UploadPipeline(bg, "wide-dag", "", wideDAG(50))
	if err != nil {
		b.Fatal(err)
	}
	r, err := s.c.CreateRun(bg, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID}}, "")
	if err != nil {
		b.Fatal(err)
	}
	done := s.waitRun(b, r.RunID, api.StateSucceeded)
	if n := len(done.RunDetails.TaskDetails); n != 50 {
		b.Fatalf("run has %d tasks, want 50", n)
	}
	browser := newBrowser(b)
	url := s.url + "/runs/" + r.RunID
	// One load first, so that the browser's own start-up is not in the figures.
	first := loadRunPage(b, browser, url, 50)
	var sum pageLoad
	for b.Loop() {
		l := loadRunPage(b, browser, url, 50)
		sum.Bytes += l.Bytes
		sum.FCP += l.FCP
		sum.DAG += l.DAG
		sum.Requests += l.Requests
	}
	n := float64(b.N)
	b.ReportMetric(sum.Bytes/n, "bytes/load")
	b.ReportMetric(float64(sum.Requests)/n, "requests/load")
	b.ReportMetric(sum.FCP/n, "ms-fcp")
	b.ReportMetric(sum.DAG/n, "ms-dag")
	note := fmt.Sprintf("run page, 50-task DAG, cold cache, headless Chromium, %d loads\nbytes transferred: %.0f (%d requests; first load %.0f bytes)\nfirst contentful paint: %.1f ms\nDAG drawn: %.1f ms\n",
		b.N, sum.Bytes/n, sum.Requests/b.N, first.Bytes, sum.FCP/n, sum.DAG/n)
	if err := os.WriteFile(filepath.Join(artefactDir(b), "perf-run-page-50.txt"), []byte(note), 0o644); err != nil {
		b.Fatal(err)
	}
	run(b, browser, "open the run", chromedp.Navigate(url))
	waitJS(b, browser, "the DAG", `document.querySelectorAll('#run-graph g.node').length === 50`)
	screenshot(b, browser, "run-50-tasks")
	b.Log(note)
}

// BenchmarkRunsPage loads the runs list, cold, with many runs stored (10^5 unless
// PIPEFN_BENCH_RUNS says otherwise): unfiltered, and filtered by state. The list is one
// page from a server-side index, so its cost must not grow with the number of runs:
//
//	go test ./tests/browser -run '^$' -bench RunsPage -benchtime 5x
func BenchmarkRunsPage(b *testing.B) {
	n := 100000
	if v := os.Getenv("PIPEFN_BENCH_RUNS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			b.Fatalf("PIPEFN_BENCH_RUNS=%q: want a positive number", v)
		}
	}
	// No ticks: the status resync would otherwise find the seeded runs and dispatch them.
	s := startServerWith(b, func(c *allinone.Config) { c.Tick = -1 })
	bg := context.Background()
	p, err := s.c.UploadPipeline(bg, "hello", "", readFile(b, repoRoot(), "examples", "hello-artifacts.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	versions, err := s.c.ListVersions(bg, p.PipelineID, 1, "")
	if err != nil || len(versions.PipelineVersions) == 0 {
		b.Fatalf("versions of %s: %v", p.PipelineID, err)
	}
	ref := &api.PipelineVersionReference{PipelineID: p.PipelineID, PipelineVersionID: versions.PipelineVersions[0].PipelineVersionID}
	// Seed through the store (the REST path would dispatch every run), as finished runs;
	// every 100th failed, so that a state filter has a sparse answer.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				r, _, err := s.srv.Store.CreateRun(bg, "default", api.Run{DisplayName: fmt.Sprintf("seeded-%06d", i), PipelineVersionReference: ref, Backend: "local"}, state.CreateRunOptions{})
				if err == nil {
					final := api.StateSucceeded
					if i%100 == 0 {
						final = api.StateFailed
					}
					_, err = s.srv.Store.Transition(bg, "default", r.RunID, state.StateUpdate{State: final})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("seed: %v", err)
	}
	b.Logf("seeded %d runs in %s", n, time.Since(start).Round(time.Millisecond))
	browser := newBrowser(b)
	load := func(url string) pageLoad {
		tab, cancel := chromedp.NewContext(browser)
		defer cancel()
		var mu sync.Mutex
		var l pageLoad
		if err := chromedp.Listen(tab, func(ev any) {
			if e, ok := ev.(*network.EventLoadingFinished); ok {
				mu.Lock()
				l.Bytes += e.EncodedDataLength
				l.Requests++
				mu.Unlock()
			}
		}); err != nil {
			b.Fatal(err)
		}
		run(b, tab, "open "+url, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
			return err
		}), chromedp.Navigate(url))
		waitJS(b, tab, "the list", `document.querySelectorAll('main tbody tr').length > 0 && performance.getEntriesByName('pipefn:runs-drawn').length`)
		var t struct{ FCP, DAG float64 }
		eval(b, tab, `({FCP: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1, DAG: performance.getEntriesByName('pipefn:runs-drawn')[0].startTime})`, &t)
		l.FCP, l.DAG = t.FCP, t.DAG
		mu.Lock()
		defer mu.Unlock()
		return l
	}
	all, failed := s.url+"/", s.url+"/?state=FAILED"
	load(all)
	var sumAll, sumFailed pageLoad
	for b.Loop() {
		a, f := load(all), load(failed)
		sumAll.Bytes += a.Bytes
		sumAll.DAG += a.DAG
		sumFailed.DAG += f.DAG
	}
	k := float64(b.N)
	b.ReportMetric(sumAll.Bytes/k, "bytes/load")
	b.ReportMetric(sumAll.DAG/k, "ms-list")
	b.ReportMetric(sumFailed.DAG/k, "ms-list-failed")
	note := fmt.Sprintf("runs list with %d runs stored, cold cache, %d loads each\nbytes transferred: %.0f\nlist drawn: %.1f ms (all), %.1f ms (state=FAILED, 1%% of runs)\n",
		n, b.N, sumAll.Bytes/k, sumAll.DAG/k, sumFailed.DAG/k)
	if err := os.WriteFile(filepath.Join(artefactDir(b), "perf-runs-list.txt"), []byte(note), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Log(note)
}
