package handler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

// BenchmarkTick measures one tick over n enabled schedules on a real Redis: "all-due"
// (every schedule fires every minute) and "1/60-due" (hourly crons spread over the
// minutes, so a tick touches only the due sixtieth). Submit is a no-op; the metrics are
// Redis round trips and commands per tick.
//
//	go test -run '^$' -bench Tick -benchtime 3x ./functions/schedule/handler
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, spread := range []bool{false, true} {
			name := fmt.Sprintf("schedules=%d/all-due", n)
			if spread {
				name = fmt.Sprintf("schedules=%d/1-in-60-due", n)
			}
			b.Run(name, func(b *testing.B) { benchTick(b, n, spread) })
		}
	}
}

func benchTick(b *testing.B, n int, spread bool) {
	srv := redistest.StartServer(b)
	created := ts("2026-01-01T00:00:30Z")
	store := state.New(srv.Client(), func() time.Time { return created })
	ctx := context.Background()
	seed := make(chan int)
	errc := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func() {
			for i := range seed {
				cron := "* * * * *"
				if spread {
					cron = fmt.Sprintf("%d * * * *", i%60)
				}
				rr := recurring(fmt.Sprintf("rr-%06d", i), cron, func(r *api.RecurringRun) { r.Catchup = api.CatchupNone })
				if _, err := store.CreateRecurringRun(ctx, team, rr); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for i := 0; i < n; i++ {
		seed <- i
	}
	close(seed)
	for w := 0; w < 8; w++ {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	counter := store.CountRoundTrips()
	h := &Handler{Store: store, Log: quiet(), Submit: func(context.Context, string, api.Run, string) error { return nil }}
	b.ResetTimer()
	fired := 0
	t0, c0 := counter.Counts()
	for i := 0; i < b.N; i++ {
		rep, err := h.Tick(ctx, team, created.Add(time.Duration(i+1)*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		fired += len(rep.Submitted)
	}
	b.StopTimer()
	t1, c1 := counter.Counts()
	b.ReportMetric(float64(t1-t0)/float64(b.N), "roundtrips/tick")
	b.ReportMetric(float64(c1-c0)/float64(b.N), "cmds/tick")
	b.ReportMetric(float64(fired)/float64(b.N), "runs/tick")
}
