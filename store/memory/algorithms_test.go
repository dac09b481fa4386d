package memory

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// realAlgorithms are the algorithms Ratewarden ships, run through the store
// by name as the handler does.
var realAlgorithms = []string{"gcra", "token_bucket", "sliding_log", "fixed_window", "sliding_window", "concurrency"}

func lookup(tb testing.TB, name string) algorithms.Algorithm {
	tb.Helper()
	alg, err := algorithms.Lookup(name)
	if err != nil {
		tb.Skipf("algorithm %s not available: %v", name, err)
	}
	return alg
}

func realReq(alg algorithms.Algorithm, k store.Key, limit, cost int64) store.Request {
	return store.Request{
		Zone:      alg.Name(),
		Key:       k,
		Algorithm: alg,
		Policy:    algorithms.Policy{Limit: limit, Window: time.Minute},
		Cost:      cost,
	}
}

func TestRealAlgorithmsThroughTheStore(t *testing.T) {
	t.Parallel()
	gcra, slog := lookup(t, "gcra"), lookup(t, "sliding_log")
	ctx := context.Background()
	clk := newClock()
	s := newTestStore(t, Options{Shards: 4, Now: clk.Now})
	out := make([]algorithms.Decision, 2)
	both := rs(realReq(gcra, kA, 10, 1), realReq(slog, kB, 5, 1))

	for i := range 5 {
		if err := s.Take(ctx, both, out); err != nil || store.Blocked(both, out) {
			t.Fatalf("call %d: %v %+v", i, err, out)
		}
	}
	// sliding_log is full: the call is denied and gcra is not charged.
	if err := s.Take(ctx, both, out); err != nil || !out[0].Allowed || out[1].Allowed {
		t.Fatalf("call over the sliding_log limit: %v %+v", err, out)
	}
	if d, _ := s.Inspect(ctx, both[0]); d.Remaining != 5 {
		t.Errorf("gcra remaining %d after a blocked call, want 5", d.Remaining)
	}
	if d, _ := s.Inspect(ctx, both[1]); d.Remaining != 0 || d.Allowed != true {
		t.Errorf("sliding_log inspect = %+v, want remaining 0", d)
	}

	// gcra refills one unit per Window/Limit; sliding_log only after Window.
	clk.Advance(6 * time.Second)
	if d, _ := s.Inspect(ctx, both[0]); d.Remaining != 6 {
		t.Errorf("gcra remaining %d after one interval, want 6", d.Remaining)
	}
	clk.Set(time.Minute)
	if err := s.Take(ctx, both, out); err != nil || store.Blocked(both, out) || out[1].Remaining != 4 {
		t.Fatalf("after the window: %v %+v", err, out)
	}

	// Every state these algorithms leave expires, so the sweep empties the
	// store once they are idle.
	if got := s.Sweep(t0.Add(3 * time.Minute)); got != 2 || s.Len() != 0 {
		t.Errorf("Sweep removed %d, Len %d", got, s.Len())
	}
}

func TestRealAlgorithmsAdmitExactlyTheLimitConcurrently(t *testing.T) {
	t.Parallel()
	const limit = 700
	for _, name := range realAlgorithms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			alg := lookup(t, name)
			s := newTestStore(t, Options{Shards: 2, Now: newClock().Now})
			ks := keys(name, 3)
			var admitted atomic.Int64
			hammer(t, func(_ int, rng *rand.Rand) {
				reqs := make([]store.Request, len(ks))
				for i, j := range rng.Perm(len(ks)) {
					reqs[i] = realReq(alg, ks[j], limit, 1)
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
		})
	}
}

func TestTakeOneRequestDoesNotAllocate(t *testing.T) {
	algs := []algorithms.Algorithm{counter{}}
	if alg, err := algorithms.Lookup("gcra"); err == nil {
		algs = append(algs, alg)
	}
	for _, alg := range algs {
		s := newTestStore(t, Options{})
		reqs := rs(realReq(alg, kA, 1<<40, 1))
		reqs[0].Policy.Window = time.Hour
		out := make([]algorithms.Decision, 1)
		ctx := context.Background()
		_ = s.Take(ctx, reqs, out)
		allocs := testing.AllocsPerRun(1000, func() { _ = s.Take(ctx, reqs, out) })
		if allocs != 0 || !out[0].Allowed {
			t.Errorf("%s: Take of an existing key: %v allocs/op, allowed %v", alg.Name(), allocs, out[0].Allowed)
		}
	}
}
