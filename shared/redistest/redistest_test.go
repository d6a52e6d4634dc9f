package redistest

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartServesAndIsEmpty(t *testing.T) {
	ctx := context.Background()
	c := Start(t)
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("DBSIZE: %v", err)
	}
	if n != 0 {
		t.Fatalf("fresh server has %d keys, want 0", n)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want v", got, err)
	}
}

func TestServersAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := StartServer(t), StartServer(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
	if err := a.Client().Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client().Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET k on the second server: err = %v, want redis.Nil", err)
	}
}

func TestRestartLosesUnpersistedData(t *testing.T) {
	ctx := context.Background()
	s := StartServer(t)
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	// The client reconnects on its own; the data is gone because persistence is off.
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after restart: err = %v, want redis.Nil", err)
	}
}

func TestStopRefusesConnections(t *testing.T) {
	s := StartServer(t)
	c := s.Client()
	s.Stop()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("PING after Stop succeeded")
	}
}
