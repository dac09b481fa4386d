package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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
