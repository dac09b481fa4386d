package redis

import (
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Outages across config reloads.
//
// A reload builds a new store, with a closed breaker. If Redis is down at
// that moment, the new store would learn it again the hard way: its first
// breaker_failures decisions would each wait up to the timeout on a hung
// server, and it would log the outage and emit rate_limit_store_down a
// second time. Instead, a store provisioned while the running store of the
// same name has its breaker open starts with its own breaker open (quietly:
// the outage was already logged and announced), and the same outage start,
// so rate_limit_store_up reports the whole downtime.

// live maps a store name to the guard of the newest store of that name
// that has not been cleaned up.
var live sync.Map // string -> *guard

// errInherited is the failure that opens a new store's breaker when the
// store it replaces was down.
var errInherited = errors.New("redis was unavailable when the config was reloaded")

// adopt makes g the live guard of its store name. If the guard it replaces
// has a breaker that is not closed, g takes over that outage: while Redis
// still does not answer (answered, the start-up check's result, is false)
// g's breaker starts open; otherwise g announces the end of the outage
// itself. Either way the old guard emits no more events.
func (g *guard) adopt(failures int, answered bool) {
	old, ok := live.Swap(g.name, g)
	if !ok {
		return
	}
	prev := old.(*guard)
	prev.handedOver.Store(true)
	if prev.level.Load() == gaugeLevelClosed {
		return
	}
	g.events.inherit(prev.events)
	if answered {
		g.log.Info("redis store available again: it answered after a config reload")
		g.events.up(time.Now())
		return
	}
	g.inheritOutage(prev, failures)
}

// retire removes g as the live guard of its name, unless a newer one has
// replaced it.
func (g *guard) retire() {
	live.CompareAndDelete(g.name, g)
}

// inheritOutage opens g's breaker, without a log line or an event, for
// the outage of prev.
func (g *guard) inheritOutage(prev *guard, failures int) {
	if p := prev.lastErr.Load(); p != nil {
		g.lastErr.Store(p)
	}
	g.inheriting.Store(true)
	defer g.inheriting.Store(false)
	for range failures {
		done, err := g.main.cb.Allow()
		if err != nil {
			break
		}
		done(errInherited)
	}
	g.log.Debug("redis store still unavailable after a config reload: circuit breaker starts open", zap.String("on_failure", g.policy))
}

// inherit takes over prev's outage start, so that the up event reports the
// downtime from the first down event. Nil notifiers do nothing.
func (n *notifier) inherit(prev *notifier) {
	if n == nil || prev == nil {
		return
	}
	prev.mu.Lock()
	since := prev.downSince
	prev.mu.Unlock()
	n.mu.Lock()
	n.downSince = since
	n.mu.Unlock()
}
