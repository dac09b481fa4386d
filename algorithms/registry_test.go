package algorithms

import (
	"math"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// notAnAlgorithm is registered in the algorithms namespace without
// implementing Algorithm, to pin Lookup's error for it.
type notAnAlgorithm struct{}

func (notAnAlgorithm) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "rate_limit.algorithms.test_not_an_algorithm",
		New: func() caddy.Module { return new(notAnAlgorithm) },
	}
}

func init() {
	caddy.RegisterModule(notAnAlgorithm{})
}

func TestLookupReturnsEachRegisteredAlgorithm(t *testing.T) {
	t.Parallel()
	for _, want := range all {
		alg, err := Lookup(want.Name())
		if err != nil {
			t.Fatalf("Lookup(%q): %v", want.Name(), err)
		}
		if alg.Name() != want.Name() {
			t.Errorf("Lookup(%q) returned %q", want.Name(), alg.Name())
		}
		_, exact := alg.(Exact)
		if wantExact := want.Name() != "sliding_window"; exact != wantExact {
			t.Errorf("%s implements Exact: %v, want %v", want.Name(), exact, wantExact)
		}
		if e, ok := alg.(Exact); ok && !e.Exact() {
			t.Errorf("%s.Exact() = false", want.Name())
		}
	}
}

func TestLookupErrors(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"nope", "test_not_an_algorithm"} {
		if alg, err := Lookup(name); err == nil {
			t.Errorf("Lookup(%q) = %v, want an error", name, alg)
		}
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		policy    Policy
		burst     int64
		wantValid bool
	}{
		{"burst defaults to the limit", Policy{Limit: 5, Window: time.Second}, 5, true},
		{"an explicit burst wins", Policy{Limit: 5, Window: time.Second, Burst: 2}, 2, true},
		{"a zero limit is invalid", Policy{Window: time.Second}, 0, false},
		{"a negative window is invalid", Policy{Limit: 1, Window: -time.Second}, 1, false},
		{"a negative burst is invalid", Policy{Limit: 1, Burst: -1}, 1, false},
	}
	for _, tc := range tests {
		if got := tc.policy.EffectiveBurst(); got != tc.burst {
			t.Errorf("%s: EffectiveBurst() = %d, want %d", tc.name, got, tc.burst)
		}
		if err := tc.policy.Validate(); (err == nil) != tc.wantValid {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func TestInvalidPolicyAdmitsNothingAndChangesNothing(t *testing.T) {
	t.Parallel()
	p := Policy{Limit: 0, Window: time.Second}
	s := State{V: [3]int64{1, 2, 3}}
	for _, alg := range all {
		for _, cost := range []int64{1, 0, -1} {
			next, d := alg.Take(s, t0, p, cost)
			if d.Allowed != (cost <= 0) || !sameState(next, s) || d.Remaining != 0 {
				t.Errorf("%s cost %d: got %+v, %+v", alg.Name(), cost, next, d)
			}
			if cost > 0 && d.RetryAfter != time.Second {
				t.Errorf("%s cost %d: RetryAfter %v, want the window", alg.Name(), cost, d.RetryAfter)
			}
		}
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	const maxI = math.MaxInt64
	tests := []struct {
		name      string
		got, want int64
	}{
		{"a window under a microsecond counts as one", windowMicros(Policy{Window: time.Nanosecond}), 1},
		{"negative durations are zero", int64(dur(-5)), 0},
		{"huge durations saturate", int64(dur(maxI / 100)), maxI},
		{"ceilDiv rounds up", ceilDiv(7, 2), 4},
		{"ceilDiv keeps exact quotients", ceilDiv(8, 2), 4},
		{"alignDown floors negative times", alignDown(-5, 10), -10},
		{"alignDown keeps multiples", alignDown(20, 10), 20},
		{"satAdd saturates", satAdd(maxI-1, 2), maxI},
		{"satMul saturates", satMul(maxI/2, 3), maxI},
		{"satMul multiplies", satMul(6, 7), 42},
		{"mulDiv works past 64 bits", mulDiv(maxI, 4, 8), maxI / 2},
		{"mulDiv saturates when the quotient overflows", mulDiv(maxI, 4, 1), maxI},
		{"mulDiv saturates on a quotient above MaxInt64", mulDiv(maxI, 3, 2), maxI},
		{"mulDivCeil rounds up", mulDivCeil(7, 3, 2), 11},
		{"mulDivCeil saturates", mulDivCeil(maxI, 4, 1), maxI},
		{"mulDivCeil saturates on a quotient above MaxInt64", mulDivCeil(maxI, 3, 2), maxI},
		{"giveBack of MinInt64 saturates", giveBack(math.MinInt64), maxI},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}
