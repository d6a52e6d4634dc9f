package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Pipeline keys: pipeline:<id> (JSON), pipelines:byname (unique name -> id),
// pipelines:idx (lex index). Versions: pv:<id> (JSON without the spec), pv:<id>:ir (the
// upload byte for byte), pv:<id>:spec (PipelineSpec JSON), and per pipeline
// pipeline:<id>:versions:idx and pipeline:<id>:versions:byname. The IR and spec have their
// own keys because they can be megabytes and listings never need them.

var createPipelineScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[4])
return 1
`)

// uniqueName is the name a pipeline or version must hold alone: KFP's name when given,
// else its display name.
func uniqueName(name, display string) string {
	if name != "" {
		return name
	}
	return display
}

// msTime truncates t to milliseconds in UTC: the precision of the indexes, so that a
// record's created_at and its index member always agree after a round trip.
func msTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// CreatePipeline stores p with a new id (unless p.PipelineID is set) and CreatedAt now.
// A second pipeline with the same name in the team is an ErrConflict.
func (s *Store) CreatePipeline(ctx context.Context, team string, p api.Pipeline) (api.Pipeline, error) {
	if err := checkTeam(team); err != nil {
		return api.Pipeline{}, err
	}
	name := uniqueName(p.Name, p.DisplayName)
	if name == "" {
		return api.Pipeline{}, api.Errorf(api.KindInvalid, "pipeline: display_name is empty")
	}
	if p.PipelineID == "" {
		p.PipelineID = newID()
	}
	if err := checkID("pipeline", p.PipelineID); err != nil {
		return api.Pipeline{}, err
	}
	p.CreatedAt = msTime(s.now())
	p.Namespace = team
	js, err := json.Marshal(p)
	if err != nil {
		return api.Pipeline{}, fmt.Errorf("encode pipeline %s: %w", p.PipelineID, err)
	}
	res, err := createPipelineScript.Run(ctx, s.rdb,
		[]string{key(team, "pipelines", "byname"), key(team, "pipeline", p.PipelineID), key(team, "pipelines", "idx")},
		name, p.PipelineID, js, sortMember(p.CreatedAt, p.PipelineID)).Int()
	if err != nil {
		return api.Pipeline{}, redisErr("create pipeline "+name, err)
	}
	switch res {
	case 0:
		return api.Pipeline{}, api.Errorf(api.KindConflict, "pipeline named %q already exists in team %s", name, team)
	case -1:
		return api.Pipeline{}, api.Errorf(api.KindConflict, "pipeline id %s already exists in team %s", p.PipelineID, team)
	}
	if err := s.addTeam(ctx, team); err != nil {
		return api.Pipeline{}, err
	}
	return p, nil
}

// GetPipeline returns the pipeline with id.
func (s *Store) GetPipeline(ctx context.Context, team, id string) (api.Pipeline, error) {
	if err := checkTeam(team); err != nil {
		return api.Pipeline{}, err
	}
	if err := checkID("pipeline", id); err != nil {
		return api.Pipeline{}, err
	}
	return readRecord[api.Pipeline](ctx, s, key(team, "pipeline", id), "pipeline "+id)
}

// GetPipelineByName returns the pipeline whose name (or display name) is name.
func (s *Store) GetPipelineByName(ctx context.Context, team, name string) (api.Pipeline, error) {
	if err := checkTeam(team); err != nil {
		return api.Pipeline{}, err
	}
	id, err := s.rdb.HGet(ctx, key(team, "pipelines", "byname"), name).Result()
	if errors.Is(err, redis.Nil) {
		return api.Pipeline{}, api.Errorf(api.KindNotFound, "pipeline named %q not found in team %s", name, team)
	}
	if err != nil {
		return api.Pipeline{}, redisErr("find pipeline "+name, err)
	}
	return s.GetPipeline(ctx, team, id)
}

// ListPipelines lists a team's pipelines, oldest first unless opts.SortBy says otherwise.
func (s *Store) ListPipelines(ctx context.Context, team string, opts ListOptions) ([]api.Pipeline, string, error) {
	if err := checkTeam(team); err != nil {
		return nil, "", err
	}
	p, err := parseList(opts, false, "pipelines")
	if err != nil {
		return nil, "", err
	}
	ids, next, err := s.listIndex(ctx, key(team, "pipelines", "idx"), "pipelines", p)
	if err != nil {
		return nil, "", err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = key(team, "pipeline", id)
	}
	out, err := readRecords[api.Pipeline](ctx, s, keys, "list pipelines")
	return out, next, err
}

var deletePipelineScript = redis.NewScript(`
local P = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('ZCARD', KEYS[4]) > 0 then
  if ARGV[4] ~= '1' then return 0 end
  for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    local vid = string.sub(m, 18)
    redis.call('DEL', P .. 'pv:' .. vid, P .. 'pv:' .. vid .. ':ir', P .. 'pv:' .. vid .. ':spec')
  end
  redis.call('DEL', KEYS[4], KEYS[5])
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
return 1
`)

// DeletePipeline removes a pipeline. Like KFP it refuses (failed precondition) while the
// pipeline has versions, unless cascade is set, which deletes the versions too.
func (s *Store) DeletePipeline(ctx context.Context, team, id string, cascade bool) error {
	p, err := s.GetPipeline(ctx, team, id)
	if err != nil {
		return err
	}
	c := "0"
	if cascade {
		c = "1"
	}
	res, err := deletePipelineScript.Run(ctx, s.rdb,
		[]string{key(team, "pipeline", id), key(team, "pipelines", "byname"), key(team, "pipelines", "idx"),
			key(team, "pipeline", id, "versions", "idx"), key(team, "pipeline", id, "versions", "byname")},
		prefix(team), uniqueName(p.Name, p.DisplayName), sortMember(p.CreatedAt, id), c).Int()
	if err != nil {
		return redisErr("delete pipeline "+id, err)
	}
	switch res {
	case -1:
		return api.Errorf(api.KindNotFound, "pipeline %s not found in team %s", id, team)
	case 0:
		return api.Errorf(api.KindFailedPrecondition, "pipeline %s still has versions: delete them first or delete with cascade", id)
	}
	return nil
}

var createVersionScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[4])
redis.call('SET', KEYS[4], ARGV[3])
redis.call('SET', KEYS[5], ARGV[5])
if ARGV[6] ~= '' then redis.call('SET', KEYS[6], ARGV[6]) end
return 1
`)

// CreatePipelineVersion stores a version of pipeline v.PipelineID: ir exactly as uploaded
// and v's display info (v.PipelineSpec, the parsed first document, is kept beside it).
// Digest is set to the IR's sha256 when empty. Version names are unique per pipeline.
func (s *Store) CreatePipelineVersion(ctx context.Context, team string, v api.PipelineVersion, ir []byte) (api.PipelineVersion, error) {
	if err := checkTeam(team); err != nil {
		return api.PipelineVersion{}, err
	}
	if err := checkID("pipeline", v.PipelineID); err != nil {
		return api.PipelineVersion{}, err
	}
	name := uniqueName(v.Name, v.DisplayName)
	if name == "" {
		return api.PipelineVersion{}, api.Errorf(api.KindInvalid, "pipeline version: display_name is empty")
	}
	if len(ir) == 0 {
		return api.PipelineVersion{}, api.Errorf(api.KindInvalid, "pipeline version %q: IR is empty", name)
	}
	if v.PipelineVersionID == "" {
		v.PipelineVersionID = newID()
	}
	if err := checkID("pipeline version", v.PipelineVersionID); err != nil {
		return api.PipelineVersion{}, err
	}
	if v.Digest == "" {
		sum := sha256.Sum256(ir)
		v.Digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	v.CreatedAt = msTime(s.now())
	spec := v.PipelineSpec
	meta := v
	meta.PipelineSpec = nil
	js, err := json.Marshal(meta)
	if err != nil {
		return api.PipelineVersion{}, fmt.Errorf("encode pipeline version %s: %w", v.PipelineVersionID, err)
	}
	pk := func(parts ...string) string {
		return key(team, append([]string{"pv", v.PipelineVersionID}, parts...)...)
	}
	res, err := createVersionScript.Run(ctx, s.rdb,
		[]string{key(team, "pipeline", v.PipelineID), key(team, "pipeline", v.PipelineID, "versions", "byname"),
			key(team, "pipeline", v.PipelineID, "versions", "idx"), pk(), pk("ir"), pk("spec")},
		name, v.PipelineVersionID, js, sortMember(v.CreatedAt, v.PipelineVersionID), ir, []byte(spec)).Int()
	if err != nil {
		return api.PipelineVersion{}, redisErr("create pipeline version "+name, err)
	}
	switch res {
	case -2:
		return api.PipelineVersion{}, api.Errorf(api.KindNotFound, "pipeline %s not found in team %s", v.PipelineID, team)
	case 0:
		return api.PipelineVersion{}, api.Errorf(api.KindConflict, "pipeline %s already has a version named %q", v.PipelineID, name)
	case -1:
		return api.PipelineVersion{}, api.Errorf(api.KindConflict, "pipeline version id %s already exists", v.PipelineVersionID)
	}
	return v, nil
}

// GetPipelineVersion returns a version of pipeline pipelineID with its PipelineSpec.
func (s *Store) GetPipelineVersion(ctx context.Context, team, pipelineID, versionID string) (api.PipelineVersion, error) {
	v, err := s.getVersionMeta(ctx, team, pipelineID, versionID)
	if err != nil {
		return v, err
	}
	spec, err := s.rdb.Get(ctx, key(team, "pv", versionID, "spec")).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return api.PipelineVersion{}, redisErr("get pipeline version spec "+versionID, err)
	}
	if len(spec) > 0 {
		v.PipelineSpec = spec
	}
	return v, nil
}

// getVersionMeta reads a version without its spec and checks that it belongs to
// pipelineID ("" skips the check).
func (s *Store) getVersionMeta(ctx context.Context, team, pipelineID, versionID string) (api.PipelineVersion, error) {
	if err := checkTeam(team); err != nil {
		return api.PipelineVersion{}, err
	}
	if err := checkID("pipeline version", versionID); err != nil {
		return api.PipelineVersion{}, err
	}
	v, err := readRecord[api.PipelineVersion](ctx, s, key(team, "pv", versionID), "pipeline version "+versionID)
	if err != nil {
		return v, err
	}
	if pipelineID != "" && v.PipelineID != pipelineID {
		return api.PipelineVersion{}, api.Errorf(api.KindNotFound, "pipeline version %s not found in pipeline %s", versionID, pipelineID)
	}
	return v, nil
}

// GetPipelineVersionIR returns the IR of a version exactly as uploaded.
func (s *Store) GetPipelineVersionIR(ctx context.Context, team, versionID string) ([]byte, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	if err := checkID("pipeline version", versionID); err != nil {
		return nil, err
	}
	b, err := s.rdb.Get(ctx, key(team, "pv", versionID, "ir")).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, api.Errorf(api.KindNotFound, "pipeline version %s not found in team %s", versionID, team)
	}
	if err != nil {
		return nil, redisErr("get pipeline version IR "+versionID, err)
	}
	return b, nil
}

// ListPipelineVersions lists a pipeline's versions, newest first unless opts.SortBy says
// otherwise. PipelineSpec is left out; GetPipelineVersion has it.
func (s *Store) ListPipelineVersions(ctx context.Context, team, pipelineID string, opts ListOptions) ([]api.PipelineVersion, string, error) {
	if _, err := s.GetPipeline(ctx, team, pipelineID); err != nil {
		return nil, "", err
	}
	scope := "versions " + pipelineID
	p, err := parseList(opts, true, scope)
	if err != nil {
		return nil, "", err
	}
	ids, next, err := s.listIndex(ctx, key(team, "pipeline", pipelineID, "versions", "idx"), scope, p)
	if err != nil {
		return nil, "", err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = key(team, "pv", id)
	}
	out, err := readRecords[api.PipelineVersion](ctx, s, keys, "list pipeline versions")
	return out, next, err
}

// LatestPipelineVersion returns the newest version of a pipeline (KFP's default version).
func (s *Store) LatestPipelineVersion(ctx context.Context, team, pipelineID string) (api.PipelineVersion, error) {
	vs, _, err := s.ListPipelineVersions(ctx, team, pipelineID, ListOptions{PageSize: 1})
	if err != nil {
		return api.PipelineVersion{}, err
	}
	if len(vs) == 0 {
		return api.PipelineVersion{}, api.Errorf(api.KindNotFound, "pipeline %s has no versions", pipelineID)
	}
	return s.GetPipelineVersion(ctx, team, pipelineID, vs[0].PipelineVersionID)
}

var deleteVersionScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[2])
return 1
`)

// DeletePipelineVersion removes a version and its IR. Runs keep their own copy of what
// they need, so deleting a version does not break finished runs.
func (s *Store) DeletePipelineVersion(ctx context.Context, team, pipelineID, versionID string) error {
	v, err := s.getVersionMeta(ctx, team, pipelineID, versionID)
	if err != nil {
		return err
	}
	res, err := deleteVersionScript.Run(ctx, s.rdb,
		[]string{key(team, "pv", versionID), key(team, "pv", versionID, "ir"), key(team, "pv", versionID, "spec"),
			key(team, "pipeline", pipelineID, "versions", "byname"), key(team, "pipeline", pipelineID, "versions", "idx")},
		uniqueName(v.Name, v.DisplayName), sortMember(v.CreatedAt, versionID)).Int()
	if err != nil {
		return redisErr("delete pipeline version "+versionID, err)
	}
	if res == 0 {
		return api.Errorf(api.KindNotFound, "pipeline version %s not found in team %s", versionID, team)
	}
	return nil
}

// readRecord reads and decodes one JSON string key; a missing key is ErrNotFound naming what.
func readRecord[T any](ctx context.Context, s *Store, k, what string) (T, error) {
	var v T
	b, err := s.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return v, api.Errorf(api.KindNotFound, "%s not found", what)
	}
	if err != nil {
		return v, redisErr("get "+what, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode %s stored at %s: %w", what, k, err)
	}
	return v, nil
}

// readRecords reads many JSON keys in one round trip, skipping keys deleted since they were
// listed.
func readRecords[T any](ctx context.Context, s *Store, keys []string, op string) ([]T, error) {
	out := make([]T, 0, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, redisErr(op, err)
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var x T
		if err := json.Unmarshal([]byte(str), &x); err != nil {
			return nil, fmt.Errorf("%s: decode %s: %w", op, keys[i], err)
		}
		out = append(out, x)
	}
	return out, nil
}
