package redis

import (
	"sync"
	"time"
)

// Store events.
//
// The store says when Redis stops and starts deciding. When the circuit
// breaker opens it emits rate_limit_store_down, and when a probe closes it
// again rate_limit_store_up. An outage is one of each however long it
// lasts: the probes that fail in between (half-open, then open again) emit
// nothing, just as they log only at debug level. The module emits them as
// Caddy events; subscribe with the events global option, for example
//
//	events {
//		on rate_limit_store_down exec ./page-oncall.sh {event.data.store}
//	}
//
// Both events carry the store's name ("store") and its topology without
// secrets ("topology"). rate_limit_store_down adds the last error, masked
// like every error of the store ("error"), and the on_failure policy that
// now decides ("on_failure"); rate_limit_store_up adds how long the store
// was down, in seconds ("downtime_seconds").
//
// The breaker changes state on a decision's goroutine, under its lock.
// Events wait in a queue there, and a goroutine of their own delivers
// them, in order, so a slow subscriber never holds up a decision.

// Names of the store's events.
const (
	EventStoreDown = "rate_limit_store_down"
	EventStoreUp   = "rate_limit_store_up"
)

// notifier delivers a store's events to Options.Notify; see above.
type notifier struct {
	notify   func(event string, data map[string]any)
	name     string
	topology string
	policy   string
	diag     diagnosis

	mu        sync.Mutex
	queue     []storeEvent
	busy      bool      // a goroutine is delivering the queue
	downSince time.Time // when the last down event was posted
}

// storeEvent is an event waiting in a notifier's queue.
type storeEvent struct {
	name string
	data map[string]any
}

// newNotifier returns the notifier of a store with opts, which have their
// defaults, or nil when opts.Notify is not set.
func newNotifier(opts Options) *notifier {
	if opts.Notify == nil {
		return nil
	}
	return &notifier{
		notify:   opts.Notify,
		name:     opts.Name,
		topology: opts.topology(),
		policy:   opts.OnFailure,
		diag:     opts.diagnose(opts.Name),
	}
}

// down posts EventStoreDown, with lastErr as the reason. A nil notifier
// does nothing.
func (n *notifier) down(lastErr string, now time.Time) {
	if n == nil {
		return
	}
	n.post(now, storeEvent{name: EventStoreDown, data: map[string]any{
		"store":      n.name,
		"topology":   n.topology,
		"error":      n.diag.mask(lastErr),
		"on_failure": n.policy,
	}})
}

// up posts EventStoreUp. A nil notifier does nothing.
func (n *notifier) up(now time.Time) {
	if n == nil {
		return
	}
	n.post(now, storeEvent{name: EventStoreUp, data: map[string]any{
		"store":    n.name,
		"topology": n.topology,
	}})
}

// post queues e and starts a delivering goroutine unless one runs.
func (n *notifier) post(now time.Time, e storeEvent) {
	n.mu.Lock()
	switch e.name {
	case EventStoreDown:
		n.downSince = now
	case EventStoreUp:
		if !n.downSince.IsZero() {
			e.data["downtime_seconds"] = now.Sub(n.downSince).Seconds()
		}
	}
	n.queue = append(n.queue, e)
	start := !n.busy
	n.busy = true
	n.mu.Unlock()
	if start {
		go n.deliver()
	}
}

// deliver hands the queued events to notify, one at a time, until the
// queue is empty.
func (n *notifier) deliver() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.busy = false
			n.mu.Unlock()
			return
		}
		e := n.queue[0]
		n.queue[0] = storeEvent{}
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.notify(e.name, e.data)
	}
}
