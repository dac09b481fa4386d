package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// provisionMu serializes caddy.ProvisionContext, which sets process-wide
// defaults (the default logger).
var provisionMu sync.Mutex

// configContext returns the context of a Caddy config, as a running Caddy
// hands modules, carrying the store name name: the module loads the
// config's events app, which a bare caddy.NewContext cannot do. The context
// is cancelled, and the modules it loaded cleaned up, when the test ends.
func configContext(tb testing.TB, name string) caddy.Context {
	tb.Helper()
	raw := []byte(`{"admin":{"disabled":true},"logging":{"logs":{"default":{"writer":{"output":"discard"}}}}}`)
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		tb.Fatal(err)
	}
	provisionMu.Lock()
	root, err := caddy.ProvisionContext(&cfg)
	provisionMu.Unlock()
	if err != nil {
		tb.Fatalf("provisioning the test config: %v", err)
	}
	ctx, cancel := caddy.NewContext(root)
	tb.Cleanup(cancel)
	return ctx.WithValue(store.NameCtxKey, name)
}

// eventSink records the events it is subscribed to. While hold is open,
// Handle blocks after recording, like a slow subscriber.
type eventSink struct {
	mu     sync.Mutex
	events []caddy.Event
	got    chan struct{}
	hold   chan struct{}
}

func (s *eventSink) Handle(_ context.Context, e caddy.Event) error {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	s.got <- struct{}{}
	<-s.hold
	return nil
}

// subscribeEvents binds a new sink to names on the config's events app. The sink
// starts released; close nothing to keep it so.
func subscribeEvents(tb testing.TB, ctx caddy.Context, names ...string) *eventSink {
	tb.Helper()
	app, err := ctx.App("events")
	if err != nil {
		tb.Fatal(err)
	}
	sink := &eventSink{got: make(chan struct{}, 16), hold: make(chan struct{})}
	for _, name := range names {
		if err := app.(*caddyevents.App).On(name, sink); err != nil {
			tb.Fatal(err)
		}
	}
	return sink
}

// wait waits for the sink's next event.
func (s *eventSink) wait(tb testing.TB, what string) {
	tb.Helper()
	select {
	case <-s.got:
	case <-time.After(5 * time.Second):
		tb.Fatalf("no event %s within 5s", what)
	}
}

func (s *eventSink) recorded() []caddy.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]caddy.Event(nil), s.events...)
}

func TestStoreEmitsDownAndUpOncePerOutage(t *testing.T) {
	t.Parallel()
	const cooldown = 150 * time.Millisecond
	srv := startServer(t)
	name := fmt.Sprintf("events-%d", storeSeq.Add(1))
	ctx := configContext(t, name)
	sink := subscribeEvents(t, ctx, EventStoreDown, EventStoreUp)
	m := &Module{Options: Options{
		Addresses: []string{srv.Addr}, KeyPrefix: name + ":",
		Timeout: caddy.Duration(500 * time.Millisecond), OnFailure: OnFailureDeny,
		BreakerFailures: 2, BreakerCooldown: caddy.Duration(cooldown),
	}}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Cleanup() })
	r := req(lookup(t, "gcra"), "z", key("events"), 1000, time.Hour, 1)
	take(t, m, r)

	// An outage of several cooldowns: the breaker opens, and its probes
	// fail again and again. The subscriber holds on to the down event all
	// along, and no decision waits for it.
	srv.stop()
	start := time.Now()
	var opened time.Time // when the subscriber got the down event
	for opened.IsZero() || time.Since(opened) < 5*cooldown {
		done := make(chan error, 1)
		go func() {
			_, err := takeOne(context.Background(), m.Store, r)
			done <- err
		}()
		select {
		case err := <-done:
			checkPolicy(t, OnFailureDeny, algorithms.Decision{}, err)
		case <-time.After(3 * time.Second):
			t.Fatal("a decision waits while a subscriber is busy with the down event")
		}
		select {
		case <-sink.got:
			opened = time.Now()
		default:
		}
		if opened.IsZero() && time.Since(start) > 10*time.Second {
			t.Fatal("no down event 10s into the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(sink.hold)

	srv.restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := takeOne(context.Background(), m.Store, r); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no decision from the restarted server")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 50 {
		take(t, m, r)
	}
	sink.wait(t, EventStoreUp)
	time.Sleep(2 * cooldown) // room for an event too many

	events := sink.recorded()
	if len(events) != 2 || events[0].Name() != EventStoreDown || events[1].Name() != EventStoreUp {
		names := make([]string, len(events))
		for i, e := range events {
			names[i] = e.Name()
		}
		t.Fatalf("events %v, want one %s then one %s", names, EventStoreDown, EventStoreUp)
	}
	down, up := events[0].Data, events[1].Data
	topology := "standalone " + srv.Addr
	if down["store"] != name || down["topology"] != topology || down["on_failure"] != OnFailureDeny {
		t.Errorf("down event data %v", down)
	}
	if msg, _ := down["error"].(string); msg == "" {
		t.Errorf("down event without the error: %v", down)
	}
	if up["store"] != name || up["topology"] != topology {
		t.Errorf("up event data %v", up)
	}
	if secs, _ := up["downtime_seconds"].(float64); secs < (5 * cooldown).Seconds() {
		t.Errorf("up event downtime %v, want at least the %v outage", up["downtime_seconds"], 5*cooldown)
	}
}

func TestDownEventMasksSecrets(t *testing.T) {
	t.Parallel()
	got := make(chan map[string]any, 1)
	n := newNotifier(Options{
		Name: "masked", Password: "hunter2-pw", Addresses: []string{"10.0.0.1:6379"}, OnFailure: OnFailureAllow,
		Notify: func(_ string, data map[string]any) { got <- data },
	})
	n.down("WRONGPASS for redis://user:hunter2-pw@10.0.0.1:6379 (hunter2-pw)", time.Now())
	data := <-got
	msg := data["error"].(string)
	if strings.Contains(msg, "hunter2-pw") || !strings.Contains(msg, "WRONGPASS") || !strings.Contains(msg, "[redacted]") {
		t.Errorf("down event error %q: want WRONGPASS with the password masked", msg)
	}
}

func TestNotifierDeliversInOrderOffTheCaller(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	n := newNotifier(Options{Name: "order", Notify: func(event string, _ map[string]any) {
		<-release
		mu.Lock()
		got = append(got, event)
		if len(got) == 6 {
			close(done)
		}
		mu.Unlock()
	}})
	now := time.Now()
	start := time.Now()
	for i := range 3 {
		n.down("refused", now.Add(time.Duration(2*i)*time.Second))
		n.up(now.Add(time.Duration(2*i+1) * time.Second))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("posting waited %v for a blocked subscriber", d)
	}
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("events not delivered")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, e := range got {
		want := EventStoreDown
		if i%2 == 1 {
			want = EventStoreUp
		}
		if e != want {
			t.Fatalf("events delivered as %v, want down and up alternating", got)
		}
	}
}
