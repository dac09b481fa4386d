package redis

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// A store with several breakers is down from when the first one opens
// until the last one closes: one down event, one up event, and the state
// gauge shows the worst breaker.
func TestBreakersOfPrimariesMakeOneOutage(t *testing.T) {
	var mu sync.Mutex
	var events []string
	opts := Options{Name: "t-breakers", Logger: zap.NewNop(), Notify: func(event string, _ map[string]any) {
		mu.Lock()
		events = append(events, event)
		mu.Unlock()
	}}.withDefaults()
	g := newGuard(opts, nil)
	g.nodes = &nodeBreakers{stop: make(chan struct{})}
	defer g.nodes.close()
	a, b := g.newBreaker("10.0.0.1:6379", 5), g.newBreaker("10.0.0.2:6379", 5)
	step := func(br *breaker, from, to gobreaker.State, wantState string) {
		t.Helper()
		g.changed(br, from, to)
		if got := g.stateName(); got != wantState {
			t.Errorf("after %s %v -> %v: store state %s, want %s", br.node, from, to, got, wantState)
		}
	}
	// Keep the watcher from running: it needs a Cluster client.
	g.nodes.watching = true
	step(a, gobreaker.StateClosed, gobreaker.StateOpen, "open")
	step(b, gobreaker.StateClosed, gobreaker.StateOpen, "open")
	step(a, gobreaker.StateOpen, gobreaker.StateHalfOpen, "open")
	step(a, gobreaker.StateHalfOpen, gobreaker.StateClosed, "open")
	step(b, gobreaker.StateOpen, gobreaker.StateHalfOpen, "half-open")
	step(b, gobreaker.StateHalfOpen, gobreaker.StateClosed, "closed")
	if got := value(t, g.m.state); got != gaugeClosed {
		t.Errorf("breaker_state %v, want %v", got, gaugeClosed)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // no third event comes
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != EventStoreDown || events[1] != EventStoreUp {
		t.Errorf("events %v, want one down and one up", events)
	}
}

// Choosing a Cluster primary's breaker never waits on the network: with no
// slot map loaded yet (every seed hangs), the call falls back to the
// store's breaker at once, and the decision is bounded by the timeout.
func TestBreakerLookupNeverWaitsOnAnUnloadedCluster(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() { // accept and say nothing, like a stopped server
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{ln.Addr().String()}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	const timeout = 100 * time.Millisecond
	s := New(c, Options{Timeout: caddy.Duration(timeout)})
	if s.g.nodes == nil {
		t.Fatal("a Cluster store has no per-primary breakers")
	}
	start := time.Now()
	if b := s.breakerFor("k"); b != s.g.main {
		t.Errorf("breaker of %q without a slot map, want the store's", b.node)
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("choosing a breaker took %v", d)
	}
	start = time.Now()
	if _, err := takeOne(context.Background(), s, req(lookup(t, "gcra"), "z", key("k"), 5, time.Second, 1)); err == nil {
		t.Error("a decision on a hung cluster succeeded")
	}
	// Generous for -race on a busy machine; go-redis's own read timeout is 3s.
	if d := time.Since(start); d > timeout+400*time.Millisecond {
		t.Errorf("a decision on a hung cluster took %v with a %v timeout", d, timeout)
	}
}
