package memory

import (
	"context"
	"time"

	"github.com/ratewarden/ratewarden/store"
)

// CheckHealth reports the store healthy, as it always is while its process
// runs, with the number of live keys: stored keys that have not expired,
// whether or not the sweeper has deleted the expired ones yet. It locks one
// shard at a time.
func (s *Store) CheckHealth(context.Context) store.Health {
	start := time.Now()
	keys := s.liveKeys(s.now().UnixNano())
	return store.Health{
		Backend: "memory",
		OK:      true,
		Keys:    &keys,
		Latency: time.Since(start),
	}
}

// liveKeys counts the keys that have not expired at nowN.
func (s *Store) liveKeys(nowN int64) int64 {
	var n int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			if e.exp > nowN {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Interface guards
var _ store.HealthChecker = (*Store)(nil)
