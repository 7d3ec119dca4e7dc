package queue

import (
	"context"
	"sync"
	"time"
)

// projectKey names a function (or its config) in a project.
type projectKey struct{ project, name string }

// cache keeps values loaded per function for a short time, so that a batch
// of a thousand tasks costs one read. A project's writes drop its entries.
type cache[V any] struct {
	ttl  time.Duration
	now  func() time.Time
	load func(context.Context, projectKey) (V, error)

	mu sync.Mutex
	m  map[projectKey]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v  V
	at time.Time
}

func newCache[V any](ttl time.Duration, now func() time.Time, load func(context.Context, projectKey) (V, error)) *cache[V] {
	return &cache[V]{ttl: ttl, now: now, load: load, m: map[projectKey]cacheEntry[V]{}}
}

// get returns the cached value, loading it when absent or stale.
func (c *cache[V]) get(ctx context.Context, k projectKey) (V, error) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.v, nil
	}
	v, err := c.load(ctx, k)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	c.m[k] = cacheEntry[V]{v: v, at: c.now()}
	c.mu.Unlock()
	return v, nil
}

// forget drops every entry of a project.
func (c *cache[V]) forget(project string) {
	c.mu.Lock()
	for k := range c.m {
		if k.project == project {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}
