package redis

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"pgregory.net/rapid"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
	"github.com/ratewarden/ratewarden/store/memory"
)

// key returns a hashed key for name, the way the handler makes them.
func key(name string) store.Key {
	sum := sha256.Sum256([]byte(name))
	return store.Key(sum[:16])
}

func req(alg algorithms.Algorithm, zone string, k store.Key, limit int64, window time.Duration, cost int64) store.Request {
	return store.Request{
		Zone:      zone,
		Key:       k,
		Algorithm: alg,
		Policy:    algorithms.Policy{Limit: limit, Window: window},
		Cost:      cost,
	}
}

// take calls s.Take and fails the test on an error.
func take(tb testing.TB, s store.Store, reqs ...store.Request) []algorithms.Decision {
	tb.Helper()
	out := make([]algorithms.Decision, len(reqs))
	if err := s.Take(context.Background(), reqs, out); err != nil {
		tb.Fatalf("Take: %v", err)
	}
	return out
}

func TestTakeAdmitsExactlyTheLimitConcurrently(t *testing.T) {
	t.Parallel()
	const limit, workers, attempts = 300, 24, 500
	c := sharedServer(t).client(t)
	for _, name := range allAlgorithms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			alg := lookup(t, name)
			// A fixed time: nothing refills or leaves a window, so exactly
			// limit calls fit on every key.
			s := simulated(testStore(t, c), func() time.Time { return t0 })
			keys := []store.Key{key(name + "/a"), key(name + "/b"), key(name + "/c")}
			var admitted, tried atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for tried.Add(1) <= attempts {
						// Each call takes all three keys, in a different order.
						reqs := make([]store.Request, len(keys))
						for i := range keys {
							reqs[i] = req(alg, "z", keys[(i+w)%len(keys)], limit, time.Minute, 1)
						}
						out := make([]algorithms.Decision, len(reqs))
						if err := s.Take(context.Background(), reqs, out); err != nil {
							t.Error(err)
							return
						}
						if !store.Blocked(reqs, out) {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != limit {
				t.Errorf("admitted %d calls, want exactly %d", got, limit)
			}
		})
	}
}

func TestTakeWithTheServerClockAdmitsExactlyTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 100
	c := sharedServer(t).client(t)
	// A one-hour window refills one unit every 36 seconds at the most, far
	// longer than the test runs.
	for _, name := range []string{"gcra", "token_bucket", "sliding_log", "concurrency"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			alg, s := lookup(t, name), testStore(t, c)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for range 2 * limit / 16 {
						out := take(t, s, req(alg, "z", key(name), limit, time.Hour, 1))
						if out[0].Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != limit {
				t.Errorf("admitted %d, want exactly %d", got, limit)
			}
		})
	}
}

func TestTakeIsAllOrNothingAcrossZones(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := testStore(t, c)
	gcra, slog := lookup(t, "gcra"), lookup(t, "sliding_log")
	wide := req(gcra, "wide", key("k"), 10, time.Hour, 1)
	narrow := req(slog, "narrow", key("k"), 1, time.Hour, 1)

	if out := take(t, s, wide, narrow); !out[0].Allowed || !out[1].Allowed {
		t.Fatalf("first call: %+v", out)
	}
	out := take(t, s, wide, narrow)
	if !out[0].Allowed || out[1].Allowed || out[0].Remaining != 8 {
		t.Fatalf("second call: %+v, want wide allowed (remaining 8 as if charged) and narrow denied", out)
	}
	if d, err := s.Inspect(context.Background(), wide); err != nil || d.Remaining != 9 {
		t.Errorf("wide after a blocked call: %+v, %v; want remaining 9 (not charged)", d, err)
	}

	// A shadow zone's denial blocks nothing; a peek zone is not charged.
	narrow.Shadow = true
	peek := req(slog, "peek", key("k"), 5, time.Hour, 2)
	peek.Peek = true
	if out := take(t, s, wide, narrow, peek); !out[0].Allowed || out[1].Allowed || !out[2].Allowed {
		t.Fatalf("shadow call: %+v", out)
	}
	if d, _ := s.Inspect(context.Background(), wide); d.Remaining != 8 {
		t.Errorf("wide remaining %d after the shadow call, want 8", d.Remaining)
	}
	if d, _ := s.Inspect(context.Background(), peek); d.Remaining != 5 {
		t.Errorf("peek zone remaining %d, want 5 (never charged)", d.Remaining)
	}
}

// checkTTL reports a key's PTTL (ttl, err) that is not the TTL a charge
// with resetAfter sets: at most resetAfter (+1ms of rounding), and never
// none (-1). A key whose window ended within 100ms of the charge may
// expire before the check reads it (-2), or be read in its last
// millisecond (0): both had their TTL.
func checkTTL(ttl time.Duration, err error, resetAfter time.Duration) error {
	if err == nil && ttl == -2*time.Nanosecond && resetAfter < 100*time.Millisecond {
		return nil
	}
	if err != nil || ttl < 0 || ttl > resetAfter+time.Millisecond {
		return fmt.Errorf("PTTL %v (%v) after a charge with ResetAfter %v", ttl, err, resetAfter)
	}
	return nil
}

func TestEveryWrittenKeyHasATTL(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	ctx := context.Background()
	for _, name := range allAlgorithms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, alg := testStore(t, c), lookup(t, name)
			r := req(alg, "ttl", key(name), 5, 10*time.Second, 2)
			redisKey := keyName(s.prefix, "ttl", r.Key, mustID(t, alg))
			d := take(t, s, r)[0]
			ttl, err := c.PTTL(ctx, redisKey).Result()
			if err := checkTTL(ttl, err, d.ResetAfter); err != nil {
				t.Error(err)
			}
			// Given back to idle, the key is gone.
			take(t, s, req(alg, "ttl", key(name), 5, 10*time.Second, -2))
			if n, _ := c.Exists(ctx, redisKey).Result(); n != 0 {
				t.Errorf("key still exists after a give-back to idle")
			}
			// The concurrency lease without a window is the default lease.
			if name == "concurrency" {
				take(t, s, req(alg, "ttl", key(name), 5, 0, 1))
				ttl, _ := c.PTTL(ctx, redisKey).Result()
				if ttl <= algorithms.DefaultLease-time.Minute || ttl > algorithms.DefaultLease {
					t.Errorf("PTTL %v after an acquire with the default lease", ttl)
				}
			}
		})
	}
}

func mustID(tb testing.TB, alg algorithms.Algorithm) algID {
	tb.Helper()
	id, err := idOf(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func TestTakeRecoversFromAScriptFlush(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := srv.client(t)
	s, alg := testStore(t, c), lookup(t, "fixed_window")
	r := req(alg, "z", key("flush"), 3, time.Hour, 1)
	take(t, s, r)
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if out := take(t, s, r); out[0].Remaining != 1 {
		t.Errorf("after SCRIPT FLUSH: %+v, want remaining 1", out[0])
	}
	// The fallback loaded the script again, so EVALSHA works from now on.
	if ok, err := c.ScriptExists(context.Background(), takeScript.Hash()).Result(); err != nil || !ok[0] {
		t.Errorf("script not cached after the fallback: %v %v", ok, err)
	}
}

func TestKeyPrefixSeparatesDeployments(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := srv.client(t)
	alg := lookup(t, "gcra")
	shop := New(c, Options{KeyPrefix: "shop:"})
	blog := New(c, Options{KeyPrefix: "blog:"})
	r := req(alg, "api", key("client"), 2, time.Hour, 2)
	take(t, shop, r)
	if out := take(t, blog, r); !out[0].Allowed {
		t.Errorf("blog shares shop's counter: %+v", out[0])
	}
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	hex := r.Key.String()
	want := []string{"blog:{api:" + hex + "}:gcra", "shop:{api:" + hex + "}:gcra"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if got := hashTag(want[0]); got != "api:"+hex {
		t.Errorf("hash tag %q", got)
	}
}

func TestResetForgetsEveryAlgorithmsCounter(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := testStore(t, c)
	ctx := context.Background()
	for _, name := range allAlgorithms {
		take(t, s, req(lookup(t, name), "z", key("reset"), 3, time.Hour, 3))
	}
	if err := s.Reset(ctx, "z", key("reset")); err != nil {
		t.Fatal(err)
	}
	for _, name := range allAlgorithms {
		d, err := s.Inspect(ctx, req(lookup(t, name), "z", key("reset"), 3, time.Hour, 1))
		if err != nil || d.Remaining != 3 {
			t.Errorf("%s after Reset: %+v %v, want remaining 3", name, d, err)
		}
	}
}

// counterSpec is one counter of a random call sequence.
type counterSpec struct {
	zone   string
	key    store.Key
	alg    algorithms.Algorithm
	policy algorithms.Policy
}

// checkAgainstMemory drives the memory store and s through the same random
// multi-zone calls on one simulated clock, and fails on the first decision
// that differs. The memory store is the reference for the whole Take
// contract: all-or-nothing, Shadow, Peek, give-backs and the same key twice
// in one call.
func checkAgainstMemory(t *testing.T, s *Store, names []string) {
	rapid.Check(t, func(rt *rapid.T) {
		var now time.Time
		clock := func() time.Time { return now }
		now = t0.Add(time.Duration(rapid.Int64Range(0, 1e12).Draw(rt, "start_ns")))
		mem := memory.New(memory.Options{Shards: 4, Now: clock})
		defer mem.Close()
		simulated(s, clock)
		run := keySeq.Add(1)

		counters := make([]counterSpec, rapid.IntRange(1, 4).Draw(rt, "counters"))
		for i := range counters {
			name := rapid.SampledFrom(names).Draw(rt, "algorithm")
			counters[i] = counterSpec{
				zone:   fmt.Sprintf("z%d", i),
				key:    key(fmt.Sprintf("%d/%d", run, i)),
				alg:    lookup(t, name),
				policy: drawPolicy(rt, "policy"),
			}
		}
		for call := range rapid.IntRange(1, 30).Draw(rt, "calls") {
			now = now.Add(time.Duration(rapid.Int64Range(0, 3e9).Draw(rt, "gap_ns")))
			reqs := make([]store.Request, rapid.IntRange(1, 4).Draw(rt, "requests"))
			for i := range reqs {
				c := counters[rapid.IntRange(0, len(counters)-1).Draw(rt, "counter")]
				reqs[i] = store.Request{
					Zone: c.zone, Key: c.key, Algorithm: c.alg, Policy: c.policy,
					Cost:   drawCost(rt, c.policy),
					Shadow: rapid.IntRange(0, 5).Draw(rt, "shadow") == 0,
					Peek:   rapid.IntRange(0, 5).Draw(rt, "peek") == 0,
				}
			}
			want := take(t, mem, reqs...)
			got := take(t, s, reqs...)
			rt.Logf("call %d at %dns: %s\n redis  %+v\n memory %+v", call, now.UnixNano(), describe(reqs), got, want)
			if !slices.Equal(got, want) {
				rt.Fatalf("call %d: the decisions differ (see the log above)", call)
			}
		}
	})
}

func describe(reqs []store.Request) string {
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = fmt.Sprintf("%s/%s cost %d shadow %v peek %v %+v", r.Zone, r.Algorithm.Name(), r.Cost, r.Shadow, r.Peek, r.Policy)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func TestTakeMatchesTheMemoryStore(t *testing.T) {
	t.Parallel()
	checkAgainstMemory(t, testStore(t, sharedServer(t).client(t)), allAlgorithms)
}

// TestSplitCallsOnARingMatchTheMemoryStore runs multi-zone calls over a
// two-shard Ring, where they are split per hash tag and refunded when
// blocked. Concurrency is left out: a refunded acquire renews its lease, so
// its ResetAfter differs from a call that never charged.
func TestSplitCallsOnARingMatchTheMemoryStore(t *testing.T) {
	t.Parallel()
	a, b := startServer(t), startServer(t)
	ring := goredis.NewRing(&goredis.RingOptions{
		Addrs:                 map[string]string{"a": a.Addr, "b": b.Addr},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = ring.Close() })
	s := testStore(t, ring)
	if !s.split {
		t.Fatal("a store on a Ring does not split calls")
	}
	checkAgainstMemory(t, s, []string{"gcra", "token_bucket", "sliding_log", "fixed_window", "sliding_window"})

	// Both shards hold counters.
	for _, srv := range []*server{a, b} {
		if n, err := srv.client(t).DBSize(context.Background()).Result(); err != nil || n == 0 {
			t.Errorf("shard %s holds %d keys (%v)", srv.Addr, n, err)
		}
	}
}

// TestRefundGivesBackTheCharges pins the refund a split call makes when a
// group is blocked by a concurrent call after its dry run: every allowed,
// charged request of the groups charged before is given back.
func TestRefundGivesBackTheCharges(t *testing.T) {
	t.Parallel()
	s := testStore(t, sharedServer(t).client(t))
	ctx := context.Background()
	gcra, slog := lookup(t, "gcra"), lookup(t, "sliding_log")
	peek := req(gcra, "a", key("r"), 10, time.Hour, 4)
	peek.Peek = true
	reqs := []store.Request{
		req(gcra, "a", key("r"), 10, time.Hour, 3),
		req(slog, "b", key("r"), 10, time.Hour, 2),
		peek,
	}
	keys, ids, err := s.prepare(reqs)
	if err != nil {
		t.Fatal(err)
	}
	sub := pick(reqs, keys, ids, []int{0, 1, 2})
	if err := s.eval(ctx, time.Now().Add(s.timeout), nil, sub.reqs, sub.keys, sub.ids, sub.out, false); err != nil {
		t.Fatal(err)
	}
	if err := s.refund(ctx, []subset{sub}); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs[:2] {
		if d, err := s.Inspect(ctx, r); err != nil || d.Remaining != 10 {
			t.Errorf("%s after the refund: %+v %v, want remaining 10", r.Zone, d, err)
		}
	}
}
