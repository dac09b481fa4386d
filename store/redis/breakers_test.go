package redis

import (
	"sync"
	"testing"
	"time"

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
