package algorithms

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(SlidingLog{})
}

// SlidingLog is the exact sliding-window limit: a request of cost c is
// admitted when the units admitted in the window (now - Window, now], plus c,
// come to at most Limit. It looks back one Window and allows if fewer than
// Limit events happened there, which is what caddy-ratelimit does, so it is
// the default for migrated configurations.
//
// State: Log holds one entry per admitted request, oldest first. An entry of
// cost 1 is its unix-microsecond timestamp; an entry of cost n > 1 is the
// pair -n, timestamp. Timestamps are positive (now is after 1970), so a negative element always
// marks a count, and the last element is always a timestamp. V[0] is the sum
// of the entries' costs, so an admission only has to read the entries that
// leave the window.
//
// Memory per key: each entry takes at most 8 bytes per unit of cost, so the
// live log is at most 8*Limit bytes (plus the State's 24 bytes and a slice
// header). Entries leave from the front by reslicing, so the backing array
// may hold up to about twice the live log until the next append reallocates.
//
// A negative cost removes the newest units. A cost above Limit can never be
// admitted; it is denied with RetryAfter set to Window.
type SlidingLog struct{}

// CaddyModule returns the Caddy module information.
func (SlidingLog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.sliding_log",
		New: func() caddy.Module { return new(SlidingLog) },
	}
}

// Name returns "sliding_log".
func (SlidingLog) Name() string { return "sliding_log" }

// Exact reports true: no interval of length Window ever holds more than
// Limit admitted units.
func (SlidingLog) Exact() bool { return true }

// Take applies cost at now. See the type's documentation for the rule.
func (SlidingLog) Take(s State, now time.Time, p Policy, cost int64) (State, Decision) {
	if p.Limit <= 0 {
		return unusable(s, p, cost)
	}
	t := Micros(now)
	w := windowMicros(p)
	log, used := pruneLog(s.Log, s.V[0], t-w)

	switch {
	case cost > p.Limit:
		return s, deny(p, p.Limit-used, w, logReset(log, t, w))
	case cost < 0:
		log, used = dropNewest(log, used, giveBack(cost))
	case cost == 0:
	case cost > p.Limit-used:
		return s, deny(p, p.Limit-used, logRetry(log, used+cost-p.Limit, t, w), logReset(log, t, w))
	default:
		// Keep the log sorted even if the clock steps back: an entry
		// stamped with the newest time stays in the window longer, which
		// only errs on the side of the limit.
		at := t
		if len(log) > 0 {
			at = max(at, log[len(log)-1])
		}
		log = appendEntry(log, at, cost)
		used += cost
	}
	if used <= 0 {
		return State{}, allow(p, p.Limit, 0)
	}
	return State{V: [3]int64{used}, Log: log}, allow(p, p.Limit-used, logReset(log, t, w))
}

// logEntry decodes the entry starting at log[i]: its timestamp, its cost, and
// the index of the next entry. A count marker with no timestamp after it
// (never written by this package) reads as an entry at time 0, which every
// window has left.
func logEntry(log []int64, i int) (at, n int64, next int) {
	if log[i] >= 0 {
		return log[i], 1, i + 1
	}
	if i+1 == len(log) {
		return 0, -log[i], i + 1
	}
	return log[i+1], -log[i], i + 2
}

// appendEntry appends an entry of cost n > 0 at time at. It writes only past
// len(log), never over an element the caller can see.
func appendEntry(log []int64, at, n int64) []int64 {
	if n == 1 {
		return append(log, at)
	}
	return append(log, -n, at)
}

// pruneLog drops the entries at or before cutoff (the window is
// (now - Window, now]) and subtracts their costs from used. It reslices and
// never writes. An emptied log is returned as nil to release its array.
func pruneLog(log []int64, used, cutoff int64) ([]int64, int64) {
	i := 0
	for i < len(log) {
		at, n, next := logEntry(log, i)
		if at > cutoff {
			break
		}
		used -= n
		i = next
	}
	if i == len(log) {
		return nil, 0
	}
	return log[i:], used
}

// dropNewest removes the newest r units. Whole entries go by reslicing; an
// entry that is only partly removed is rewritten in a copy, because its
// elements are visible to the caller of Take.
func dropNewest(log []int64, used, r int64) ([]int64, int64) {
	for r > 0 && len(log) > 0 {
		end := len(log) - 1
		at, n, start := log[end], int64(1), end
		if end > 0 && log[end-1] < 0 {
			n, start = -log[end-1], end-1
		}
		if n > r {
			fresh := make([]int64, start, start+2)
			copy(fresh, log[:start])
			return appendEntry(fresh, at, n-r), used - r
		}
		log, used, r = log[:start], used-n, r-n
	}
	if len(log) == 0 {
		return nil, 0
	}
	// Clip the capacity: the dropped entries are still visible to the
	// caller, and a later append must not overwrite them.
	return log[:len(log):len(log)], used
}

// logRetry returns the microseconds from now until excess units have left
// the window: the entry that completes the oldest excess units leaves at its
// timestamp + Window.
func logRetry(log []int64, excess, now, window int64) int64 {
	for i := 0; i < len(log); {
		at, n, next := logEntry(log, i)
		excess -= n
		if excess <= 0 {
			return at + window - now
		}
		i = next
	}
	// Unreachable while V[0] matches the log: excess <= used.
	return window
}

// logReset returns the microseconds from now until the newest entry has left
// the window, 0 for an empty log.
func logReset(log []int64, now, window int64) int64 {
	if len(log) == 0 {
		return 0
	}
	return log[len(log)-1] + window - now
}

// Interface guards
var (
	_ Algorithm    = (*SlidingLog)(nil)
	_ Exact        = (*SlidingLog)(nil)
	_ caddy.Module = (*SlidingLog)(nil)
)
