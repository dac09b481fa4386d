package redis

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// The conformance suite runs the same steps through both twins of every
// algorithm: the Go transition (the oracle, driven like a store: an allowed
// decision's state is kept, a denied one's is not) and the Lua twin inside
// the take script on a real redis-server, with the same explicit time. Every
// decision must be identical, field by field.

// allAlgorithms are the algorithms with a Lua twin.
var allAlgorithms = []string{"gcra", "token_bucket", "sliding_log", "fixed_window", "sliding_window", "concurrency"}

// t0 is a multiple of every window the vectors use, so aligned windows
// start at t0.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one Take at t0+at. When policy is set it applies from this step on,
// as after a reload that changed the limit.
type step struct {
	at     time.Duration
	cost   int64
	policy *algorithms.Policy
}

type vector struct {
	name   string
	policy algorithms.Policy
	steps  []step
}

func at(d time.Duration, cost int64) step { return step{at: d, cost: cost} }

func pol(limit int64, window time.Duration, burst int64) *algorithms.Policy {
	return &algorithms.Policy{Limit: limit, Window: window, Burst: burst}
}

// repeat returns n steps of cost at start, start+every, ...
func repeat(n int, start, every time.Duration, cost int64) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = at(start+time.Duration(i)*every, cost)
	}
	return out
}

func join(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const us = time.Microsecond

// vectors is the one table every algorithm runs.
var vectors = []vector{
	{"a burst is admitted, then denied, then refilled", *pol(5, 10*time.Second, 0), join(
		repeat(6, 0, 0, 1),
		[]step{at(2*time.Second, 1), at(2*time.Second, 1), at(10*time.Second, 3), at(30*time.Second, 5)},
	)},
	{"a cost above the limit is never admitted", *pol(3, time.Second, 0), []step{
		at(0, 4), at(0, 3), at(500*time.Millisecond, 4), at(time.Second, 1),
	}},
	{"give-backs return units and never pass idle", *pol(10, time.Minute, 0), []step{
		at(0, 4), at(time.Second, 3), at(2*time.Second, -2), at(2*time.Second, 6),
		at(3*time.Second, -100), at(3*time.Second, 10), at(4*time.Second, math.MinInt64),
		at(4*time.Second, 1), at(5*time.Second, -1),
	}},
	{"a zero cost looks without charging", *pol(4, 2*time.Second, 0), []step{
		at(0, 0), at(0, 2), at(500*time.Millisecond, 0), at(1500*time.Millisecond, 0), at(5*time.Second, 0),
	}},
	{"the clock stepping back errs on the side of the limit", *pol(5, 10*time.Second, 0), []step{
		at(10*time.Second, 2), at(5*time.Second, 2), at(0, 5), at(0, 1), at(12*time.Second, 1), at(25*time.Second, 5),
	}},
	{"window boundaries, to the microsecond", *pol(4, time.Second, 0), []step{
		at(999999*us, 2), at(time.Second, 2), at(time.Second, 1), at(1500*time.Millisecond, 2),
		at(2*time.Second-us, 1), at(2*time.Second, 3), at(2*time.Second+us, 1), at(3700*time.Millisecond, 4),
	}},
	{"a burst larger than the limit", *pol(2, time.Second, 6), []step{
		at(0, 6), at(100*time.Millisecond, 1), at(400*time.Millisecond, 1), at(600*time.Millisecond, 2), at(3*time.Second, 6),
	}},
	{"a window shorter than a microsecond", *pol(3, 500*time.Nanosecond, 0), []step{
		at(0, 1), at(0, 3), at(0, 1), at(us, 2), at(2*us, 3),
	}},
	{"a window that the limit does not divide", *pol(7, 10*time.Second, 3), join(
		repeat(5, 0, 333*time.Millisecond, 1),
		repeat(5, 1428571*us, 1428571*us, 2),
	)},
	{"enormous costs either way", *pol(5, time.Second, 0), []step{
		at(0, math.MaxInt64), at(0, 1<<60), at(0, 3), at(0, math.MinInt64), at(0, 5), at(0, -(1 << 62)),
	}},
	{"a changed limit applies to the counters already there", *pol(10, time.Minute, 0), []step{
		at(0, 8),
		{at: time.Second, cost: 1, policy: pol(3, time.Minute, 0)},
		at(2*time.Second, -1),
		{at: 3 * time.Second, cost: 50, policy: pol(100, 10*time.Second, 20)},
		{at: 4 * time.Second, cost: 2, policy: pol(2, 500*time.Millisecond, 1)},
		at(5*time.Second, 1),
	}},
	{"a zero limit admits nothing", *pol(0, time.Second, 0), []step{
		at(0, 1), at(0, 0), at(0, -1),
	}},
	{"no window: the concurrency default lease", *pol(2, 0, 0), []step{
		at(0, 1), at(0, 1), at(time.Second, 1), at(59*time.Minute, -1), at(59*time.Minute, 2),
		at(2*time.Hour, 1), at(3*time.Hour+time.Second, 2),
	}},
	{"a long idle key starts over", *pol(5, time.Second, 0), []step{
		at(0, 5), at(0, 1), at(time.Hour, 5), at(time.Hour, 1),
	}},
	{"a long log with partial give-backs", *pol(60, 10*time.Second, 0), join(
		[]step{at(0, 3), at(time.Second, 1), at(2*time.Second, 5), at(3*time.Second, -2), at(3*time.Second, -4)},
		repeat(45, 3*time.Second, 100*time.Millisecond, 1),
		[]step{at(8*time.Second, 30), at(11*time.Second, 20), at(12500*time.Millisecond, 40), at(12500*time.Millisecond, -7)},
		repeat(10, 13*time.Second, 10*time.Millisecond, 3),
	)},
	{"policies near the precision bound", *pol(45_000, 24*time.Hour, 0), []step{
		at(0, 45_000), at(time.Second, 2), at(time.Hour, 1875), at(time.Hour, 1876), at(25*time.Hour, 3),
		{at: 2 * time.Hour, cost: 1, policy: pol(1, 15*365*24*time.Hour, 1)},
		at(3*time.Hour, 1),
	}},
}

// conformance drives one algorithm's two twins on one key of s.
type conformance struct {
	alg   algorithms.Algorithm
	s     *Store
	now   time.Time
	state algorithms.State
	key   store.Key
}

var keySeq atomic.Uint64

func newConformance(tb testing.TB, s *Store, alg algorithms.Algorithm) *conformance {
	c := &conformance{alg: alg, s: s}
	binaryKey(&c.key, keySeq.Add(1))
	simulated(s, func() time.Time { return c.now })
	return c
}

func binaryKey(k *store.Key, n uint64) {
	for i := range 8 {
		k[i] = byte(n >> (8 * i))
	}
}

// step runs one Take through both twins and reports any difference.
func (c *conformance) step(p algorithms.Policy, now time.Time, cost int64) error {
	c.now = now
	next, want := c.alg.Take(c.state, now, p, cost)
	if want.Allowed {
		c.state = next
	}
	reqs := []store.Request{{Zone: "conf", Key: c.key, Algorithm: c.alg, Policy: p, Cost: cost}}
	out := make([]algorithms.Decision, 1)
	if err := c.s.Take(context.Background(), reqs, out); err != nil {
		return fmt.Errorf("cost %d at %s: %w", cost, now.Format(time.RFC3339Nano), err)
	}
	if out[0] != want {
		return fmt.Errorf("cost %d at %s under %+v:\n  lua %+v\n  go  %+v", cost, now.Format(time.RFC3339Nano), p, out[0], want)
	}
	return nil
}

func lookup(tb testing.TB, name string) algorithms.Algorithm {
	tb.Helper()
	alg, err := algorithms.Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	return alg
}

func TestConformanceVectors(t *testing.T) {
	t.Parallel()
	runVectors(t, sharedServer(t).client(t))
}

// runVectors runs every conformance vector through every algorithm's Go
// transition and its Lua twin on the server behind c, one parallel subtest
// per algorithm.
func runVectors(t *testing.T, c Client) {
	t.Helper()
	for _, name := range allAlgorithms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, v := range vectors {
				conf := newConformance(t, testStore(t, c), lookup(t, name))
				p := v.policy
				for i, st := range v.steps {
					if st.policy != nil {
						p = *st.policy
					}
					if err := conf.step(p, t0.Add(st.at), st.cost); err != nil {
						t.Errorf("%s, step %d: %v", v.name, i, err)
						break
					}
				}
			}
		})
	}
}

// drawPolicy draws a policy whose window ranges from a microsecond to an
// hour, so that arrivals cross many windows at uneven offsets.
func drawPolicy(t *rapid.T, label string) algorithms.Policy {
	limit := rapid.OneOf(rapid.Int64Range(1, 12), rapid.Int64Range(1, 1000)).Draw(t, label+"limit")
	window := rapid.OneOf(
		rapid.Int64Range(0, 50),
		rapid.Int64Range(1, 5000),
		rapid.Int64Range(1, 3_600_000_000),
	).Draw(t, label+"window_us")
	return algorithms.Policy{
		Limit:  limit,
		Window: time.Duration(window) * us,
		Burst:  rapid.Int64Range(0, 2*limit).Draw(t, label+"burst"),
	}
}

// drawCost draws mostly ordinary costs, and sometimes zero, give-backs,
// costs just past the limit and extreme values.
func drawCost(t *rapid.T, p algorithms.Policy) int64 {
	return rapid.OneOf(
		rapid.Int64Range(1, p.Limit),
		rapid.Int64Range(1, p.Limit),
		rapid.Int64Range(-p.Limit, 2*p.Limit+1),
		rapid.SampledFrom([]int64{0, math.MaxInt64, math.MinInt64, -1 << 55}),
	).Draw(t, "cost")
}

// drawGap draws the time to the next step: often none, usually under two
// windows, sometimes many, and now and then backwards.
func drawGap(t *rapid.T, w int64) int64 {
	return rapid.OneOf(
		rapid.Just[int64](0),
		rapid.Int64Range(0, 2*w),
		rapid.Int64Range(0, 20*w),
		rapid.Int64Range(-w, 0),
	).Draw(t, "gap_us")
}

func TestConformanceRandom(t *testing.T) {
	t.Parallel()
	c := sharedServer(t).client(t)
	for _, name := range allAlgorithms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rapid.Check(t, func(rt *rapid.T) {
				conf := newConformance(t, testStore(t, c), lookup(t, name))
				p := drawPolicy(rt, "")
				now := algorithms.Micros(t0) + rapid.Int64Range(0, 1e9).Draw(rt, "start_us")
				for range rapid.IntRange(1, 60).Draw(rt, "steps") {
					if rapid.IntRange(0, 30).Draw(rt, "reload") == 0 {
						p = drawPolicy(rt, "new_")
					}
					now += drawGap(rt, windowMicros(p))
					if err := conf.step(p, time.UnixMicro(now), drawCost(rt, p)); err != nil {
						rt.Fatal(err)
					}
				}
			})
		})
	}
}
