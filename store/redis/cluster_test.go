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

// The store on a Redis Cluster of three primaries and three replicas,
// through a go-redis ClusterClient. TestCluster's subtests share one
// Cluster and only read and write keys; the failure tests start their own,
// and do not run in parallel so that their timings are not those of a
// machine busy with the other tests.

func TestCluster(t *testing.T) {
	t.Parallel()
	cl := startCluster(t)
	c := cl.client(t)

	t.Run("conformance vectors match the Go twins", func(t *testing.T) {
		t.Parallel()
		runVectors(t, c)
	})

	t.Run("one key admits exactly the limit concurrently", func(t *testing.T) {
		t.Parallel()
		const limit, workers, attempts = 200, 24, 400
		for _, name := range allAlgorithms {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				alg := lookup(t, name)
				s := simulated(testStore(t, c), func() time.Time { return t0 })
				var admitted, tried atomic.Int64
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for tried.Add(1) <= attempts {
							out := make([]algorithms.Decision, 1)
							reqs := []store.Request{req(alg, "z", key(name), limit, time.Minute, 1)}
							if err := s.Take(context.Background(), reqs, out); err != nil {
								t.Error(err)
								return
							}
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
	})

	t.Run("split calls over three primaries never over-admit", func(t *testing.T) {
		t.Parallel()
		for _, name := range allAlgorithms {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				splitCallsNeverOverAdmit(t, cl, c, lookup(t, name))
			})
		}
	})

	t.Run("split calls match the memory store", func(t *testing.T) {
		t.Parallel()
		// Concurrency is left out for the reason the Ring test gives: a
		// refunded acquire renews its lease.
		s := testStore(t, c)
		if !s.split {
			t.Fatal("a store on a ClusterClient does not split calls")
		}
		checkAgainstMemory(t, s, []string{"gcra", "token_bucket", "sliding_log", "fixed_window", "sliding_window"})
		// The calls reached every primary.
		err := c.ForEachMaster(context.Background(), func(ctx context.Context, n *goredis.Client) error {
			if keys, err := n.Keys(ctx, s.prefix+"*").Result(); err != nil || len(keys) == 0 {
				return fmt.Errorf("primary %s holds %d of the test's keys (%v)", n.Options().Addr, len(keys), err)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("every written key has a TTL on its node", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := testStore(t, c)
		keys := spreadKeys(t, cl, s.prefix, "ttl", 3)
		for _, name := range allAlgorithms {
			alg := lookup(t, name)
			// One split call over three primaries, and one call per key.
			reqs := make([]store.Request, len(keys))
			for i, k := range keys {
				reqs[i] = req(alg, "ttl", k, 5, 10*time.Second, 2)
			}
			last := take(t, s, reqs...)
			last[0] = take(t, s, reqs[0])[0]
			for i, r := range reqs {
				redisKey := keyName(s.prefix, "ttl", r.Key, mustID(t, alg))
				resetAfter := last[i].ResetAfter
				addr, err := owner(ctx, cl.nodes[0].Addr, redisKey)
				if err != nil {
					t.Fatal(err)
				}
				err = nodeClient(addr, func(n *goredis.Client) error {
					ttl, err := n.PTTL(ctx, redisKey).Result()
					if err := checkTTL(ttl, err, resetAfter); err != nil {
						return fmt.Errorf("%s on %s: %w", redisKey, addr, err)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}
	})
}

// spreadKeys returns n keys whose counters in zone, under prefix, live on
// n different primaries of cl.
func spreadKeys(tb testing.TB, cl *cluster, prefix, zone string, n int) []store.Key {
	tb.Helper()
	ctx := context.Background()
	var out []store.Key
	seen := map[string]bool{}
	for i := 0; len(out) < n; i++ {
		if i > 1000 {
			tb.Fatalf("found keys on only %d primaries", len(out))
		}
		k := key(fmt.Sprintf("%s/%s/%d", prefix, zone, i))
		addr, err := owner(ctx, cl.nodes[0].Addr, keyName(prefix, zone, k, algGCRA))
		if err != nil {
			tb.Fatal(err)
		}
		if !seen[addr] {
			seen[addr] = true
			out = append(out, k)
		}
	}
	return out
}

// splitCallsNeverOverAdmit runs concurrent calls that each take three
// counters on three primaries, so every call is split and some are
// refunded. Admitted calls must never pass the limit, and no charge may
// leak: draining the rest sequentially admits exactly the limit in all.
func splitCallsNeverOverAdmit(t *testing.T, cl *cluster, c Client, alg algorithms.Algorithm) {
	const limit, workers, attempts = 60, 16, 300
	s := simulated(testStore(t, c), func() time.Time { return t0 })
	keys := spreadKeys(t, cl, s.prefix, "z", 3)
	call := func(w int) (bool, error) {
		reqs := make([]store.Request, len(keys))
		for i := range keys {
			// Each worker takes the keys in its own order.
			reqs[i] = req(alg, "z", keys[(i+w)%len(keys)], limit, time.Minute, 1)
		}
		out := make([]algorithms.Decision, len(reqs))
		if err := s.Take(context.Background(), reqs, out); err != nil {
			return false, err
		}
		allowed := !store.Blocked(reqs, out)
		if !allowed && (out[0].Allowed && out[1].Allowed && out[2].Allowed) {
			return false, fmt.Errorf("blocked call with every zone allowed: %+v", out)
		}
		return allowed, nil
	}
	var admitted, tried atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for tried.Add(1) <= attempts {
				ok, err := call(w)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	concurrent := admitted.Load()
	if concurrent > limit {
		t.Fatalf("admitted %d concurrent calls, limit %d", concurrent, limit)
	}
	// A refund race may have denied calls that would have fit; what is
	// left must be exactly what was not admitted.
	drained := int64(0)
	for {
		ok, err := call(0)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		drained++
		if drained > limit {
			t.Fatalf("drained more than the limit after %d concurrent admissions", concurrent)
		}
	}
	if concurrent+drained != limit {
		t.Errorf("admitted %d concurrently and %d after, want %d in all: a charge leaked or was lost", concurrent, drained, limit)
	}
	t.Logf("%d admitted concurrently, %d after", concurrent, drained)
}

// outcome counts of a traffic run, by phase.
type outcomes struct {
	decided, unavailable atomic.Int64
}

func (o *outcomes) String() string {
	return fmt.Sprintf("%d decided by redis, %d unavailable", o.decided.Load(), o.unavailable.Load())
}

// TestClusterPrimaryKill kills a primary with SIGKILL while traffic runs.
// Its replica takes its slots over; meanwhile every decision is Redis's or
// the on_failure policy's (deny: *store.UnavailableError), never anything
// else, none waits past the timeout, and decisions for keys in the killed
// primary's slots come back from Redis within the failover time plus the
// breaker's cooldown. Keys on the other primaries are decided by Redis
// throughout: each primary has a breaker of its own.
func TestClusterPrimaryKill(t *testing.T) {
	cl := startCluster(t)
	// With Redis's default (yes), every node answers CLUSTERDOWN from when
	// the cluster marks the primary failed until its replica takes over;
	// with no, the other primaries keep serving their slots, which is what
	// per-primary breakers are for.
	for _, srv := range cl.nodes {
		err := nodeClient(srv.Addr, func(n *goredis.Client) error {
			return n.ConfigSet(context.Background(), "cluster-require-full-coverage", "no").Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The store asks the client to reload its slot map when a call fails
	// (reloadTopology); the client keeps go-redis's defaults otherwise.
	c := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:                 cl.addrs(),
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	const timeout, cooldown = 200 * time.Millisecond, 500 * time.Millisecond
	s := New(c, Options{
		KeyPrefix:       fmt.Sprintf("t%d:kill:", storeSeq.Add(1)),
		Timeout:         caddy.Duration(timeout),
		OnFailure:       OnFailureDeny,
		BreakerCooldown: caddy.Duration(cooldown),
	})
	alg := lookup(t, "gcra")

	// Keys on every primary; the victim is the first key's primary.
	const nkeys = 48
	keys := make([]store.Key, nkeys)
	onVictim := make([]bool, nkeys)
	var victim string
	for i := range keys {
		keys[i] = key(fmt.Sprintf("kill/%d", i))
		addr, err := owner(ctx, cl.nodes[0].Addr, keyName(s.prefix, "z", keys[i], algGCRA))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			victim = addr
		}
		onVictim[i] = addr == victim
	}
	var survivors []*server
	for _, srv := range cl.nodes {
		if srv.Addr != victim {
			survivors = append(survivors, srv)
		}
	}

	// Traffic: a limit no run reaches, so every decision Redis makes admits.
	var (
		phase     atomic.Int32 // 0 before the kill, 1 after it
		before    outcomes
		during    outcomes
		killedAt  time.Time
		recovered atomic.Int64 // unix ns of the first Redis decision on the victim's keys after the kill
		lastDown  atomic.Int64 // unix ns of the last unavailable decision on the victim's keys
		elsewhere atomic.Int64 // unavailable decisions on keys of the other primaries after the kill
		slowest   atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for i := w; ; i += 8 {
				select {
				case <-stop:
					return
				default:
				}
				k := i % nkeys
				reqs := []store.Request{req(alg, "z", keys[k], 1_000_000, time.Hour, 1)}
				out := make([]algorithms.Decision, 1)
				start := time.Now()
				err := s.Take(ctx, reqs, out)
				end := time.Now()
				if d := int64(end.Sub(start)); d > slowest.Load() {
					slowest.Store(d) // racy max; good enough for a bound
				}
				o := &before
				if phase.Load() == 1 {
					o = &during
				}
				var unavailable *store.UnavailableError
				switch {
				case err == nil && out[0].Allowed:
					o.decided.Add(1)
					if phase.Load() == 1 && onVictim[k] {
						recovered.CompareAndSwap(0, end.UnixNano())
					}
				case errors.As(err, &unavailable):
					o.unavailable.Add(1)
					if onVictim[k] {
						lastDown.Store(end.UnixNano())
						recovered.Store(0)
					} else if phase.Load() == 1 {
						if elsewhere.Add(1) == 1 {
							t.Logf("first policy decision on a surviving primary's key: %v", err)
						}
					}
				default:
					t.Errorf("an outcome that is neither a decision nor the policy: %+v, %v", out[0], err)
				}
				// Paced, so that fast policy decisions do not spin the CPU.
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	time.Sleep(300 * time.Millisecond)
	if before.unavailable.Load() != 0 || before.decided.Load() == 0 {
		t.Fatalf("before the kill: %v", &before)
	}
	killedAt = time.Now()
	phase.Store(1)
	cl.node(victim).stop() // SIGKILL by PID

	// The failover: the survivors agree the cluster is whole again.
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := waitFailedOver(waitCtx, survivors, victim); err != nil {
		t.Fatalf("no failover within 15s: %v", err)
	}
	failover := time.Since(killedAt)

	// Recovery: Redis decides again for the victim's keys, and keeps doing
	// so. The bound is the failover plus two cooldowns plus a node timeout
	// of slack: while the breaker is open no call reaches the client, so
	// the first probe after the failover may still use the old slot map,
	// fail and reopen the breaker; the reload it set off serves the next
	// probe, a cooldown later.
	bound := failover + 2*cooldown + clusterNodeTimeout
	deadline := killedAt.Add(bound + 5*time.Second)
	for {
		r := recovered.Load()
		if r != 0 && time.Since(time.Unix(0, r)) > 500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decisions on the killed primary's keys did not come back from redis within %v of the kill (failover took %v): %v",
				time.Since(killedAt).Round(time.Millisecond), failover.Round(time.Millisecond), &during)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recovery := time.Unix(0, recovered.Load()).Sub(killedAt)
	t.Logf("failover (kill to cluster_state:ok on the survivors): %v; decisions back from redis: %v after the kill (bound %v); last policy decision %v after the kill; slowest call %v",
		failover.Round(time.Millisecond), recovery.Round(time.Millisecond), bound.Round(time.Millisecond),
		time.Unix(0, lastDown.Load()).Sub(killedAt).Round(time.Millisecond), time.Duration(slowest.Load()).Round(time.Millisecond))
	t.Logf("outcomes before the kill: %v; since: %v", &before, &during)
	if recovery > bound {
		t.Errorf("decisions came back %v after the kill, past the bound %v", recovery, bound)
	}
	// Each primary has its own breaker: the dead one's keys went to the
	// policy, the others' kept being decided by Redis.
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d decisions on keys of the surviving primaries went to on_failure", n)
	}
	// The dead primary's breaker is dropped once its slots have a new
	// owner, and the store counts as up again.
	for s.g.stateName() != "closed" {
		if time.Now().After(deadline) {
			var open []string
			for _, b := range s.g.down() {
				open = append(open, fmt.Sprintf("%q %v", b.node, b.cb.State()))
			}
			t.Fatalf("the store's breaker state is still %s %v after the kill: breakers %v (victim %s)",
				s.g.stateName(), time.Since(killedAt).Round(time.Millisecond), open, victim)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("store breaker closed again %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	// A call may overrun the timeout by scheduling, not by a round trip.
	if d := time.Duration(slowest.Load()); d > timeout+150*time.Millisecond {
		t.Errorf("a call took %v, past the %v timeout", d, timeout)
	}
}

// TestClusterReshardingUnderTraffic moves the slot of six counters (one per
// algorithm, sharing a hash tag) from its primary to another while
// concurrent calls charge them: CLUSTER SETSLOT IMPORTING and MIGRATING,
// MIGRATE of one key at a time, then SETSLOT NODE. Calls are redirected
// (ASK, then MOVED); no counter loses its state or admits past its limit,
// and every outcome is a decision or the policy.
func TestClusterReshardingUnderTraffic(t *testing.T) {
	cl := startCluster(t)
	c := cl.client(t)
	ctx := context.Background()
	s := simulated(New(c, Options{
		KeyPrefix: fmt.Sprintf("t%d:reshard:", storeSeq.Add(1)),
		Timeout:   caddy.Duration(2 * time.Second),
		OnFailure: OnFailureDeny,
	}), func() time.Time { return t0 })
	const limit = 400
	k := key("reshard")
	algs := make([]algorithms.Algorithm, len(allAlgorithms))
	for i, name := range allAlgorithms {
		algs[i] = lookup(t, name)
	}
	redisKey := keyName(s.prefix, "z", k, algGCRA)
	source, err := owner(ctx, cl.nodes[0].Addr, redisKey)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := primaries(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	target := ps[0]
	if target == source {
		target = ps[1]
	}
	var slot int64
	if err := nodeClient(source, func(n *goredis.Client) (err error) {
		slot, err = n.ClusterKeySlot(ctx, redisKey).Result()
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// Every counter is charged once before the move, so the move has keys.
	var admitted [6]atomic.Int64
	var unavailable atomic.Int64
	call := func(i int) error {
		reqs := []store.Request{req(algs[i], "z", k, limit, time.Hour, 1)}
		out := make([]algorithms.Decision, 1)
		err := s.Take(ctx, reqs, out)
		var policy *store.UnavailableError
		switch {
		case err == nil:
			if out[0].Allowed {
				admitted[i].Add(1)
			}
		case errors.As(err, &policy):
			unavailable.Add(1)
		default:
			return fmt.Errorf("%s: an outcome that is neither a decision nor the policy: %w", allAlgorithms[i], err)
		}
		return nil
	}
	for i := range algs {
		if err := call(i); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := call(i % len(algs)); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}
	start := time.Now()
	err = moveSlot(ctx, slot, source, target, ps)
	moved := time.Since(start)
	time.Sleep(200 * time.Millisecond) // traffic after the move
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("moving slot %d from %s to %s: %v", slot, source, target, err)
	}
	if now, err := owner(ctx, cl.nodes[0].Addr, redisKey); err != nil || now != target {
		t.Fatalf("slot %d is served by %s (%v), want %s", slot, now, err, target)
	}
	t.Logf("slot %d moved from %s to %s in %v under %d calls; %d policy decisions",
		slot, source, target, moved.Round(time.Millisecond), calls.Load(), unavailable.Load())

	// Each counter admitted at most its limit, and draining it admits
	// exactly the rest: the move lost no state.
	for i, name := range allAlgorithms {
		during := admitted[i].Load()
		if during > limit {
			t.Errorf("%s admitted %d during the move, limit %d", name, during, limit)
			continue
		}
		for admitted[i].Load() < limit+1 {
			before := admitted[i].Load()
			if err := call(i); err != nil {
				t.Fatal(err)
			}
			if admitted[i].Load() == before {
				break
			}
		}
		if got := admitted[i].Load(); got != limit {
			t.Errorf("%s admitted %d in all (%d during the move), want exactly %d", name, got, during, limit)
		}
		err := nodeClient(target, func(n *goredis.Client) error {
			rk := keyName(s.prefix, "z", k, mustID(t, algs[i]))
			if ttl, err := n.PTTL(ctx, rk).Result(); err != nil || ttl <= 0 {
				return fmt.Errorf("%s on the new primary %s: PTTL %v (%v)", rk, target, ttl, err)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}
