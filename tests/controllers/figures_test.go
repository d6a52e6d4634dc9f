package controllers

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

// figureRuns is how many times TestFigures runs the pipeline on each backend with
// PIPEFN_E2E_FIGURES=1 (override with PIPEFN_E2E_FIGURES_N); smokeRuns without it, so
// that every CI run goes through the measurement too.
const (
	figureRuns = 20
	smokeRuns  = 2
)

// TestFigures measures submit -> SUCCEEDED wall time of the two-step corpus pipeline,
// run sequentially on each engine through its real controller, and on the local backend
// of the same server for comparison, and logs each backend's median and p90. The 20 runs
// per backend the figures need take minutes, so without PIPEFN_E2E_FIGURES=1 it makes
// only two (a smoke run of the same code; its numbers are not the figures).
func TestFigures(t *testing.T) {
	n := smokeRuns
	if os.Getenv("PIPEFN_E2E_FIGURES") == "1" {
		n = figureRuns
	} else {
		t.Logf("smoke run: %d runs per backend; set PIPEFN_E2E_FIGURES=1 for the %d the figures use", smokeRuns, figureRuns)
	}
	if s := os.Getenv("PIPEFN_E2E_FIGURES_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("PIPEFN_E2E_FIGURES_N=%q: want a positive integer", s)
		}
		n = v
	}
	tk := start(t, "tekton")
	tk.logs = append(tk.logs, cluster.tektonLog)
	// As installed: Tekton's CloudEvents reach pipefn, which also resyncs on its tick.
	if err := setTektonEventsSink(tk.ctx, tk.srv.URL+"/events"); err != nil {
		t.Fatal(err)
	}
	ar := start(t, "argo")
	startArgo(t, ar)
	spec := corpus(t, twoStep)

	for _, b := range []struct {
		f       *fixture
		backend string
	}{{tk, "local"}, {tk, "tekton"}, {ar, "argo"}} {
		var took []time.Duration
		for i := range n {
			text := "figure " + b.backend + " " + strconv.Itoa(i)
			began := time.Now()
			// Caching off: every run does the work, not a cache lookup.
			r, err := b.f.submitBackend("two-step", b.backend, spec, map[string]any{"text": text})
			if err != nil {
				t.Fatal(err)
			}
			done, err := b.f.pollRunFast(r.RunID)
			if err != nil {
				t.Fatalf("%s run %d: %v", b.backend, i, err)
			}
			d := time.Since(began)
			if done.State != api.StateSucceeded {
				t.Fatalf("%s run %d ended %s: %+v\n%s", b.backend, i, done.State, done.Error, engineView(b.backend, done))
			}
			took = append(took, d)
		}
		slices.Sort(took)
		t.Logf("%-6s two-step submit -> SUCCEEDED over %d sequential runs: median %s, p90 %s, min %s, max %s",
			b.backend, n, percentile(took, 50), percentile(took, 90), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	}
}

// pollRunFast waits for the run to end, polling every 50 ms so that the poll adds
// little to the measured time (pollRun's 250 ms would dominate the local backend's).
func (f *fixture) pollRunFast(id string) (api.Run, error) {
	deadline := time.Now().Add(runTimeout)
	for {
		r, err := f.api.GetRun(f.ctx, id)
		if err != nil {
			return api.Run{}, err
		}
		if api.Terminal(r.State) {
			return *r, nil
		}
		if time.Now().After(deadline) {
			return *r, fmt.Errorf("run %s still %s after %s", id, r.State, runTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1].Round(time.Millisecond)
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	twenty := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 90, 7 * time.Millisecond},
		{"median of 20 is the 10th", twenty, 50, 10 * time.Millisecond},
		{"p90 of 20 is the 18th", twenty, 90, 18 * time.Millisecond},
		{"p100 is the max", twenty, 100, 20 * time.Millisecond},
		{"p0 is the min", twenty, 0, 1 * time.Millisecond},
		{"median of 3 is the middle", ms(1, 5, 9), 50, 5 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, percentile(c.sorted, c.p)); diff != "" {
				t.Errorf("percentile(%v, %d) (-want +got):\n%s", c.sorted, c.p, diff)
			}
		})
	}
}
