package algorithms

import (
	"math"
	"math/bits"
	"time"
)

// The helpers in this file are the arithmetic every transition shares. All
// of it is int64 on unix microseconds and every division floors, so that a
// Lua twin working in doubles gets bit-identical results as long as its
// intermediate values stay below 2^53. The Go side never overflows: sums
// and products saturate at math.MaxInt64, and mulDiv works in 128 bits.
//
// The largest intermediate values, for a Lua twin to respect:
//   - gcra: now + Burst*T, where T = Window/Limit;
//   - token_bucket: (Burst + Limit) * Window (in mulDivCeil);
//   - sliding_window: Limit * Window;
//   - fixed_window, sliding_log, concurrency: timestamps and counts only.
//
// Window is in microseconds: (Burst + Limit) * Window < 2^53 allows, for
// example, 2.5 million per hour but only 100 thousand per day.

// windowMicros returns the policy's window in microseconds, at least 1. A
// window shorter than a microsecond would otherwise divide by zero.
func windowMicros(p Policy) int64 {
	return max(p.Window.Microseconds(), 1)
}

// dur converts microseconds to a Duration: 0 for negative values and
// saturating at the largest Duration.
func dur(us int64) time.Duration {
	switch {
	case us <= 0:
		return 0
	case us > math.MaxInt64/int64(time.Microsecond):
		return math.MaxInt64
	}
	return time.Duration(us) * time.Microsecond
}

// ceilDiv returns ceil(a/b) for a >= 0 and b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// alignDown returns the largest multiple of w that is <= t, for w > 0 and
// any sign of t (Go's / truncates towards zero; this floors).
func alignDown(t, w int64) int64 {
	r := t % w
	if r < 0 {
		r += w
	}
	return t - r
}

// satAdd returns a+b for b >= 0, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// satMul returns a*b for a, b >= 0, saturating at math.MaxInt64.
func satMul(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// mulDiv returns floor(a*b/c) for a, b >= 0 and c > 0, computing the product
// in 128 bits and saturating at math.MaxInt64.
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// mulDivCeil returns ceil(a*b/c) for a, b >= 0 and c > 0, saturating at
// math.MaxInt64.
func mulDivCeil(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, uint64(c))
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// giveBack returns how many units a negative cost gives back: -cost, with
// math.MinInt64 saturating to math.MaxInt64.
func giveBack(cost int64) int64 {
	if cost == math.MinInt64 {
		return math.MaxInt64
	}
	return -cost
}

// allow builds an allowed decision. remaining is clamped at 0 and resetUs is
// the microseconds until the key is idle again.
func allow(p Policy, remaining, resetUs int64) Decision {
	return Decision{
		Allowed:    true,
		Limit:      p.Limit,
		Remaining:  max(remaining, 0),
		ResetAfter: dur(resetUs),
	}
}

// deny builds a denied decision; retryUs is the microseconds until the same
// cost would be admitted.
func deny(p Policy, remaining, retryUs, resetUs int64) Decision {
	return Decision{
		Limit:      p.Limit,
		Remaining:  max(remaining, 0),
		RetryAfter: dur(retryUs),
		ResetAfter: dur(resetUs),
	}
}

// unusable handles a policy that did not pass Validate (Limit <= 0), so that
// no transition divides by zero: it admits nothing, accepts give-backs and
// zero costs as no-ops, and leaves the state alone.
func unusable(s State, p Policy, cost int64) (State, Decision) {
	if cost <= 0 {
		return s, allow(p, 0, 0)
	}
	return s, deny(p, 0, windowMicros(p), 0)
}
