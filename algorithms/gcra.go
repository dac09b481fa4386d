package algorithms

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(GCRA{})
}

// GCRA is the Generic Cell Rate Algorithm: a token bucket kept as a single
// timestamp. Each unit of cost is spaced by the emission interval
//
//	T = Window / Limit   (microseconds, rounded up, at least 1)
//
// and a key may run ahead of that schedule by Burst units: an idle key
// admits up to Burst units at once, then one unit per T.
//
// State: V[0] is the theoretical arrival time (TAT), the unix microsecond at
// which the key is idle again. The zero State (TAT 0, in the past) is idle.
//
// A request of cost c at now is admitted when
//
//	max(TAT, now) + c*T - now <= Burst*T
//
// so in any closed interval of length d the key admits at most
// Burst + floor(d/T) units. Because T is rounded up, that never exceeds
// Burst + Limit*d/Window: when Limit does not divide Window in
// microseconds, the steady rate is a hair below Limit per Window rather
// than above it.
//
// A cost above Burst can never be admitted; it is denied with RetryAfter set
// to Window. Burst*T and the TAT saturate at math.MaxInt64 microseconds (the
// year 294247): a policy whose tolerance reaches that admits every cost up
// to Burst, rather than wrapping around.
type GCRA struct{}

// CaddyModule returns the Caddy module information.
func (GCRA) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.gcra",
		New: func() caddy.Module { return new(GCRA) },
	}
}

// Name returns "gcra".
func (GCRA) Name() string { return "gcra" }

// Exact reports true: GCRA never admits more than Burst + floor(d/T) units
// in an interval of length d.
func (GCRA) Exact() bool { return true }

// Take applies cost at now. See the type's documentation for the rule.
func (GCRA) Take(s State, now time.Time, p Policy, cost int64) (State, Decision) {
	if p.Limit <= 0 {
		return unusable(s, p, cost)
	}
	t := Micros(now)
	w := windowMicros(p)
	interval := max(ceilDiv(w, p.Limit), 1)
	burst := p.EffectiveBurst()
	tolerance := satMul(burst, interval)
	tat := max(s.V[0], t)
	// remaining is how many units fit before TAT runs past the tolerance.
	remaining := func(tat int64) int64 { return (tolerance - (tat - t)) / interval }

	switch {
	case cost > burst:
		return s, deny(p, remaining(tat), w, tat-t)
	case cost < 0:
		tat = max(t, tat-satMul(giveBack(cost), interval))
	default:
		next := satAdd(tat, satMul(cost, interval))
		if next-t > tolerance {
			// Admitted once max(TAT, at) + c*T - at <= tolerance; the
			// earliest such at is next - tolerance (<= TAT since c <= Burst).
			return s, deny(p, remaining(tat), next-tolerance-t, tat-t)
		}
		tat = next
	}
	if tat <= t {
		// Idle: the zero State behaves the same and lets a store drop it.
		return State{}, allow(p, remaining(t), 0)
	}
	return State{V: [3]int64{tat}}, allow(p, remaining(tat), tat-t)
}

// Interface guards
var (
	_ Algorithm    = (*GCRA)(nil)
	_ Exact        = (*GCRA)(nil)
	_ caddy.Module = (*GCRA)(nil)
)
