package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/ratewarden/ratewarden/store"
)

// A config reload during an outage: the new store starts with its breaker
// open (no decision waits on the hung server, no second down event), and
// the store provisioned once Redis answers again announces the end of the
// outage with its whole downtime.
func TestAReloadDuringAnOutageKeepsTheOutage(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	name := fmt.Sprintf("inherit-%d", storeSeq.Add(1))
	opts := Options{
		Addresses: []string{srv.Addr}, KeyPrefix: name + ":",
		Timeout: caddy.Duration(300 * time.Millisecond), OnFailure: OnFailureDeny,
		BreakerFailures: 2, BreakerCooldown: caddy.Duration(time.Minute),
	}
	load := func() (*Module, *eventSink) {
		ctx := configContext(t, name)
		sink := subscribeEvents(t, ctx, EventStoreDown, EventStoreUp)
		close(sink.hold)
		m := &Module{Options: opts}
		if err := m.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Cleanup() })
		return m, sink
	}
	r := req(lookup(t, "gcra"), "z", key("inherit"), 1000, time.Hour, 1)

	first, firstSink := load()
	take(t, first, r)
	resume := srv.pause(t)
	for range 2 {
		if _, err := takeOne(context.Background(), first.Store, r); err == nil {
			t.Fatal("a decision on a stopped server succeeded")
		}
	}
	firstSink.wait(t, "down")
	downAt := time.Now()

	second, secondSink := load()
	if st := second.Store.g.main.cb.State(); st != gobreaker.StateOpen {
		t.Fatalf("the store of the reloaded config starts %v during the outage, want open", st)
	}
	start := time.Now()
	_, err := takeOne(context.Background(), second.Store, r)
	var unavailable *store.UnavailableError
	if !errors.As(err, &unavailable) {
		t.Errorf("decision after the reload: %v, want the deny policy", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("a decision after the reload waited %v on the stopped server", d)
	}
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}

	resume()
	outage := time.Since(downAt)
	third, thirdSink := load()
	if st := third.Store.g.main.cb.State(); st != gobreaker.StateClosed {
		t.Errorf("the store provisioned after the outage starts %v, want closed", st)
	}
	thirdSink.wait(t, "up")
	ev := thirdSink.recorded()
	if len(ev) != 1 || ev[0].Name() != EventStoreUp {
		t.Fatalf("events after the outage: %v, want one up", ev)
	}
	// The downtime counts from the first config's down event, not from
	// the reload.
	if down, ok := ev[0].Data["downtime_seconds"].(float64); !ok || down < outage.Seconds()-0.05 {
		t.Errorf("up event reports a downtime of %v s; the outage lasted at least %v", ev[0].Data["downtime_seconds"], outage)
	}
	time.Sleep(100 * time.Millisecond)
	if ev := secondSink.recorded(); len(ev) != 0 {
		t.Errorf("the config reloaded during the outage emitted %v; the outage was announced already", ev)
	}
	take(t, third, r)
}

// On a Cluster, a reload keeps the breakers of the primaries that were
// down, open, and leaves the store's own closed when Redis answers.
func TestAReloadKeepsThePrimariesThatWereDown(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("inherit-nodes-%d", storeSeq.Add(1))
	var mu sync.Mutex
	var events []string
	newStore := func() *Store {
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
		t.Cleanup(func() { _ = c.Close() })
		s := New(c, Options{Name: name, BreakerCooldown: caddy.Duration(time.Minute), Notify: func(e string, _ map[string]any) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}})
		t.Cleanup(s.Close)
		return s
	}
	const dead = "10.0.0.1:6379"
	first := newStore()
	first.adopt(DefaultBreakerFailures, true)
	trip(first.nodeBreaker(dead), DefaultBreakerFailures)
	if st := first.g.stateName(); st != "open" {
		t.Fatalf("first store %s after its primary's breaker opened", st)
	}

	second := newStore()
	second.adopt(DefaultBreakerFailures, true)
	if st := second.nodeBreaker(dead).cb.State(); st != gobreaker.StateOpen {
		t.Errorf("the dead primary's breaker starts %v after the reload, want open", st)
	}
	if st := second.g.main.cb.State(); st != gobreaker.StateClosed {
		t.Errorf("the store's own breaker starts %v although Redis answered, want closed", st)
	}
	if st := second.g.stateName(); st != "open" {
		t.Errorf("the reloaded store reports %s, want open", st)
	}
	time.Sleep(100 * time.Millisecond) // events are delivered asynchronously
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0] != EventStoreDown {
		t.Errorf("events %v, want the first store's one down event", events)
	}
}
