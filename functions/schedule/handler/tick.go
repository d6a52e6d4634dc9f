// Package handler is the schedule function: the REST API of recurring runs
// (/apis/v2beta1/recurringruns, KFP's v2beta1 shape) and the tick handler that fires
// their runs exactly once.
//
// A tick (dev.knative.sources.ping) carries its time in the CloudEvent time attribute;
// that time, never the local clock, is "now" for every decision, so the same sequence
// of ticks gives the same runs. For each team the tick:
//
//  1. re-submits claims made by earlier ticks that were never marked submitted (a
//     replica crashed between claim and submit, or the submit failed transiently);
//  2. reads the schedules whose next slot is due (the store's due index), decides per
//     schedule with shared/schedule, and commits the decisions: the cursor moves with a
//     compare-and-set and each slot is claimed in the same script, so concurrent
//     replicas and duplicated or reordered ticks claim a slot once;
//  3. submits a run for each claim it made, with the slot's run id as idempotency key,
//     and marks the claims submitted.
//
// max_concurrency counts a schedule's runs that have not finished. The run-state path
// (functions/status) should call state.Store.ScheduledRunFinished when a run carrying a
// recurring_run_id reaches a terminal state; a schedule held back by max_concurrency also
// looks its active runs up itself (state.Store.ReleaseFinishedScheduleRuns), so a missed
// report delays the next run by at most one tick instead of blocking it for ever.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/schedule"
	"github.com/pipefn/pipefn/shared/state"
)

// SubmitFunc creates a run for team. It must be idempotent by idempotencyKey: a second
// call with the same key creates nothing and returns nil, so that a re-submitted claim
// yields the run of the first submission. run.RunID is the slot's run id, equal to
// idempotencyKey; a submit path that assigns its own run ids (the submit function does)
// may drop it, since exactly-once rests on the key, and the schedule finds the run again
// by the key or by the run's recurring_run_id and scheduled_at.
type SubmitFunc func(ctx context.Context, team string, run api.Run, idempotencyKey string) error

// Handler serves recurring runs and fires them on ticks.
type Handler struct {
	Store  *state.Store
	Submit SubmitFunc
	Log    *slog.Logger
	// Now is the clock of the REST API (create time, :next); nil means time.Now. Ticks
	// never read it.
	Now func() time.Time
	// Team authenticates a REST request and names its team (required for REST).
	Team func(r *http.Request) (string, error)
	// Teams lists the teams a tick serves; nil means every team the store knows.
	Teams func(ctx context.Context) ([]string, error)
	// SubmitParallelism bounds concurrent Submit calls per tick; 0 means 8.
	SubmitParallelism int

	// parsed caches parsed triggers: most schedules share a handful of cron strings, and
	// parsing dominated a tick's CPU over many schedules.
	parsed  sync.Map // triggerKey -> schedule.Schedule
	parsedN atomic.Int64
}

// triggerKey identifies a trigger and zone for the parse cache.
type triggerKey struct {
	cron       string
	interval   int64
	start, end int64
	tz         string
}

const maxParsed = 100_000

// parse parses rr's trigger, through the cache.
func (h *Handler) parse(rr api.RecurringRun) (schedule.Schedule, error) {
	k := triggerKey{tz: rr.TimeZone}
	var start, end *time.Time
	switch t := rr.Trigger; {
	case t.CronSchedule != nil && t.PeriodicSchedule == nil:
		k.cron, start, end = t.CronSchedule.Cron, t.CronSchedule.StartTime, t.CronSchedule.EndTime
	case t.PeriodicSchedule != nil && t.CronSchedule == nil:
		k.interval, start, end = t.PeriodicSchedule.IntervalSecond, t.PeriodicSchedule.StartTime, t.PeriodicSchedule.EndTime
	default:
		return schedule.Parse(rr.Trigger, rr.TimeZone)
	}
	if start != nil {
		k.start = start.UnixNano()
	}
	if end != nil {
		k.end = end.UnixNano()
	}
	if v, ok := h.parsed.Load(k); ok {
		return v.(schedule.Schedule), nil
	}
	s, err := schedule.Parse(rr.Trigger, rr.TimeZone)
	if err != nil {
		return s, err
	}
	if h.parsedN.Add(1) > maxParsed {
		h.parsed.Clear()
		h.parsedN.Store(0)
	}
	h.parsed.Store(k, s)
	return s, nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// Register mounts OnTick on r for PingSource ticks and OnFired for explicit
// schedule.fired events.
func (h *Handler) Register(r *events.Router) {
	r.Handle(events.TypePing, h.OnTick)
	r.Handle(events.TypeScheduleFired, h.OnFired)
}

// OnTick handles one PingSource tick: it fires every team's due slots at the event's
// time. A failing team does not stop the others; the error returned (transient, so the
// tick is redelivered) names the teams that failed.
func (h *Handler) OnTick(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	now := e.Time()
	if now.IsZero() {
		return nil, events.Permanent(fmt.Errorf("tick %s has no time attribute; the tick's time is the scheduler's clock", e.ID()))
	}
	list := h.Teams
	if list == nil {
		list = h.Store.Teams
	}
	teams, err := list(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, team := range teams {
		rep, err := h.Tick(ctx, team, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("team %s: %w", team, err))
			continue
		}
		if len(rep.Submitted)+len(rep.Failed)+len(rep.Unsubmitted) > 0 {
			h.log().InfoContext(ctx, "tick fired recurring runs", "team", team, "tick", now,
				"submitted", len(rep.Submitted), "failed", len(rep.Failed), "unsubmitted", len(rep.Unsubmitted), "blocked", rep.Blocked)
		}
	}
	return nil, errors.Join(errs...)
}

// Report says what one team's tick did.
type Report struct {
	// Submitted lists the run ids submitted by this tick (re-submissions included).
	Submitted []string
	// Unsubmitted lists claims whose submit failed transiently; a later tick retries.
	Unsubmitted []string
	// Failed lists claims whose submit failed permanently; they are not retried.
	Failed []string
	// Blocked counts schedules held back by max_concurrency.
	Blocked int
}

// maxStaleRetries bounds how often a tick re-decides a schedule whose cursor another
// replica moved meanwhile; the last replica to lose simply leaves it to the next tick.
const maxStaleRetries = 5

// Tick fires team's due slots at time now.
func (h *Handler) Tick(ctx context.Context, team string, now time.Time) (Report, error) {
	var rep Report
	// 1. Claims of earlier ticks that never got submitted.
	pending, err := h.Store.PendingClaims(ctx, team, now)
	if err != nil {
		return rep, err
	}
	if len(pending) > 0 {
		if err := h.submitClaims(ctx, team, now, pending, nil, &rep); err != nil {
			return rep, err
		}
	}

	// 2. Decide and commit.
	due, err := h.Store.DueRecurringRuns(ctx, team, now)
	if err != nil {
		return rep, err
	}
	rrs := make(map[string]api.RecurringRun, len(due))
	var claims []state.Claim
	for attempt := 0; len(due) > 0 && attempt < maxStaleRetries; attempt++ {
		commits := make([]state.TickCommit, 0, len(due))
		for _, ds := range due {
			c, blocked, ok := h.decide(ctx, team, ds, now)
			if blocked {
				rep.Blocked++
			}
			if ok {
				rrs[ds.RecurringRun.RecurringRunID] = ds.RecurringRun
				commits = append(commits, c)
			}
		}
		results, err := h.Store.CommitTick(ctx, team, now, commits)
		if err != nil {
			return rep, err
		}
		var stale []string
		for i, r := range results {
			switch r.Outcome {
			case state.CommitStale:
				stale = append(stale, commits[i].RecurringRunID)
			case state.CommitApplied:
				claims = append(claims, r.Claims...)
			}
		}
		if len(stale) == 0 {
			break
		}
		if due, err = h.Store.ReadSchedules(ctx, team, stale); err != nil {
			return rep, err
		}
	}

	// 3. Submit what this tick claimed.
	if err := h.submitClaims(ctx, team, now, claims, rrs, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// decide computes one schedule's commit. ok is false when there is nothing to write.
func (h *Handler) decide(ctx context.Context, team string, ds state.DueSchedule, now time.Time) (state.TickCommit, bool, bool) {
	rr := ds.RecurringRun
	sch, err := h.parse(rr)
	if err != nil {
		// Validated at create time; only a changed tz database could get here.
		h.log().ErrorContext(ctx, "stored recurring run no longer parses; skipping it", "team", team,
			"recurring_run_id", rr.RecurringRunID, "err", err)
		return state.TickCommit{}, false, false
	}
	active := ds.Active
	if rr.MaxConcurrency > 0 && int64(active) >= rr.MaxConcurrency {
		// Held back: release runs that ended without their end being reported.
		if n, err := h.Store.ReleaseFinishedScheduleRuns(ctx, team, rr.RecurringRunID); err == nil {
			active = n
		} else {
			h.log().WarnContext(ctx, "checking active runs of a held-back schedule", "team", team,
				"recurring_run_id", rr.RecurringRunID, "err", err)
		}
	}
	d := schedule.Decide(rr, sch, ds.Cursor, now, active)
	if len(d.Fire) == 0 && d.Cursor.Last.Equal(ds.Cursor.Last) && d.Cursor.OwedThrough.Equal(ds.Cursor.OwedThrough) {
		// Nothing changes (held back with nothing fireable); its due score stays.
		return state.TickCommit{}, d.Blocked, false
	}
	return state.TickCommit{
		RecurringRunID: rr.RecurringRunID,
		From:           ds.Cursor,
		To:             d.Cursor,
		NextDue:        d.NextDue,
		Slots:          d.Fire,
		MaxConcurrency: rr.MaxConcurrency,
	}, d.Blocked, true
}

// permanent reports whether a submit error can never succeed on retry.
func permanent(err error) bool {
	if events.IsPermanent(err) {
		return true
	}
	switch api.KindOf(err) {
	case api.KindInvalid, api.KindNotFound, api.KindFailedPrecondition, api.KindPermissionDenied, api.KindTooLarge:
		return true
	}
	return false
}

// submitClaims submits the runs of claims. rrs holds the schedules already read; others
// are fetched. A claim whose schedule was deleted is dropped.
func (h *Handler) submitClaims(ctx context.Context, team string, now time.Time, claims []state.Claim, rrs map[string]api.RecurringRun, rep *Report) error {
	if len(claims) == 0 {
		return nil
	}
	if rrs == nil {
		rrs = map[string]api.RecurringRun{}
	}
	var gone []state.Claim
	for _, c := range claims {
		if _, ok := rrs[c.RecurringRunID]; ok {
			continue
		}
		rr, err := h.Store.GetRecurringRun(ctx, team, c.RecurringRunID)
		switch {
		case api.KindOf(err) == api.KindNotFound:
			gone = append(gone, c)
		case err != nil:
			return err
		default:
			rrs[c.RecurringRunID] = rr
		}
	}
	if len(gone) > 0 {
		h.log().InfoContext(ctx, "dropping claims of deleted recurring runs", "team", team, "claims", len(gone))
		if err := h.Store.MarkFailed(ctx, team, gone); err != nil {
			return err
		}
	}

	par := h.SubmitParallelism
	if par <= 0 {
		par = 8
	}
	type result struct {
		c   state.Claim
		err error
	}
	results := make([]result, 0, len(claims))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for _, c := range claims {
		rr, ok := rrs[c.RecurringRunID]
		if !ok {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			run := RunFor(rr, c, now)
			err := h.Submit(ctx, team, run, run.RunID)
			mu.Lock()
			results = append(results, result{c, err})
			mu.Unlock()
		}()
	}
	wg.Wait()

	var ok, failed []state.Claim
	for _, r := range results {
		switch {
		case r.err == nil, api.KindOf(r.err) == api.KindConflict:
			ok = append(ok, r.c)
			rep.Submitted = append(rep.Submitted, r.c.RunID)
		case permanent(r.err):
			failed = append(failed, r.c)
			rep.Failed = append(rep.Failed, r.c.RunID)
			h.log().ErrorContext(ctx, "scheduled run refused; not retrying", "team", team,
				"recurring_run_id", r.c.RecurringRunID, "run_id", r.c.RunID, "scheduled_at", r.c.Slot, "err", r.err)
		default:
			rep.Unsubmitted = append(rep.Unsubmitted, r.c.RunID)
			h.log().WarnContext(ctx, "submitting scheduled run failed; a later tick retries", "team", team,
				"recurring_run_id", r.c.RecurringRunID, "run_id", r.c.RunID, "scheduled_at", r.c.Slot, "err", r.err)
		}
	}
	if err := h.Store.MarkSubmitted(ctx, team, ok); err != nil {
		return err
	}
	return h.Store.MarkFailed(ctx, team, failed)
}

// RunFor builds the run of one claimed slot: the schedule's pipeline, experiment and
// service account, parameters with KFP's [[ScheduledTime]], [[CurrentTime]] and [[Index]]
// substituted (times in the schedule's zone), scheduled_at set to the slot, and the
// slot's run id. now is the tick's time ([[CurrentTime]]).
func RunFor(rr api.RecurringRun, c state.Claim, now time.Time) api.Run {
	loc, err := schedule.LoadZone(rr.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	slot := c.Slot.UTC()
	run := api.Run{
		ExperimentID:             rr.ExperimentID,
		RunID:                    c.RunID,
		DisplayName:              rr.DisplayName + " " + slot.In(loc).Format(time.RFC3339),
		StorageState:             api.StorageAvailable,
		Description:              rr.Description,
		PipelineVersionReference: rr.PipelineVersionReference,
		PipelineSpec:             rr.PipelineSpec,
		ServiceAccount:           rr.ServiceAccount,
		CreatedAt:                now.UTC(),
		ScheduledAt:              &slot,
		RecurringRunID:           rr.RecurringRunID,
		Backend:                  rr.Backend,
	}
	if rc := rr.RuntimeConfig; rc != nil {
		run.RuntimeConfig = &api.RuntimeConfig{
			Parameters:   schedule.SubstituteParams(rc.Parameters, slot, now, c.Index, loc),
			PipelineRoot: rc.PipelineRoot,
		}
	}
	return run
}
