package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/store"
	"github.com/ratewarden/ratewarden/store/storetest"
)

// deployments are the four topologies the store runs on. start starts one
// (or reuses the shared server) and returns a function that makes a new,
// separate client of it, closed when the calling test ends.
var deployments = []struct {
	name  string
	start func(t *testing.T) func(t *testing.T) Client
}{
	{"standalone", func(t *testing.T) func(t *testing.T) Client {
		srv := sharedServer(t)
		return func(t *testing.T) Client { return srv.client(t) }
	}},
	{"sentinel", func(t *testing.T) func(t *testing.T) Client {
		set := startSentinelSet(t)
		return func(t *testing.T) Client { return sentinelClient(t, set, Options{}) }
	}},
	{"cluster", func(t *testing.T) func(t *testing.T) Client {
		cl := startCluster(t)
		return func(t *testing.T) Client { return cl.client(t) }
	}},
	{"ring", func(t *testing.T) func(t *testing.T) Client {
		shards := map[string]string{"a": startServer(t).Addr, "b": startServer(t).Addr}
		return func(t *testing.T) Client {
			c, err := NewClient(Options{Shards: shards})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
	}},
}

// TestRecordsOnEveryTopology runs the records contract, a change seen by
// another instance, and the health report on each topology, so that each
// starts once.
func TestRecordsOnEveryTopology(t *testing.T) {
	t.Parallel()
	for _, dep := range deployments {
		t.Run(dep.name, func(t *testing.T) {
			t.Parallel()
			newClient := dep.start(t)
			c := newClient(t)
			t.Run("contract", func(t *testing.T) {
				storetest.RunRecords(t, func(t *testing.T) store.Records { return testStore(t, c) })
			})
			t.Run("a change reaches another instance's watcher within 1s", func(t *testing.T) {
				changesReachAnotherInstance(t, testStore(t, c), newClient(t))
			})
			t.Run("health", func(t *testing.T) {
				checkHealthy(t, testStore(t, c), dep.name)
			})
		})
	}
}

// changesReachAnotherInstance writes through a second store, on its own
// client and with a's key prefix, as another Caddy instance would, and
// expects a's watcher to hear of each change within a second.
func changesReachAnotherInstance(t *testing.T, a *Store, other Client) {
	b := New(other, Options{KeyPrefix: a.prefix, Timeout: caddy.Duration(10 * time.Second)})
	calls := watchCalls(t, a, t.Context(), recordsResync)
	wantReload(t, calls, 10*time.Second) // the subscription is live

	for i, write := range []func() error{
		func() error { return b.PutRecord(t.Context(), "api_keys", "k:1", []byte(`{"n":1}`)) },
		func() error { return b.PutRecord(t.Context(), "api_keys", "k:1", []byte(`{"n":2}`)) },
		func() error { return b.DeleteRecord(t.Context(), "api_keys", "k:1") },
	} {
		start := time.Now()
		if err := write(); err != nil {
			t.Fatalf("write %d through the other instance: %v", i, err)
		}
		wantCall(t, calls, [2]string{"api_keys", "k:1"}, time.Second)
		t.Logf("write %d seen after %v", i, time.Since(start).Round(time.Microsecond))
		if i == 1 {
			if v, ok, err := a.LoadRecord(t.Context(), "api_keys", "k:1"); err != nil || !ok || string(v) != `{"n":2}` {
				t.Fatalf("the watcher's store loads %q, %v, %v; want the other's write", v, ok, err)
			}
		}
	}
}

func TestRecordsWatchReloadsAfterAServerRestart(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := testStore(t, srv.client(t))
	calls := watchCalls(t, s, t.Context(), recordsResync)
	wantReload(t, calls, 5*time.Second)

	srv.restart(t)
	// The restarted server is empty and knows no subscriber: the watch
	// reconnects, subscribes again and tells the caller to reload.
	wantReload(t, calls, 10*time.Second)
	if err := s.PutRecord(t.Context(), "api_keys", "after", []byte("1")); err != nil {
		t.Fatal(err)
	}
	wantCall(t, calls, [2]string{"api_keys", "after"}, time.Second)
}

func TestRecordsWatchReloadsPeriodically(t *testing.T) {
	t.Parallel()
	s := testStore(t, sharedServer(t).client(t))
	calls := watchCalls(t, s, t.Context(), 100*time.Millisecond)
	for range 4 { // the subscription's reload, then the safety net's
		wantReload(t, calls, time.Second)
	}
}

func TestRecordsWireFormat(t *testing.T) {
	t.Parallel()
	// Instances of other versions share these names and this notice
	// format: they are part of the contract.
	c := sharedServer(t).client(t)
	s := testStore(t, c)
	sub := c.Subscribe(t.Context(), s.prefix+"rw:rec")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(t.Context(), "zone_overrides", "api", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(t.Context())
	if err != nil || msg.Payload != "zone_overrides\napi" {
		t.Fatalf("notice = %v, %v; want %q", msg, err, "zone_overrides\napi")
	}
	hash := s.prefix + "rw:rec:zone_overrides"
	if v, err := c.HGet(t.Context(), hash, "api").Result(); err != nil || v != "v1" {
		t.Fatalf("HGET %s api = %q, %v", hash, v, err)
	}
	// Control records are durable: no TTL, unlike counters.
	if ttl, err := c.TTL(t.Context(), hash).Result(); err != nil || ttl != -1 {
		t.Fatalf("TTL %s = %v, %v; want none (-1)", hash, ttl, err)
	}
	// A notice this version does not understand means: reload everything.
	calls := watchCalls(t, s, t.Context(), recordsResync)
	wantReload(t, calls, 5*time.Second)
	if err := c.Publish(t.Context(), s.prefix+"rw:rec", "garbled").Err(); err != nil {
		t.Fatal(err)
	}
	wantCall(t, calls, [2]string{"", ""}, time.Second)
}

func TestRecordsBypassTheBreaker(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s, _ := guardedStore(t, srv.client(t), Options{
		Timeout: caddy.Duration(500 * time.Millisecond), BreakerFailures: 1,
		BreakerCooldown: caddy.Duration(time.Hour), OnFailure: OnFailureDeny,
	})
	srv.stop()

	// A failed control write is an error, not an on_failure decision, and
	// does not count towards opening the breaker.
	err := s.PutRecord(t.Context(), "api_keys", "k", []byte("v"))
	if err == nil || !strings.Contains(err.Error(), `storing api_keys record "k" in redis store`) {
		t.Fatalf("PutRecord with the server down: %v; want an error naming the call and the store", err)
	}
	if _, _, err := s.LoadRecord(t.Context(), "api_keys", "k"); err == nil {
		t.Fatal("LoadRecord with the server down: no error")
	}
	if st := s.g.main.cb.State().String(); st != "closed" {
		t.Fatalf("breaker %s after failed record calls, want closed", st)
	}

	// A failed decision opens it; control records still reach Redis.
	if _, err := takeOne(t.Context(), s, req(lookup(t, "gcra"), "z", key("k"), 5, time.Minute, 1)); err == nil {
		t.Fatal("Take with the server down: no error")
	}
	srv.restart(t)
	if st := s.g.main.cb.State().String(); st != "open" {
		t.Fatalf("breaker %s after a failed decision, want open", st)
	}
	if err := s.PutRecord(t.Context(), "api_keys", "k", []byte("v")); err != nil {
		t.Fatalf("PutRecord with the breaker open and the server up: %v", err)
	}
	if v, ok, err := s.LoadRecord(t.Context(), "api_keys", "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("LoadRecord with the breaker open: %q, %v, %v", v, ok, err)
	}
}

func TestRecordsTimeOutWithTheStore(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	s := New(srv.client(t), Options{KeyPrefix: "timeout:", Timeout: caddy.Duration(100 * time.Millisecond)})
	resume := srv.pause(t)
	defer resume()
	start := time.Now()
	err := s.PutRecord(t.Context(), "api_keys", "k", []byte("v"))
	if took := time.Since(start); err == nil || took > time.Second {
		t.Fatalf("PutRecord on a hung server: %v after %v; want an error within the 100ms timeout", err, took)
	}
}

// decisionsOnly is a client with only what Client asks for.
type decisionsOnly struct{ Client }

func TestRecordsNeedAClientThatCanSubscribe(t *testing.T) {
	t.Parallel()
	s, logs := guardedStore(t, decisionsOnly{sharedServer(t).client(t)}, Options{})
	err := s.PutRecord(t.Context(), "api_keys", "k", []byte("v"))
	if err == nil || !strings.Contains(err.Error(), "cannot keep control records") || !strings.Contains(err.Error(), "SUBSCRIBE") {
		t.Fatalf("PutRecord through a client without hashes or pub/sub: %v", err)
	}
	called := make(chan struct{}, 1)
	s.WatchRecords(t.Context(), func(string, string) { called <- struct{}{} })
	if logged(logs, "not watching control records") != 1 {
		t.Error("WatchRecords through a client that cannot subscribe logged no error")
	}
	select {
	case <-called:
		t.Error("WatchRecords called fn through a client that cannot subscribe")
	case <-time.After(100 * time.Millisecond):
	}
}

// watchCalls watches s's records until ctx is done, with a reload every
// resync, into a channel.
func watchCalls(t *testing.T, s *Store, ctx context.Context, resync time.Duration) chan [2]string {
	t.Helper()
	calls := make(chan [2]string, 256)
	s.watch(ctx, func(kind, id string) { calls <- [2]string{kind, id} }, resync)
	return calls
}

// wantCall waits for the call want, passing over others, for at most
// within.
func wantCall(t *testing.T, calls chan [2]string, want [2]string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	var seen [][2]string
	for {
		select {
		case got := <-calls:
			if got == want {
				return
			}
			seen = append(seen, got)
		case <-timeout:
			t.Fatalf("no call %q within %v; saw %q", want, within, seen)
		}
	}
}

func wantReload(t *testing.T, calls chan [2]string, within time.Duration) {
	t.Helper()
	wantCall(t, calls, [2]string{"", ""}, within)
}

func TestRecordsWatchFollowsTheRingWhenTheChannelMoves(t *testing.T) {
	t.Parallel()
	a, b := startServer(t), startServer(t)
	both := map[string]string{"a": a.Addr, "b": b.Addr}
	other, err := NewClient(Options{Shards: both})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	ring, err := NewClient(Options{Shards: map[string]string{"a": a.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ring.Close() })

	// A key prefix whose channel the two-shard ring places on b, where the
	// one-shard ring has it on a.
	var s *Store
	for s == nil {
		cand := testStore(t, ring)
		shard, err := other.(*goredis.Ring).GetShardClientForKey(cand.prefix + "rw:rec")
		if err != nil {
			t.Fatal(err)
		}
		if shard.Options().Addr == b.Addr {
			s = cand
		}
	}
	calls := watchCalls(t, s, t.Context(), 100*time.Millisecond)
	wantReload(t, calls, 5*time.Second)

	// Shard b joins: the channel moves to it, and so does the watch.
	ring.(*goredis.Ring).SetAddrs(both)
	otherInstance := New(other, Options{KeyPrefix: s.prefix, Timeout: caddy.Duration(10 * time.Second)})
	// The move is noticed at a resync tick: write until the watch hears.
	deadline := time.Now().Add(5 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		if err := otherInstance.PutRecord(t.Context(), "api_keys", fmt.Sprint("after-move-", n), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if heard(calls, "api_keys", 200*time.Millisecond) {
			return
		}
	}
	t.Fatal("the watch never heard a write published on the shard the channel moved to")
}

// heard reports whether a call of kind comes within d.
func heard(calls chan [2]string, kind string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case c := <-calls:
			if c[0] == kind {
				return true
			}
		case <-timeout:
			return false
		}
	}
}
