package state

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Open connects to the Redis named by redisURL (redis://, rediss://, or
// redis-cluster://host1,host2 for a Redis Cluster) and checks it answers. Every
// function's main uses it, so that go-redis stays inside this package.
func Open(ctx context.Context, redisURL string, now func() time.Time) (*Store, error) {
	rdb, err := client(redisURL)
	if err != nil {
		return nil, err
	}
	s := New(rdb, now)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", Redact(redisURL), err)
	}
	return s, nil
}

func client(redisURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %q: %w", Redact(redisURL), err)
	}
	if u.Scheme == "redis-cluster" {
		opts := &redis.ClusterOptions{Addrs: splitHosts(u.Host)}
		if u.User != nil {
			opts.Username = u.User.Username()
			opts.Password, _ = u.User.Password()
		}
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %q: %w", Redact(redisURL), err)
	}
	return redis.NewClient(opts), nil
}

func splitHosts(h string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(h); i++ {
		if i == len(h) || h[i] == ',' {
			if i > start {
				out = append(out, h[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// Redact hides the password of a Redis URL, for messages and logs.
func Redact(redisURL string) string {
	u, err := url.Parse(redisURL)
	if err != nil || u.User == nil {
		return redisURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Embedded starts an in-process Redis (miniredis) on a loopback port and returns a Store
// over it and a function that stops it. State lives in memory only: `pipefn up` says so
// at start-up. The test suites run against a real redis-server; the end-to-end suite runs
// pipefn up on both.
func Embedded(now func() time.Time) (*Store, func(), error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, nil, fmt.Errorf("embedded redis: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return New(rdb, now), func() { _ = rdb.Close(); m.Close() }, nil
}

// Ping checks that Redis answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	return redisErr("ping", s.rdb.Ping(ctx).Err())
}

// Close closes the Redis client.
func (s *Store) Close() error { return s.rdb.Close() }
