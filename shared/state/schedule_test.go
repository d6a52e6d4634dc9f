package state

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/schedule"
)

func schedTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func minuteRR(id string) api.RecurringRun {
	return api.RecurringRun{
		RecurringRunID:           id,
		DisplayName:              id,
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: "p"},
		Trigger:                  api.Trigger{CronSchedule: &api.CronSchedule{Cron: "* * * * *"}},
	}
}

func TestRecurringRunLifecycle(t *testing.T) {
	now := schedTime("2026-01-01T10:00:30Z")
	s := New(redistest.Start(t), func() time.Time { return now })
	ctx := context.Background()
	const tm = "team-s"

	if _, err := s.CreateRecurringRun(ctx, tm, api.RecurringRun{DisplayName: "x"}); api.KindOf(err) != api.KindInvalid {
		t.Fatalf("invalid recurring run: err %v, want invalid", err)
	}
	got, err := s.CreateRecurringRun(ctx, tm, minuteRR("a"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != api.StatusEnabled || got.Mode != api.ModeEnable || !got.CreatedAt.Equal(now) {
		t.Errorf("created: %+v", got)
	}
	if _, err := s.CreateRecurringRun(ctx, tm, minuteRR("a")); api.KindOf(err) != api.KindConflict {
		t.Errorf("duplicate id: %v, want conflict", err)
	}
	teams, err := s.Teams(ctx)
	if err != nil || len(teams) != 1 || teams[0] != tm {
		t.Errorf("Teams = %v, %v", teams, err)
	}

	// Only due schedules come back from the due index.
	if due, err := s.DueRecurringRuns(ctx, tm, schedTime("2026-01-01T10:00:59Z")); err != nil || len(due) != 0 {
		t.Errorf("due before the first slot: %v %v", due, err)
	}
	due, err := s.DueRecurringRuns(ctx, tm, schedTime("2026-01-01T10:01:00Z"))
	if err != nil || len(due) != 1 {
		t.Fatalf("due at the first slot: %v %v", due, err)
	}
	if want := (schedule.Cursor{Last: now}); due[0].Cursor != want {
		t.Errorf("initial cursor %+v, want %+v", due[0].Cursor, want)
	}

	// A commit from a stale cursor is refused; from the current one it claims.
	slot := schedTime("2026-01-01T10:01:00Z")
	commit := TickCommit{RecurringRunID: "a", From: schedule.Cursor{Last: now.Add(-time.Second)},
		To: schedule.Cursor{Last: slot}, NextDue: slot.Add(time.Minute), Slots: []time.Time{slot}}
	res, err := s.CommitTick(ctx, tm, slot, []TickCommit{commit})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != CommitStale {
		t.Errorf("stale commit: %+v", res[0])
	}
	commit.From = due[0].Cursor
	res, err = s.CommitTick(ctx, tm, slot, []TickCommit{commit, {RecurringRunID: "gone", To: schedule.Cursor{Last: slot}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []TickResult{
		{Outcome: CommitApplied, Claims: []Claim{{RecurringRunID: "a", Slot: slot, RunID: schedule.SlotRunID("a", slot), Index: 1}}},
		{Outcome: CommitGone},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("CommitTick (-want +got):\n%s", diff)
	}
	// The same commit again is stale: the cursor moved.
	if res, _ := s.CommitTick(ctx, tm, slot, []TickCommit{commit}); res[0].Outcome != CommitStale {
		t.Errorf("repeated commit: %+v", res[0])
	}
	// A direct claim of the slot sees it taken.
	if id, first, err := s.ClaimSlot(ctx, tm, "a", slot); err != nil || first || id != schedule.SlotRunID("a", slot) {
		t.Errorf("ClaimSlot of a claimed slot = %q %v %v", id, first, err)
	}

	// The claim is pending for later ticks only, until marked submitted.
	if p, _ := s.PendingClaims(ctx, tm, slot); len(p) != 0 {
		t.Errorf("pending for the claiming tick itself: %v", p)
	}
	p, err := s.PendingClaims(ctx, tm, slot.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[0].Claims, p); diff != "" {
		t.Errorf("PendingClaims (-want +got):\n%s", diff)
	}
	if err := s.MarkSubmitted(ctx, tm, p); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.PendingClaims(ctx, tm, slot.Add(time.Minute)); len(p) != 0 {
		t.Errorf("pending after MarkSubmitted: %v", p)
	}
	if st, _ := s.SlotClaimState(ctx, tm, "a", slot); st != "submitted" {
		t.Errorf("slot state %q", st)
	}
	active, _ := s.ActiveScheduleRuns(ctx, tm, "a")
	if diff := cmp.Diff([]string{schedule.SlotRunID("a", slot)}, active); diff != "" {
		t.Errorf("active (-want +got):\n%s", diff)
	}
	if err := s.ScheduleRunFinished(ctx, tm, "a", active[0]); err != nil {
		t.Fatal(err)
	}
	if active, _ := s.ActiveScheduleRuns(ctx, tm, "a"); len(active) != 0 {
		t.Errorf("active after finish: %v", active)
	}

	// Disabling drops it from the due index; enabling an hour later moves the cursor to
	// then, so the disabled hour is not owed.
	if _, err := s.SetRecurringRunMode(ctx, tm, "a", api.ModeDisable); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueRecurringRuns(ctx, tm, schedTime("2026-01-01T11:00:00Z")); len(due) != 0 {
		t.Errorf("disabled schedule is due: %v", due)
	}
	now = schedTime("2026-01-01T11:00:30Z")
	rr, err := s.SetRecurringRunMode(ctx, tm, "a", api.ModeEnable)
	if err != nil || rr.Status != api.StatusEnabled || !rr.UpdatedAt.Equal(now) {
		t.Fatalf("enable: %+v %v", rr, err)
	}
	due, _ = s.DueRecurringRuns(ctx, tm, schedTime("2026-01-01T11:01:00Z"))
	if len(due) != 1 || !due[0].Cursor.Last.Equal(now) {
		t.Errorf("after enable: %+v", due)
	}
	if _, err := s.SetRecurringRunMode(ctx, tm, "a", "PAUSE"); api.KindOf(err) != api.KindInvalid {
		t.Errorf("bad mode: %v", err)
	}

	if err := s.DeleteRecurringRun(ctx, tm, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecurringRun(ctx, tm, "a"); api.KindOf(err) != api.KindNotFound {
		t.Errorf("get after delete: %v", err)
	}
	if due, _ := s.DueRecurringRuns(ctx, tm, schedTime("2026-01-02T00:00:00Z")); len(due) != 0 {
		t.Errorf("deleted schedule is due: %v", due)
	}
	if n, _ := s.CountRecurringRuns(ctx, tm); n != 0 {
		t.Errorf("count after delete = %d", n)
	}
	if _, _, err := s.ClaimSlot(ctx, tm, "a", slot.Add(time.Hour)); api.KindOf(err) != api.KindNotFound {
		t.Errorf("ClaimSlot of a deleted schedule: %v", err)
	}
}

func TestRecurringRunEndTimeLeavesDueIndex(t *testing.T) {
	now := schedTime("2026-01-01T10:00:30Z")
	s := New(redistest.Start(t), func() time.Time { return now })
	ctx := context.Background()
	end := schedTime("2026-01-01T10:01:30Z")
	rr := minuteRR("short")
	rr.Trigger.CronSchedule.EndTime = &end
	if _, err := s.CreateRecurringRun(ctx, "t", rr); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueRecurringRuns(ctx, "t", schedTime("2026-01-01T10:05:00Z"))
	if len(due) != 1 {
		t.Fatalf("due: %v", due)
	}
	sch, _ := schedule.Parse(rr.Trigger, "")
	d := schedule.Decide(due[0].RecurringRun, sch, due[0].Cursor, schedTime("2026-01-01T10:05:00Z"), 0)
	if !d.NextDue.IsZero() {
		t.Fatalf("NextDue after end = %v", d.NextDue)
	}
	res, err := s.CommitTick(ctx, "t", schedTime("2026-01-01T10:05:00Z"), []TickCommit{{RecurringRunID: "short",
		From: due[0].Cursor, To: d.Cursor, NextDue: d.NextDue, Slots: d.Fire}})
	if err != nil || res[0].Outcome != CommitApplied || len(res[0].Claims) != 1 {
		t.Fatalf("commit: %+v %v", res, err)
	}
	if due, _ := s.DueRecurringRuns(ctx, "t", schedTime("2027-01-01T00:00:00Z")); len(due) != 0 {
		t.Errorf("ended schedule still due: %v", due)
	}
}
