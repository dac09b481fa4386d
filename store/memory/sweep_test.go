package memory

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// fill charges cost 1 to every key in ks at the store's current time, with
// the counter algorithm and the given window.
func fill(t *testing.T, s *Store, ks []store.Key, window time.Duration) {
	t.Helper()
	out := make([]algorithms.Decision, 1)
	for _, k := range ks {
		r := req(k, 10, 1)
		r.Policy.Window = window
		if err := s.Take(context.Background(), rs(r), out); err != nil || !out[0].Allowed {
			t.Fatalf("filling %s: %v %+v", k, err, out[0])
		}
	}
}

func TestSweepRemovesExpiredAndKeepsLive(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{Shards: 8, SweepInterval: caddy.Duration(time.Hour), Now: clk.Now})
	old, live := keys("old", 300), keys("live", 200)
	fill(t, s, old, time.Minute)
	clk.Set(30 * time.Second)
	fill(t, s, live, time.Minute)

	if got := s.Sweep(t0.Add(59 * time.Second)); got != 0 {
		t.Errorf("Sweep before any expiry removed %d", got)
	}
	if got := s.Sweep(t0.Add(time.Minute)); got != len(old) {
		t.Errorf("Sweep removed %d, want %d", got, len(old))
	}
	if got := s.Len(); got != len(live) {
		t.Errorf("Len = %d, want %d", got, len(live))
	}
	d, _ := s.Inspect(context.Background(), req(live[0], 10, 0))
	if d.Remaining != 9 {
		t.Errorf("a live key lost its counter: remaining %d", d.Remaining)
	}
}

func TestSweeperRunsInBackground(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{SweepInterval: caddy.Duration(time.Hour), Now: clk.Now})
	fill(t, s, keys("bg", 50), time.Second)
	clk.Advance(time.Second)
	// A shorter interval applied to the running store (as on reload) wakes
	// the sweeper.
	s.apply(Options{SweepInterval: caddy.Duration(time.Millisecond)}.withDefaults())
	deadline := time.Now().Add(10 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("background sweeper left %d expired keys", s.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMaxKeysBoundsTheStore(t *testing.T) {
	t.Parallel()
	const shards, maxKeys = 4, 10
	bound := (maxKeys + shards - 1) / shards * shards
	s := newTestStore(t, Options{Shards: shards, MaxKeys: maxKeys, Now: newClock().Now})
	ks := keys("bound", 1000)
	for i := range ks {
		fill(t, s, ks[i:i+1], time.Minute)
		if n := s.Len(); n > bound {
			t.Fatalf("after %d keys Len = %d, bound %d", i+1, n, bound)
		}
	}
	st := s.Stats()
	if st.Keys != s.Len() || st.Evictions != uint64(len(ks)-st.Keys) {
		t.Errorf("Stats = %+v, want %d evictions", st, len(ks)-st.Keys)
	}
}

func TestEvictionChoosesTheSoonestExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	// One shard of 8 keys: the sample of 8 is the whole shard.
	s := newTestStore(t, Options{Shards: 1, MaxKeys: 8, Now: clk.Now})
	ks := keys("soonest", 9)
	for i, k := range ks[:8] {
		clk.Set(time.Duration(i) * time.Second)
		// Key 3 was charged first in time but lives longest.
		w := time.Minute
		if i == 3 {
			w = time.Hour
		}
		fill(t, s, []store.Key{k}, w)
	}
	fill(t, s, ks[8:], time.Minute)
	for i, k := range ks {
		d, _ := s.Inspect(context.Background(), req(k, 10, 0))
		if kept := d.Remaining < 10; kept != (i != 0) {
			t.Errorf("key %d kept = %v", i, kept)
		}
	}
	if st := s.Stats(); st.Evictions != 1 || st.Keys != 8 {
		t.Errorf("Stats = %+v, want 8 keys and 1 eviction", st)
	}
}

func TestFullShardDropsExpiredBeforeEvicting(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{Shards: 1, MaxKeys: 4, Now: clk.Now})
	short, long := keys("short", 2), keys("long", 2)
	fill(t, s, short, time.Second)
	fill(t, s, long, time.Hour)
	clk.Advance(time.Second)
	fill(t, s, keys("new", 1), time.Minute)
	if st := s.Stats(); st.Evictions != 0 || st.Keys != 3 {
		t.Errorf("Stats = %+v, want 3 keys and no eviction", st)
	}
}

func TestLoweredMaxKeysTakesEffectAtSweep(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{Shards: 2, MaxKeys: 1000, Now: newClock().Now})
	fill(t, s, keys("lower", 100), time.Minute)
	s.apply(Options{MaxKeys: 10}.withDefaults())
	s.Sweep(t0)
	if st := s.Stats(); st.Keys > 10 || st.Evictions != uint64(100-st.Keys) {
		t.Errorf("Stats = %+v, want at most 10 keys", st)
	}
	// An existing key is updated in place even when its shard is full.
	out := make([]algorithms.Decision, 1)
	for k := range s.shards[0].m {
		if err := s.Take(context.Background(), rs(req(k, 10, 1)), out); err != nil || !out[0].Allowed {
			t.Fatalf("Take on a kept key: %v %+v", err, out[0])
		}
		break
	}
	if st := s.Stats(); st.Evictions != uint64(100-st.Keys) {
		t.Errorf("updating a kept key evicted: %+v", st)
	}
}

func TestUnboundedStoreNeverEvicts(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{Shards: 1, MaxKeys: -1, Now: newClock().Now})
	fill(t, s, keys("unbounded", 2000), time.Minute)
	s.Sweep(t0)
	if st := s.Stats(); st.Keys != 2000 || st.Evictions != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestSweepShrinksMapsAfterABurst(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{Shards: 1, Now: clk.Now})
	fill(t, s, keys("burst", 2*shrinkMin), time.Second)
	kept := keys("kept", 10)
	fill(t, s, kept, time.Hour)
	out := make([]algorithms.Decision, 1)
	if err := s.Take(context.Background(), rs(logReq(kept[0], 1)), out); err != nil {
		t.Fatal(err)
	}
	wide := algorithms.State{V: [3]int64{1, 2, 3}}
	s.shards[0].commit(kept[1], wide, time.Hour, clk.Now().UnixNano(), 0)
	before := s.shards[0].m
	clk.Advance(time.Second)
	if got := s.Sweep(clk.Now()); got != 2*shrinkMin {
		t.Errorf("Sweep removed %d, want %d", got, 2*shrinkMin)
	}
	sh := &s.shards[0]
	if len(sh.m) != len(kept) || sh.peak != len(kept) || len(sh.logs) != 1 {
		t.Fatalf("after shrink: %d keys, peak %d, %d logs", len(sh.m), sh.peak, len(sh.logs))
	}
	if reflect.ValueOf(before).UnsafePointer() == reflect.ValueOf(sh.m).UnsafePointer() {
		t.Error("map was not rebuilt")
	}
	if got := sh.load(kept[1], clk.Now().UnixNano()); got.V != wide.V {
		t.Errorf("third scalar lost in shrink: %v", got.V)
	}
	d, _ := s.Inspect(context.Background(), logReq(kept[0], 0))
	if d.Remaining != 1 {
		t.Errorf("log lost in shrink: remaining %d", d.Remaining)
	}
}

// TestSweepRebuildsMapsAfterChurn pins that a shard whose keys expire and
// come back does not grow at every sweep: once as many keys were deleted
// as it holds, its map is rebuilt without their tombstones, and a shard
// with few deletions is left alone.
func TestSweepRebuildsMapsAfterChurn(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTestStore(t, Options{Shards: 1, SweepInterval: caddy.Duration(time.Hour), Now: clk.Now})
	sh := &s.shards[0]
	ks := keys("churn", 500)
	for round := 0; round < 3; round++ {
		fill(t, s, ks, time.Second)
		before := sh.m
		clk.Advance(time.Second)
		if got := s.Sweep(clk.Now()); got != len(ks) {
			t.Fatalf("round %d: Sweep removed %d, want %d", round, got, len(ks))
		}
		if reflect.ValueOf(before).UnsafePointer() == reflect.ValueOf(sh.m).UnsafePointer() {
			t.Errorf("round %d: map was not rebuilt after all its keys expired", round)
		}
		if sh.deleted != 0 {
			t.Errorf("round %d: %d deletions counted after a rebuild", round, sh.deleted)
		}
	}

	fill(t, s, ks, time.Hour)
	few := keys("few", churnMin/2)
	fill(t, s, few, time.Second)
	before := sh.m
	clk.Advance(time.Second)
	if got := s.Sweep(clk.Now()); got != len(few) {
		t.Fatalf("Sweep removed %d, want %d", got, len(few))
	}
	if reflect.ValueOf(before).UnsafePointer() != reflect.ValueOf(sh.m).UnsafePointer() {
		t.Error("map rebuilt after a few deletions")
	}
}
