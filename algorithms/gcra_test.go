package algorithms

import (
	"math"
	"testing"
	"time"
)

func TestGCRA(t *testing.T) {
	t.Parallel()
	// 3 per 3s: one unit per second, up to 3 at once.
	even := Policy{Limit: 3, Window: 3 * time.Second}
	// 10 per second (one per 100ms) with a burst of 5.
	bursty := Policy{Limit: 10, Window: time.Second, Burst: 5}
	ms := time.Millisecond

	runScenarios(t, GCRA{}, []scenario{
		{name: "admits a full burst from idle then denies the next unit", policy: even, steps: []step{
			{at: 0, cost: 1, want: ok(2, time.Second), state: &State{V: [3]int64{us0 + 1e6}}},
			{at: 0, cost: 1, want: ok(1, 2*time.Second)},
			{at: 0, cost: 1, want: ok(0, 3*time.Second)},
			{at: 0, cost: 1, want: no(0, time.Second, 3*time.Second)},
		}},
		{name: "admits again one emission interval later", policy: even, steps: []step{
			{at: 0, cost: 3, want: ok(0, 3*time.Second)},
			{at: 999999 * time.Microsecond, cost: 1, want: no(0, us(1), us(2000001))},
			{at: time.Second, cost: 1, want: ok(0, 3*time.Second)},
		}},
		{name: "burst then steady rate", policy: bursty, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms)},
			{at: 50 * ms, cost: 1, want: no(0, 50*ms, 450*ms)},
			{at: 100 * ms, cost: 1, want: ok(0, 500*ms)},
			{at: 200 * ms, cost: 1, want: ok(0, 500*ms)},
			{at: 300 * ms, cost: 1, want: ok(0, 500*ms)},
			{at: 350 * ms, cost: 1, want: no(0, 50*ms, 450*ms)},
		}},
		{name: "remaining recovers one unit per interval", policy: bursty, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms)},
			{at: 250 * ms, cost: 0, want: ok(2, 250*ms)},
		}},
		{name: "a cost above the burst is never admitted", policy: bursty, steps: []step{
			{at: 0, cost: 6, want: no(5, time.Second, 0)},
			{at: 0, cost: 1, want: ok(4, 100*ms)},
			{at: 0, cost: 6, want: no(4, time.Second, 100*ms)},
		}},
		{name: "zero cost takes nothing", policy: bursty, steps: []step{
			{at: 0, cost: 0, want: ok(5, 0), state: &State{}},
			{at: 0, cost: 2, want: ok(3, 200*ms)},
			{at: 0, cost: 0, want: ok(3, 200*ms), state: &State{V: [3]int64{us0 + 200000}}},
			{at: 100 * ms, cost: 0, want: ok(4, 100*ms)},
		}},
		{name: "negative cost gives units back but not past idle", policy: bursty, steps: []step{
			{at: 0, cost: 3, want: ok(2, 300*ms)},
			{at: 0, cost: -1, want: ok(3, 200*ms), state: &State{V: [3]int64{us0 + 200000}}},
			{at: 0, cost: -10, want: ok(5, 0), state: &State{}},
			{at: 0, cost: math.MinInt64, want: ok(5, 0), state: &State{}},
		}},
		{name: "idle state after ResetAfter behaves like new key", policy: bursty, steps: []step{
			{at: 0, cost: 3, want: ok(2, 300*ms)},
			{at: 300 * ms, cost: 0, want: ok(5, 0), state: &State{}},
			{at: 300 * ms, cost: 5, want: ok(0, 500*ms)},
		}},
		{name: "emission interval rounds up so the rate never exceeds the limit", policy: Policy{Limit: 3, Window: 10 * time.Microsecond}, steps: []step{
			// T = ceil(10/3) = 4µs, tolerance 12µs.
			{at: 0, cost: 3, want: ok(0, us(12))},
			{at: us(2), cost: 1, want: no(0, us(2), us(10))},
			{at: us(4), cost: 1, want: ok(0, us(12))},
		}},
		{name: "emission interval is at least one microsecond", policy: Policy{Limit: 1000, Window: 10 * time.Microsecond, Burst: 2}, steps: []step{
			{at: 0, cost: 2, want: ok(0, us(2))},
			{at: 0, cost: 1, want: no(0, us(1), us(2))},
			{at: us(1), cost: 1, want: ok(0, us(2))},
		}},
		{name: "durations beyond time.Duration saturate", policy: Policy{Limit: 1, Window: time.Second, Burst: 1e12}, steps: []step{
			{at: 0, cost: 1e12, want: ok(0, math.MaxInt64), state: &State{V: [3]int64{us0 + 1e18}}},
			{at: 0, cost: 1, want: no(0, time.Second, math.MaxInt64)},
		}},
		{name: "a tolerance beyond int64 microseconds saturates instead of wrapping", policy: Policy{Limit: 1, Window: math.MaxInt64, Burst: math.MaxInt64}, steps: []step{
			{at: 0, cost: math.MaxInt64, want: ok(0, math.MaxInt64), state: &State{V: [3]int64{math.MaxInt64}}},
			{at: 0, cost: math.MaxInt64, want: ok(0, math.MaxInt64), state: &State{V: [3]int64{math.MaxInt64}}},
		}},
	})
}
