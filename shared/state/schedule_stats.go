package state

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips counts the Redis round trips of a Store: a single command or a whole
// pipeline is one. The scheduler's benchmarks report it, because at scale a tick's cost
// is its round trips, not its CPU.
type RoundTrips struct {
	trips, cmds atomic.Int64
}

// CountRoundTrips starts counting s's round trips. Each call adds a hook to the client,
// so call it once per Store.
func (s *Store) CountRoundTrips() *RoundTrips {
	c := &RoundTrips{}
	s.rdb.AddHook(c)
	return c
}

// Counts returns the round trips and commands so far.
func (c *RoundTrips) Counts() (trips, cmds int64) { return c.trips.Load(), c.cmds.Load() }

// DialHook implements redis.Hook.
func (c *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.trips.Add(1)
		c.cmds.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.trips.Add(1)
		c.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*RoundTrips)(nil)
