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
// same name has breakers open starts with the same breakers open (quietly:
// the outage was already logged and announced): the store's own if its
// start-up ping got no answer either, and on a Cluster those of the same
// primaries. It keeps the outage's start, so rate_limit_store_up reports
// the whole downtime. If Redis answers and no primary was down, the new
// store announces the end of the outage at once.

// live maps a store name to the guard of the newest store of that name
// that has not been cleaned up.
var live sync.Map // string -> *guard

// errInherited is the failure that opens a new store's breaker when the
// store it replaces was down.
var errInherited = errors.New("redis was unavailable when the config was reloaded")

// adopt makes s's guard the live guard of its store name. If the guard it
// replaces has breakers that are not closed, s takes over that outage: the
// same breakers start open in s (the store's own only while Redis still
// does not answer: answered is the start-up check's result), or, if none
// needs to, s announces the end of the outage itself. Either way the old
// guard emits no more events.
func (s *Store) adopt(failures int, answered bool) {
	g := s.g
	old, ok := live.Swap(g.name, g)
	if !ok {
		return
	}
	prev := old.(*guard)
	prev.handedOver.Store(true)
	prev.levelsMu.Lock()
	down := make([]string, 0, len(prev.levels))
	for b := range prev.levels {
		down = append(down, b.node)
	}
	prev.levelsMu.Unlock()
	if len(down) == 0 {
		return
	}
	g.events.inherit(prev.events)
	if p := prev.lastErr.Load(); p != nil {
		g.lastErr.Store(p)
	}
	g.inheriting.Store(true)
	tripped := false
	for _, node := range down {
		switch {
		case node == "" && !answered:
			trip(g.main, failures)
		case node != "" && g.nodes != nil:
			trip(s.nodeBreaker(node), failures)
		default:
			continue
		}
		tripped = true
	}
	g.inheriting.Store(false)
	if tripped {
		g.log.Debug("redis store still unavailable after a config reload: its circuit breakers start open", zap.Strings("nodes", down))
		return
	}
	g.log.Info("redis store available again: it answered after a config reload")
	g.events.up(time.Now())
}

// retire removes g as the live guard of its name, unless a newer one has
// replaced it.
func (g *guard) retire() {
	live.CompareAndDelete(g.name, g)
}

// trip opens b with failures failures.
func trip(b *breaker, failures int) {
	for range failures {
		done, err := b.cb.Allow()
		if err != nil {
			return
		}
		done(errInherited)
	}
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
