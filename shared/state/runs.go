package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Run keys:
//
//	run:<id>         hash   spec (JSON of the run without the fields below), state, st
//	                        (storage state), exp, pv, sort (index member), attempt,
//	                        finished (ms), error (JSON api.Status), hist (JSON array of
//	                        api.StateChange), idem (its idempotency key)
//	run:<id>:tasks   hash   task id -> JSON api.TaskDetail
//	run:<id>:events  stream every change (see RunEvent), for live watchers; it expires
//	                 a while after the run finishes (the durable record is the hash's
//	                 hist and the tasks), as each stream costs ~5 KB in Redis 7
//	idem:<key>       string run id, for CreateRun's idempotency key
//	runs:idx:<f>     zset   lex indexes: all, active, st=S, state=X, state=X:st=S,
//	                        exp=E, exp=E:st=S, pv=V, pv=V:st=S
//
// The changing fields live outside spec so that Lua scripts update them and the indexes
// atomically without decoding JSON.

// CreateRunOptions tune CreateRun.
type CreateRunOptions struct {
	// IdempotencyKey, when set, makes CreateRun return the run first created with the same
	// key (created=false) instead of a new one, for 30 days.
	IdempotencyKey string
}

// allowedTransitions renders api.CanTransition as a Lua table literal, so that the one
// rule in shared/api is what the script enforces atomically.
func allowedTransitions() string {
	states := []string{api.StatePending, api.StateRunning, api.StateCanceling, api.StateSucceeded,
		api.StateSkipped, api.StateFailed, api.StateCanceled}
	var b strings.Builder
	b.WriteString("{")
	for _, from := range states {
		for _, to := range states {
			if api.CanTransition(from, to) {
				fmt.Fprintf(&b, "[%q]=true,", from+">"+to)
			}
		}
	}
	b.WriteString("}")
	return b.String()
}

var createRunScript = redis.NewScript(`
local P = ARGV[1]
if ARGV[3] ~= '' then
  local ex = redis.call('GET', P .. 'idem:' .. ARGV[3])
  if ex and redis.call('EXISTS', P .. 'run:' .. ex) == 1 then return {0, ex} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, ARGV[2]} end
if redis.call('EXISTS', P .. 'exp:' .. ARGV[7]) == 0 then return {-2, ARGV[7]} end
local n = tonumber(ARGV[11])
local f = {}
for i = 1, 2 * n do f[i] = ARGV[11 + i] end
redis.call('HSET', KEYS[1], unpack(f))
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[5]) end
if ARGV[3] ~= '' then redis.call('SET', P .. 'idem:' .. ARGV[3], ARGV[2], 'PX', ARGV[4]) end
local ek = P .. 'exp:' .. ARGV[7]
local lr = tonumber(redis.call('HGET', ek, 'last_run') or '0')
if tonumber(ARGV[8]) > lr then redis.call('HSET', ek, 'last_run', ARGV[8]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'created', 'state', ARGV[9], 'at', ARGV[8], 'attempt', '0')
if ARGV[10] ~= '0' then redis.call('EXPIRE', KEYS[2], ARGV[10]) end
return {1, ARGV[2]}
`)

// runIndexKeys lists the indexes a run with these attributes belongs to.
func runIndexKeys(team, state, st, exp, pv string) []string {
	ix := key(team, "runs", "idx") + ":"
	ks := []string{ix + "all", ix + "st=" + st, ix + "state=" + state, ix + "state=" + state + ":st=" + st}
	if exp != "" {
		ks = append(ks, ix+"exp="+exp, ix+"exp="+exp+":st="+st)
	}
	if pv != "" {
		ks = append(ks, ix+"pv="+pv, ix+"pv="+pv+":st="+st)
	}
	if !api.Terminal(state) {
		ks = append(ks, ix+"active")
	}
	return ks
}

// CreateRun stores r as a new run: a new id unless r.RunID is set, CreatedAt now, state
// PENDING unless r.State names another run state, storage AVAILABLE, and the team's
// Default experiment when r.ExperimentID is empty (a named experiment must exist). With an
// idempotency key the check and the write are one atomic script: concurrent creates with
// one key yield one run, and every caller gets it (created reports whether this call made
// it).
func (s *Store) CreateRun(ctx context.Context, team string, r api.Run, opts CreateRunOptions) (run api.Run, created bool, err error) {
	if err := checkTeam(team); err != nil {
		return api.Run{}, false, err
	}
	if r.ExperimentID == "" {
		def, err := s.DefaultExperiment(ctx, team)
		if err != nil {
			return api.Run{}, false, err
		}
		r.ExperimentID = def.ExperimentID
	}
	r, keys, args, err := s.prepareRun(team, r, opts)
	if err != nil {
		return api.Run{}, false, err
	}
	res, err := createRunScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return api.Run{}, false, redisErr("create run "+r.RunID, err)
	}
	code, _ := res[0].(int64)
	id, _ := res[1].(string)
	switch code {
	case -1:
		return api.Run{}, false, api.Errorf(api.KindConflict, "run id %s already exists in team %s", id, team)
	case -2:
		return api.Run{}, false, api.Errorf(api.KindNotFound, "run %s: experiment %s not found in team %s", r.RunID, id, team)
	case 0:
		existing, err := s.GetRun(ctx, team, id)
		return existing, false, err
	}
	if err := s.addTeam(ctx, team); err != nil {
		return api.Run{}, false, err
	}
	return r, true, nil
}

// prepareRun fills r's creation defaults and builds createRunScript's keys and arguments.
// r.ExperimentID must be set.
func (s *Store) prepareRun(team string, r api.Run, opts CreateRunOptions) (api.Run, []string, []any, error) {
	if r.RunID == "" {
		r.RunID = newID()
	}
	if err := checkID("run", r.RunID); err != nil {
		return api.Run{}, nil, nil, err
	}
	if r.State == "" {
		r.State = api.StatePending
	}
	if !api.ValidState(r.State) || r.State == api.StateCached {
		return api.Run{}, nil, nil, api.Errorf(api.KindInvalid, "run %s: unknown run state %q", r.RunID, r.State)
	}
	if err := checkID("experiment", r.ExperimentID); err != nil {
		return api.Run{}, nil, nil, err
	}
	pv := ""
	if r.PipelineVersionReference != nil && r.PipelineVersionReference.PipelineVersionID != "" {
		pv = r.PipelineVersionReference.PipelineVersionID
		if err := checkID("pipeline version", pv); err != nil {
			return api.Run{}, nil, nil, err
		}
	}
	now := s.now()
	r.CreatedAt = msTime(now)
	r.StorageState = api.StorageAvailable
	r.Attempt = 0
	r.FinishedAt = nil
	if api.Terminal(r.State) {
		f := r.CreatedAt
		r.FinishedAt = &f
	}
	r.RunDetails = nil
	r.StateHistory = []api.StateChange{{UpdateTime: r.CreatedAt, State: r.State, Error: r.Error}}

	spec := r
	spec.State, spec.StorageState, spec.Attempt, spec.FinishedAt, spec.Error, spec.StateHistory = "", "", 0, nil, nil, nil
	specJS, err := json.Marshal(spec)
	if err != nil {
		return api.Run{}, nil, nil, fmt.Errorf("encode run %s: %w", r.RunID, err)
	}
	histJS, _ := json.Marshal(r.StateHistory)
	errJS := ""
	if r.Error != nil {
		b, _ := json.Marshal(r.Error)
		errJS = string(b)
	}
	finished := ""
	if r.FinishedAt != nil {
		finished = ms(*r.FinishedAt)
	}
	member := sortMember(r.CreatedAt, r.RunID)
	fields := []string{"spec", string(specJS), "state", r.State, "st", r.StorageState, "exp", r.ExperimentID,
		"pv", pv, "sort", member, "attempt", "0", "hist", string(histJS), "error", errJS, "finished", finished,
		"idem", opts.IdempotencyKey}
	expire := int64(0)
	if api.Terminal(r.State) {
		expire = int64(s.streamTTL / time.Second)
	}
	args := []any{prefix(team), r.RunID, opts.IdempotencyKey, s.idemTTL.Milliseconds(), member, s.streamMaxLen,
		r.ExperimentID, ms(r.CreatedAt), r.State, expire, len(fields) / 2}
	for _, f := range fields {
		args = append(args, f)
	}
	keys := append([]string{key(team, "run", r.RunID), key(team, "run", r.RunID, "events")},
		runIndexKeys(team, r.State, r.StorageState, r.ExperimentID, pv)...)
	return r, keys, args, nil
}

// GetRun returns a run with its task details (sorted by creation, then task id).
func (s *Store) GetRun(ctx context.Context, team, runID string) (api.Run, error) {
	if err := checkTeam(team); err != nil {
		return api.Run{}, err
	}
	if err := checkID("run", runID); err != nil {
		return api.Run{}, err
	}
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, key(team, "run", runID))
	tasks := pipe.HGetAll(ctx, key(team, "run", runID, "tasks"))
	if _, err := pipe.Exec(ctx); err != nil {
		return api.Run{}, redisErr("get run "+runID, err)
	}
	r, err := decodeRun(runID, h.Val())
	if err != nil {
		return api.Run{}, err
	}
	r.RunDetails = &api.RunDetails{TaskDetails: []api.TaskDetail{}}
	for tid, js := range tasks.Val() {
		var t api.TaskDetail
		if err := json.Unmarshal([]byte(js), &t); err != nil {
			return api.Run{}, fmt.Errorf("decode task %s of run %s: %w", tid, runID, err)
		}
		r.RunDetails.TaskDetails = append(r.RunDetails.TaskDetails, t)
	}
	slices.SortFunc(r.RunDetails.TaskDetails, func(a, b api.TaskDetail) int {
		if c := timeOf(a.CreateTime).Compare(timeOf(b.CreateTime)); c != 0 {
			return c
		}
		return strings.Compare(a.TaskID, b.TaskID)
	})
	return r, nil
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// decodeRun assembles a run from its hash; an empty hash is ErrNotFound.
func decodeRun(runID string, h map[string]string) (api.Run, error) {
	spec, ok := h["spec"]
	if !ok {
		return api.Run{}, api.Errorf(api.KindNotFound, "run %s not found", runID)
	}
	var r api.Run
	if err := json.Unmarshal([]byte(spec), &r); err != nil {
		return api.Run{}, fmt.Errorf("decode run %s: %w", runID, err)
	}
	r.State = h["state"]
	r.StorageState = h["st"]
	r.Attempt, _ = strconv.Atoi(h["attempt"])
	if f := h["finished"]; f != "" {
		t := fromMS(f)
		r.FinishedAt = &t
	}
	if e := h["error"]; e != "" {
		r.Error = &api.Status{}
		if err := json.Unmarshal([]byte(e), r.Error); err != nil {
			return api.Run{}, fmt.Errorf("decode error of run %s: %w", runID, err)
		}
	}
	if hist := h["hist"]; hist != "" {
		if err := json.Unmarshal([]byte(hist), &r.StateHistory); err != nil {
			return api.Run{}, fmt.Errorf("decode state history of run %s: %w", runID, err)
		}
	}
	return r, nil
}

// StateUpdate is one reported state of a run.
type StateUpdate struct {
	State string
	At    time.Time
	// Error, when set, is recorded as the run's error (with a FAILED state, typically).
	Error *api.Status
	// Attempt, when set, makes the update apply only while the run is at that attempt,
	// checked in the same script as the move: a late report of an attempt that a retry
	// has since replaced changes nothing.
	Attempt *int
}

var transitionScript = redis.NewScript(`
local allowed = ` + allowedTransitions() + `
local P = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'state', 'st', 'sort', 'hist', 'attempt')
local cur = h[1]
if not cur then return {-1, ''} end
if ARGV[9] ~= '' and (h[5] or '0') ~= ARGV[9] then return {0, cur} end
if not allowed[cur .. '>' .. ARGV[2]] then return {0, cur} end
local st, m, hist = h[2], h[3], h[4] or ''
local ix = P .. 'runs:idx:'
redis.call('ZREM', ix .. 'state=' .. cur, m)
redis.call('ZREM', ix .. 'state=' .. cur .. ':st=' .. st, m)
redis.call('ZADD', ix .. 'state=' .. ARGV[2], 0, m)
redis.call('ZADD', ix .. 'state=' .. ARGV[2] .. ':st=' .. st, 0, m)
if ARGV[5] == '1' then
  redis.call('ZREM', ix .. 'active', m)
  redis.call('HSET', KEYS[1], 'finished', ARGV[4])
end
if hist == '' then hist = '[' .. ARGV[3] .. ']' else hist = string.sub(hist, 1, -2) .. ',' .. ARGV[3] .. ']' end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'hist', hist)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'type', 'state', 'state', ARGV[2], 'at', ARGV[4], 'attempt', h[5] or '0')
if ARGV[5] == '1' then redis.call('EXPIRE', KEYS[2], ARGV[8]) end
return {1, ARGV[2]}
`)

// UpdateState moves a run to state at time at. It only moves forward (api.CanTransition):
// a report that would move it back or out of a terminal state, or repeats its state, is
// a no-op with changed=false, not an error, since late and duplicate reports are normal
// with at-least-once events.
func (s *Store) UpdateState(ctx context.Context, team, runID, state string, at time.Time) (changed bool, err error) {
	return s.Transition(ctx, team, runID, StateUpdate{State: state, At: at})
}

// Transition is UpdateState with an optional error to record.
func (s *Store) Transition(ctx context.Context, team, runID string, u StateUpdate) (changed bool, err error) {
	if err := checkTeam(team); err != nil {
		return false, err
	}
	if err := checkID("run", runID); err != nil {
		return false, err
	}
	if !api.ValidState(u.State) || u.State == api.StateCached {
		return false, api.Errorf(api.KindInvalid, "run %s: unknown run state %q", runID, u.State)
	}
	if u.At.IsZero() {
		u.At = s.now()
	}
	at := msTime(u.At)
	entry, err := json.Marshal(api.StateChange{UpdateTime: at, State: u.State, Error: u.Error})
	if err != nil {
		return false, fmt.Errorf("encode state change of run %s: %w", runID, err)
	}
	errJS := ""
	if u.Error != nil {
		b, _ := json.Marshal(u.Error)
		errJS = string(b)
	}
	terminal := "0"
	if api.Terminal(u.State) {
		terminal = "1"
	}
	res, err := transitionScript.Run(ctx, s.rdb, []string{key(team, "run", runID), key(team, "run", runID, "events")},
		prefix(team), u.State, entry, ms(at), terminal, errJS, s.streamMaxLen, int64(s.streamTTL/time.Second), attemptArg(u.Attempt)).Slice()
	if err != nil {
		return false, redisErr("update state of run "+runID, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case -1:
		return false, api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
	case 0:
		return false, nil
	}
	return true, nil
}

func attemptArg(a *int) string {
	if a == nil {
		return ""
	}
	return strconv.Itoa(*a)
}

var retryScript = redis.NewScript(`
local P = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'state', 'st', 'sort', 'hist', 'attempt', 'exp', 'pv')
local cur = h[1]
if not cur then return {-1, ''} end
if cur ~= 'FAILED' and cur ~= 'CANCELED' then return {0, cur} end
local st, m, hist = h[2], h[3], h[4] or ''
local ix = P .. 'runs:idx:'
redis.call('ZREM', ix .. 'state=' .. cur, m)
redis.call('ZREM', ix .. 'state=' .. cur .. ':st=' .. st, m)
redis.call('ZADD', ix .. 'state=PENDING', 0, m)
redis.call('ZADD', ix .. 'state=PENDING:st=' .. st, 0, m)
redis.call('ZADD', ix .. 'active', 0, m)
local attempt = tonumber(h[5] or '0') + 1
if hist == '' then hist = '[' .. ARGV[2] .. ']' else hist = string.sub(hist, 1, -2) .. ',' .. ARGV[2] .. ']' end
redis.call('HSET', KEYS[1], 'state', 'PENDING', 'attempt', attempt, 'hist', hist, 'finished', '', 'error', '')
local reset = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local ok, t = pcall(cjson.decode, all[i + 1])
  local s = ''
  if ok and type(t) == 'table' and type(t.state) == 'string' then s = t.state end
  if s ~= 'SUCCEEDED' and s ~= 'CACHED' then
    redis.call('HDEL', KEYS[2], all[i])
    reset[#reset + 1] = all[i]
  end
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'type', 'retry', 'state', 'PENDING', 'at', ARGV[3], 'attempt', tostring(attempt))
redis.call('PERSIST', KEYS[3])
return {1, attempt, reset}
`)

// Retry starts a new attempt of a FAILED or CANCELED run: back to PENDING (the only
// backward move, and an explicit one), attempt+1, finished time and error cleared, and
// every task that did not succeed (or hit the cache) removed so the new attempt runs it
// again; succeeded tasks stay for the cache. Other states are a failed precondition.
// It returns the run as it is after the retry and the ids of the reset tasks (sorted).
func (s *Store) Retry(ctx context.Context, team, runID string) (api.Run, []string, error) {
	if err := checkTeam(team); err != nil {
		return api.Run{}, nil, err
	}
	if err := checkID("run", runID); err != nil {
		return api.Run{}, nil, err
	}
	at := msTime(s.now())
	entry, _ := json.Marshal(api.StateChange{UpdateTime: at, State: api.StatePending})
	res, err := retryScript.Run(ctx, s.rdb,
		[]string{key(team, "run", runID), key(team, "run", runID, "tasks"), key(team, "run", runID, "events")},
		prefix(team), entry, ms(at), s.streamMaxLen).Slice()
	if err != nil {
		return api.Run{}, nil, redisErr("retry run "+runID, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case -1:
		return api.Run{}, nil, api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
	case 0:
		return api.Run{}, nil, api.Errorf(api.KindFailedPrecondition, "run %s is %v: only FAILED or CANCELED runs can be retried", runID, res[1])
	}
	var reset []string
	if list, ok := res[2].([]any); ok {
		for _, v := range list {
			if str, ok := v.(string); ok {
				reset = append(reset, str)
			}
		}
	}
	slices.Sort(reset)
	r, err := s.GetRun(ctx, team, runID)
	return r, reset, err
}

var setRunStorageScript = redis.NewScript(`
local P = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'state', 'st', 'exp', 'pv', 'sort', 'attempt')
if not h[1] then return -1 end
local old, new, m = h[2], ARGV[2], h[5]
if old == new then return 0 end
local ix = P .. 'runs:idx:'
local function mv(base)
  redis.call('ZREM', base .. old, m)
  redis.call('ZADD', base .. new, 0, m)
end
mv(ix .. 'st=')
mv(ix .. 'state=' .. h[1] .. ':st=')
if h[3] and h[3] ~= '' then mv(ix .. 'exp=' .. h[3] .. ':st=') end
if h[4] and h[4] ~= '' then mv(ix .. 'pv=' .. h[4] .. ':st=') end
redis.call('HSET', KEYS[1], 'st', new)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', ARGV[4], 'state', h[1], 'at', ARGV[5], 'attempt', h[6] or '0')
if (redis.call('HGET', KEYS[1], 'finished') or '') ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
return 1
`)

// ArchiveRun marks a run ARCHIVED (hidden from default listings, kept in full).
func (s *Store) ArchiveRun(ctx context.Context, team, runID string) error {
	return s.setRunStorage(ctx, team, runID, api.StorageArchived, "archived")
}

// UnarchiveRun marks a run AVAILABLE again.
func (s *Store) UnarchiveRun(ctx context.Context, team, runID string) error {
	return s.setRunStorage(ctx, team, runID, api.StorageAvailable, "unarchived")
}

func (s *Store) setRunStorage(ctx context.Context, team, runID, st, event string) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	if err := checkID("run", runID); err != nil {
		return err
	}
	res, err := setRunStorageScript.Run(ctx, s.rdb, []string{key(team, "run", runID), key(team, "run", runID, "events")},
		prefix(team), st, s.streamMaxLen, event, ms(s.now()), int64(s.streamTTL/time.Second)).Int()
	if err != nil {
		return redisErr(event+" run "+runID, err)
	}
	if res == -1 {
		return api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
	}
	return nil
}

var deleteRunScript = redis.NewScript(`
local P = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'state', 'st', 'exp', 'pv', 'sort', 'idem')
if not h[1] then return 0 end
local ix = P .. 'runs:idx:'
local st, m = h[2], h[5]
local ks = {ix .. 'all', ix .. 'active', ix .. 'st=' .. st, ix .. 'state=' .. h[1], ix .. 'state=' .. h[1] .. ':st=' .. st}
if h[3] and h[3] ~= '' then ks[#ks + 1] = ix .. 'exp=' .. h[3]; ks[#ks + 1] = ix .. 'exp=' .. h[3] .. ':st=' .. st end
if h[4] and h[4] ~= '' then ks[#ks + 1] = ix .. 'pv=' .. h[4]; ks[#ks + 1] = ix .. 'pv=' .. h[4] .. ':st=' .. st end
for _, k in ipairs(ks) do redis.call('ZREM', k, m) end
if h[6] and h[6] ~= '' then
  local ik = P .. 'idem:' .. h[6]
  if redis.call('GET', ik) == ARGV[2] then redis.call('DEL', ik) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
`)

// DeleteRun removes a run, its tasks, history and idempotency key.
func (s *Store) DeleteRun(ctx context.Context, team, runID string) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	if err := checkID("run", runID); err != nil {
		return err
	}
	res, err := deleteRunScript.Run(ctx, s.rdb,
		[]string{key(team, "run", runID), key(team, "run", runID, "tasks"), key(team, "run", runID, "events")},
		prefix(team), runID).Int()
	if err != nil {
		return redisErr("delete run "+runID, err)
	}
	if res == 0 {
		return api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
	}
	return nil
}
