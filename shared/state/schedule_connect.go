package state

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// OpenForSchedule connects to the Redis named by redisURL (redis:// or rediss://) for
// functions/schedule, whose main must not import go-redis itself.
//
// Temporary adapter, like OpenForLineage: when shared/state gets one URL constructor for
// every function, the schedule function moves to it and this goes.
func OpenForSchedule(redisURL string, now func() time.Time) (*Store, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("state: REDIS_URL: %w", err)
	}
	return New(redis.NewClient(opts), now), nil
}

// SchedulePing checks Redis, for the schedule function's readiness probe.
func (s *Store) SchedulePing(ctx context.Context) error {
	return redisErr("ping", s.rdb.Ping(ctx).Err())
}

// ScheduleClose closes the Redis client.
func (s *Store) ScheduleClose() error { return s.rdb.Close() }
