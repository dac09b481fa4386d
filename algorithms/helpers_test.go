package algorithms

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// t0 is the clock every test starts from. It is a multiple of every window
// the table tests use, so aligned windows start at t0.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// us0 is t0 in unix microseconds, for spelling out expected states.
var us0 = Micros(t0)

// all lists one instance of every algorithm in the package.
var all = []Algorithm{GCRA{}, TokenBucket{}, SlidingLog{}, FixedWindow{}, SlidingWindow{}, Concurrency{}}

// step is one Take in a scenario: cost at t0+at, the decision it must give
// (Limit is filled in from the policy) and, when state is set, the next
// State it must return.
type step struct {
	at    time.Duration
	cost  int64
	want  Decision
	state *State
}

// scenario drives one algorithm through steps like a store would: an allowed
// decision's next state is committed, a denied one's is not.
type scenario struct {
	name   string
	policy Policy
	steps  []step
}

func ok(remaining int64, reset time.Duration) Decision {
	return Decision{Allowed: true, Remaining: remaining, ResetAfter: reset}
}

func no(remaining int64, retry, reset time.Duration) Decision {
	return Decision{Remaining: remaining, RetryAfter: retry, ResetAfter: reset}
}

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// runScenarios runs each scenario as a parallel subtest. Besides each step's
// decision it checks that Take never mutates its input and that a denial
// returns the input state.
func runScenarios(t *testing.T, alg Algorithm, cases []scenario) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s State
			for i, st := range tc.steps {
				before := cloneState(s)
				next, got := alg.Take(s, t0.Add(st.at), tc.policy, st.cost)
				want := st.want
				want.Limit = tc.policy.Limit
				if got != want {
					t.Fatalf("step %d (cost %d at +%v):\n got %+v\nwant %+v", i, st.cost, st.at, got, want)
				}
				if !sameState(s, before) {
					t.Fatalf("step %d mutated its input: %+v, was %+v", i, s, before)
				}
				if !got.Allowed && !reflect.DeepEqual(next, s) {
					t.Fatalf("step %d denied but changed the state: %+v -> %+v", i, s, next)
				}
				if st.state != nil && !sameState(next, *st.state) {
					t.Fatalf("step %d: next state %+v, want %+v", i, next, *st.state)
				}
				if got.Allowed {
					s = next
				}
			}
		})
	}
}

// cloneState deep-copies s, so that a later comparison sees any write to the
// visible elements of s.Log.
func cloneState(s State) State {
	s.Log = slices.Clone(s.Log)
	return s
}

// sameState compares V and the visible elements of Log (nil and empty are
// the same).
func sameState(a, b State) bool {
	return a.V == b.V && slices.Equal(a.Log, b.Log)
}
