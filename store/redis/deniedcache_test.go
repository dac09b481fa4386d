package redis

import (
	"context"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

func TestDeniedCacheAnswersWithoutRedisUntilTheRetryTime(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	for _, pipelined := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "pipelined"}[pipelined]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := pipelinedStore(t, c, Throughput{DenyCache: 100, DisablePipelining: !pipelined})
			// A short sliding log: the denial's retry time is when the
			// first call leaves the window.
			r := req(lookup(t, "sliding_log"), "z", key("denied"), 2, 300*time.Millisecond, 1)
			take(t, s, r)
			take(t, s, r)
			trips := value(t, s.g.m.roundTrips)
			denied := take(t, s, r)[0]
			if denied.Allowed || denied.RetryAfter <= 0 {
				t.Fatalf("third call: %+v, want denied with a retry time", denied)
			}
			deniedAt := time.Now()
			if got := value(t, s.g.m.roundTrips); got != trips+1 {
				t.Fatalf("the denial took %v round trips, want 1", got-trips)
			}
			for range 5 {
				d := take(t, s, r)[0]
				if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > denied.RetryAfter || d.Limit != 2 {
					t.Errorf("cached answer %+v, want denied within %v", d, denied.RetryAfter)
				}
			}
			if got := value(t, s.g.m.roundTrips); got != trips+1 {
				t.Errorf("cached denials took %v round trips, want none", got-trips-1)
			}
			if got := value(t, s.g.m.cacheHits); got != 5 {
				t.Errorf("%v cache hits, want 5", got)
			}

			// At the retry time the key is Redis's again, and admitted.
			time.Sleep(time.Until(deniedAt.Add(denied.RetryAfter)) + 20*time.Millisecond)
			if d := take(t, s, r)[0]; !d.Allowed {
				t.Errorf("after the retry time: %+v, want allowed", d)
			}
			if got := value(t, s.g.m.roundTrips); got != trips+2 {
				t.Errorf("after the retry time %v round trips, want 2", got-trips)
			}
		})
	}
}

func TestDeniedCacheAnswersOnlyWhatRedisWould(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	fixed := lookup(t, "fixed_window")
	for _, tc := range []struct {
		name string
		// denyCost is charged until the key is denied at that cost; then
		// next is asked.
		denyCost int64
		next     func(r store.Request) store.Request
		cached   bool
	}{
		{"the same request", 1, func(r store.Request) store.Request { return r }, true},
		{"a higher cost", 2, func(r store.Request) store.Request { r.Cost = 3; return r }, true},
		{"a lower cost asks redis", 2, func(r store.Request) store.Request { r.Cost = 1; return r }, false},
		{"a peek asks redis", 1, func(r store.Request) store.Request { r.Peek = true; return r }, false},
		{"a shadow zone asks redis", 1, func(r store.Request) store.Request { r.Shadow = true; return r }, false},
		{"a release asks redis", 1, func(r store.Request) store.Request { r.Cost = -1; return r }, false},
		{"a changed limit asks redis", 1, func(r store.Request) store.Request { r.Policy.Limit = 10; return r }, false},
		{"another key asks redis", 1, func(r store.Request) store.Request { r.Key = key("other"); return r }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := pipelinedStore(t, c, Throughput{DenyCache: 100})
			r := req(fixed, "z", key("k"), 3, time.Hour, tc.denyCost)
			for take(t, s, r)[0].Allowed {
			}
			hits := value(t, s.g.m.cacheHits)
			take(t, s, tc.next(r))
			if got := value(t, s.g.m.cacheHits) - hits; (got == 1) != tc.cached {
				t.Errorf("%v cache hits, want cached %v", got, tc.cached)
			}
		})
	}
}

func TestDeniedCacheNeverHoldsConcurrencySlots(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := pipelinedStore(t, c, Throughput{DenyCache: 100})
	r := req(lookup(t, "concurrency"), "z", key("slots"), 1, time.Minute, 1)
	take(t, s, r)
	if take(t, s, r)[0].Allowed {
		t.Fatal("second acquire of one slot allowed")
	}
	release := r
	release.Cost, release.Shadow = -1, true
	take(t, s, release)
	if d := take(t, s, r)[0]; !d.Allowed {
		t.Errorf("acquire after the release: %+v, want allowed", d)
	}
	if got := value(t, s.g.m.cacheHits); got != 0 {
		t.Errorf("%v cache hits for a concurrency zone", got)
	}
}

func TestDeniedCacheRefusesAMultiZoneCallAndChargesNothing(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := pipelinedStore(t, c, Throughput{DenyCache: 100})
	fixed, gcra := lookup(t, "fixed_window"), lookup(t, "gcra")
	a := req(fixed, "a", key("client"), 1, time.Hour, 1)
	b := req(gcra, "b", key("client"), 5, time.Hour, 1)
	take(t, s, a)
	if take(t, s, a)[0].Allowed {
		t.Fatal("zone a allowed twice with limit 1")
	}
	trips := value(t, s.g.m.roundTrips)
	out := take(t, s, b, a)
	if out[1].Allowed || !out[0].Allowed || out[0].Limit != 5 {
		t.Errorf("cached multi-zone answer %+v, want a denied and b not charged", out)
	}
	if !store.Blocked([]store.Request{b, a}, out) {
		t.Error("the cached answer does not block")
	}
	if got := value(t, s.g.m.roundTrips); got != trips {
		t.Errorf("the cached answer took %v round trips", got-trips)
	}
	d, err := s.Inspect(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Remaining != 5 {
		t.Errorf("zone b after a refused call: %+v, want nothing charged", d)
	}
}

func TestResetClearsTheDeniedCache(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	s := pipelinedStore(t, c, Throughput{DenyCache: 100})
	r := req(lookup(t, "fixed_window"), "z", key("reset"), 1, time.Hour, 1)
	take(t, s, r)
	take(t, s, r)
	if err := s.Reset(context.Background(), "z", r.Key); err != nil {
		t.Fatal(err)
	}
	if d := take(t, s, r)[0]; !d.Allowed {
		t.Errorf("after Reset: %+v, want allowed", d)
	}
}

func TestDeniedCacheIsBounded(t *testing.T) {
	t.Parallel()
	const size = 64
	c := newDeniedCache(size)
	now := time.Unix(1_000_000, 0)
	alg := algorithms.FixedWindow{}
	for i := range 10 * size {
		var k store.Key
		k[0], k[1] = byte(i), byte(i>>8)
		r := req(alg, "z", k, 1, time.Hour, 1)
		c.remember([]store.Request{r}, []algorithms.Decision{{RetryAfter: time.Minute, ResetAfter: time.Minute}}, now)
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n > size {
		t.Errorf("%d entries in a cache of %d", n, size)
	}
	// Expired entries go first.
	sh := &c.shards[0]
	var fresh store.Key
	fresh[1] = 0xff
	sh.put(deniedKey{zone: "z", key: fresh}, deniedEntry{until: now.Add(2 * time.Hour)}, now.Add(time.Hour))
	if _, ok := sh.m[deniedKey{zone: "z", key: fresh}]; !ok || len(sh.m) > sh.max {
		t.Errorf("put into a full shard: %d entries of %d", len(sh.m), sh.max)
	}
}
