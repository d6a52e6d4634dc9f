package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Experiment keys: exp:<id> (hash: spec = JSON without the changing fields, st = storage
// state, last_run = ms of the newest run, sort = index member), exps:byname (display
// name -> id), exps:idx:all and exps:idx:st=<storage state> (lex indexes).

// DefaultExperimentName is the experiment that collects runs created without one, as in
// KFP.
const DefaultExperimentName = "Default"

var createExperimentScript = redis.NewScript(`
local ex = redis.call('HGET', KEYS[1], ARGV[1])
if ex then return {0, ex} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, ARGV[2]} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'spec', ARGV[3], 'st', 'AVAILABLE', 'sort', ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[4])
redis.call('ZADD', KEYS[4], 0, ARGV[4])
return {1, ARGV[2]}
`)

// CreateExperiment stores e with a new id (unless set), AVAILABLE. Display names are
// unique per team: a second one is an ErrConflict.
func (s *Store) CreateExperiment(ctx context.Context, team string, e api.Experiment) (api.Experiment, error) {
	e, created, err := s.createExperiment(ctx, team, e)
	if err != nil {
		return e, err
	}
	if !created {
		return api.Experiment{}, api.Errorf(api.KindConflict, "experiment named %q already exists in team %s", e.DisplayName, team)
	}
	return e, nil
}

// DefaultExperiment returns the team's Default experiment, creating it on first use; safe
// under concurrent first uses.
func (s *Store) DefaultExperiment(ctx context.Context, team string) (api.Experiment, error) {
	e, _, err := s.createExperiment(ctx, team, api.Experiment{
		DisplayName: DefaultExperimentName,
		Description: "All runs created without specifying an experiment will be grouped here.",
	})
	return e, err
}

// createExperiment creates e or, when its name is taken, returns the existing one with
// created=false.
func (s *Store) createExperiment(ctx context.Context, team string, e api.Experiment) (api.Experiment, bool, error) {
	if err := checkTeam(team); err != nil {
		return api.Experiment{}, false, err
	}
	if e.DisplayName == "" {
		return api.Experiment{}, false, api.Errorf(api.KindInvalid, "experiment: display_name is empty")
	}
	if e.ExperimentID == "" {
		e.ExperimentID = newID()
	}
	if err := checkID("experiment", e.ExperimentID); err != nil {
		return api.Experiment{}, false, err
	}
	e.CreatedAt = msTime(s.now())
	e.Namespace = team
	e.StorageState = api.StorageAvailable
	e.LastRunCreatedAt = nil
	spec := e
	spec.StorageState = ""
	js, err := json.Marshal(spec)
	if err != nil {
		return api.Experiment{}, false, fmt.Errorf("encode experiment %s: %w", e.ExperimentID, err)
	}
	res, err := createExperimentScript.Run(ctx, s.rdb,
		[]string{key(team, "exps", "byname"), key(team, "exp", e.ExperimentID), key(team, "exps", "idx", "all"),
			key(team, "exps", "idx", "st="+api.StorageAvailable)},
		e.DisplayName, e.ExperimentID, js, sortMember(e.CreatedAt, e.ExperimentID)).Slice()
	if err != nil {
		return api.Experiment{}, false, redisErr("create experiment "+e.DisplayName, err)
	}
	code, _ := res[0].(int64)
	id, _ := res[1].(string)
	switch code {
	case -1:
		return api.Experiment{}, false, api.Errorf(api.KindConflict, "experiment id %s already exists in team %s", id, team)
	case 0:
		got, err := s.GetExperiment(ctx, team, id)
		return got, false, err
	}
	if err := s.addTeam(ctx, team); err != nil {
		return api.Experiment{}, false, err
	}
	return e, true, nil
}

// GetExperiment returns the experiment with id.
func (s *Store) GetExperiment(ctx context.Context, team, id string) (api.Experiment, error) {
	if err := checkTeam(team); err != nil {
		return api.Experiment{}, err
	}
	if err := checkID("experiment", id); err != nil {
		return api.Experiment{}, err
	}
	vals, err := s.rdb.HMGet(ctx, key(team, "exp", id), "spec", "st", "last_run").Result()
	if err != nil {
		return api.Experiment{}, redisErr("get experiment "+id, err)
	}
	return decodeExperiment(id, vals)
}

func decodeExperiment(id string, vals []any) (api.Experiment, error) {
	spec, ok := vals[0].(string)
	if !ok {
		return api.Experiment{}, api.Errorf(api.KindNotFound, "experiment %s not found", id)
	}
	var e api.Experiment
	if err := json.Unmarshal([]byte(spec), &e); err != nil {
		return api.Experiment{}, fmt.Errorf("decode experiment %s: %w", id, err)
	}
	e.StorageState, _ = vals[1].(string)
	if lr, _ := vals[2].(string); lr != "" {
		t := fromMS(lr)
		e.LastRunCreatedAt = &t
	}
	return e, nil
}

// ListExperiments lists a team's experiments, oldest first unless opts.SortBy says
// otherwise; storageState ("" for all) filters archived or available ones.
func (s *Store) ListExperiments(ctx context.Context, team string, opts ListOptions, storageState string) ([]api.Experiment, string, error) {
	if err := checkTeam(team); err != nil {
		return nil, "", err
	}
	idx := key(team, "exps", "idx", "all")
	switch storageState {
	case "":
	case api.StorageAvailable, api.StorageArchived:
		idx = key(team, "exps", "idx", "st="+storageState)
	default:
		return nil, "", api.Errorf(api.KindInvalid, "storage_state %q: must be AVAILABLE or ARCHIVED", storageState)
	}
	scope := "experiments " + storageState
	p, err := parseList(opts, false, scope)
	if err != nil {
		return nil, "", err
	}
	ids, next, err := s.listIndex(ctx, idx, scope, p)
	if err != nil {
		return nil, "", err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, key(team, "exp", id), "spec", "st", "last_run")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", redisErr("list experiments", err)
	}
	out := make([]api.Experiment, 0, len(ids))
	for i, id := range ids {
		e, err := decodeExperiment(id, cmds[i].Val())
		if api.KindOf(err) == api.KindNotFound {
			continue // deleted since the index was read
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	return out, next, nil
}

var setExperimentStorageScript = redis.NewScript(`
local P = ARGV[1]
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return -1 end
if st == ARGV[2] then return 0 end
local m = redis.call('HGET', KEYS[1], 'sort')
redis.call('ZREM', P .. 'exps:idx:st=' .. st, m)
redis.call('ZADD', P .. 'exps:idx:st=' .. ARGV[2], 0, m)
redis.call('HSET', KEYS[1], 'st', ARGV[2])
return 1
`)

// ArchiveExperiment marks an experiment ARCHIVED. Its runs keep their own storage state
// (archive them with ArchiveRun); listing by storage state sees the change at once.
func (s *Store) ArchiveExperiment(ctx context.Context, team, id string) error {
	return s.setExperimentStorage(ctx, team, id, api.StorageArchived)
}

// UnarchiveExperiment marks an experiment AVAILABLE again.
func (s *Store) UnarchiveExperiment(ctx context.Context, team, id string) error {
	return s.setExperimentStorage(ctx, team, id, api.StorageAvailable)
}

func (s *Store) setExperimentStorage(ctx context.Context, team, id, st string) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	if err := checkID("experiment", id); err != nil {
		return err
	}
	res, err := setExperimentStorageScript.Run(ctx, s.rdb, []string{key(team, "exp", id)}, prefix(team), st).Int()
	if err != nil {
		return redisErr("set storage state of experiment "+id, err)
	}
	if res == -1 {
		return api.Errorf(api.KindNotFound, "experiment %s not found in team %s", id, team)
	}
	return nil
}
