package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

var upsertTaskScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local attempt = redis.call('HGET', KEYS[1], 'attempt') or '0'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'type', 'task', 'task', ARGV[1], 'state', ARGV[6], 'at', ARGV[4], 'attempt', attempt, 'data', ARGV[3])
-- A late report for a finished run must not leave a stream without expiry behind.
if (redis.call('HGET', KEYS[1], 'finished') or '') ~= '' then redis.call('EXPIRE', KEYS[3], ARGV[7]) end
return 1
`)

// UpsertTask records what is known of one task of a run, merged into what was known
// before. The task's state only moves forward (api.CanTransition; CACHED is terminal):
// a forward report overwrites the fields it carries, while a stale one (say RUNNING after
// SUCCEEDED) only fills fields still empty. changed reports whether anything was stored.
// The merge is computed here and written with compare-and-set, retried on contention.
func (s *Store) UpsertTask(ctx context.Context, team, runID string, t api.TaskDetail) (changed bool, err error) {
	if err := checkTeam(team); err != nil {
		return false, err
	}
	if err := checkID("run", runID); err != nil {
		return false, err
	}
	if t.TaskID == "" {
		return false, api.Errorf(api.KindInvalid, "run %s: task id is empty", runID)
	}
	if t.State == "" || !api.ValidState(t.State) {
		return false, api.Errorf(api.KindInvalid, "run %s task %s: unknown task state %q", runID, t.TaskID, t.State)
	}
	t.RunID = runID
	keys := []string{key(team, "run", runID), key(team, "run", runID, "tasks"), key(team, "run", runID, "events")}
	for attempt := 0; attempt < 64; attempt++ {
		now := msTime(s.now())
		cur, err := s.rdb.HGet(ctx, keys[1], t.TaskID).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, redisErr("read task "+t.TaskID+" of run "+runID, err)
		}
		var old *api.TaskDetail
		if cur != "" {
			old = &api.TaskDetail{}
			if err := json.Unmarshal([]byte(cur), old); err != nil {
				return false, fmt.Errorf("decode task %s of run %s: %w", t.TaskID, runID, err)
			}
		}
		merged := mergeTask(old, t, now)
		js, err := json.Marshal(merged)
		if err != nil {
			return false, fmt.Errorf("encode task %s of run %s: %w", t.TaskID, runID, err)
		}
		if string(js) == cur {
			// Still check the run exists so that reports for unknown runs are not silent.
			n, err := s.rdb.Exists(ctx, keys[0]).Result()
			if err != nil {
				return false, redisErr("read run "+runID, err)
			}
			if n == 0 {
				return false, api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
			}
			return false, nil
		}
		res, err := upsertTaskScript.Run(ctx, s.rdb, keys, t.TaskID, cur, js, ms(now), s.streamMaxLen, merged.State,
			int64(s.streamTTL/time.Second)).Int()
		if err != nil {
			return false, redisErr("write task "+t.TaskID+" of run "+runID, err)
		}
		switch res {
		case -1:
			return false, api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
		case 1:
			return true, nil
		}
		// Another writer changed the task since it was read: merge again.
	}
	return false, api.Errorf(api.KindUnavailable, "run %s task %s: too much contention, try again", runID, t.TaskID)
}

// mergeTask folds the report in into old (nil when the task is new) at time now.
func mergeTask(old *api.TaskDetail, in api.TaskDetail, now time.Time) api.TaskDetail {
	if old == nil {
		m := in
		if m.CreateTime == nil {
			m.CreateTime = &now
		}
		if len(m.StateHistory) == 0 {
			m.StateHistory = []api.StateChange{{UpdateTime: now, State: m.State, Error: m.Error}}
		}
		return m
	}
	m := *old
	if api.CanTransition(old.State, in.State) {
		m.State = in.State
		m.StateHistory = append(append([]api.StateChange(nil), old.StateHistory...),
			api.StateChange{UpdateTime: now, State: in.State, Error: in.Error})
		overlayTask(&m, in, true)
	} else {
		overlayTask(&m, in, false)
	}
	return m
}

// overlayTask copies in's set fields into m: all of them when overwrite, else only into
// fields m has not got yet.
func overlayTask(m *api.TaskDetail, in api.TaskDetail, overwrite bool) {
	str := func(dst *string, src string) {
		if src != "" && (overwrite || *dst == "") {
			*dst = src
		}
	}
	tm := func(dst **time.Time, src *time.Time) {
		if src != nil && (overwrite || *dst == nil) {
			*dst = src
		}
	}
	str(&m.DisplayName, in.DisplayName)
	str(&m.ExecutionID, in.ExecutionID)
	str(&m.ParentTaskID, in.ParentTaskID)
	str(&m.PodName, in.PodName)
	str(&m.CachedFrom, in.CachedFrom)
	tm(&m.CreateTime, in.CreateTime)
	tm(&m.StartTime, in.StartTime)
	tm(&m.EndTime, in.EndTime)
	if in.Error != nil && (overwrite || m.Error == nil) {
		m.Error = in.Error
	}
	if in.Inputs != nil && (overwrite || m.Inputs == nil) {
		m.Inputs = in.Inputs
	}
	if in.Outputs != nil && (overwrite || m.Outputs == nil) {
		m.Outputs = in.Outputs
	}
	if in.InputParameters != nil && (overwrite || m.InputParameters == nil) {
		m.InputParameters = in.InputParameters
	}
	if in.OutputParameters != nil && (overwrite || m.OutputParameters == nil) {
		m.OutputParameters = in.OutputParameters
	}
	if in.ChildTasks != nil && (overwrite || m.ChildTasks == nil) {
		m.ChildTasks = in.ChildTasks
	}
}
