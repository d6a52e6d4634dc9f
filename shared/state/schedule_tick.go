package state

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/schedule"
)

// DueSchedule is an enabled recurring run whose next slot is due, with what a tick needs
// to decide about it.
type DueSchedule struct {
	RecurringRun api.RecurringRun
	Cursor       schedule.Cursor
	// Active is the number of the schedule's runs that have not finished.
	Active int
}

// DueRecurringRuns returns the team's enabled recurring runs whose next slot is at or
// before now. It reads the due index (one round trip) and the schedules in pipelined
// batches, so its cost grows with the number due, not the number stored.
func (s *Store) DueRecurringRuns(ctx context.Context, team string, now time.Time) ([]DueSchedule, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: rrDueKey(team), ByScore: true, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10),
	}).Result()
	if err != nil {
		return nil, redisErr("read due recurring runs", err)
	}
	out := make([]DueSchedule, 0, len(ids))
	for start := 0; start < len(ids); start += tickBatch {
		batch := ids[start:min(start+tickBatch, len(ids))]
		got, err := s.readSchedules(ctx, team, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// tickBatch bounds how many schedules go into one pipeline.
const tickBatch = 1000

func (s *Store) readSchedules(ctx context.Context, team string, ids []string) ([]DueSchedule, error) {
	pipe := s.rdb.Pipeline()
	hs := make([]*redis.SliceCmd, len(ids))
	ns := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HMGet(ctx, rrKey(team, id), "json", "mode", "last", "owed")
		ns[i] = pipe.HLen(ctx, rrActiveKey(team, id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, redisErr("read due recurring runs", err)
	}
	out := make([]DueSchedule, 0, len(ids))
	for i, id := range ids {
		v := hs[i].Val()
		rr, err := decodeRR(team, id, v[0], v[1])
		if api.KindOf(err) == api.KindNotFound {
			continue // deleted since the index was read
		}
		if err != nil {
			return nil, err
		}
		last, _ := v[2].(string)
		owed, _ := v[3].(string)
		out = append(out, DueSchedule{
			RecurringRun: rr,
			Cursor:       schedule.Cursor{Last: fromNS(last), OwedThrough: fromNS(owed)},
			Active:       int(ns[i].Val()),
		})
	}
	return out, nil
}

// TickCommit is one schedule's outcome of a tick: the cursor it was decided from, the
// cursor and next due time after it, and the slots to claim.
type TickCommit struct {
	RecurringRunID string
	From, To       schedule.Cursor
	NextDue        time.Time
	Slots          []time.Time
	MaxConcurrency int64
}

// Claim is one claimed slot of a recurring run: the run to submit for it.
type Claim struct {
	RecurringRunID string
	Slot           time.Time
	RunID          string
	// Index is the 1-based ordinal of the run among the schedule's runs ([[Index]]).
	Index int64
}

// Commit outcomes.
const (
	// CommitApplied: the cursor moved and the slots were claimed.
	CommitApplied = iota
	// CommitStale: the cursor or the active runs changed since they were read (another
	// replica or tick got there first); read the schedule again and decide again.
	CommitStale
	// CommitGone: the schedule was deleted or disabled meanwhile; nothing was done.
	CommitGone
)

// TickResult is the outcome of one TickCommit.
type TickResult struct {
	Outcome int
	// Claims are the slots this commit claimed first; a slot someone else had claimed
	// already is not listed.
	Claims []Claim
}

// commitTickScript applies one schedule's tick decision if its cursor is still the one
// decided from. KEYS: rr hash, active, due, pending, slot keys... ARGV: expected last,
// expected owed, new last, new owed, due score ("" = remove), max_concurrency, tick ms,
// id, run ids..., slot ns....
var commitTickScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'last', 'owed', 'mode')
if not h[3] or h[3] ~= 'ENABLE' then return {-1} end
if (h[1] or '') ~= ARGV[1] or (h[2] or '') ~= ARGV[2] then return {-2} end
local n = #KEYS - 4
local max = tonumber(ARGV[6])
if max > 0 and n > 0 and redis.call('HLEN', KEYS[2]) + n > max then return {-2} end
local out = {0}
for i = 1, n do
  local rid = ARGV[8 + i]
  if redis.call('SET', KEYS[4 + i], 'claimed', 'NX') then
    local idx = redis.call('HINCRBY', KEYS[1], 'index', 1)
    redis.call('HSET', KEYS[2], rid, ARGV[8 + n + i])
    redis.call('ZADD', KEYS[4], ARGV[7], ARGV[8] .. ' ' .. ARGV[8 + n + i] .. ' ' .. idx)
    out[#out + 1] = idx
  else
    out[#out + 1] = 0
  end
end
redis.call('HSET', KEYS[1], 'last', ARGV[3], 'owed', ARGV[4])
if ARGV[5] == '' then redis.call('ZREM', KEYS[3], ARGV[8]) else redis.call('ZADD', KEYS[3], ARGV[5], ARGV[8]) end
return out
`)

// CommitTick applies tick decisions atomically per schedule (one pipelined script call
// each): the cursor moves forward only if it is still the one decided from, the slots
// are claimed (SET NX on the slot key), their run ids join the schedule's active set and
// the pending claims, and the due index gets the next due time. tick is the tick's time;
// claims made by it are re-submitted by later ticks until MarkSubmitted.
func (s *Store) CommitTick(ctx context.Context, team string, tick time.Time, commits []TickCommit) ([]TickResult, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	out := make([]TickResult, 0, len(commits))
	for start := 0; start < len(commits); start += tickBatch {
		batch := commits[start:min(start+tickBatch, len(commits))]
		// Pipelined EVALSHA cannot fall back to EVAL per command; load the script once
		// per batch (cheap, and survives a Redis restart between batches).
		if err := commitTickScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, redisErr("load tick script", err)
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, c := range batch {
			keys := []string{rrKey(team, c.RecurringRunID), rrActiveKey(team, c.RecurringRunID), rrDueKey(team), rrPendingKey(team)}
			args := []any{nsField(c.From.Last), nsField(c.From.OwedThrough), nsField(c.To.Last), nsField(c.To.OwedThrough),
				dueScore(c.NextDue), c.MaxConcurrency, tick.UnixMilli(), c.RecurringRunID}
			for _, sl := range c.Slots {
				keys = append(keys, rrSlotKey(team, c.RecurringRunID, sl))
				args = append(args, schedule.SlotRunID(c.RecurringRunID, sl))
			}
			for _, sl := range c.Slots {
				args = append(args, strconv.FormatInt(sl.UnixNano(), 10))
			}
			cmds[i] = commitTickScript.EvalSha(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, redisErr("commit tick", err)
		}
		for i, c := range batch {
			res, err := cmds[i].Int64Slice()
			if err != nil || len(res) == 0 {
				return nil, redisErr("commit tick of recurring run "+c.RecurringRunID, fmt.Errorf("unexpected script reply %v: %v", cmds[i].Val(), err))
			}
			r := TickResult{}
			switch res[0] {
			case -1:
				r.Outcome = CommitGone
			case -2:
				r.Outcome = CommitStale
			default:
				for j, idx := range res[1:] {
					if idx > 0 {
						sl := c.Slots[j]
						r.Claims = append(r.Claims, Claim{RecurringRunID: c.RecurringRunID, Slot: sl,
							RunID: schedule.SlotRunID(c.RecurringRunID, sl), Index: idx})
					}
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// pendingMember is the rr:pending member of a claim.
func pendingMember(c Claim) string {
	return c.RecurringRunID + " " + strconv.FormatInt(c.Slot.UnixNano(), 10) + " " + strconv.FormatInt(c.Index, 10)
}

func parsePending(m string) (Claim, bool) {
	f := strings.Split(m, " ")
	if len(f) != 3 {
		return Claim{}, false
	}
	ns, err1 := strconv.ParseInt(f[1], 10, 64)
	idx, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Claim{}, false
	}
	slot := time.Unix(0, ns).UTC()
	return Claim{RecurringRunID: f[0], Slot: slot, RunID: schedule.SlotRunID(f[0], slot), Index: idx}, true
}

// PendingClaims returns the team's claims made by ticks before the given tick time that
// were not submitted yet (a replica crashed, or the submit failed transiently), oldest
// first. Claims of the same tick are left to the replica that made them.
func (s *Store) PendingClaims(ctx context.Context, team string, before time.Time) ([]Claim, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ms, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: rrPendingKey(team), ByScore: true, Start: "-inf", Stop: "(" + strconv.FormatInt(before.UnixMilli(), 10),
	}).Result()
	if err != nil {
		return nil, redisErr("read pending schedule claims", err)
	}
	out := make([]Claim, 0, len(ms))
	for _, m := range ms {
		if c, ok := parsePending(m); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// MarkSubmitted records that the runs of claims were submitted: the claims leave the
// pending set and their slot keys say submitted.
func (s *Store) MarkSubmitted(ctx context.Context, team string, claims []Claim) error {
	return s.settleClaims(ctx, team, claims, "submitted", false)
}

// MarkFailed records that the runs of claims can never be submitted (the pipeline version
// is gone, the spec is invalid): the claims leave the pending set and the active set, so
// they neither retry forever nor hold max_concurrency.
func (s *Store) MarkFailed(ctx context.Context, team string, claims []Claim) error {
	return s.settleClaims(ctx, team, claims, "failed", true)
}

func (s *Store) settleClaims(ctx context.Context, team string, claims []Claim, state string, release bool) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	for start := 0; start < len(claims); start += tickBatch {
		pipe := s.rdb.Pipeline()
		for _, c := range claims[start:min(start+tickBatch, len(claims))] {
			pipe.Set(ctx, rrSlotKey(team, c.RecurringRunID, c.Slot), state, claimTTL)
			pipe.ZRem(ctx, rrPendingKey(team), pendingMember(c))
			if release {
				pipe.HDel(ctx, rrActiveKey(team, c.RecurringRunID), c.RunID)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return redisErr("mark schedule claims "+state, err)
		}
	}
	return nil
}

// SlotClaimState returns the state of a slot's claim: "" (unclaimed), claimed, submitted
// or failed.
func (s *Store) SlotClaimState(ctx context.Context, team, scheduleID string, slot time.Time) (string, error) {
	if err := checkTeam(team); err != nil {
		return "", err
	}
	v, err := s.rdb.Get(ctx, rrSlotKey(team, scheduleID, slot)).Result()
	if err == redis.Nil {
		return "", nil
	}
	return v, redisErr("read slot claim", err)
}

// claimSlotScript claims one slot outside a tick. KEYS: rr hash, slot key, active,
// pending. ARGV: run id, member prefix "<id> <slot ns>", tick ms, slot ns.
var claimSlotScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if not redis.call('SET', KEYS[2], 'claimed', 'NX') then return 0 end
local idx = redis.call('HINCRBY', KEYS[1], 'index', 1)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2] .. ' ' .. idx)
return idx
`)

// ClaimSlot claims one slot of a recurring run directly (for a replayed
// dev.pipefn.schedule.fired event or an operator backfill), without moving the cursor. It
// returns the slot's run id and whether this call claimed it first; only the first
// claimant submits. Ticks claim through CommitTick, which also checks the cursor.
func (s *Store) ClaimSlot(ctx context.Context, team, scheduleID string, slot time.Time) (runID string, first bool, err error) {
	c, first, err := s.ClaimSlotRun(ctx, team, scheduleID, slot)
	return c.RunID, first, err
}

// ClaimSlotRun is ClaimSlot returning the whole claim (with its [[Index]] when first).
func (s *Store) ClaimSlotRun(ctx context.Context, team, scheduleID string, slot time.Time) (Claim, bool, error) {
	if err := checkTeam(team); err != nil {
		return Claim{}, false, err
	}
	if err := checkID("recurring run", scheduleID); err != nil {
		return Claim{}, false, err
	}
	c := Claim{RecurringRunID: scheduleID, Slot: slot.UTC(), RunID: schedule.SlotRunID(scheduleID, slot)}
	ns := strconv.FormatInt(slot.UnixNano(), 10)
	n, err := claimSlotScript.Run(ctx, s.rdb,
		[]string{rrKey(team, scheduleID), rrSlotKey(team, scheduleID, slot), rrActiveKey(team, scheduleID), rrPendingKey(team)},
		c.RunID, scheduleID+" "+ns, s.now().UnixMilli(), ns).Int64()
	if err != nil {
		return c, false, redisErr("claim slot of recurring run "+scheduleID, err)
	}
	if n < 0 {
		return c, false, api.Errorf(api.KindNotFound, "recurring run %s not found", scheduleID)
	}
	c.Index = n
	return c, n > 0, nil
}

// ScheduleRunFinished releases a finished run's place in its recurring run's
// max_concurrency. The run-state path calls it when a run with a recurring_run_id reaches
// a terminal state (SUCCEEDED, FAILED, SKIPPED, CANCELED); calling it again, or for a run
// that is not active, does nothing.
func (s *Store) ScheduleRunFinished(ctx context.Context, team, scheduleID, runID string) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	if err := checkID("recurring run", scheduleID); err != nil {
		return err
	}
	return redisErr("release run "+runID+" of recurring run "+scheduleID,
		s.rdb.HDel(ctx, rrActiveKey(team, scheduleID), runID).Err())
}

// ActiveScheduleRuns lists the run ids a recurring run counts against max_concurrency.
func (s *Store) ActiveScheduleRuns(ctx context.Context, team, scheduleID string) ([]string, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ids, err := s.rdb.HKeys(ctx, rrActiveKey(team, scheduleID)).Result()
	slices.Sort(ids)
	return ids, redisErr("list active runs of recurring run "+scheduleID, err)
}

// ReadSchedules reads the given recurring runs with their cursors and active counts, as
// DueRecurringRuns does (a tick re-reads the schedules whose commit was stale). Deleted
// ones are left out.
func (s *Store) ReadSchedules(ctx context.Context, team string, ids []string) ([]DueSchedule, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	var out []DueSchedule
	for start := 0; start < len(ids); start += tickBatch {
		got, err := s.readSchedules(ctx, team, ids[start:min(start+tickBatch, len(ids))])
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// ScheduledRunFinished releases the max_concurrency place of a run fired by a recurring
// run, identified by the run's own fields (recurring_run_id and scheduled_at), whatever
// id the submit function gave the run. The run-state path calls it when such a run
// reaches a terminal state; for other runs, and when called again, it does nothing.
func (s *Store) ScheduledRunFinished(ctx context.Context, team string, run api.Run) error {
	if run.RecurringRunID == "" || run.ScheduledAt == nil {
		return nil
	}
	return s.ScheduleRunFinished(ctx, team, run.RecurringRunID, schedule.SlotRunID(run.RecurringRunID, *run.ScheduledAt))
}

// ReleaseFinishedScheduleRuns looks up the runs a recurring run counts against
// max_concurrency and releases those that have ended: their run is in a terminal state,
// or it was submitted and no longer exists (deleted). It returns how many remain active.
// The tick calls it for a schedule that is held back, so a run whose end was never
// reported through ScheduledRunFinished cannot block its schedule for ever.
//
// The active set holds slot run ids, which are also the runs' idempotency keys; the run
// itself is found through the runs store's idem:<key> record (see runs.go), or under the
// slot id when the submit path kept it as the run id.
func (s *Store) ReleaseFinishedScheduleRuns(ctx context.Context, team, scheduleID string) (int, error) {
	if err := checkTeam(team); err != nil {
		return 0, err
	}
	active, err := s.rdb.HGetAll(ctx, rrActiveKey(team, scheduleID)).Result()
	if err != nil {
		return 0, redisErr("list active runs of recurring run "+scheduleID, err)
	}
	ids := make([]string, 0, len(active))
	for id := range active {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	pipe := s.rdb.Pipeline()
	idem := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		idem[i] = pipe.Get(ctx, key(team, "idem", id))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return len(ids), redisErr("look up runs of recurring run "+scheduleID, err)
	}
	pipe = s.rdb.Pipeline()
	states := make([]*redis.StringCmd, len(ids))
	claims := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		runID := idem[i].Val()
		if runID == "" {
			runID = id
		}
		states[i] = pipe.HGet(ctx, key(team, "run", runID), "state")
		claims[i] = pipe.Get(ctx, key(team, "rr", scheduleID, "slot", active[id]))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return len(ids), redisErr("read runs of recurring run "+scheduleID, err)
	}
	var done []string
	for i, id := range ids {
		st := states[i].Val()
		gone := states[i].Err() == redis.Nil && claims[i].Val() == "submitted"
		if api.Terminal(st) || gone {
			done = append(done, id)
		}
	}
	if len(done) == 0 {
		return len(ids), nil
	}
	if err := s.rdb.HDel(ctx, rrActiveKey(team, scheduleID), done...).Err(); err != nil {
		return len(ids), redisErr("release runs of recurring run "+scheduleID, err)
	}
	return len(ids) - len(done), nil
}
