package algorithms

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(FixedWindow{})
}

// FixedWindow counts units in windows aligned to multiples of Window since
// the unix epoch, and admits a request while its window's count plus its
// cost is at most Limit. The count starts over at each window boundary, so
// up to 2*Limit units can pass in an interval of length Window that straddles
// a boundary; within one aligned window it never admits more than Limit.
//
// State: V[0] is the start of the window the count belongs to (unix
// microseconds), V[1] the count. A count from an earlier window is zero. If
// the clock steps back into an earlier window, the stored (later) window is
// kept, which only errs on the side of the limit.
//
// A denied request may retry when the window ends. A cost above Limit can
// never be admitted; it is denied with RetryAfter set to Window.
type FixedWindow struct{}

// CaddyModule returns the Caddy module information.
func (FixedWindow) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.fixed_window",
		New: func() caddy.Module { return new(FixedWindow) },
	}
}

// Name returns "fixed_window".
func (FixedWindow) Name() string { return "fixed_window" }

// Exact reports true: no aligned window admits more than Limit units.
func (FixedWindow) Exact() bool { return true }

// Take applies cost at now. See the type's documentation for the rule.
func (FixedWindow) Take(s State, now time.Time, p Policy, cost int64) (State, Decision) {
	if p.Limit <= 0 {
		return unusable(s, p, cost)
	}
	t := Micros(now)
	w := windowMicros(p)
	start, count := alignDown(t, w), int64(0)
	if s.V[0] >= start {
		start, count = s.V[0], s.V[1]
	}
	end := start + w - t

	switch {
	case cost > p.Limit:
		return s, deny(p, p.Limit-count, w, fixedReset(count, end))
	case cost < 0:
		count = max(count-giveBack(cost), 0)
	case cost == 0:
	case cost > p.Limit-count:
		return s, deny(p, p.Limit-count, end, fixedReset(count, end))
	default:
		count += cost
	}
	if count == 0 {
		return State{}, allow(p, p.Limit, 0)
	}
	return State{V: [3]int64{start, count}}, allow(p, p.Limit-count, end)
}

// fixedReset is the time until a window holding count units is idle: its
// end, or 0 when it is empty.
func fixedReset(count, end int64) int64 {
	if count == 0 {
		return 0
	}
	return end
}

// Interface guards
var (
	_ Algorithm    = (*FixedWindow)(nil)
	_ Exact        = (*FixedWindow)(nil)
	_ caddy.Module = (*FixedWindow)(nil)
)
