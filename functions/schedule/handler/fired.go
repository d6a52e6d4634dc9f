package handler

import (
	"context"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/state"
)

// OnFired handles dev.pipefn.schedule.fired.v1: fire one given slot of a recurring run
// (an operator backfill, or a replayed event). The slot must be one of the schedule's
// slots; it is claimed like a tick claims it, so it yields at most one run however often
// the event arrives, and a slot a tick already fired is not fired again. It bypasses
// catch-up and max_concurrency, which govern ticks, not explicit requests.
func (h *Handler) OnFired(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	var d events.ScheduleFired
	if err := e.DataAs(&d); err != nil {
		return nil, events.Permanent(fmt.Errorf("schedule.fired %s: data: %w", e.ID(), err))
	}
	team := d.Team
	if team == "" {
		team = events.Team(e)
	}
	if team == "" || d.RecurringRunID == "" || d.ScheduledAt.IsZero() {
		return nil, events.Permanent(fmt.Errorf("schedule.fired %s: team, recurring_run_id and scheduled_at are required", e.ID()))
	}
	rr, err := h.Store.GetRecurringRun(ctx, team, d.RecurringRunID)
	if api.KindOf(err) == api.KindNotFound {
		return nil, events.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	sch, err := h.parse(rr)
	if err != nil {
		return nil, events.Permanent(fmt.Errorf("recurring run %s: %w", rr.RecurringRunID, err))
	}
	slot := d.ScheduledAt.UTC()
	if !sch.Next(slot.Add(-time.Nanosecond)).Equal(slot) {
		return nil, events.Permanent(fmt.Errorf("schedule.fired %s: %s is not a slot of recurring run %s",
			e.ID(), slot.Format(time.RFC3339Nano), rr.RecurringRunID))
	}
	c, first, err := h.Store.ClaimSlotRun(ctx, team, rr.RecurringRunID, slot)
	if err != nil {
		return nil, err
	}
	if !first {
		// Submitted, failed, or pending (a tick re-submits it): nothing more to do here.
		return nil, nil
	}
	now := e.Time()
	if now.IsZero() {
		now = h.now()
	}
	var rep Report
	if err := h.submitClaims(ctx, team, now, []state.Claim{c}, map[string]api.RecurringRun{rr.RecurringRunID: rr}, &rep); err != nil {
		return nil, err
	}
	if len(rep.Unsubmitted) > 0 {
		// Pending now; the next tick re-submits it, so the event need not be redelivered.
		h.log().WarnContext(ctx, "fired slot not submitted yet; the next tick retries", "team", team,
			"recurring_run_id", rr.RecurringRunID, "scheduled_at", slot)
	}
	return nil, nil
}
