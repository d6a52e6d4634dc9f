package state

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// RunFilter narrows ListRuns; empty fields match everything.
type RunFilter struct {
	State             string
	ExperimentID      string
	PipelineVersionID string
	// StorageState is AVAILABLE or ARCHIVED ("" for both).
	StorageState string
}

// listRunsScript walks one index from the cursor and keeps the runs that match the filters
// the index does not cover, examining at most ARGV[5] members. It returns the matching ids
// and the cursor to continue from ("" when the index is exhausted).
var listRunsScript = redis.NewScript(`
local P = ARGV[1]
local rev = ARGV[2] == '1'
local cursor = ARGV[3]
local limit = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local wstate, wexp, wpv = ARGV[6], ARGV[7], ARGV[8]
local out = {}
local last = ''
local scanned = 0
while true do
  local items
  if rev then
    local hi = '+'
    if cursor ~= '' then hi = '(' .. cursor end
    items = redis.call('ZRANGE', KEYS[1], hi, '-', 'BYLEX', 'REV', 'LIMIT', 0, 256)
  else
    local lo = '-'
    if cursor ~= '' then lo = '(' .. cursor end
    items = redis.call('ZRANGE', KEYS[1], lo, '+', 'BYLEX', 'LIMIT', 0, 256)
  end
  if #items == 0 then return {out, ''} end
  for _, m in ipairs(items) do
    scanned = scanned + 1
    local v = redis.call('HMGET', P .. 'run:' .. string.sub(m, 18), 'state', 'exp', 'pv')
    if (wstate == '' or v[1] == wstate) and (wexp == '' or v[2] == wexp) and (wpv == '' or v[3] == wpv) then
      if #out == limit then return {out, last} end
      out[#out + 1] = string.sub(m, 18)
      last = m
    end
    cursor = m
    if scanned >= budget then return {out, cursor} end
  end
end
`)

// ListRuns lists a team's runs, newest first unless opts.SortBy says "created_at asc".
// Each filter dimension has its own sorted set (alone and combined with the storage
// state), so a listing with one dimension costs O(log N + page). With several dimensions
// it walks the smallest of their indexes and checks the rest per run, examining at most
// max(1000, 20*page) runs per call: such a page may come back short, with a token to
// continue. Listed runs carry no task details (GetRun has them).
func (s *Store) ListRuns(ctx context.Context, team string, opts ListOptions, f RunFilter) ([]api.Run, string, error) {
	if err := checkTeam(team); err != nil {
		return nil, "", err
	}
	if f.State != "" && (!api.ValidState(f.State) || f.State == api.StateCached) {
		return nil, "", api.Errorf(api.KindInvalid, "filter state %q: not a run state", f.State)
	}
	if f.StorageState != "" && f.StorageState != api.StorageAvailable && f.StorageState != api.StorageArchived {
		return nil, "", api.Errorf(api.KindInvalid, "filter storage_state %q: must be AVAILABLE or ARCHIVED", f.StorageState)
	}
	for kind, id := range map[string]string{"experiment": f.ExperimentID, "pipeline version": f.PipelineVersionID} {
		if id != "" {
			if err := checkID(kind, id); err != nil {
				return nil, "", err
			}
		}
	}
	scope := "runs\x00" + f.State + "\x00" + f.ExperimentID + "\x00" + f.PipelineVersionID + "\x00" + f.StorageState
	p, err := parseList(opts, true, scope)
	if err != nil {
		return nil, "", err
	}
	ix := key(team, "runs", "idx") + ":"
	st := ""
	if f.StorageState != "" {
		st = ":st=" + f.StorageState
	}
	type dim struct{ name, idx string }
	var dims []dim
	if f.State != "" {
		dims = append(dims, dim{"state", ix + "state=" + f.State + st})
	}
	if f.ExperimentID != "" {
		dims = append(dims, dim{"exp", ix + "exp=" + f.ExperimentID + st})
	}
	if f.PipelineVersionID != "" {
		dims = append(dims, dim{"pv", ix + "pv=" + f.PipelineVersionID + st})
	}
	var ids []string
	var next string
	switch len(dims) {
	case 0:
		idx := ix + "all"
		if f.StorageState != "" {
			idx = ix + "st=" + f.StorageState
		}
		ids, next, err = s.listIndex(ctx, idx, scope, p)
	case 1:
		ids, next, err = s.listIndex(ctx, dims[0].idx, scope, p)
	default:
		ids, next, err = s.listRunsFiltered(ctx, team, scope, p, f, func() (string, string, error) {
			// Walk the smallest index; the others become per-run checks.
			pipe := s.rdb.Pipeline()
			cards := make([]*redis.IntCmd, len(dims))
			for i, d := range dims {
				cards[i] = pipe.ZCard(ctx, d.idx)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return "", "", err
			}
			best := 0
			for i := range dims {
				if cards[i].Val() < cards[best].Val() {
					best = i
				}
			}
			return dims[best].idx, dims[best].name, nil
		})
	}
	if err != nil {
		return nil, "", err
	}
	runs, err := s.loadRuns(ctx, team, ids)
	return runs, next, err
}

// listRunsFiltered runs listRunsScript over the index pick chooses.
func (s *Store) listRunsFiltered(ctx context.Context, team, scope string, p pageSpec, f RunFilter,
	pick func() (idx, dim string, err error)) ([]string, string, error) {
	idx, dim, err := pick()
	if err != nil {
		return nil, "", redisErr("list runs", err)
	}
	wstate, wexp, wpv := f.State, f.ExperimentID, f.PipelineVersionID
	switch dim { // the walked index already guarantees its own dimension
	case "state":
		wstate = ""
	case "exp":
		wexp = ""
	case "pv":
		wpv = ""
	}
	rev := "0"
	if p.desc {
		rev = "1"
	}
	budget := max(1000, 20*p.size)
	res, err := listRunsScript.Run(ctx, s.rdb, []string{idx}, prefix(team), rev, p.cursor, p.size, budget, wstate, wexp, wpv).Slice()
	if err != nil {
		return nil, "", redisErr("list runs", err)
	}
	var ids []string
	if list, ok := res[0].([]any); ok {
		for _, v := range list {
			if id, ok := v.(string); ok {
				ids = append(ids, id)
			}
		}
	}
	next := ""
	if m, _ := res[1].(string); m != "" {
		next = p.token(scope, m)
	}
	return ids, next, nil
}

// loadRuns reads runs by id in one round trip, in order, skipping runs deleted since
// they were listed.
func (s *Store) loadRuns(ctx context.Context, team string, ids []string) ([]api.Run, error) {
	out := make([]api.Run, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, key(team, "run", id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr("load runs", err)
	}
	for i, id := range ids {
		r, err := decodeRun(id, cmds[i].Val())
		if api.KindOf(err) == api.KindNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ListActive lists the runs that are not in a terminal state, oldest first, for the
// status function's resync. Cost per page is O(log N + page) however many runs finished.
func (s *Store) ListActive(ctx context.Context, team string, opts ListOptions) ([]api.Run, string, error) {
	if err := checkTeam(team); err != nil {
		return nil, "", err
	}
	p, err := parseList(opts, false, "active runs")
	if err != nil {
		return nil, "", err
	}
	ids, next, err := s.listIndex(ctx, key(team, "runs", "idx", "active"), "active runs", p)
	if err != nil {
		return nil, "", err
	}
	runs, err := s.loadRuns(ctx, team, ids)
	return runs, next, err
}
