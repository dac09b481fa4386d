// Package algorithms holds Ratewarden's rate-limiting algorithms. Each one is
// a pure state transition with no I/O:
//
//	(state, now, policy, cost) -> (next state, decision)
//
// The in-memory store runs the Go transition under a per-key lock; the Redis
// store runs a Lua twin of the same transition. Both twins must give the same
// decisions, so every transition uses integer microsecond arithmetic only.
//
// A third party adds an algorithm by registering a Caddy module in the
// rate_limit.algorithms namespace whose value implements Algorithm.
package algorithms

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Policy is the limit a zone applies to one key: Limit events per Window,
// with bursts up to Burst where the algorithm has a notion of burst.
type Policy struct {
	// Limit is the number of events (units of cost) allowed per Window. For
	// the concurrency algorithm it is the number of requests in flight.
	Limit int64
	// Window is the period Limit applies to. For the concurrency algorithm it
	// is the lease after which a slot that was never released is reclaimed
	// (0 means DefaultLease).
	Window time.Duration
	// Burst is the largest cost that may be admitted at once from an idle
	// key, for gcra and token_bucket. 0 means Limit.
	Burst int64
}

// DefaultLease is how long a concurrency slot is held when it is never
// released and the policy gives no window.
const DefaultLease = time.Hour

// EffectiveBurst returns Burst, or Limit when Burst is not set.
func (p Policy) EffectiveBurst() int64 {
	if p.Burst > 0 {
		return p.Burst
	}
	return p.Limit
}

// Validate reports whether the policy can be used.
func (p Policy) Validate() error {
	if p.Limit <= 0 {
		return fmt.Errorf("limit must be greater than zero, got %d", p.Limit)
	}
	if p.Window < 0 {
		return fmt.Errorf("window must not be negative, got %s", p.Window)
	}
	if p.Burst < 0 {
		return fmt.Errorf("burst must not be negative, got %d", p.Burst)
	}
	return nil
}

// Decision is the outcome of one transition.
type Decision struct {
	// Allowed reports whether the cost was admitted.
	Allowed bool
	// Limit is the policy's limit, for response headers.
	Limit int64
	// Remaining is how many more units the key could take right now,
	// after this decision. Never negative.
	Remaining int64
	// RetryAfter is how long until the same cost would be admitted.
	// 0 when Allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to its idle state (full
	// quota). A store keeps the key's state for at least this long; after
	// it, the state is equivalent to a new key's and may be dropped.
	ResetAfter time.Duration
}

// State is an algorithm's per-key state. A new key has the zero State.
// Timestamps in V and Log are unix microseconds. What each scalar means is
// the algorithm's business; stores treat State as opaque.
type State struct {
	V   [3]int64
	Log []int64
}

// Algorithm is a rate-limiting algorithm.
type Algorithm interface {
	// Name is the algorithm's short name, such as "gcra".
	Name() string
	// Take applies cost at now to s under p. It never modifies s (nor the
	// visible elements of s.Log); next is the state to store if the caller
	// commits the decision. A denied decision's next equals s.
	//
	// next.Log may share s.Log's array and use its spare capacity, so of
	// several next states computed from the same s a caller keeps at most
	// one.
	//
	// A negative cost gives units back (a concurrency slot released, a
	// refund). It is always allowed and never takes the state past idle.
	Take(s State, now time.Time, p Policy, cost int64) (next State, d Decision)
}

// Exact is implemented by algorithms that never admit more than Limit units
// in any window of length Window (sliding_log, fixed_window within its
// aligned windows, gcra and token_bucket with their burst, concurrency).
type Exact interface {
	Exact() bool
}

// Micros converts t to unix microseconds, the unit of every timestamp in
// State.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts microseconds to a Duration: 0 for negative values,
// saturating at the largest Duration. Stores use it to read decisions
// computed elsewhere (the Redis store's Lua twins).
func FromMicros(us int64) time.Duration { return dur(us) }

// Lookup returns a new instance of the algorithm registered as
// rate_limit.algorithms.<name>.
func Lookup(name string) (Algorithm, error) {
	info, err := caddy.GetModule("rate_limit.algorithms." + name)
	if err != nil {
		return nil, fmt.Errorf("unknown algorithm %q: %w", name, err)
	}
	alg, ok := info.New().(Algorithm)
	if !ok {
		return nil, fmt.Errorf("module %s does not implement algorithms.Algorithm", info.ID)
	}
	return alg, nil
}
