package memory

import (
	"context"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

var (
	kA = key("a")
	kB = key("b")
)

// step is one operation in a behaviour test: a Take (reqs), an Inspect
// (inspect) or a Reset (reset), at clock offset at from t0.
type step struct {
	at      time.Duration
	reqs    []store.Request
	inspect *store.Request
	reset   *store.Key

	allowed   []bool  // per request, for a Take
	remaining []int64 // per request, or one value for an Inspect
	keys      int     // stored keys after the step, when >= 0
}

func take(at time.Duration, reqs []store.Request, allowed []bool, remaining []int64) step {
	return step{at: at, reqs: reqs, allowed: allowed, remaining: remaining, keys: -1}
}

func inspect(at time.Duration, r store.Request, remaining int64) step {
	return step{at: at, inspect: &r, remaining: []int64{remaining}, keys: -1}
}

func reset(at time.Duration, k store.Key) step { return step{at: at, reset: &k, keys: -1} }

func keyCount(at time.Duration, n int) step { return step{at: at, keys: n} }

func rs(reqs ...store.Request) []store.Request { return reqs }

func shadow(r store.Request) store.Request { r.Shadow = true; return r }

func peek(r store.Request) store.Request { r.Peek = true; return r }

func zone(r store.Request, z string) store.Request { r.Zone = z; return r }

func TestBehaviour(t *testing.T) {
	t.Parallel()
	a1, a3, b3 := req(kA, 3, 1), req(kA, 3, 3), req(kB, 3, 1)
	y, n := true, false
	tests := []struct {
		name  string
		steps []step
	}{
		{"admits up to the limit then denies", []step{
			take(0, rs(a1), []bool{y}, []int64{2}),
			take(0, rs(a1), []bool{y}, []int64{1}),
			take(0, rs(a1), []bool{y}, []int64{0}),
			take(0, rs(a1), []bool{n}, []int64{0}),
		}},
		{"a denied cost charges nothing", []step{
			take(0, rs(req(kA, 5, 4)), []bool{y}, []int64{1}),
			take(0, rs(req(kA, 5, 2)), []bool{n}, []int64{1}),
			take(0, rs(req(kA, 5, 1)), []bool{y}, []int64{0}),
		}},
		{"expiry makes a key new again", []step{
			take(0, rs(a3), []bool{y}, []int64{0}),
			take(59*time.Second, rs(a1), []bool{n}, []int64{0}),
			take(time.Minute, rs(a1), []bool{y}, []int64{2}),
		}},
		{"a denial does not extend the expiry", []step{
			take(0, rs(a3), []bool{y}, []int64{0}),
			take(30*time.Second, rs(a1), []bool{n}, []int64{0}),
			take(time.Minute, rs(a3), []bool{y}, []int64{0}),
		}},
		{"inspect charges nothing", []step{
			take(0, rs(a1), []bool{y}, []int64{2}),
			inspect(0, a1, 2),
			inspect(0, a1, 2),
			take(0, rs(a1), []bool{y}, []int64{1}),
			inspect(0, b3, 3),
			keyCount(0, 1),
		}},
		{"reset forgets a key", []step{
			take(0, rs(a3), []bool{y}, []int64{0}),
			reset(0, kA),
			keyCount(0, 0),
			take(0, rs(a3), []bool{y}, []int64{0}),
		}},
		{"peek never charges", []step{
			take(0, rs(peek(a1)), []bool{y}, []int64{2}),
			take(0, rs(peek(a1), peek(b3)), []bool{y, y}, []int64{2, 2}),
			keyCount(0, 0),
			take(0, rs(a1), []bool{y}, []int64{2}),
		}},
		{"an enforced denial blocks every zone", []step{
			take(0, rs(a3), []bool{y}, []int64{0}),
			take(0, rs(zone(b3, "other"), a1), []bool{y, n}, []int64{2, 0}),
			inspect(0, b3, 3),
			keyCount(0, 1),
		}},
		{"a shadow denial blocks nothing", []step{
			take(0, rs(a3), []bool{y}, []int64{0}),
			take(0, rs(shadow(a1), zone(b3, "other")), []bool{n, y}, []int64{0, 2}),
			inspect(0, b3, 2),
		}},
		{"an allowed shadow zone is charged", []step{
			take(0, rs(shadow(a1), b3), []bool{y, y}, []int64{2, 2}),
			inspect(0, a1, 2),
		}},
		{"an enforced denial does not charge an allowed shadow zone", []step{
			take(0, rs(req(kB, 1, 1)), []bool{y}, []int64{0}),
			take(0, rs(shadow(a1), req(kB, 1, 1)), []bool{y, n}, []int64{2, 0}),
			inspect(0, a1, 3),
		}},
		{"the same key twice sees the first charge", []step{
			take(0, rs(a1, a1), []bool{y, y}, []int64{2, 1}),
			inspect(0, a1, 1),
		}},
		{"the same key twice is all or nothing", []step{
			take(0, rs(req(kA, 3, 2), req(kA, 3, 2)), []bool{y, n}, []int64{1, 1}),
			inspect(0, a1, 3),
			keyCount(0, 0),
		}},
		{"the same key after a peek does not see the peek", []step{
			take(0, rs(peek(req(kA, 3, 2)), req(kA, 3, 2)), []bool{y, y}, []int64{1, 1}),
			inspect(0, a1, 1),
		}},
		{"the same key after a shadow denial keeps the first charge", []step{
			take(0, rs(req(kA, 3, 2), shadow(req(kA, 3, 2))), []bool{y, n}, []int64{1, 1}),
			inspect(0, a1, 1),
		}},
		{"the same key three times among other zones", []step{
			take(0, rs(a1, b3, a1, peek(a1), a1), []bool{y, y, y, y, y}, []int64{2, 2, 1, 0, 0}),
			inspect(0, a1, 0),
			inspect(0, b3, 2),
		}},
		{"a refund to idle deletes the key", []step{
			take(0, rs(a1), []bool{y}, []int64{2}),
			keyCount(0, 1),
			take(0, rs(req(kA, 3, -1)), []bool{y}, []int64{3}),
			keyCount(0, 0),
		}},
		{"a log is stored and expires", []step{
			take(0, rs(logReq(kA, 1)), []bool{y}, []int64{1}),
			take(30*time.Second, rs(logReq(kA, 1)), []bool{y}, []int64{0}),
			take(30*time.Second, rs(logReq(kA, 1)), []bool{n}, []int64{0}),
			take(time.Minute, rs(logReq(kA, 1)), []bool{y}, []int64{0}),
			take(2*time.Minute, rs(logReq(kA, 1), req(kA, 3, 1)), []bool{y, y}, []int64{1, 2}),
			inspect(2*time.Minute, logReq(kA, 0), 2),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			s := newTestStore(t, Options{Shards: 4, Now: clk.Now})
			for i, st := range tc.steps {
				clk.Set(st.at)
				st.run(t, i, s)
			}
		})
	}
}

func logReq(k store.Key, cost int64) store.Request {
	return store.Request{
		Zone:      "log",
		Key:       k,
		Algorithm: logger{},
		Policy:    algorithms.Policy{Limit: 2, Window: time.Minute},
		Cost:      cost,
	}
}

func (st step) run(t *testing.T, i int, s *Store) {
	t.Helper()
	ctx := context.Background()
	switch {
	case st.reset != nil:
		if err := s.Reset(ctx, "z", *st.reset); err != nil {
			t.Fatalf("step %d: Reset: %v", i, err)
		}
	case st.inspect != nil:
		d, err := s.Inspect(ctx, *st.inspect)
		if err != nil {
			t.Fatalf("step %d: Inspect: %v", i, err)
		}
		if d.Remaining != st.remaining[0] {
			t.Errorf("step %d: Inspect remaining = %d, want %d", i, d.Remaining, st.remaining[0])
		}
	case st.reqs != nil:
		out := make([]algorithms.Decision, len(st.reqs))
		if err := s.Take(ctx, st.reqs, out); err != nil {
			t.Fatalf("step %d: Take: %v", i, err)
		}
		for j, d := range out {
			if d.Allowed != st.allowed[j] || d.Remaining != st.remaining[j] {
				t.Errorf("step %d, request %d: allowed=%v remaining=%d, want allowed=%v remaining=%d",
					i, j, d.Allowed, d.Remaining, st.allowed[j], st.remaining[j])
			}
		}
	}
	if st.keys >= 0 {
		if got := s.Len(); got != st.keys {
			t.Errorf("step %d: Len = %d, want %d", i, got, st.keys)
		}
	}
}

func TestTakeRejectsBadCalls(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		reqs []store.Request
		out  int
	}{
		{"fewer decisions than requests", rs(req(kA, 1, 1), req(kB, 1, 1)), 1},
		{"a request without an algorithm", rs(req(kA, 1, 1), store.Request{Zone: "z", Key: kB}), 2},
	}
	for _, tc := range tests {
		if err := s.Take(ctx, tc.reqs, make([]algorithms.Decision, tc.out)); err == nil {
			t.Errorf("%s: Take returned no error", tc.name)
		}
	}
	if _, err := s.Inspect(ctx, store.Request{Zone: "z", Key: kA}); err == nil {
		t.Error("Inspect without an algorithm returned no error")
	}
	if err := s.Take(ctx, nil, nil); err != nil {
		t.Errorf("Take with no requests: %v", err)
	}
}

func TestManyZonesInOneCall(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{Shards: 2, Now: newClock().Now})
	ks := keys("many", 20)
	reqs := make([]store.Request, 0, 2*len(ks))
	for _, k := range ks {
		reqs = append(reqs, req(k, 2, 1), req(k, 2, 1))
	}
	out := make([]algorithms.Decision, len(reqs))
	for round, want := range []bool{true, false} {
		if err := s.Take(context.Background(), reqs, out); err != nil {
			t.Fatal(err)
		}
		if store.Blocked(reqs, out) == want {
			t.Fatalf("round %d: blocked = %v", round, !want)
		}
	}
	if got := s.Len(); got != len(ks) {
		t.Errorf("Len = %d, want %d", got, len(ks))
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     Options
		shards int
		max    int
	}{
		{Options{}, DefaultShards, DefaultMaxKeys},
		{Options{Shards: 1}, 1, DefaultMaxKeys},
		{Options{Shards: 100, MaxKeys: -1}, 128, -1},
		{Options{Shards: 1 << 20, MaxKeys: 7}, maxShards, 7},
	}
	for _, tc := range tests {
		got := tc.in.withDefaults()
		if got.Shards != tc.shards || got.MaxKeys != tc.max || time.Duration(got.SweepInterval) != DefaultSweepInterval || got.Now == nil {
			t.Errorf("%+v.withDefaults() = %+v", tc.in, got)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	s.Close()
	s.Close()
	if err := s.Destruct(); err != nil {
		t.Fatal(err)
	}
	out := make([]algorithms.Decision, 1)
	if err := s.Take(context.Background(), rs(req(kA, 1, 1)), out); err != nil || !out[0].Allowed {
		t.Fatalf("Take after Close: %v, %+v", err, out[0])
	}
}
