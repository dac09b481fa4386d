package control

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratewarden/ratewarden/store"
)

// fakeRecords is an in-memory store.Records shared by the registries of one
// test, standing in for the instances that share a real store. Watchers are
// called synchronously on every change, from the writer's goroutine.
type fakeRecords struct {
	mu       sync.Mutex
	data     map[string]map[string][]byte
	watchers []watcher
	down     atomic.Bool // every call fails while set
	loads    atomic.Int64
}

type watcher struct {
	ctx context.Context
	fn  func(kind, id string)
}

var errDown = errors.New("fake store down")

func newFakeRecords() *fakeRecords {
	return &fakeRecords{data: map[string]map[string][]byte{}}
}

func (f *fakeRecords) LoadRecords(_ context.Context, kind string) (map[string][]byte, error) {
	f.loads.Add(1)
	if f.down.Load() {
		return nil, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for id, v := range f.data[kind] {
		out[id] = append([]byte(nil), v...)
	}
	return out, nil
}

func (f *fakeRecords) LoadRecord(_ context.Context, kind, id string) ([]byte, bool, error) {
	if f.down.Load() {
		return nil, false, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[kind][id]
	return append([]byte(nil), v...), ok, nil
}

func (f *fakeRecords) PutRecord(_ context.Context, kind, id string, value []byte) error {
	if f.down.Load() {
		return errDown
	}
	f.putQuiet(kind, id, value)
	f.notify(kind, id)
	return nil
}

func (f *fakeRecords) DeleteRecord(_ context.Context, kind, id string) error {
	if f.down.Load() {
		return errDown
	}
	f.mu.Lock()
	delete(f.data[kind], id)
	f.mu.Unlock()
	f.notify(kind, id)
	return nil
}

func (f *fakeRecords) SwapRecord(_ context.Context, kind, id string, old, value []byte) (bool, error) {
	if f.down.Load() {
		return false, errDown
	}
	f.mu.Lock()
	cur, ok := f.data[kind][id]
	if ok != (old != nil) || ok && !bytes.Equal(cur, old) {
		f.mu.Unlock()
		return false, nil
	}
	if value == nil {
		delete(f.data[kind], id)
	} else {
		if f.data[kind] == nil {
			f.data[kind] = map[string][]byte{}
		}
		f.data[kind][id] = append([]byte(nil), value...)
	}
	f.mu.Unlock()
	f.notify(kind, id)
	return true, nil
}

func (f *fakeRecords) WatchRecords(ctx context.Context, fn func(kind, id string)) {
	f.mu.Lock()
	f.watchers = append(f.watchers, watcher{ctx, fn})
	f.mu.Unlock()
}

// putQuiet writes a record without telling watchers, like a change whose
// notification was lost.
func (f *fakeRecords) putQuiet(kind, id string, value []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.data[kind] == nil {
		f.data[kind] = map[string][]byte{}
	}
	f.data[kind][id] = append([]byte(nil), value...)
}

func (f *fakeRecords) get(kind, id string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[kind][id]
	return v, ok
}

func (f *fakeRecords) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.data[kind])
}

// notify calls every live watcher; notify("", "") says changes were missed.
func (f *fakeRecords) notify(kind, id string) {
	f.mu.Lock()
	ws := append([]watcher(nil), f.watchers...)
	f.mu.Unlock()
	for _, w := range ws {
		if w.ctx.Err() == nil {
			w.fn(kind, id)
		}
	}
}

var _ store.Records = (*fakeRecords)(nil)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newObserved returns a logger recording everything at debug level.
func newObserved() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// eventually fails the test unless cond holds within two seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testKeys starts a Keys registry over f with the clock c.
func testKeys(t *testing.T, f *fakeRecords, c *clock, log *zap.Logger) *Keys {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	k := NewKeys(KeysOptions{Records: f, Now: c.Now, Audit: log, Logger: log})
	k.m.retryEvery = 20 * time.Millisecond
	k.m.tickEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := k.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return k
}

// testOverrides starts an Overrides registry over f with the clock c.
func testOverrides(t *testing.T, f *fakeRecords, c *clock, log *zap.Logger) *Overrides {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	o := NewOverrides(OverridesOptions{Records: f, Now: c.Now, Logger: log})
	o.m.retryEvery = 20 * time.Millisecond
	o.m.tickEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := o.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return o
}

// waitIdle waits until m has applied every queued change, so a benchmark
// does not measure the background reloads of its own setup.
func waitIdle[V, I any](m *mirror[V, I]) {
	for {
		m.pmu.Lock()
		busy := m.all || len(m.pending) > 0 || len(m.wake) > 0
		m.pmu.Unlock()
		m.mu.Lock() // a reload in flight holds mu
		m.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
