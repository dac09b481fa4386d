package algorithms

import (
	"math"
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	// 5 tokens, refilled at 10 per second (one per 100ms).
	p := Policy{Limit: 10, Window: time.Second, Burst: 5}
	// 10 tokens, refilled at 2 per second.
	slow := Policy{Limit: 2, Window: time.Second, Burst: 10}
	ms := time.Millisecond

	runScenarios(t, TokenBucket{}, []scenario{
		{name: "the zero State is a full bucket", policy: p, steps: []step{
			{at: 0, cost: 0, want: ok(5, 0), state: &State{}},
		}},
		{name: "a full bucket admits a burst then denies", policy: p, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms), state: &State{V: [3]int64{0, us0}}},
			{at: 50 * ms, cost: 1, want: no(0, 50*ms, 450*ms)},
		}},
		{name: "burst then steady rate", policy: p, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms)},
			{at: 100 * ms, cost: 1, want: ok(0, 500*ms), state: &State{V: [3]int64{-1, us0}}},
			{at: 200 * ms, cost: 1, want: ok(0, 500*ms)},
			{at: 250 * ms, cost: 1, want: no(0, 50*ms, 450*ms)},
			{at: 300 * ms, cost: 1, want: ok(0, 500*ms)},
		}},
		{name: "refills continuously within a window", policy: p, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms)},
			{at: 250 * ms, cost: 0, want: ok(2, 250*ms)},
		}},
		{name: "refill over whole windows moves the anchor forward", policy: slow, steps: []step{
			{at: 0, cost: 10, want: ok(0, 5*time.Second)},
			// 2.5s refill 5 tokens; the anchor moves to +2s with 4 credited.
			{at: 2500 * ms, cost: 1, want: ok(4, 3*time.Second), state: &State{V: [3]int64{3, us0 + 2e6}}},
		}},
		{name: "retry after is exact to the microsecond", policy: p, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms)},
			{at: 0, cost: 3, want: no(0, 300*ms, 500*ms)},
			{at: 299999 * time.Microsecond, cost: 3, want: no(2, us(1), us(200001))},
			{at: 300 * ms, cost: 3, want: ok(0, 500*ms)},
		}},
		{name: "a cost above the burst is never admitted", policy: p, steps: []step{
			{at: 0, cost: 6, want: no(5, time.Second, 0)},
		}},
		{name: "negative cost refunds but never overfills", policy: p, steps: []step{
			{at: 0, cost: 4, want: ok(1, 400*ms)},
			{at: 0, cost: -2, want: ok(3, 200*ms), state: &State{V: [3]int64{3, us0}}},
			{at: 0, cost: -100, want: ok(5, 0), state: &State{}},
			{at: 0, cost: 1, want: ok(4, 100*ms)},
			{at: 0, cost: math.MinInt64, want: ok(5, 0), state: &State{}},
		}},
		{name: "idle state after ResetAfter behaves like new key", policy: p, steps: []step{
			{at: 0, cost: 5, want: ok(0, 500*ms)},
			{at: 500 * ms, cost: 0, want: ok(5, 0), state: &State{}},
			{at: 500 * ms, cost: 5, want: ok(0, 500*ms)},
		}},
		{name: "long idle refills to the burst and no further", policy: slow, steps: []step{
			{at: 0, cost: 1, want: ok(9, 500*ms)},
			{at: 24 * time.Hour, cost: 10, want: ok(0, 5*time.Second)},
		}},
		{name: "a clock stepping back credits nothing", policy: p, steps: []step{
			{at: time.Second, cost: 3, want: ok(2, 300*ms)},
			{at: 0, cost: 3, want: no(2, 1100*ms, 1300*ms)},
			{at: 0, cost: 2, want: ok(0, 1500*ms), state: &State{V: [3]int64{0, us0 + 1e6}}},
		}},
		{name: "more than one token per microsecond", policy: Policy{Limit: 3, Window: 2 * time.Microsecond, Burst: 1}, steps: []step{
			{at: 0, cost: 1, want: ok(0, us(1))},
			{at: 0, cost: 1, want: no(0, us(1), us(1))},
			{at: us(1), cost: 1, want: ok(0, us(1)), state: &State{V: [3]int64{0, us0 + 1}}},
		}},
	})
}
