package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// A call whose zones live on two shards runs each shard's part under that
// shard's breaker. With one shard hung, such calls time out until the hung
// shard's breaker opens, then fall to the policy at once; the live shard's
// breaker never counts them, so its own keys keep being decided by Redis.
// (With the whole call guarded by its first zone's shard, the hung shard's
// timeouts opened the live shard's breaker and sent its keys to the policy.)
func TestSplitCallsTripOnlyTheHungShardsBreaker(t *testing.T) {
	t.Parallel()
	a, b, c := startRing(t)
	const timeout, cooldown, failures = 40 * time.Millisecond, 10 * time.Second, 3
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
