package ratewarden

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
)

// eventSink collects events.
type eventSink struct {
	mu     sync.Mutex
	events []caddy.Event
	got    chan struct{}
}

func (s *eventSink) Handle(_ context.Context, e caddy.Event) error {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	select {
	case s.got <- struct{}{}:
	default:
	}
	return nil
}

func TestExceededEventIsEmittedAndSampled(t *testing.T) {
	t.Parallel()
	name := uniq("evented")
	h := new(Handler)
	if err := caddy.StrictUnmarshalJSON([]byte(`{"rate_limits":{"`+name+`":{"key":"{http.request.header.X-Who}","max_events":1,"window":"1m","log_key":true}}}`), h); err != nil {
		t.Fatal(err)
	}
	ctx := newTestContext(t, "")
	sink := &eventSink{got: make(chan struct{}, 16)}
	evApp, err := ctx.App("events")
	if err != nil {
		t.Fatal(err)
	}
	if err := evApp.(*caddyevents.App).On(EventExceeded, sink); err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	c := call{header: map[string]string{"X-Who": "mallory"}}
	c.do(t, h) // allowed: no event
	for range 20 {
		c.do(t, h) // refused; one event per second at most
	}
	select {
	case <-sink.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no rate_limit_exceeded event")
	}
	time.Sleep(100 * time.Millisecond) // let any extra event arrive
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if n := len(sink.events); n < 1 || n > 2 { // 2 if the refusals spanned a second boundary
		t.Fatalf("%d events for 20 refusals, want sampling to 1 per second", n)
	}
	e := sink.events[0]
	if e.Name() != EventExceeded || e.Data["zone"] != name || e.Data["key"] != "mallory" ||
		e.Data["key_hash"] != hashKey(name, "mallory").String() || e.Data["client_ip"] != "192.0.2.1" {
		t.Errorf("event %s data %v", e.Name(), e.Data)
	}
}

func TestSampler(t *testing.T) {
	var s sampler
	now := time.Unix(1000, 0)
	if !s.allow(now, 2, 0) || !s.allow(now, 2, 0) || s.allow(now, 2, 0) {
		t.Fatal("want the first 2 events of a second")
	}
	if !s.allow(now.Add(time.Second), 2, 0) {
		t.Fatal("a new second must reset the count")
	}
	var th sampler
	var passed []int
	for i := 1; i <= 25; i++ {
		if th.allow(now, 3, 10) {
			passed = append(passed, i)
		}
	}
	if fmt.Sprint(passed) != "[1 2 3 13 23]" {
		t.Errorf("first 3 then one in 10: passed %v", passed)
	}
}
