package algorithms

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestSlidingLog(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 3, Window: 10 * time.Second}
	s := time.Second

	runScenarios(t, SlidingLog{}, []scenario{
		{name: "denies the 4th request within the window", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 1, want: ok(1, 10*s)},
			{at: 2 * s, cost: 1, want: ok(0, 10*s), state: &State{V: [3]int64{3}, Log: []int64{us0, us0 + 1e6, us0 + 2e6}}},
			{at: 3 * s, cost: 1, want: no(0, 7*s, 9*s)},
		}},
		{name: "admits again after the oldest event leaves", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 2, want: ok(0, 10*s)},
			{at: 10*s - us(1), cost: 1, want: no(0, us(1), s+us(1))},
			// The window is (now-10s, now]: the event at 0 has left at 10s.
			{at: 10 * s, cost: 1, want: ok(0, 10*s), state: &State{V: [3]int64{3}, Log: []int64{-2, us0 + 1e6, us0 + 10e6}}},
		}},
		{name: "a cost counts as that many events in one entry", policy: p, steps: []step{
			{at: 0, cost: 2, want: ok(1, 10*s), state: &State{V: [3]int64{2}, Log: []int64{-2, us0}}},
			{at: 5 * s, cost: 1, want: ok(0, 10*s)},
			{at: 6 * s, cost: 2, want: no(0, 4*s, 9*s)},
			{at: 10 * s, cost: 2, want: ok(0, 10*s), state: &State{V: [3]int64{3}, Log: []int64{us0 + 5e6, -2, us0 + 10e6}}},
		}},
		{name: "retry waits for enough old events to leave", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 1, want: ok(1, 10*s)},
			{at: 2 * s, cost: 1, want: ok(0, 10*s)},
			{at: 3 * s, cost: 2, want: no(0, 8*s, 9*s)},
			{at: 3 * s, cost: 3, want: no(0, 9*s, 9*s)},
		}},
		{name: "a cost above the limit is never admitted", policy: p, steps: []step{
			{at: 0, cost: 4, want: no(3, 10*s, 0)},
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 4, want: no(2, 10*s, 9*s)},
		}},
		{name: "negative cost removes the newest events", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 1 * s, cost: 2, want: ok(0, 10*s)},
			{at: 2 * s, cost: -1, want: ok(1, 9*s), state: &State{V: [3]int64{2}, Log: []int64{us0, us0 + 1e6}}},
			{at: 2 * s, cost: -1, want: ok(2, 8*s), state: &State{V: [3]int64{1}, Log: []int64{us0}}},
			{at: 2 * s, cost: -5, want: ok(3, 0), state: &State{}},
		}},
		{name: "a partial give-back keeps a multi-unit entry", policy: Policy{Limit: 10, Window: 10 * s}, steps: []step{
			{at: 0, cost: 5, want: ok(5, 10*s)},
			{at: 0, cost: -2, want: ok(7, 10*s), state: &State{V: [3]int64{3}, Log: []int64{-3, us0}}},
			{at: 0, cost: math.MinInt64, want: ok(10, 0), state: &State{}},
		}},
		{name: "zero cost prunes but takes nothing", policy: p, steps: []step{
			{at: 0, cost: 3, want: ok(0, 10*s)},
			{at: 5 * s, cost: 0, want: ok(0, 5*s)},
			{at: 10 * s, cost: 0, want: ok(3, 0), state: &State{}},
		}},
		{name: "idle state after ResetAfter behaves like new key", policy: p, steps: []step{
			{at: 0, cost: 1, want: ok(2, 10*s)},
			{at: 10 * s, cost: 3, want: ok(0, 10*s), state: &State{V: [3]int64{3}, Log: []int64{-3, us0 + 10e6}}},
		}},
		{name: "a clock stepping back stamps entries with the newest time", policy: p, steps: []step{
			{at: 5 * s, cost: 1, want: ok(2, 10*s)},
			{at: 4 * s, cost: 1, want: ok(1, 11*s), state: &State{V: [3]int64{2}, Log: []int64{us0 + 5e6, us0 + 5e6}}},
		}},
	})
}

// TestSlidingLogToleratesStatesItNeverWrites pins that a malformed state
// (from a bug elsewhere, or a store's corruption) neither panics nor admits
// past the limit.
func TestSlidingLogToleratesStatesItNeverWrites(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 3, Window: time.Second}
	tests := []struct {
		name string
		s    State
		cost int64
		want Decision
		next State
	}{
		{
			name: "a count marker without its timestamp has left the window",
			s:    State{V: [3]int64{2}, Log: []int64{-2}},
			cost: 1,
			want: Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: time.Second},
			next: State{V: [3]int64{1}, Log: []int64{us0}},
		},
		{
			name: "a total above the log's entries retries after a window",
			s:    State{V: [3]int64{3}, Log: []int64{us0}},
			cost: 2,
			want: Decision{Limit: 3, RetryAfter: time.Second, ResetAfter: time.Second},
			next: State{V: [3]int64{3}, Log: []int64{us0}},
		},
	}
	for _, tc := range tests {
		next, d := SlidingLog{}.Take(tc.s, t0, p, tc.cost)
		if d != tc.want || !sameState(next, tc.next) {
			t.Errorf("%s: got %+v, %+v; want %+v, %+v", tc.name, next, d, tc.next, tc.want)
		}
	}
}

// A give-back followed by a charge on the resulting state (as a store does
// for the same key twice in one call) must leave the original state intact:
// the original is what the store keeps if the call is refused.
func TestSlidingLogGiveBackThenChargeLeavesTheOriginalIntact(t *testing.T) {
	alg := SlidingLog{}
	p := Policy{Limit: 10, Window: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	s := State{}
	for i := 0; i < 3; i++ {
		s, _ = alg.Take(s, now.Add(time.Duration(i)*time.Second), p, 1)
	}
	orig := State{V: s.V, Log: append([]int64(nil), s.Log...)}
	released, _ := alg.Take(s, now.Add(5*time.Second), p, -1)
	_, d := alg.Take(released, now.Add(6*time.Second), p, 1)
	if !d.Allowed {
		t.Fatalf("charge after give-back denied: %+v", d)
	}
	if !slices.Equal(s.Log, orig.Log) || s.V != orig.V {
		t.Fatalf("original state changed: got %v %v, want %v %v", s.V, s.Log, orig.V, orig.Log)
	}
}
