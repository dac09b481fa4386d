package memory

import (
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// counter is a test algorithm: a key admits Limit units in total, and its
// state lives for Window after the last charge, after which the key is new
// again. Only the store's expiry resets it, which is what the tests pin.
// A negative cost refunds; a key refunded to zero is idle.
type counter struct{}

func (counter) Name() string { return "test_counter" }

func (counter) Take(s algorithms.State, _ time.Time, p algorithms.Policy, cost int64) (algorithms.State, algorithms.Decision) {
	used := s.V[0]
	d := algorithms.Decision{Limit: p.Limit}
	if cost > 0 && used+cost > p.Limit {
		d.Remaining = max(p.Limit-used, 0)
		d.RetryAfter = p.Window
		d.ResetAfter = p.Window
		return s, d
	}
	used = max(used+cost, 0)
	d.Allowed = true
	d.Remaining = p.Limit - used
	if used > 0 {
		d.ResetAfter = p.Window
	}
	return algorithms.State{V: [3]int64{used}}, d
}

// logger is a test algorithm that keeps a log, like sliding_log: one
// timestamp per admitted unit within the last Window.
type logger struct{}

func (logger) Name() string { return "test_logger" }

func (logger) Take(s algorithms.State, now time.Time, p algorithms.Policy, cost int64) (algorithms.State, algorithms.Decision) {
	t := algorithms.Micros(now)
	var live []int64
	for _, ts := range s.Log {
		if ts > t-p.Window.Microseconds() {
			live = append(live, ts)
		}
	}
	d := algorithms.Decision{Limit: p.Limit}
	if int64(len(live))+cost > p.Limit {
		d.Remaining = max(p.Limit-int64(len(live)), 0)
		d.RetryAfter = p.Window
		d.ResetAfter = p.Window
		return s, d
	}
	for range cost {
		live = append(live, t)
	}
	d.Allowed = true
	d.Remaining = p.Limit - int64(len(live))
	if len(live) > 0 {
		d.ResetAfter = time.Duration(live[len(live)-1]+p.Window.Microseconds()-t) * time.Microsecond
	}
	return algorithms.State{Log: live}, d
}

// t0 is the tests' start time.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock, safe to read from the sweeper.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(d time.Duration)     { c.ns.Store(t0.Add(d).UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// key returns a hashed key for name, the way the handler makes them.
func key(name string) store.Key {
	sum := sha256.Sum256([]byte(name))
	return store.Key(sum[:16])
}

// keys returns n distinct keys with prefix.
func keys(prefix string, n int) []store.Key {
	ks := make([]store.Key, n)
	for i := range ks {
		ks[i] = key(fmt.Sprintf("%s/%d", prefix, i))
	}
	return ks
}

// req returns a request on k for the counter algorithm with the given limit
// and a one-minute window.
func req(k store.Key, limit, cost int64) store.Request {
	return store.Request{
		Zone:      "z",
		Key:       k,
		Algorithm: counter{},
		Policy:    algorithms.Policy{Limit: limit, Window: time.Minute},
		Cost:      cost,
	}
}

// newTestStore returns a store on clk that is closed when the test ends.
func newTestStore(t interface{ Cleanup(func()) }, opts Options) *Store {
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}
