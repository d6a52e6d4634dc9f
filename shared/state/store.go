// Package state is pipefn's store on Redis: pipelines, versions, experiments, runs with
// their task details and history, recurring runs and idempotency keys. It is the only
// package that imports go-redis.
package state

import (
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps pipefn's state in Redis. Every key carries the team in a hash tag
// (pf:{team}:...) so that all of a team's keys land in one Redis Cluster slot and
// multi-key scripts stay legal.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns a Store over rdb. now may be nil (time.Now).
func New(rdb redis.UniversalClient, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, now: now}
}

// key builds pf:{team}:part1:part2...
func key(team string, parts ...string) string {
	return "pf:{" + team + "}:" + strings.Join(parts, ":")
}
