package handler

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/schedule"
	"github.com/pipefn/pipefn/shared/state"
)

// TestOnFired: an explicit schedule.fired event fires its slot once however often it
// arrives, does not refire a slot a tick fired, and refuses a time that is not a slot.
func TestOnFired(t *testing.T) {
	srv := redistest.StartServer(t)
	created := ts("2026-01-01T10:00:30Z")
	rs := newRuns()
	h := &Handler{Store: state.New(srv.Client(), func() time.Time { return created }), Submit: rs.submit, Log: quiet()}
	ctx := context.Background()
	if _, err := h.Store.CreateRecurringRun(ctx, team, recurring("hourly", "0 * * * *")); err != nil {
		t.Fatal(err)
	}
	fire := func(at string) error {
		e, err := events.NewScheduleFired("test", ts("2026-01-01T12:00:00Z"), events.ScheduleFired{
			RecurringRunID: "hourly", Team: team, ScheduledAt: ts(at)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.OnFired(ctx, e)
		return err
	}
	// A backfill of a slot before the schedule existed, twice.
	for i := 0; i < 2; i++ {
		if err := fire("2026-01-01T08:00:00Z"); err != nil {
			t.Fatal(err)
		}
	}
	// A tick fires 11:00; a fired event for 11:00 afterwards creates nothing new.
	if _, err := h.Tick(ctx, team, ts("2026-01-01T11:00:05Z")); err != nil {
		t.Fatal(err)
	}
	if err := fire("2026-01-01T11:00:00Z"); err != nil {
		t.Fatal(err)
	}
	want := []string{schedule.SlotRunID("hourly", ts("2026-01-01T08:00:00Z")), schedule.SlotRunID("hourly", ts("2026-01-01T11:00:00Z"))}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, rs.ids()); diff != "" {
		t.Errorf("created runs (-want +got):\n%s", diff)
	}
	for id, n := range rs.calls {
		if n != 1 {
			t.Errorf("run %s submitted %d times", id, n)
		}
	}
	err := fire("2026-01-01T11:30:00Z")
	if !events.IsPermanent(err) {
		t.Errorf("not a slot: err %v, want a permanent error", err)
	}
}
