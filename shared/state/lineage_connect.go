package state

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// OpenForLineage connects to the Redis named by redisURL (redis:// or rediss://)
// for functions/lineage, whose main must not import
// go-redis itself.
//
// Temporary adapter: shared/state has no URL constructor yet; when it gets one, the
// lineage function should use it and this goes.
func OpenForLineage(redisURL string, now func() time.Time) (*Store, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("state: REDIS_URL: %w", err)
	}
	return New(redis.NewClient(opts), now), nil
}

// LineageReady pings Redis, for a readiness probe.
func (s *Store) LineageReady(ctx context.Context) error {
	return redisErr("ping", s.rdb.Ping(ctx).Err())
}

// LineageClose closes the Redis client.
func (s *Store) LineageClose() error { return s.rdb.Close() }
