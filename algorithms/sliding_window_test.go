package algorithms

import (
	"math"
	"testing"
	"time"
)

func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 10, Window: 10 * time.Second}
	s := time.Second
	ms := time.Millisecond

	runScenarios(t, SlidingWindow{}, []scenario{
		{name: "counts like a fixed window within the first window", policy: p, steps: []step{
			{at: 0, cost: 4, want: ok(6, 20*s)},
			{at: 5 * s, cost: 6, want: ok(0, 15*s), state: &State{V: [3]int64{us0, 10, 0}}},
			// At +10s the previous window still weighs 10; one microsecond
			// later floor(10 * (10s-1µs)/10s) = 9.
			{at: 5 * s, cost: 1, want: no(0, 5*s+us(1), 15*s)},
		}},
		{name: "weights the previous window by its overlap", policy: p, steps: []step{
			{at: 0, cost: 10, want: ok(0, 20*s)},
			// 2.5s into the next window, 75% of it still counts: 7.
			{at: 12500 * ms, cost: 0, want: ok(3, 7500*ms), state: &State{V: [3]int64{us0 + 10e6, 0, 10}}},
			{at: 12500 * ms, cost: 3, want: ok(0, 17500*ms)},
			{at: 12500 * ms, cost: 1, want: no(0, 500*ms+us(1), 17500*ms)},
			{at: 13*s + us(1), cost: 1, want: ok(0, 17*s-us(1))},
		}},
		{name: "waits into the next window when the current count is full", policy: p, steps: []step{
			{at: 0, cost: 2, want: ok(8, 20*s)},
			// floor(2 * (10s-e)/10s) is 0 once e > 5s.
			{at: 10 * s, cost: 10, want: no(8, 5*s+us(1), 10*s)},
			{at: 15*s + us(1), cost: 10, want: ok(0, 15*s-us(1))},
			// curr is 10 already: wait for the next window, where it weighs
			// 9 one microsecond after it starts.
			{at: 16 * s, cost: 1, want: no(0, 4*s+us(1), 14*s)},
		}},
		{name: "forgets counts older than the previous window", policy: p, steps: []step{
			{at: 0, cost: 10, want: ok(0, 20*s)},
			{at: 20 * s, cost: 10, want: ok(0, 20*s), state: &State{V: [3]int64{us0 + 20e6, 10, 0}}},
		}},
		{name: "a cost above the limit is never admitted", policy: p, steps: []step{
			{at: 0, cost: 11, want: no(10, 10*s, 0)},
			{at: 0, cost: 1, want: ok(9, 20*s)},
			{at: 10 * s, cost: 11, want: no(9, 10*s, 10*s)},
		}},
		{name: "negative cost gives back the current window first", policy: p, steps: []step{
			{at: 0, cost: 4, want: ok(6, 20*s)},
			{at: 10 * s, cost: 3, want: ok(3, 20*s)},
			{at: 10 * s, cost: -5, want: ok(8, 10*s), state: &State{V: [3]int64{us0 + 10e6, 0, 2}}},
			{at: 10 * s, cost: math.MinInt64, want: ok(10, 0), state: &State{}},
		}},
		{name: "idle state after ResetAfter behaves like new key", policy: p, steps: []step{
			{at: 5 * s, cost: 1, want: ok(9, 15*s)},
			{at: 20 * s, cost: 10, want: ok(0, 20*s)},
		}},
		{name: "a clock stepping back keeps the later window", policy: p, steps: []step{
			{at: 10 * s, cost: 4, want: ok(6, 20*s)},
			{at: 5 * s, cost: 4, want: ok(2, 25*s), state: &State{V: [3]int64{us0 + 10e6, 8, 0}}},
		}},
	})
}
