package handler

import (
	"context"
	"time"

	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/lineage"
)

// taskMeta is what the local backend learns of a task before it runs: its config and
// cache key, for the step cache and for the task's lineage record.
type taskMeta struct {
	config     launch.TaskConfig
	cacheKey   string
	cachedFrom string // execution id whose outputs a CACHED task reused
}

// CacheStore is the lineage store as the step cache reads it.
type CacheStore interface {
	CacheLookup(ctx context.Context, team, key string, maxAge time.Duration) (lineage.CacheHit, bool, error)
}

// LineageCache serves the step cache from the lineage graph: a task whose key was
// recorded with a successful execution, no older than MaxAge (0: any age), reuses that
// execution's outputs.
type LineageCache struct {
	Store  CacheStore
	MaxAge time.Duration
}

// Lookup implements StepCache.
func (c *LineageCache) Lookup(ctx context.Context, team, key string) (launch.Outputs, string, bool, error) {
	hit, ok, err := c.Store.CacheLookup(ctx, team, key, c.MaxAge)
	if err != nil || !ok {
		return launch.Outputs{}, "", false, err
	}
	out, err := launch.CachedOutputs(hit)
	if err != nil {
		return launch.Outputs{}, "", false, err
	}
	return out, hit.Execution.ID, true, nil
}
