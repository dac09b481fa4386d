package redis

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/store"
)

// sentinelClient returns a client of set through its sentinels, closed
// when the test ends.
func sentinelClient(tb testing.TB, set *sentinelSet, opts Options) goredis.UniversalClient {
	tb.Helper()
	opts.SentinelMaster, opts.SentinelAddresses = sentinelMaster, set.SentinelAddrs()
	c, err := NewClient(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSentinelConformanceAndExactness(t *testing.T) {
	t.Parallel()
	set := startSentinelSet(t)
	c := sentinelClient(t, set, Options{})

	t.Run("conformance", func(t *testing.T) {
		runVectors(t, c)
	})

	t.Run("exact under concurrency", func(t *testing.T) {
		const limit = 100
		for _, name := range []string{"gcra", "token_bucket", "sliding_log", "concurrency"} {
			alg, s := lookup(t, name), testStore(t, c)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for range 2 * limit / 16 {
						d, err := takeOne(context.Background(), s, req(alg, "z", key(name), limit, time.Hour, 1))
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != limit {
				t.Errorf("%s: admitted %d, want exactly %d", name, got, limit)
			}
		}
	})

	// Every write went to the primary.
	n, err := set.Primary.client(t).DBSize(context.Background()).Result()
	if err != nil || n == 0 {
		t.Errorf("the primary holds %d keys (%v): the store did not write there", n, err)
	}
}

// outcome is what one decision came to during the failover test.
type outcome struct {
	at   time.Duration // since the primary was killed; negative before
	kind int
}

const (
	decided     = iota // Redis decided
	unavailable        // on_failure deny: a *store.UnavailableError
	otherError         // anything else: a failure of the test
)

// TestSentinelFailoverUnderLoad kills the primary with SIGKILL while
// traffic runs through a store with on_failure deny, and checks that every
// request either gets Redis's decision or the deny policy's, and that
// Redis decides again within the failover time plus the breaker's
// cooldown. It is not parallel: it measures times.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	const (
		workers  = 8
		cooldown = 500 * time.Millisecond
		timeout  = 250 * time.Millisecond
		// slack covers one decision's timeout, the probe's round trip, and
		// a busy machine under -race.
		slack = timeout + 500*time.Millisecond
	)
	set := startSentinelSet(t)
	c := sentinelClient(t, set, Options{DialTimeout: caddy.Duration(200 * time.Millisecond)})
	s, logs := guardedStore(t, c, Options{
		OnFailure: OnFailureDeny, BreakerFailures: 3,
		BreakerCooldown: caddy.Duration(cooldown), Timeout: caddy.Duration(timeout),
	})
	alg := lookup(t, "gcra")
	take(t, s, req(alg, "z", key("warm"), 1_000_000, time.Hour, 1))

	var (
		mu       sync.Mutex
		outcomes []outcome
		killedAt atomic.Pointer[time.Time]
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	since := func() time.Duration {
		if k := killedAt.Load(); k != nil {
			return time.Since(*k)
		}
		return -1
	}
	for w := range workers {
		wg.Go(func() {
			r := req(alg, "z", key("failover/"+string(rune('a'+w))), 1_000_000, time.Hour, 1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := takeOne(context.Background(), s, r)
				o := outcome{at: since(), kind: decided}
				var ue *store.UnavailableError
				switch {
				case errors.As(err, &ue) && ue.RetryAfter > 0:
					o.kind = unavailable
				case err != nil:
					o.kind = otherError
					t.Errorf("a decision failed outside the on_failure policy: %v", err)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	time.Sleep(500 * time.Millisecond)
	oldAddr := set.Primary.Addr
	now := time.Now()
	killedAt.Store(&now)
	set.Primary.stop() // SIGKILL

	// The failover is done when a sentinel names another primary and that
	// server has taken the role.
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: set.Sentinels[0].Addr})
	defer sc.Close()
	err := waitFor(30*time.Second, func() error {
		addr, err := sc.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
		if err != nil {
			return err
		}
		if next := net.JoinHostPort(addr[0], addr[1]); next == oldAddr {
			return errors.New("the sentinels still name the killed primary")
		}
		return nil
	})
	failover := time.Since(now)
	if err != nil {
		t.Fatalf("no failover after %v: %v", failover, err)
	}

	// Let traffic run until Redis has been deciding for a while.
	deadline := failover + cooldown + slack + 2*time.Second
	time.Sleep(deadline - time.Since(now))
	close(stop)
	wg.Wait()

	// Recovery: the first decision by Redis after the last failure.
	var lastFailure, recovered time.Duration = -1, -1
	counts := map[string][3]int{}
	for _, o := range outcomes {
		if o.kind != decided && o.at > lastFailure {
			lastFailure = o.at
		}
	}
	for _, o := range outcomes {
		if o.kind == decided && o.at > lastFailure && (recovered < 0 || o.at < recovered) {
			recovered = o.at
		}
		phase := "before"
		switch {
		case o.at >= 0 && (o.at <= lastFailure || recovered < 0):
			phase = "during"
		case o.at >= 0:
			phase = "after"
		}
		n := counts[phase]
		n[o.kind]++
		counts[phase] = n
	}
	t.Logf("failover time (SIGKILL until the sentinels name the new primary): %v", failover.Round(time.Millisecond))
	t.Logf("recovery time (SIGKILL until Redis decides again, for good): %v; breaker cooldown %v", recovered.Round(time.Millisecond), cooldown)
	for _, phase := range []string{"before", "during", "after"} {
		n := counts[phase]
		t.Logf("%-6s the failover: %d decided by redis, %d denied by on_failure (503), %d other errors", phase, n[decided], n[unavailable], n[otherError])
	}
	t.Logf("breaker: opened %d times, closed %d times", logged(logs, logOpened), logged(logs, logClosed))

	if lastFailure < 0 {
		t.Error("no request met the outage: the test proves nothing")
	}
	if recovered < 0 {
		t.Fatal("redis never decided again after the failover")
	}
	if limit := failover + cooldown + slack; recovered > limit {
		t.Errorf("redis decided again %v after the kill, past the failover time %v + cooldown %v (+ %v slack)", recovered, failover, cooldown, slack)
	}
	if counts["after"][decided] == 0 {
		t.Error("no decision after recovery")
	}
	if counts["before"][unavailable] > 0 {
		t.Errorf("%d requests failed before the kill", counts["before"][unavailable])
	}
}
