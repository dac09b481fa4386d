package algorithms

import (
	"math"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// event is an admitted Take: its time in unix microseconds and its cost.
type event struct{ at, cost int64 }

// drawPolicy draws a policy whose window ranges from a few microseconds to
// an hour, so that random arrivals cross many windows at uneven offsets and
// Window/Limit is rarely whole.
func drawPolicy(t *rapid.T) Policy {
	limit := rapid.OneOf(rapid.Int64Range(1, 12), rapid.Int64Range(1, 1000)).Draw(t, "limit")
	window := rapid.OneOf(
		rapid.Int64Range(1, 50),
		rapid.Int64Range(1, 5000),
		rapid.Int64Range(1, 3_600_000_000),
	).Draw(t, "window_us")
	return Policy{
		Limit:  limit,
		Window: us(window),
		Burst:  rapid.Int64Range(0, 2*limit).Draw(t, "burst"),
	}
}

// drawGap draws the time to the next arrival: often none, usually under two
// windows, sometimes many.
func drawGap(t *rapid.T, w int64) int64 {
	return rapid.OneOf(
		rapid.Just[int64](0),
		rapid.Int64Range(0, 2*w),
		rapid.Int64Range(0, 20*w),
	).Draw(t, "gap")
}

// capacity is the largest cost alg can ever admit under p.
func capacity(alg Algorithm, p Policy) int64 {
	switch alg.(type) {
	case GCRA, TokenBucket:
		return p.EffectiveBurst()
	}
	return p.Limit
}

// admitted drives alg like a store through random arrivals with costs
// 1..Limit, committing allowed decisions, and returns what it admitted.
func admitted(t *rapid.T, alg Algorithm, p Policy) []event {
	var s State
	var out []event
	now, w := us0, windowMicros(p)
	for range rapid.IntRange(1, 80).Draw(t, "arrivals") {
		now += drawGap(t, w)
		cost := rapid.Int64Range(1, p.Limit).Draw(t, "cost")
		next, d := alg.Take(s, time.UnixMicro(now), p, cost)
		if d.Allowed {
			s = next
			out = append(out, event{now, cost})
		}
	}
	return out
}

// checkSpans fails if the admitted events i..j of any pair exceed
// bound(t_j - t_i): the units admitted in the closed interval [t_i, t_j].
func checkSpans(t *rapid.T, evs []event, bound func(d int64) int64) {
	for i := range evs {
		sum := int64(0)
		for j := i; j < len(evs); j++ {
			sum += evs[j].cost
			if d := evs[j].at - evs[i].at; sum > bound(d) {
				t.Fatalf("admitted %d units in %dµs (events %d..%d), bound %d", sum, d, i, j, bound(d))
			}
		}
	}
}

func TestSlidingLogNeverExceedsLimitInAnyWindow(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolicy(t)
		w := windowMicros(p)
		evs := admitted(t, SlidingLog{}, p)
		// The busiest window (x - Window, x] ends at an event, so checking
		// the windows that end at each event checks every window.
		for _, e := range evs {
			sum := int64(0)
			for _, f := range evs {
				if f.at > e.at-w && f.at <= e.at {
					sum += f.cost
				}
			}
			if sum > p.Limit {
				t.Fatalf("%d units in the window ending at %d, limit %d", sum, e.at, p.Limit)
			}
		}
	})
}

func TestFixedWindowNeverExceedsLimitPerAlignedWindow(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolicy(t)
		w := windowMicros(p)
		sums := map[int64]int64{}
		for _, e := range admitted(t, FixedWindow{}, p) {
			start := e.at - e.at%w
			if sums[start] += e.cost; sums[start] > p.Limit {
				t.Fatalf("%d units in the window at %d, limit %d", sums[start], start, p.Limit)
			}
		}
	})
}

func TestGCRANeverExceedsBurstPlusElapsedIntervals(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolicy(t)
		interval := max(windowMicros(p)/p.Limit, 1)
		burst := p.EffectiveBurst()
		// TAT grows by at least c*T per admission and may run at most
		// Burst*T ahead, so [t_i, t_j] admits at most Burst + floor(d/T).
		// With T floored that is at least Burst + floor(d*Limit/Window).
		checkSpans(t, admitted(t, GCRA{}, p), func(d int64) int64 { return burst + d/interval })
	})
}

func TestTokenBucketNeverExceedsBurstPlusRefill(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolicy(t)
		w := windowMicros(p)
		burst := p.EffectiveBurst()
		// At most Burst tokens before t_i, d*Limit/Window refilled until
		// t_j, and never below zero after: whole units, so floor it.
		checkSpans(t, admitted(t, TokenBucket{}, p), func(d int64) int64 { return burst + d*p.Limit/w })
	})
}

func TestConcurrencyNeverExceedsLimitInFlight(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := Policy{Limit: rapid.Int64Range(1, 20).Draw(t, "limit")} // the default lease outlasts the test
		var s State
		var held []int64 // the cost of each acquire not yet released
		inFlight := int64(0)
		now := us0
		for range rapid.IntRange(1, 100).Draw(t, "ops") {
			now += rapid.Int64Range(0, 1e6).Draw(t, "gap")
			cost := rapid.Int64Range(1, p.Limit).Draw(t, "acquire")
			release := len(held) > 0 && rapid.Bool().Draw(t, "release")
			if release {
				i := rapid.IntRange(0, len(held)-1).Draw(t, "which")
				cost = -held[i]
				held = append(held[:i], held[i+1:]...)
			}
			next, d := Concurrency{}.Take(s, time.UnixMicro(now), p, cost)
			if want := inFlight+cost <= p.Limit; d.Allowed != want {
				t.Fatalf("cost %d with %d in flight: allowed %v, want %v", cost, inFlight, d.Allowed, want)
			}
			if d.Allowed {
				s = next
				inFlight += cost
				if cost > 0 {
					held = append(held, cost)
				}
			}
			if s.V[0] != inFlight || inFlight > p.Limit {
				t.Fatalf("state %v with %d in flight, limit %d", s.V, inFlight, p.Limit)
			}
		}
	})
}

// TestSlidingLogMatchesItsDefinition compares sliding_log with a direct
// model: admit when the units in (now - Window, now] plus the cost come to
// at most Limit; a give-back removes the newest units.
func TestSlidingLogMatchesItsDefinition(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolicy(t)
		w := windowMicros(p)
		var s State
		var model []event
		now := us0
		for range rapid.IntRange(1, 80).Draw(t, "ops") {
			now += drawGap(t, w)
			cost := rapid.Int64Range(-p.Limit, p.Limit).Draw(t, "cost")
			var live []event
			used := int64(0)
			for _, e := range model {
				if e.at > now-w {
					live = append(live, e)
					used += e.cost
				}
			}
			model = live
			next, d := SlidingLog{}.Take(s, time.UnixMicro(now), p, cost)
			if want := used+cost <= p.Limit; d.Allowed != want {
				t.Fatalf("cost %d with %d used: allowed %v, want %v", cost, used, d.Allowed, want)
			}
			if !d.Allowed {
				excess, retry := used+cost-p.Limit, int64(0)
				for _, e := range model {
					if excess -= e.cost; excess <= 0 {
						retry = e.at + w - now
						break
					}
				}
				if d.RetryAfter != us(retry) {
					t.Fatalf("RetryAfter %v, want %v", d.RetryAfter, us(retry))
				}
				continue
			}
			s = next
			if cost > 0 {
				model = append(model, event{now, cost})
			}
			for r := -cost; r > 0 && len(model) > 0; {
				last := &model[len(model)-1]
				taken := min(r, last.cost)
				last.cost, r = last.cost-taken, r-taken
				if last.cost == 0 {
					model = model[:len(model)-1]
				}
			}
		}
	})
}

// TestTakeContract checks what every algorithm promises, under random
// arrivals and random costs: zero, give-backs, admissible and impossible.
func TestTakeContract(t *testing.T) {
	t.Parallel()
	for _, alg := range all {
		t.Run(alg.Name(), func(t *testing.T) {
			t.Parallel()
			rapid.Check(t, func(t *rapid.T) { checkContract(t, alg) })
		})
	}
}

func checkContract(t *rapid.T, alg Algorithm) {
	p := drawPolicy(t)
	w := windowMicros(p)
	capa := capacity(alg, p)
	costs := rapid.OneOf(
		rapid.Int64Range(1, capa),
		rapid.Int64Range(1, capa),
		rapid.Just[int64](0),
		rapid.Int64Range(-capa, -1),
		rapid.Int64Range(capa+1, capa+3),
	)
	// take calls Take and checks that it never mutates its input.
	take := func(s State, at, cost int64) (State, Decision) {
		before := cloneState(s)
		next, d := alg.Take(s, time.UnixMicro(at), p, cost)
		if !sameState(s, before) {
			t.Fatalf("Take(cost %d) mutated its input: %+v, was %+v", cost, s, before)
		}
		return next, d
	}
	// sameAt fails unless a and b give the same decision for a random cost
	// at at and, when it is allowed, an equivalent next state.
	sameAt := func(a, b State, at int64, what string) {
		c := costs.Draw(t, "probe")
		na, da := take(a, at, c)
		nb, db := take(b, at, c)
		if da != db || da.Allowed && !sameState(na, nb) {
			t.Fatalf("%s: cost %d at %d gives %+v -> %+v, want %+v -> %+v", what, c, at, da, na, db, nb)
		}
	}

	var s State
	now := us0
	for range rapid.IntRange(1, 60).Draw(t, "ops") {
		now += drawGap(t, w)
		cost := costs.Draw(t, "cost")
		next, d := take(s, now, cost)

		if d.Limit != p.Limit || d.Remaining < 0 || d.RetryAfter < 0 || d.ResetAfter < 0 {
			t.Fatalf("cost %d: malformed decision %+v", cost, d)
		}
		after := next
		switch {
		case d.Allowed && d.RetryAfter != 0:
			t.Fatalf("cost %d: allowed with RetryAfter %v", cost, d.RetryAfter)
		case !d.Allowed && cost <= 0:
			t.Fatalf("cost %d: denied a give-back or zero cost", cost)
		case !d.Allowed && !reflect.DeepEqual(next, s):
			t.Fatalf("cost %d: denied but next %+v differs from %+v", cost, next, s)
		case !d.Allowed && cost > capa && d.RetryAfter != dur(w):
			t.Fatalf("cost %d above capacity %d: RetryAfter %v, want the window", cost, capa, d.RetryAfter)
		case !d.Allowed && cost <= capa:
			checkRetry(t, take, s, now, cost, d.RetryAfter)
		}
		if !d.Allowed {
			after = s
		}

		// Remaining is exactly what would fit now.
		if _, more := take(after, now, d.Remaining+1); more.Allowed {
			t.Fatalf("cost %d: Remaining %d but %d more fit", cost, d.Remaining, d.Remaining+1)
		}
		if d.Remaining > 0 {
			if _, fit := take(after, now, d.Remaining); !fit.Allowed {
				t.Fatalf("cost %d: Remaining %d does not fit", cost, d.Remaining)
			}
		}
		if cost == 0 {
			sameAt(next, s, now, "zero cost changed the state")
		}
		// After ResetAfter the state behaves like a new key's.
		idle := now + d.ResetAfter.Microseconds() + rapid.Int64Range(0, 2*w).Draw(t, "after_reset")
		sameAt(after, State{}, idle, "state after ResetAfter")
		// Giving everything back returns to the zero State.
		if empty, d := take(after, now, math.MinInt64); !d.Allowed || !sameState(empty, State{}) || d.Remaining != capa {
			t.Fatalf("giving everything back: %+v, %+v", empty, d)
		}
		s = after
	}
}

// checkRetry checks that a denied cost is admitted after exactly RetryAfter
// and not a microsecond sooner. Concurrency cannot know when a slot frees;
// its RetryAfter is exact only when it is the time to the lease's end.
func checkRetry(t *rapid.T, take func(State, int64, int64) (State, Decision), s State, now, cost int64, retry time.Duration) {
	if retry <= 0 {
		t.Fatalf("cost %d denied with RetryAfter %v", cost, retry)
	}
	r := retry.Microseconds()
	if _, ok := take(s, now+r, cost); !ok.Allowed {
		if retry == concurrencyRetry {
			return
		}
		t.Fatalf("cost %d still denied after RetryAfter %v: %+v", cost, retry, ok)
	}
	if _, early := take(s, now+r-1, cost); r > 1 && early.Allowed {
		t.Fatalf("cost %d admitted a microsecond before RetryAfter %v", cost, retry)
	}
}
