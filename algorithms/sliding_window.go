package algorithms

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(SlidingWindow{})
}

// SlidingWindow is the two-counter approximation of a sliding window, as
// Cloudflare describes it. Units are counted in windows aligned to multiples
// of Window since the unix epoch, and the previous window's count is weighted
// by how much of it the sliding window still overlaps:
//
//	estimate = floor(prev * (Window - elapsed) / Window) + curr
//
// where elapsed is the time since the current window started. A request of
// cost c is admitted when estimate + c <= Limit. The state is O(1), but the
// estimate assumes the previous window's units were spread evenly, so it is
// not exact: it does not implement Exact.
//
// State: V[0] is the current window's start (unix microseconds), V[1] its
// count and V[2] the previous window's count. Counts older than the previous
// window are zero. If the clock steps back into an earlier window, the stored
// window is kept and treated as just started.
//
// The key is idle one window after the last window with a count: ResetAfter
// runs to the end of the next window while the current count is non-zero,
// and to the end of the current window when only the previous one counts.
//
// A negative cost gives units back to the current window first, then to the
// previous one. A cost above Limit can never be admitted; it is denied with
// RetryAfter set to Window.
type SlidingWindow struct{}

// CaddyModule returns the Caddy module information.
func (SlidingWindow) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.sliding_window",
		New: func() caddy.Module { return new(SlidingWindow) },
	}
}

// Name returns "sliding_window".
func (SlidingWindow) Name() string { return "sliding_window" }

// Take applies cost at now. See the type's documentation for the rule.
func (SlidingWindow) Take(s State, now time.Time, p Policy, cost int64) (State, Decision) {
	if p.Limit <= 0 {
		return unusable(s, p, cost)
	}
	t := Micros(now)
	w := windowMicros(p)
	start, curr, prev := alignDown(t, w), int64(0), int64(0)
	switch {
	case s.V[0] >= start:
		start, curr, prev = s.V[0], s.V[1], s.V[2]
	case s.V[0] == start-w:
		prev = s.V[1]
	}
	elapsed := max(t-start, 0)
	estimate := satAdd(mulDiv(prev, w-elapsed, w), curr)
	reset := func() int64 {
		switch {
		case curr > 0:
			return start + 2*w - t
		case prev > 0:
			return start + w - t
		}
		return 0
	}

	switch {
	case cost > p.Limit:
		return s, deny(p, p.Limit-estimate, w, reset())
	case cost < 0:
		refund := giveBack(cost)
		fromCurr := min(refund, curr)
		curr, prev = curr-fromCurr, max(prev-(refund-fromCurr), 0)
		estimate = mulDiv(prev, w-elapsed, w) + curr
	case cost == 0:
	case cost > p.Limit-estimate:
		return s, deny(p, p.Limit-estimate, slidingRetry(start, curr, prev, p.Limit-cost, w)-t, reset())
	default:
		curr += cost
		estimate += cost
	}
	if curr == 0 && prev == 0 {
		return State{}, allow(p, p.Limit, 0)
	}
	return State{V: [3]int64{start, curr, prev}}, allow(p, p.Limit-estimate, reset())
}

// slidingRetry returns the first unix microsecond at which the estimate is at
// most room (Limit - cost, >= 0), for a window starting at start with counts
// curr and prev and no further admissions. The estimate never grows with
// time, so that is when the same cost would be admitted.
func slidingRetry(start, curr, prev, room, w int64) int64 {
	if curr > room {
		// Not before the next window, where curr becomes the weighted one.
		start, curr, prev = start+w, 0, curr
	}
	return start + overlapDrop(prev, room-curr, w)
}

// overlapDrop returns the elapsed time e in [0, w] from which
// floor(prev * (w - e) / w) <= room, for room >= 0 and prev > 0 (a denial
// implies both). That holds when prev * (w - e) <= (room+1)*w - 1, that is
// when w - e <= ceil((room+1)*w / prev) - 1.
func overlapDrop(prev, room, w int64) int64 {
	span := mulDivCeil(room+1, w, prev) - 1
	return max(w-span, 0)
}

// Interface guards
var (
	_ Algorithm    = (*SlidingWindow)(nil)
	_ caddy.Module = (*SlidingWindow)(nil)
)
