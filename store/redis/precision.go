package redis

import (
	"fmt"
	"math/bits"

	"github.com/ratewarden/ratewarden/algorithms"
)

// Lua numbers are doubles. The Lua twins compute exactly what the Go
// transitions compute (which work in int64 and 128-bit products) only while
// every value is an integer below 2^53 and every floored quotient a/b has
// a + b <= 2^53. The twins keep to that when:
//
//   - the time is below 2^52 microseconds (the year 2112);
//   - every span (window, lease, GCRA tolerance, token refill time) is at
//     most maxSpan = 2^50 microseconds, about 35 years, so a timestamp plus
//     two spans stays below 2^53;
//   - every product the twin forms is at most maxProduct = 2^53 - 2^50, so
//     that adding any divisor (at most 2^50) stays below 2^53:
//     gcra Burst * ceil(Window/Limit) (also a span), token_bucket
//     (Burst + Limit) * Window, sliding_window Limit * Window;
//   - limits and bursts are at most 2^50.
//
// That allows, for example, a token_bucket of a million units per hour or
// 45 thousand per day (with Burst = Limit), and a sliding_window of twice
// that. checkPrecision refuses a policy
// outside these bounds; the store runs the same check on every request, so
// a live override cannot slip past it either.
//
// Give-backs of any size are exact: a cost whose product would exceed 2^53
// takes the state to idle in both twins. The bounds hold per policy: after
// a reload lowers a token_bucket or sliding_window limit by many orders of
// magnitude, a key's old counts could form a product past 2^53 until it
// next goes idle.
const (
	maxSpan    = 1 << 50
	maxProduct = 1<<53 - 1<<50
)

// CheckPolicy reports whether the Redis store can run alg under p with the
// exact decisions of the Go transition: alg must be one of Ratewarden's own
// algorithms, and p within the bounds of the Lua twins' double-precision
// arithmetic (see the package documentation). A handler calls it when it
// provisions a zone, so that an unusable policy fails the config load.
func CheckPolicy(alg algorithms.Algorithm, p algorithms.Policy) error {
	id, err := idOf(alg)
	if err != nil {
		return err
	}
	return checkPrecision(id, p)
}

func checkPrecision(id algID, p algorithms.Policy) error {
	w := windowMicros(p)
	if id == algConcurrency && p.Window <= 0 {
		w = algorithms.DefaultLease.Microseconds()
	}
	if w > maxSpan {
		return fmt.Errorf("%s: window %s is longer than the redis store supports (2^50µs, about 35 years)", id, p.Window)
	}
	if p.Limit <= 0 {
		// Unusable, but harmless: the twins admit nothing and compute no
		// product. Policy.Validate reports it.
		return nil
	}
	burst := p.EffectiveBurst()
	if p.Limit > maxSpan || burst > maxSpan {
		return fmt.Errorf("%s: limit %d or burst %d is larger than the redis store supports (2^50)", id, p.Limit, burst)
	}
	switch id {
	case algGCRA:
		interval := max((w+p.Limit-1)/p.Limit, 1)
		if tol, ok := product(burst, interval); !ok || tol > maxSpan {
			return fmt.Errorf("gcra: burst %d times the emission interval %dµs (window/limit) exceeds the redis store's bound of 2^50µs (about 35 years): lower the burst or shorten the window", burst, interval)
		}
	case algTokenBucket:
		prod, ok := product(burst+p.Limit, w)
		if !ok || prod > maxProduct {
			return fmt.Errorf("token_bucket: (burst %d + limit %d) times the window in microseconds (%d) exceeds the redis store's bound of 2^53-2^50: lower the limit or shorten the window", burst, p.Limit, w)
		}
		if refill := (prod + p.Limit - 1) / p.Limit; refill > maxSpan {
			return fmt.Errorf("token_bucket: refilling %d tokens at %d per %s takes longer than the redis store supports (2^50µs, about 35 years)", burst, p.Limit, p.Window)
		}
	case algSlidingWindow:
		if prod, ok := product(p.Limit, w); !ok || prod > maxProduct {
			return fmt.Errorf("sliding_window: limit %d times the window in microseconds (%d) exceeds the redis store's bound of 2^53-2^50: lower the limit or shorten the window", p.Limit, w)
		}
	}
	return nil
}

// product returns a*b for a, b >= 0, and false when it overflows int64.
func product(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > 1<<63-1 {
		return 0, false
	}
	return int64(lo), true
}
