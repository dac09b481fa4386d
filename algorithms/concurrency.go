package algorithms

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(Concurrency{})
}

// concurrencyRetry is the RetryAfter of a denied acquire. When a slot frees
// depends on requests still in flight, which no state can know, so a denial
// suggests a short retry; it is shorter only when the lease runs out sooner.
const concurrencyRetry = time.Second

// Concurrency limits the requests in flight per key to Limit. A positive
// cost acquires that many slots when they fit; a negative cost releases
// slots (never below zero).
//
// Slots that are never released (a crashed instance, a lost response) are
// reclaimed by a lease: Policy.Window, or DefaultLease when Window is 0. Once
// the lease has passed since the last acquire or release, the key is idle
// again and all its slots are free.
//
// State: V[0] is the number of slots in flight, V[1] the unix microsecond of
// the last change. The zero State has nothing in flight.
//
// A denied acquire has RetryAfter of one second, or the time until the lease
// runs out if that is sooner. A cost above Limit can never be admitted; it
// is denied with RetryAfter set to the lease.
type Concurrency struct{}

// CaddyModule returns the Caddy module information.
func (Concurrency) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.concurrency",
		New: func() caddy.Module { return new(Concurrency) },
	}
}

// Name returns "concurrency".
func (Concurrency) Name() string { return "concurrency" }

// Exact reports true: no more than Limit slots are ever held at once.
func (Concurrency) Exact() bool { return true }

// Take applies cost at now. See the type's documentation for the rule.
func (Concurrency) Take(s State, now time.Time, p Policy, cost int64) (State, Decision) {
	if p.Limit <= 0 {
		return unusable(s, p, cost)
	}
	t := Micros(now)
	lease := DefaultLease.Microseconds()
	if p.Window > 0 {
		lease = windowMicros(p)
	}
	inFlight, changed := s.V[0], s.V[1]
	if inFlight <= 0 || t-changed >= lease {
		inFlight, changed = 0, t
	}
	expires := changed + lease - t

	switch {
	case cost > p.Limit:
		return s, deny(p, p.Limit-inFlight, lease, leaseReset(inFlight, expires))
	case cost < 0:
		inFlight = max(inFlight-giveBack(cost), 0)
	case cost == 0:
		// Looking does not renew the lease.
		if inFlight == 0 {
			return State{}, allow(p, p.Limit, 0)
		}
		return s, allow(p, p.Limit-inFlight, expires)
	case cost > p.Limit-inFlight:
		retry := min(concurrencyRetry.Microseconds(), expires)
		return s, deny(p, p.Limit-inFlight, retry, leaseReset(inFlight, expires))
	default:
		inFlight += cost
	}
	if inFlight == 0 {
		return State{}, allow(p, p.Limit, 0)
	}
	return State{V: [3]int64{inFlight, t}}, allow(p, p.Limit-inFlight, lease)
}

// leaseReset is the time until a key with inFlight slots is idle: when its
// lease expires, or 0 when nothing is in flight.
func leaseReset(inFlight, expires int64) int64 {
	if inFlight == 0 {
		return 0
	}
	return expires
}

// Interface guards
var (
	_ Algorithm    = (*Concurrency)(nil)
	_ Exact        = (*Concurrency)(nil)
	_ caddy.Module = (*Concurrency)(nil)
)
