package state

// Recurring runs. Keys (all under the team's hash tag):
//
//	rr:{id}             hash: json (the api.RecurringRun), mode, last, owed (cursor, Unix
//	                    ns), index (runs fired so far)
//	rr:index            lex index of sortMember(created, id) for listing
//	rr:due              enabled schedules scored by next due time (Unix ms); a tick reads
//	                    only the members due by its time, O(due) rather than O(all)
//	rr:{id}:active      hash: slot run id -> slot ns of the schedule's runs not yet
//	                    finished (max_concurrency)
//	rr:{id}:slot:{ns}   the claim of one slot: claimed, then submitted or failed
//	rr:pending          claims not yet submitted, member "<id> <slot ns> <index>",
//	                    scored by the tick (Unix ms) that claimed them
//
// Exactly once: a tick's claims and the cursor move happen in one script that first
// checks the cursor it decided from is still current (compare and set), so concurrent
// replicas, duplicated and reordered ticks cannot claim a slot twice or move the cursor
// backwards; the slot key (SET NX) is a second guard. The run id is derived from the
// slot, and the submit function dedupes on it, so re-submitting a pending claim after a
// crash creates the run at most once.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/schedule"
)

// claimTTL is how long a submitted or failed slot claim is kept. The cursor already keeps
// settled slots from being considered again; the claim is a second guard against a slot
// reappearing (a cursor lost in a Redis restart without AOF), so it lives long.
const claimTTL = 60 * 24 * time.Hour

func rrKey(team, id string) string       { return key(team, "rr", id) }
func rrActiveKey(team, id string) string { return key(team, "rr", id, "active") }
func rrSlotKey(team, id string, slot time.Time) string {
	return key(team, "rr", id, "slot", strconv.FormatInt(slot.UnixNano(), 10))
}
func rrIndexKey(team string) string   { return key(team, "rr", "index") }
func rrDueKey(team string) string     { return key(team, "rr", "due") }
func rrPendingKey(team string) string { return key(team, "rr", "pending") }

// nsField encodes a cursor time; the zero time is "".
func nsField(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func fromNS(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// dueScore is the rr:due score of a next-due time; "" (remove) when there is none.
func dueScore(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// createRRScript stores a new recurring run unless its id exists.
// KEYS: rr hash, index, due. ARGV: id, json, mode, last, member, due score ("" = none).
var createRRScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'mode', ARGV[3], 'last', ARGV[4], 'owed', '', 'index', 0)
redis.call('ZADD', KEYS[2], 0, ARGV[5])
if ARGV[3] == 'ENABLE' and ARGV[6] ~= '' then redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1]) end
return 1
`)

// CreateRecurringRun validates rr and stores it for team with a new id (or rr's own id
// when set), created and updated now, enabled unless its mode says DISABLE. Its cursor
// starts now, or at start_time when that lies in the past (catch-up then applies).
func (s *Store) CreateRecurringRun(ctx context.Context, team string, rr api.RecurringRun) (api.RecurringRun, error) {
	if err := checkTeam(team); err != nil {
		return api.RecurringRun{}, err
	}
	now := s.now().UTC()
	if err := schedule.Validate(rr, now); err != nil {
		return api.RecurringRun{}, &api.Error{Kind: api.KindInvalid, Message: err.Error(), Err: err}
	}
	if rr.RecurringRunID == "" {
		rr.RecurringRunID = newID()
	} else if err := checkID("recurring run", rr.RecurringRunID); err != nil {
		return api.RecurringRun{}, err
	}
	sch, err := schedule.Parse(rr.Trigger, rr.TimeZone)
	if err != nil { // Validate passed, so this cannot happen; keep the error anyway.
		return api.RecurringRun{}, api.Errorf(api.KindInvalid, "recurring run: %v", err)
	}
	if rr.Mode == "" {
		rr.Mode = api.ModeEnable
	}
	rr.Status = statusOf(rr.Mode)
	rr.CreatedAt, rr.UpdatedAt = now, now
	rr.Namespace = team
	cur := schedule.InitialCursor(sch, now)
	body, err := json.Marshal(rr)
	if err != nil {
		return api.RecurringRun{}, fmt.Errorf("recurring run %s: encode: %w", rr.RecurringRunID, err)
	}
	if err := s.addTeam(ctx, team); err != nil {
		return api.RecurringRun{}, err
	}
	ok, err := createRRScript.Run(ctx, s.rdb,
		[]string{rrKey(team, rr.RecurringRunID), rrIndexKey(team), rrDueKey(team)},
		rr.RecurringRunID, body, rr.Mode, nsField(cur.Last), sortMember(now, rr.RecurringRunID),
		dueScore(sch.NextDue(cur))).Int()
	if err != nil {
		return api.RecurringRun{}, redisErr("create recurring run "+rr.RecurringRunID, err)
	}
	if ok == 0 {
		return api.RecurringRun{}, api.Errorf(api.KindConflict, "recurring run %s already exists", rr.RecurringRunID)
	}
	return rr, nil
}

func statusOf(mode string) string {
	if mode == api.ModeDisable {
		return api.StatusDisabled
	}
	return api.StatusEnabled
}

// decodeRR builds a recurring run from its hash fields json and mode.
func decodeRR(team, id string, body, mode any) (api.RecurringRun, error) {
	b, ok := body.(string)
	if !ok {
		return api.RecurringRun{}, api.Errorf(api.KindNotFound, "recurring run %s not found", id)
	}
	var rr api.RecurringRun
	if err := json.Unmarshal([]byte(b), &rr); err != nil {
		return api.RecurringRun{}, fmt.Errorf("recurring run %s of team %s: stored record is not valid JSON: %w", id, team, err)
	}
	if m, ok := mode.(string); ok && m != "" {
		rr.Mode = m
	}
	rr.Status = statusOf(rr.Mode)
	return rr, nil
}

// GetRecurringRun returns one recurring run.
func (s *Store) GetRecurringRun(ctx context.Context, team, id string) (api.RecurringRun, error) {
	if err := checkTeam(team); err != nil {
		return api.RecurringRun{}, err
	}
	if err := checkID("recurring run", id); err != nil {
		return api.RecurringRun{}, err
	}
	v, err := s.rdb.HMGet(ctx, rrKey(team, id), "json", "mode").Result()
	if err != nil {
		return api.RecurringRun{}, redisErr("get recurring run "+id, err)
	}
	return decodeRR(team, id, v[0], v[1])
}

// ListRecurringRuns returns one page of the team's recurring runs, oldest first unless
// opts.SortBy says otherwise, and the token of the next page ("" at the end).
func (s *Store) ListRecurringRuns(ctx context.Context, team string, opts ListOptions) ([]api.RecurringRun, string, error) {
	if err := checkTeam(team); err != nil {
		return nil, "", err
	}
	p, err := parseList(opts, false, "recurringruns")
	if err != nil {
		return nil, "", err
	}
	ids, next, err := s.listIndex(ctx, rrIndexKey(team), "recurringruns", p)
	if err != nil || len(ids) == 0 {
		return nil, next, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, rrKey(team, id), "json", "mode")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, "", redisErr("list recurring runs", err)
	}
	out := make([]api.RecurringRun, 0, len(ids))
	for i, c := range cmds {
		v := c.Val()
		rr, err := decodeRR(team, ids[i], v[0], v[1])
		if api.KindOf(err) == api.KindNotFound {
			continue // deleted between the index read and this one
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, rr)
	}
	return out, next, nil
}

// deleteRRScript removes a recurring run and its indexes. KEYS: rr hash, index, due,
// active. ARGV: id, index member.
var deleteRRScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// DeleteRecurringRun deletes a recurring run. Runs it already fired are not touched;
// claims it made but had not submitted yet are dropped by the next tick.
func (s *Store) DeleteRecurringRun(ctx context.Context, team, id string) error {
	rr, err := s.GetRecurringRun(ctx, team, id)
	if err != nil {
		return err
	}
	n, err := deleteRRScript.Run(ctx, s.rdb,
		[]string{rrKey(team, id), rrIndexKey(team), rrDueKey(team), rrActiveKey(team, id)},
		id, sortMember(rr.CreatedAt, id)).Int()
	if err != nil {
		return redisErr("delete recurring run "+id, err)
	}
	if n == 0 {
		return api.Errorf(api.KindNotFound, "recurring run %s not found", id)
	}
	return nil
}

// setModeScript switches mode if the cursor is unchanged since it was read.
// KEYS: rr hash, due. ARGV: id, expected last, expected owed, mode, json, last, owed,
// due score.
var setModeScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'last', 'owed', 'json')
if not h[3] then return -1 end
if (h[1] or '') ~= ARGV[2] or (h[2] or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'mode', ARGV[4], 'json', ARGV[5], 'last', ARGV[6], 'owed', ARGV[7])
if ARGV[4] == 'ENABLE' and ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
`)

// SetRecurringRunMode enables (api.ModeEnable) or disables (api.ModeDisable) a recurring
// run. Slots that pass while a schedule is disabled are not owed: enabling moves its
// cursor to now (slots accepted but held back by max_concurrency before disabling are
// dropped too). Setting the mode it already has changes nothing.
func (s *Store) SetRecurringRunMode(ctx context.Context, team, id, mode string) (api.RecurringRun, error) {
	if mode != api.ModeEnable && mode != api.ModeDisable {
		return api.RecurringRun{}, api.Errorf(api.KindInvalid, "mode %q: must be %s or %s", mode, api.ModeEnable, api.ModeDisable)
	}
	for attempt := 0; attempt < 10; attempt++ {
		if err := checkTeam(team); err != nil {
			return api.RecurringRun{}, err
		}
		if err := checkID("recurring run", id); err != nil {
			return api.RecurringRun{}, err
		}
		v, err := s.rdb.HMGet(ctx, rrKey(team, id), "json", "mode", "last", "owed").Result()
		if err != nil {
			return api.RecurringRun{}, redisErr("set mode of recurring run "+id, err)
		}
		rr, err := decodeRR(team, id, v[0], v[1])
		if err != nil {
			return api.RecurringRun{}, err
		}
		if rr.Mode == mode {
			return rr, nil
		}
		lastS, _ := v[2].(string)
		owedS, _ := v[3].(string)
		cur := schedule.Cursor{Last: fromNS(lastS), OwedThrough: fromNS(owedS)}
		now := s.now().UTC()
		sch, err := schedule.Parse(rr.Trigger, rr.TimeZone)
		if err != nil {
			return api.RecurringRun{}, fmt.Errorf("recurring run %s: stored trigger no longer parses: %w", id, err)
		}
		if mode == api.ModeEnable {
			last := cur.Last
			if now.After(last) {
				last = now
			}
			cur = schedule.Cursor{Last: last}
		}
		rr.Mode, rr.Status, rr.UpdatedAt = mode, statusOf(mode), now
		body, err := json.Marshal(rr)
		if err != nil {
			return api.RecurringRun{}, fmt.Errorf("recurring run %s: encode: %w", id, err)
		}
		n, err := setModeScript.Run(ctx, s.rdb, []string{rrKey(team, id), rrDueKey(team)},
			id, lastS, owedS, mode, body, nsField(cur.Last), nsField(cur.OwedThrough), dueScore(sch.NextDue(cur))).Int()
		if err != nil {
			return api.RecurringRun{}, redisErr("set mode of recurring run "+id, err)
		}
		switch n {
		case -1:
			return api.RecurringRun{}, api.Errorf(api.KindNotFound, "recurring run %s not found", id)
		case 1:
			return rr, nil
		}
		// A tick moved the cursor meanwhile; read again.
	}
	return api.RecurringRun{}, api.Errorf(api.KindUnavailable, "set mode of recurring run %s: too much contention with ticks, try again", id)
}

// CountRecurringRuns returns how many recurring runs team has (KFP's total_size).
func (s *Store) CountRecurringRuns(ctx context.Context, team string) (int, error) {
	if err := checkTeam(team); err != nil {
		return 0, err
	}
	n, err := s.rdb.ZCard(ctx, rrIndexKey(team)).Result()
	return int(n), redisErr("count recurring runs", err)
}
