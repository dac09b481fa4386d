package redis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

func TestRingAdmitsExactlyTheLimitPerKeyAcrossShards(t *testing.T) {
	t.Parallel()
	const limit, keys, workers = 50, 8, 16
	a, b := startServer(t), startServer(t)
	c, err := NewClient(Options{Shards: map[string]string{"a": a.Addr, "b": b.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	for _, name := range []string{"gcra", "sliding_log", "fixed_window"} {
		alg := lookup(t, name)
		s := simulated(testStore(t, c), func() time.Time { return t0 })
		var admitted [keys]atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range 2 * limit * keys / workers {
					k := (i + w) % keys
					d, err := takeOne(context.Background(), s, req(alg, "z", key(fmt.Sprint(name, k)), limit, time.Minute, 1))
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted[k].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for k := range admitted {
			if got := admitted[k].Load(); got != limit {
				t.Errorf("%s, key %d: admitted %d, want exactly %d", name, k, got, limit)
			}
		}
	}

	// A call over zones on different shards is split per shard, and stays
	// exact: every call takes three keys, in different orders.
	alg := lookup(t, "gcra")
	s := simulated(testStore(t, c), func() time.Time { return t0 })
	zones := []string{"x", "y", "w"}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range 2 * limit / workers * 2 {
				reqs := make([]store.Request, len(zones))
				for i := range zones {
					reqs[i] = req(alg, zones[(i+w)%len(zones)], key("multi"), limit, time.Minute, 1)
				}
				out := make([]algorithms.Decision, len(reqs))
				if err := s.Take(context.Background(), reqs, out); err != nil {
					t.Error(err)
					return
				}
				if !store.Blocked(reqs, out) {
					calls.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := calls.Load(); got != limit {
		t.Errorf("multi-zone calls: admitted %d, want exactly %d", got, limit)
	}

	// The ring spread the keys over both shards.
	for _, srv := range []*server{a, b} {
		n, err := srv.client(t).DBSize(context.Background()).Result()
		if err != nil || n == 0 {
			t.Errorf("shard %s holds %d keys (%v): the ring did not use it", srv.Addr, n, err)
		}
	}
}
