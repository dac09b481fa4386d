package algorithms

import (
	"math"
	"testing"
	"time"
)

func TestFixedWindow(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 3, Window: 10 * time.Second}
	s := time.Second
	w0 := us0 // t0 starts an aligned window

	runScenarios(t, FixedWindow{}, []scenario{
		{name: "denies the 4th request within the window", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 1, want: ok(1, 9*s)},
			{at: 2 * s, cost: 1, want: ok(0, 8*s), state: &State{V: [3]int64{w0, 3}}},
			{at: 3 * s, cost: 1, want: no(0, 7*s, 7*s)},
		}},
		{name: "admits again when the next window starts", policy: p, steps: []step{
			{at: 0, cost: 3, want: ok(0, 10*s)},
			{at: 10*s - us(1), cost: 1, want: no(0, us(1), us(1))},
			{at: 10 * s, cost: 1, want: ok(2, 10*s), state: &State{V: [3]int64{w0 + 10e6, 1}}},
		}},
		{name: "windows align to the epoch so a boundary admits twice the limit", policy: p, steps: []step{
			{at: 7 * s, cost: 3, want: ok(0, 3*s)},
			{at: 9 * s, cost: 1, want: no(0, 1*s, 1*s)},
			{at: 10 * s, cost: 3, want: ok(0, 10*s)},
		}},
		{name: "a cost above the limit is never admitted", policy: p, steps: []step{
			{at: 0, cost: 4, want: no(3, 10*s, 0)},
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 4, want: no(2, 10*s, 9*s)},
		}},
		{name: "negative cost gives back units but not past zero", policy: p, steps: []step{
			{at: 0, cost: 3, want: ok(0, 10*s)},
			{at: 1 * s, cost: -2, want: ok(2, 9*s), state: &State{V: [3]int64{w0, 1}}},
			{at: 1 * s, cost: -5, want: ok(3, 0), state: &State{}},
			{at: 1 * s, cost: math.MinInt64, want: ok(3, 0), state: &State{}},
		}},
		{name: "zero cost in a new window reports a fresh count", policy: p, steps: []step{
			{at: 0, cost: 3, want: ok(0, 10*s)},
			{at: 5 * s, cost: 0, want: ok(0, 5*s)},
			{at: 10 * s, cost: 0, want: ok(3, 0), state: &State{}},
		}},
		{name: "idle state after ResetAfter behaves like new key", policy: p, steps: []step{
			{at: 5 * s, cost: 1, want: ok(2, 5*s)},
			{at: 10 * s, cost: 3, want: ok(0, 10*s)},
		}},
		{name: "a clock stepping back keeps the later window", policy: p, steps: []step{
			{at: 10 * s, cost: 2, want: ok(1, 10*s)},
			{at: 9 * s, cost: 1, want: ok(0, 11*s), state: &State{V: [3]int64{w0 + 10e6, 3}}},
			{at: 9 * s, cost: 1, want: no(0, 11*s, 11*s)},
		}},
	})
}
