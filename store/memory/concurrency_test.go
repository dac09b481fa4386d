package memory

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

const (
	workers  = 64
	attempts = 200
)

// hammer runs call from workers goroutines, attempts times each, and fails
// the test if they have not all returned within a deadline (a deadlock).
func hammer(t *testing.T, call func(worker int, rng *rand.Rand)) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range attempts {
				call(w, rng)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("concurrent Takes did not finish: deadlock?")
	}
}

func TestConcurrentOneKeyAdmitsExactlyTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	s := newTestStore(t, Options{Now: newClock().Now})
	var admitted atomic.Int64
	hammer(t, func(int, *rand.Rand) {
		reqs := rs(req(kA, limit, 1))
		out := make([]algorithms.Decision, 1)
		if err := s.Take(context.Background(), reqs, out); err != nil {
			t.Error(err)
			return
		}
		if out[0].Allowed {
			admitted.Add(1)
		}
	})
	if got := admitted.Load(); got != limit {
		t.Errorf("admitted %d, want exactly %d", got, limit)
	}
}

func TestConcurrentAllKeysInRandomOrderAdmitExactlyTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 500
	// Few shards, so that calls share shards in every combination.
	s := newTestStore(t, Options{Shards: 4, Now: newClock().Now})
	ks := keys("all", 6)
	var admitted atomic.Int64
	hammer(t, func(_ int, rng *rand.Rand) {
		reqs := make([]store.Request, len(ks))
		for i, j := range rng.Perm(len(ks)) {
			reqs[i] = req(ks[j], limit, 1)
		}
		out := make([]algorithms.Decision, len(reqs))
		if err := s.Take(context.Background(), reqs, out); err != nil {
			t.Error(err)
			return
		}
		if !store.Blocked(reqs, out) {
			admitted.Add(1)
		}
	})
	if got := admitted.Load(); got != limit {
		t.Errorf("admitted %d calls, want exactly %d", got, limit)
	}
	for _, k := range ks {
		d, _ := s.Inspect(context.Background(), req(k, limit, 0))
		if d.Remaining != 0 {
			t.Errorf("key %s: remaining %d, want 0", k, d.Remaining)
		}
	}
}

// TestConcurrentRandomCallsKeepCountersConsistent sends calls with random
// subsets of keys (repeats included), in random order, some of them shadow
// or peek. No key may admit more than the limit, and each key's counter
// must equal exactly what the committed decisions charged it.
func TestConcurrentRandomCallsKeepCountersConsistent(t *testing.T) {
	t.Parallel()
	const limit = 300
	s := newTestStore(t, Options{Shards: 8, Now: newClock().Now})
	ks := keys("random", 12)
	charged := make([]atomic.Int64, len(ks))
	hammer(t, func(_ int, rng *rand.Rand) {
		n := 1 + rng.IntN(6)
		idx := make([]int, n)
		reqs := make([]store.Request, n)
		for i := range reqs {
			idx[i] = rng.IntN(len(ks))
			reqs[i] = req(ks[idx[i]], limit, 1+rng.Int64N(3))
			reqs[i].Shadow = rng.IntN(8) == 0
			reqs[i].Peek = rng.IntN(8) == 0
		}
		out := make([]algorithms.Decision, n)
		if err := s.Take(context.Background(), reqs, out); err != nil {
			t.Error(err)
			return
		}
		if store.Blocked(reqs, out) {
			return
		}
		for i, r := range reqs {
			if out[i].Allowed && !r.Peek {
				charged[idx[i]].Add(r.Cost)
			}
		}
	})
	for i, k := range ks {
		got := charged[i].Load()
		if got > limit {
			t.Errorf("key %d: admitted %d units, limit %d", i, got, limit)
		}
		d, _ := s.Inspect(context.Background(), req(k, limit, 0))
		if used := limit - d.Remaining; used != got {
			t.Errorf("key %d: counter says %d units used, decisions charged %d", i, used, got)
		}
	}
}

// TestConcurrentWithSweeperAndInspect runs Takes against Inspect, Reset,
// Stats and Sweep calls, for the race detector.
func TestConcurrentWithSweeperAndInspect(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{Shards: 4, MaxKeys: 16, SweepInterval: caddy.Duration(time.Millisecond), Now: clk.Now})
	ks := keys("mixed", 64)
	hammer(t, func(w int, rng *rand.Rand) {
		k := ks[rng.IntN(len(ks))]
		ctx := context.Background()
		switch w % 4 {
		case 0:
			_, _ = s.Inspect(ctx, req(k, 5, 0))
		case 1:
			_ = s.Reset(ctx, "z", k)
		case 2:
			if rng.IntN(20) == 0 {
				clk.Advance(time.Second)
				s.Sweep(clk.Now())
				_ = s.Stats()
			}
		}
		_ = s.Take(ctx, rs(req(k, 5, 1), logReq(ks[rng.IntN(len(ks))], 1)), make([]algorithms.Decision, 2))
	})
	if n := s.Len(); n > 16 {
		t.Errorf("Len = %d, want at most 16", n)
	}
}
