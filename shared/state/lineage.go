package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/lineage"
)

// Lineage keys, all under pf:{team}:lin:. The variable part (an id, run id, URI, cache
// key) always comes last so that no two keys can be confused.
//
//	exe:<exe-id>        string  JSON lineage.Execution
//	exe-in:<exe-id>     set     "<name>\t<index>\t<art-id>" (INPUT events)
//	exe-out:<exe-id>    set     "<name>\t<index>\t<art-id>" (OUTPUT events)
//	art:<art-id>        string  JSON lineage.Artifact
//	art-prod:<art-id>   string  producer execution id
//	art-cons:<art-id>   set     "<exe-id>\t<input name>"
//	run-arts:<run>      zset    artifact ids written in the run, by creation (unix ms)
//	run-exes:<run>      zset    execution ids of the run, by end time (unix ms)
//	run-pipe:<run>      string  the run's pipeline name
//	pipe-runs:<name>    zset    run ids of a pipeline, by first end time
//	uri:<uri>           set     artifact ids at that URI
//	cache:<key>         hash    exe (execution id), at (unix ms): most recent success
func linKey(team, kind, id string) string { return key(team, "lin", kind) + ":" + id }

// upsertExecution stores an execution record unless one of equal or better rank is
// there: a redelivered event changes nothing, a late success replaces an earlier failure
// of the same task (a retried run), and a late failure never replaces a success.
var upsertExecution = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  local rank = 1
  if ok and (old.state == 'SUCCEEDED' or old.state == 'CACHED') then rank = 2 end
  if tonumber(ARGV[2]) <= rank then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`)

// updateCache points a cache key at an execution unless the stored one finished later
// (ties broken by execution id, so that redelivery in any order converges).
var updateCache = redis.NewScript(`
local at = redis.call('HGET', KEYS[1], 'at')
if at then
  local a, b = tonumber(at), tonumber(ARGV[2])
  if a > b then return 0 end
  if a == b and redis.call('HGET', KEYS[1], 'exe') >= ARGV[1] then return 0 end
end
redis.call('HSET', KEYS[1], 'exe', ARGV[1], 'at', ARGV[2])
return 1`)

// unavailable wraps a Redis failure: transient, so an event handler lets it be retried,
// and its text (addresses) stays out of API answers.
func unavailable(op string, err error) error { return redisErr("lineage: "+op, err) }

// RecordTaskFinished writes one finished task into the lineage graph of team in one
// MULTI/EXEC transaction. Every write is idempotent (SET NX, SADD, ZADD NX, monotonic
// scripts), so a redelivered event changes nothing, and a delivery that failed half-way
// is completed by the next one. tf is normalized first; a malformed payload is an
// api.KindInvalid error.
func (s *Store) RecordTaskFinished(ctx context.Context, team string, tf lineage.TaskFinished) error {
	return s.RecordTasksFinished(ctx, team, []lineage.TaskFinished{tf})
}

// RecordTasksFinished writes several finished tasks in one round trip and one
// transaction (bulk import, benchmarks). See RecordTaskFinished.
func (s *Store) RecordTasksFinished(ctx context.Context, team string, tfs []lineage.TaskFinished) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	// Normalizing fills ids in the artifact slices: work on copies, not the caller's.
	tfs = append([]lineage.TaskFinished(nil), tfs...)
	for i := range tfs {
		tfs[i] = tfs[i].Clone()
		if err := tfs[i].Normalize(); err != nil {
			return api.Errorf(api.KindInvalid, "lineage: task %q of run %q: %s", tfs[i].Execution.TaskID,
				tfs[i].Execution.RunID, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := range tfs {
			if err := writeTask(ctx, p, team, &tfs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return unavailable("record task", err)
	}
	return nil
}

func writeTask(ctx context.Context, p redis.Pipeliner, team string, tf *lineage.TaskFinished) error {
	e := tf.Execution
	ej, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("lineage: encode execution %s: %w", e.ID, err)
	}
	rank := 1
	if e.State == api.StateSucceeded || e.State == api.StateCached {
		rank = 2
	}
	upsertExecution.Eval(ctx, p, []string{linKey(team, "exe", e.ID)}, ej, rank)
	endMS := float64(e.End.UnixMilli())
	if e.End.IsZero() {
		endMS = 0
	}
	p.ZAddNX(ctx, linKey(team, "run-exes", e.RunID), redis.Z{Score: endMS, Member: e.ID})
	if tf.Pipeline != "" {
		p.SetNX(ctx, linKey(team, "run-pipe", e.RunID), tf.Pipeline, 0)
		p.ZAddNX(ctx, linKey(team, "pipe-runs", tf.Pipeline), redis.Z{Score: endMS, Member: e.RunID})
	}
	for _, name := range sortedNames(tf.Inputs) {
		for i, a := range tf.Inputs[name] {
			aj, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("lineage: encode input %s[%d]: %w", name, i, err)
			}
			// A consumer knows less about an artifact than its producer: never overwrite.
			p.SetNX(ctx, linKey(team, "art", a.ID), aj, 0)
			p.SAdd(ctx, linKey(team, "art-cons", a.ID), e.ID+"\t"+name)
			p.SAdd(ctx, linKey(team, "exe-in", e.ID), eventMember(name, i, a.ID))
			p.SAdd(ctx, linKey(team, "uri", a.URI), a.ID)
		}
	}
	for _, name := range sortedNames(tf.Outputs) {
		for i, a := range tf.Outputs[name] {
			aj, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("lineage: encode output %s[%d]: %w", name, i, err)
			}
			if e.State == api.StateSucceeded {
				// The producer's record is authoritative (it replaces what a consumer
				// recorded first); a redelivery writes the same bytes.
				p.Set(ctx, linKey(team, "art", a.ID), aj, 0)
				p.Set(ctx, linKey(team, "art-prod", a.ID), e.ID, 0)
			} else {
				// A cache hit re-announces another execution's outputs; a failed task's
				// partial outputs must not displace a real producer.
				p.SetNX(ctx, linKey(team, "art", a.ID), aj, 0)
				if a.ProducerExecutionID != "" {
					p.SetNX(ctx, linKey(team, "art-prod", a.ID), a.ProducerExecutionID, 0)
				}
			}
			p.SAdd(ctx, linKey(team, "exe-out", e.ID), eventMember(name, i, a.ID))
			p.ZAddNX(ctx, linKey(team, "run-arts", e.RunID), redis.Z{Score: endMS, Member: a.ID})
			p.SAdd(ctx, linKey(team, "uri", a.URI), a.ID)
		}
	}
	if e.State == api.StateSucceeded && e.CacheKey != "" && !e.End.IsZero() {
		updateCache.Eval(ctx, p, []string{linKey(team, "cache", e.CacheKey)}, e.ID, e.End.UnixMilli())
	}
	return nil
}

func sortedNames(m map[string][]lineage.Artifact) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func eventMember(name string, index int, artID string) string {
	return name + "\t" + strconv.Itoa(index) + "\t" + artID
}

// ioEvent is a decoded exe-in/exe-out member.
type ioEvent struct {
	name  string
	index int
	artID string
}

func parseEventMember(m string) (ioEvent, bool) {
	// The name may hold anything but the id and index do not: split from the right.
	j := strings.LastIndexByte(m, '\t')
	if j < 0 {
		return ioEvent{}, false
	}
	i := strings.LastIndexByte(m[:j], '\t')
	if i < 0 {
		return ioEvent{}, false
	}
	idx, err := strconv.Atoi(m[i+1 : j])
	if err != nil {
		return ioEvent{}, false
	}
	return ioEvent{name: m[:i], index: idx, artID: m[j+1:]}, true
}

func sortEvents(evs []ioEvent) {
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].name != evs[j].name {
			return evs[i].name < evs[j].name
		}
		if evs[i].index != evs[j].index {
			return evs[i].index < evs[j].index
		}
		return evs[i].artID < evs[j].artID
	})
}

// consumer is a decoded art-cons member.
func parseConsumer(m string) (exeID, name string) {
	exeID, name, _ = strings.Cut(m, "\t")
	return exeID, name
}

// mgetJSON reads records by id with one MGET (legal in Redis Cluster: one hash tag) and
// decodes each; missing ids are absent from the map.
func mgetJSON[T any](ctx context.Context, s *Store, team, kind string, ids []string) (map[string]T, error) {
	out := make(map[string]T, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = linKey(team, kind, id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable("read "+kind, err)
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var rec T
		if err := json.Unmarshal([]byte(str), &rec); err != nil {
			return nil, fmt.Errorf("lineage: stored %s %s is corrupt: %w", kind, ids[i], err)
		}
		out[ids[i]] = rec
	}
	return out, nil
}

// RunArtifacts lists the artifacts written by the executions of run runID, oldest first,
// each with its producer. An unknown run has none.
func (s *Store) RunArtifacts(ctx context.Context, team, runID string) ([]lineage.ArtifactDetail, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, linKey(team, "run-arts", runID), 0, -1).Result()
	if err != nil {
		return nil, unavailable("run artifacts", err)
	}
	arts, err := mgetJSON[lineage.Artifact](ctx, s, team, "art", ids)
	if err != nil {
		return nil, err
	}
	var prodIDs []string
	for _, a := range arts {
		if a.ProducerExecutionID != "" {
			prodIDs = append(prodIDs, a.ProducerExecutionID)
		}
	}
	exes, err := mgetJSON[lineage.Execution](ctx, s, team, "exe", dedupe(prodIDs))
	if err != nil {
		return nil, err
	}
	out := make([]lineage.ArtifactDetail, 0, len(ids))
	for _, id := range ids {
		a, ok := arts[id]
		if !ok {
			continue
		}
		d := lineage.ArtifactDetail{Artifact: a}
		if e, ok := exes[a.ProducerExecutionID]; ok {
			d.Producer = &e
		}
		out = append(out, d)
	}
	return out, nil
}

// RunExecutions lists the executions of run runID in the order they ended.
func (s *Store) RunExecutions(ctx context.Context, team, runID string) ([]lineage.Execution, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, linKey(team, "run-exes", runID), 0, -1).Result()
	if err != nil {
		return nil, unavailable("run executions", err)
	}
	exes, err := mgetJSON[lineage.Execution](ctx, s, team, "exe", ids)
	if err != nil {
		return nil, err
	}
	out := make([]lineage.Execution, 0, len(ids))
	for _, id := range ids {
		if e, ok := exes[id]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// GetArtifact returns artifact id with its producer and its consumers (sorted by id).
func (s *Store) GetArtifact(ctx context.Context, team, id string) (lineage.ArtifactDetail, error) {
	if err := checkTeam(team); err != nil {
		return lineage.ArtifactDetail{}, err
	}
	var (
		artCmd  *redis.StringCmd
		prodCmd *redis.StringCmd
		consCmd *redis.StringSliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		artCmd = p.Get(ctx, linKey(team, "art", id))
		prodCmd = p.Get(ctx, linKey(team, "art-prod", id))
		consCmd = p.SMembers(ctx, linKey(team, "art-cons", id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return lineage.ArtifactDetail{}, unavailable("get artifact", err)
	}
	raw, err := artCmd.Result()
	if errors.Is(err, redis.Nil) {
		return lineage.ArtifactDetail{}, api.Errorf(api.KindNotFound, "artifact %q not found", id)
	}
	var d lineage.ArtifactDetail
	if err := json.Unmarshal([]byte(raw), &d.Artifact); err != nil {
		return lineage.ArtifactDetail{}, fmt.Errorf("lineage: stored artifact %s is corrupt: %w", id, err)
	}
	prod := prodCmd.Val()
	var exeIDs []string
	if prod != "" {
		exeIDs = append(exeIDs, prod)
	}
	for _, m := range consCmd.Val() {
		exeID, _ := parseConsumer(m)
		exeIDs = append(exeIDs, exeID)
	}
	exes, err := mgetJSON[lineage.Execution](ctx, s, team, "exe", dedupe(exeIDs))
	if err != nil {
		return lineage.ArtifactDetail{}, err
	}
	if e, ok := exes[prod]; ok {
		d.Producer = &e
		d.ProducerExecutionID = prod
	}
	seen := map[string]bool{}
	for _, m := range consCmd.Val() {
		exeID, _ := parseConsumer(m)
		if e, ok := exes[exeID]; ok && !seen[exeID] {
			seen[exeID] = true
			d.Consumers = append(d.Consumers, e)
		}
	}
	sort.Slice(d.Consumers, func(i, j int) bool { return d.Consumers[i].ID < d.Consumers[j].ID })
	return d, nil
}

// ArtifactsByURI returns the artifacts recorded at uri (none is not an error).
func (s *Store) ArtifactsByURI(ctx context.Context, team, uri string) ([]lineage.Artifact, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ids, err := s.rdb.SMembers(ctx, linKey(team, "uri", uri)).Result()
	if err != nil {
		return nil, unavailable("artifacts by uri", err)
	}
	sort.Strings(ids)
	arts, err := mgetJSON[lineage.Artifact](ctx, s, team, "art", ids)
	if err != nil {
		return nil, err
	}
	out := make([]lineage.Artifact, 0, len(ids))
	for _, id := range ids {
		if a, ok := arts[id]; ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// CacheLookup finds the most recent successful execution recorded with cache key key. A
// maxAge above zero rejects an execution that finished longer ago than that (by the
// store's clock). ok is false on a miss.
func (s *Store) CacheLookup(ctx context.Context, team, key string, maxAge time.Duration) (lineage.CacheHit, bool, error) {
	if err := checkTeam(team); err != nil {
		return lineage.CacheHit{}, false, err
	}
	vals, err := s.rdb.HMGet(ctx, linKey(team, "cache", key), "exe", "at").Result()
	if err != nil {
		return lineage.CacheHit{}, false, unavailable("cache lookup", err)
	}
	exeID, _ := vals[0].(string)
	atStr, _ := vals[1].(string)
	atMS, err := strconv.ParseInt(atStr, 10, 64)
	if exeID == "" || err != nil {
		return lineage.CacheHit{}, false, nil
	}
	at := time.UnixMilli(atMS).UTC()
	if maxAge > 0 && s.now().Sub(at) > maxAge {
		return lineage.CacheHit{}, false, nil
	}
	var (
		exeCmd *redis.StringCmd
		outCmd *redis.StringSliceCmd
	)
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exeCmd = p.Get(ctx, linKey(team, "exe", exeID))
		outCmd = p.SMembers(ctx, linKey(team, "exe-out", exeID))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return lineage.CacheHit{}, false, unavailable("cache lookup", err)
	}
	raw, err := exeCmd.Result()
	if errors.Is(err, redis.Nil) {
		return lineage.CacheHit{}, false, nil
	}
	var hit lineage.CacheHit
	if err := json.Unmarshal([]byte(raw), &hit.Execution); err != nil {
		return lineage.CacheHit{}, false, fmt.Errorf("lineage: stored execution %s is corrupt: %w", exeID, err)
	}
	if !lineage.Succeeded(hit.Execution.State) {
		return lineage.CacheHit{}, false, nil
	}
	hit.RecordedAt = at
	var evs []ioEvent
	var ids []string
	for _, m := range outCmd.Val() {
		if ev, ok := parseEventMember(m); ok {
			evs = append(evs, ev)
			ids = append(ids, ev.artID)
		}
	}
	sortEvents(evs)
	arts, err := mgetJSON[lineage.Artifact](ctx, s, team, "art", dedupe(ids))
	if err != nil {
		return lineage.CacheHit{}, false, err
	}
	hit.Outputs = map[string][]lineage.Artifact{}
	for _, ev := range evs {
		a, ok := arts[ev.artID]
		if !ok {
			// An output record is missing: reusing a partial set of outputs would be
			// wrong, so this is a miss.
			return lineage.CacheHit{}, false, nil
		}
		hit.Outputs[ev.name] = append(hit.Outputs[ev.name], a)
	}
	return hit, true, nil
}

// CacheLookupFunc binds CacheLookup to team, for the local executor.
func (s *Store) CacheLookupFunc(team string) lineage.CacheLookupFunc {
	return func(ctx context.Context, key string, maxAge time.Duration) (lineage.CacheHit, bool, error) {
		return s.CacheLookup(ctx, team, key, maxAge)
	}
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
