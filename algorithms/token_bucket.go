package algorithms

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(TokenBucket{})
}

// TokenBucket is a bucket of Burst tokens (Limit when Burst is unset) that
// refills continuously at Limit tokens per Window. A request of cost c is
// admitted when the bucket holds at least c whole tokens, and takes them.
//
// The refill is exact, with no rounding drift: the state is a whole number
// of tokens at an anchor time, and the level at now is
//
//	min(Burst, V[0] + floor((now - V[1]) * Limit / Window))
//
// V[0] is the token count at the anchor, not counting refill since then; it
// may be negative (tokens taken against refill not yet credited) and always
// stays above -Limit. V[1] is the anchor in unix microseconds. Each Take
// moves the anchor forward by whole windows, crediting Limit tokens each, so
// now - V[1] < Window and the product above stays below Window*Limit. A
// zero V[1] means a full bucket, so the zero State is a full bucket, and a
// full bucket is stored as the zero State.
//
// In any closed interval of length d the bucket admits at most
// Burst + floor(d*Limit/Window) units.
//
// A cost above Burst can never be admitted; it is denied with RetryAfter set
// to Window.
type TokenBucket struct{}

// CaddyModule returns the Caddy module information.
func (TokenBucket) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.token_bucket",
		New: func() caddy.Module { return new(TokenBucket) },
	}
}

// Name returns "token_bucket".
func (TokenBucket) Name() string { return "token_bucket" }

// Exact reports true: the bucket never admits more than Burst plus the
// tokens refilled in an interval.
func (TokenBucket) Exact() bool { return true }

// Take applies cost at now. See the type's documentation for the rule.
func (TokenBucket) Take(s State, now time.Time, p Policy, cost int64) (State, Decision) {
	if p.Limit <= 0 {
		return unusable(s, p, cost)
	}
	b := bucket{capacity: p.EffectiveBurst(), limit: p.Limit, window: windowMicros(p), now: Micros(now)}
	base, anchor, tokens := b.level(s)

	switch {
	case cost > b.capacity:
		return s, deny(p, tokens, b.window, b.until(base, anchor, b.capacity))
	case cost < 0:
		refund := giveBack(cost)
		if refund >= b.capacity-tokens {
			return State{}, allow(p, b.capacity, 0)
		}
		base, tokens = base+refund, tokens+refund
	case cost > tokens:
		return s, deny(p, tokens, b.until(base, anchor, cost), b.until(base, anchor, b.capacity))
	default:
		base, tokens = base-cost, tokens-cost
	}
	if tokens >= b.capacity {
		return State{}, allow(p, tokens, 0)
	}
	return State{V: [3]int64{base, anchor}}, allow(p, tokens, b.until(base, anchor, b.capacity))
}

// bucket holds one Take's policy figures, in tokens and microseconds.
type bucket struct {
	capacity, limit, window, now int64
}

// level normalizes s at b.now. It returns the tokens at the anchor (base),
// the anchor, and the whole tokens available now. A full bucket is anchored
// at now with base == tokens == capacity, so refill starts from now once
// tokens are taken.
func (b bucket) level(s State) (base, anchor, tokens int64) {
	full := func() (int64, int64, int64) { return b.capacity, b.now, b.capacity }
	base, anchor = s.V[0], s.V[1]
	if anchor == 0 || base >= b.capacity {
		return full()
	}
	elapsed := b.now - anchor
	if elapsed <= 0 {
		// The clock went back: credit nothing until it passes the anchor.
		// The level at the last Take was at least max(base, 0).
		return base, anchor, max(base, 0)
	}
	if k := elapsed / b.window; k > 0 {
		if k >= ceilDiv(b.capacity-base, b.limit) {
			return full()
		}
		// k whole windows credit exactly k*Limit tokens; the bound above
		// keeps the product below capacity - base + limit.
		base += k * b.limit
		anchor += k * b.window
		elapsed -= k * b.window
	}
	tokens = base + mulDiv(elapsed, b.limit, b.window)
	if tokens >= b.capacity {
		return full()
	}
	return base, anchor, tokens
}

// until returns the microseconds from now until a bucket with base tokens at
// anchor holds target whole tokens: the first t with
// base + floor((t - anchor) * limit / window) >= target.
func (b bucket) until(base, anchor, target int64) int64 {
	if target <= base {
		return 0
	}
	at := satAdd(anchor, mulDivCeil(target-base, b.window, b.limit))
	return max(at-b.now, 0)
}

// Interface guards
var (
	_ Algorithm    = (*TokenBucket)(nil)
	_ Exact        = (*TokenBucket)(nil)
	_ caddy.Module = (*TokenBucket)(nil)
)
