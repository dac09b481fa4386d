package algorithms

import (
	"math"
	"testing"
	"time"
)

func TestConcurrency(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 2} // lease DefaultLease
	leased := Policy{Limit: 2, Window: 10 * time.Second}
	s := time.Second
	h := time.Hour

	runScenarios(t, Concurrency{}, []scenario{
		{name: "admits up to the limit in flight", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(1, h)},
			{at: 1 * s, cost: 1, want: ok(0, h), state: &State{V: [3]int64{2, us0 + 1e6}}},
			{at: 2 * s, cost: 1, want: no(0, s, h-s)},
		}},
		{name: "negative cost releases", policy: p, steps: []step{
			{at: 0, cost: 2, want: ok(0, h)},
			{at: 3 * s, cost: -1, want: ok(1, h), state: &State{V: [3]int64{1, us0 + 3e6}}},
			{at: 3 * s, cost: 1, want: ok(0, h)},
		}},
		{name: "release never goes below zero", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(1, h)},
			{at: 0, cost: -5, want: ok(2, 0), state: &State{}},
			{at: 0, cost: math.MinInt64, want: ok(2, 0), state: &State{}},
		}},
		{name: "slots never released are reclaimed after the lease", policy: leased, steps: []step{
			{at: 0, cost: 2, want: ok(0, 10*s)},
			{at: 9500 * time.Millisecond, cost: 1, want: no(0, 500*time.Millisecond, 500*time.Millisecond)},
			{at: 10 * s, cost: 1, want: ok(1, 10*s), state: &State{V: [3]int64{1, us0 + 10e6}}},
		}},
		{name: "a cost above the limit is never admitted", policy: p, steps: []step{
			{at: 0, cost: 3, want: no(2, h, 0)},
			{at: 0, cost: 1, want: ok(1, h)},
			{at: 0, cost: 3, want: no(1, h, h)},
		}},
		{name: "zero cost does not renew the lease", policy: leased, steps: []step{
			{at: 0, cost: 1, want: ok(1, 10*s)},
			{at: 4 * s, cost: 0, want: ok(1, 6*s), state: &State{V: [3]int64{1, us0}}},
			{at: 10 * s, cost: 0, want: ok(2, 0), state: &State{}},
		}},
		{name: "idle state after ResetAfter behaves like new key", policy: leased, steps: []step{
			{at: 0, cost: 1, want: ok(1, 10*s)},
			{at: 10 * s, cost: 2, want: ok(0, 10*s)},
		}},
	})
}
