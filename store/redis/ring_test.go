package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// startRing starts two servers and returns them with a Ring client of the
// two as shards "a" and "b", closed when the test ends.
func startRing(t *testing.T) (a, b *server, c goredis.UniversalClient) {
	t.Helper()
	a, b = startServer(t), startServer(t)
	c, err := NewClient(Options{Shards: map[string]string{"a": a.Addr, "b": b.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return a, b, c
}

func TestRingAdmitsExactlyTheLimitPerKeyAcrossShards(t *testing.T) {
	t.Parallel()
	const limit, keys, workers = 50, 8, 16
	a, b, c := startRing(t)

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

// A Ring with a dead shard: keys on the live shard are decided by Redis
// throughout (each shard has its own breaker), keys on the dead one go to
// the policy until the ring's heartbeat hashes them to the live shard, and
// the store counts as up again once the dead shard's breaker is dropped.
func TestRingShardDeathTouchesOnlyItsKeys(t *testing.T) {
	t.Parallel()
	a, b, c := startRing(t)
	const cooldown = 300 * time.Millisecond
	s := New(c, Options{
		KeyPrefix: fmt.Sprintf("t%d:ring-death:", storeSeq.Add(1)),
		Timeout:   caddy.Duration(200 * time.Millisecond), OnFailure: OnFailureDeny,
		BreakerCooldown: caddy.Duration(cooldown),
	})
	t.Cleanup(s.Close)
	alg := lookup(t, "gcra")
	ring := c.(*goredis.Ring)
	var onLive, onDead []store.Key
	for i := 0; len(onLive) < 8 || len(onDead) < 8; i++ {
		k := key(fmt.Sprint("ring-death/", i))
		shard, err := ring.GetShardClientForKey(keyName(s.prefix, "z", k, algGCRA))
		if err != nil {
			t.Fatal(err)
		}
		if shard.Options().Addr == a.Addr {
			onLive = append(onLive, k)
		} else {
			onDead = append(onDead, k)
		}
	}
	decide := func(k store.Key) error {
		_, err := takeOne(context.Background(), s, req(alg, "z", k, 1_000_000, time.Hour, 1))
		return err
	}
	for _, k := range append(onLive, onDead...) {
		if err := decide(k); err != nil {
			t.Fatalf("before the shard died: %v", err)
		}
	}

	b.stop()
	died := time.Now()
	var back time.Time // when a dead shard's key was decided by Redis again
	for time.Since(died) < 10*time.Second {
		// The dead shard's keys first, several failures in a row: enough
		// to open a breaker shared by the whole store.
		for _, k := range onDead {
			if decide(k) == nil && back.IsZero() {
				back = time.Now()
			}
		}
		for _, k := range onLive {
			if err := decide(k); err != nil {
				t.Fatalf("a key on the live shard went to the policy %v after the other shard died: %v", time.Since(died), err)
			}
		}
		if !back.IsZero() && s.g.stateName() == "closed" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if back.IsZero() {
		t.Fatal("the dead shard's keys never came back to Redis")
	}
	if st := s.g.stateName(); st != "closed" {
		t.Fatalf("store state %s %v after the shard died", st, time.Since(died))
	}
	t.Logf("dead shard's keys decided by Redis again %v after it died; store up again %v after",
		back.Sub(died).Round(time.Millisecond), time.Since(died).Round(time.Millisecond))
}

// A call whose zones live on two shards runs each shard's part under that
// shard's breaker. With one shard hung, such calls time out until the hung
// shard's breaker opens, then fall to the policy at once; the live shard's
// breaker never counts them, so its own keys keep being decided by Redis.
// (With the whole call guarded by its first zone's shard, the hung shard's
// timeouts opened the live shard's breaker and sent its keys to the policy.)
func TestSplitCallsTripOnlyTheHungShardsBreaker(t *testing.T) {
	t.Parallel()
	a, b, c := startRing(t)
	const timeout, cooldown, failures = 100 * time.Millisecond, 10 * time.Second, 3
	s := New(c, Options{
		KeyPrefix: fmt.Sprintf("t%d:split-breakers:", storeSeq.Add(1)),
		Timeout:   caddy.Duration(timeout), OnFailure: OnFailureDeny,
		BreakerFailures: failures, BreakerCooldown: caddy.Duration(cooldown),
	})
	t.Cleanup(s.Close)
	alg := lookup(t, "gcra")
	ring := c.(*goredis.Ring)
	// find returns a key of zone whose counter lives on srv.
	find := func(zone string, srv *server) store.Key {
		for i := 0; ; i++ {
			k := key(fmt.Sprint("split-breakers/", zone, i))
			shard, err := ring.GetShardClientForKey(keyName(s.prefix, zone, k, algGCRA))
			if err != nil {
				t.Fatal(err)
			}
			if shard.Options().Addr == srv.Addr {
				return k
			}
		}
	}
	live, hung := find("x", a), find("y", b)
	split := []store.Request{req(alg, "x", live, 1_000_000, time.Hour, 1), req(alg, "y", hung, 1_000_000, time.Hour, 1)}
	single := req(alg, "x", live, 1_000_000, time.Hour, 1)
	takeSplit := func() (time.Duration, error) {
		start := time.Now()
		err := s.Take(context.Background(), split, make([]algorithms.Decision, len(split)))
		return time.Since(start), err
	}
	if _, err := takeSplit(); err != nil {
		t.Fatalf("before the shard hung: %v", err)
	}
	liveBreaker, hungBreaker := s.nodeBreaker(a.Addr), s.nodeBreaker(b.Addr)

	b.pause(t)
	waited, calls := 0, 0
rounds:
	for range 4 {
		// A burst of split calls, enough to open a breaker that counts
		// them, then a call on the live shard alone.
		for range failures {
			took, err := takeSplit()
			calls++
			if err == nil {
				// The ring's heartbeat moved the hung shard's keys to the
				// live one: the call is no longer split.
				t.Logf("split call %d decided by Redis: the ring no longer maps the hung shard", calls)
				break rounds
			}
			var unavailable *store.UnavailableError
			if !errors.As(err, &unavailable) {
				t.Fatalf("split call %d: %v, want the deny policy's error", calls, err)
			}
			if took >= timeout {
				waited++
			}
		}
		if _, err := takeOne(context.Background(), s, single); err != nil {
			t.Fatalf("after %d split calls, a key on the live shard went to the policy: %v (live shard's breaker %v)",
				calls, err, liveBreaker.cb.State())
		}
	}
	if st := liveBreaker.cb.State().String(); st != "closed" {
		t.Errorf("live shard's breaker %s, want closed", st)
	}
	if waited > failures {
		t.Errorf("%d split calls waited out the timeout; once the hung shard's breaker opened (after %d) none should", waited, failures)
	}
	t.Logf("%d split calls waited out the timeout; hung shard's breaker %v", waited, hungBreaker.cb.State())
}
