package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/store"
)

// Defaults of the background loops; tests shorten them.
const (
	defaultRetryEvery = 3 * time.Second
	defaultTickEvery  = time.Second
	storeTimeout      = 10 * time.Second
)

// ref names one record of a store.Records.
type ref struct{ kind, id string }

// op is one write: raw is the record's new value, or nil to delete it.
// A swap applies only while the stored record is still old, the record
// the change was made from (nil: none); see write.
type op struct {
	ref
	raw  []byte
	swap bool
	old  []byte
}

// mirror keeps an in-memory copy of some record kinds of a store.Records,
// shared by the API key and override registries.
//
// V is one decoded record; I is the read-optimised index built from all of
// them. Readers call load and get an immutable *I through an atomic pointer:
// they never lock. Every change (a watch notification, a local write, a full
// reload) updates entries under mu and publishes a freshly built index
// (copy-on-write), so a change costs O(records); control records change
// rarely and are read on every request.
type mirror[V, I any] struct {
	records store.Records
	kinds   []string
	log     *zap.Logger
	// decode turns a stored value into a record, or says why it is
	// invalid. An invalid record is skipped (and logged), never fatal.
	decode func(kind, id string, raw []byte) (V, error)
	// build makes the index from every record. It must not keep entries.
	build func(entries map[ref]V) *I
	// retryEvery is how often failed loads are retried; tickEvery how often
	// start's tick function runs.
	retryEvery, tickEvery time.Duration

	mu      sync.Mutex // serialises changes to entries and snap
	entries map[ref]V
	raws    map[ref][]byte // each entry's stored bytes
	bad     map[ref][]byte // the bytes of records skipped as invalid
	snap    atomic.Pointer[I]
	started atomic.Bool

	pmu     sync.Mutex // guards the pending set
	pending map[ref]struct{}
	all     bool // a full reload is pending
	wake    chan struct{}
}

func newMirror[V, I any](records store.Records, log *zap.Logger, kinds []string,
	decode func(kind, id string, raw []byte) (V, error), build func(map[ref]V) *I,
) *mirror[V, I] {
	m := &mirror[V, I]{
		records:    records,
		kinds:      kinds,
		log:        log,
		decode:     decode,
		build:      build,
		retryEvery: defaultRetryEvery,
		tickEvery:  defaultTickEvery,
		entries:    map[ref]V{},
		raws:       map[ref][]byte{},
		bad:        map[ref][]byte{},
		wake:       make(chan struct{}, 1),
	}
	m.snap.Store(build(m.entries))
	return m
}

// load returns the current index. It never blocks.
func (m *mirror[V, I]) load() *I { return m.snap.Load() }

// start watches the records, loads them all and keeps the mirror current
// until ctx is done; it also calls tick (if not nil) every tickEvery. If the
// initial load fails it returns the error and keeps retrying in the
// background every retryEvery.
func (m *mirror[V, I]) start(ctx context.Context, tick func()) error {
	if m.records == nil {
		return errors.New("starting control registry: no records store")
	}
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("starting control registry: already started")
	}
	// Watch first, so a change made while the load runs is not missed.
	m.records.WatchRecords(ctx, m.notify)
	err := m.reloadAll(ctx)
	if err != nil {
		m.pmu.Lock()
		m.all = true
		m.pmu.Unlock()
	}
	go m.run(ctx)
	if tick != nil {
		go every(ctx, m.tickEvery, tick)
	}
	return err
}

// notify is the watch callback. It only queues the change, so it never
// blocks the store's watcher; run does the loading.
func (m *mirror[V, I]) notify(kind, id string) {
	m.pmu.Lock()
	switch {
	case kind == "":
		m.all = true
	case m.watches(kind):
		if m.pending == nil {
			m.pending = map[ref]struct{}{}
		}
		m.pending[ref{kind, id}] = struct{}{}
	default:
		m.pmu.Unlock()
		return
	}
	m.pmu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mirror[V, I]) watches(kind string) bool {
	for _, k := range m.kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// run applies queued changes as they come, and retries failed loads every
// retryEvery, until ctx is done.
func (m *mirror[V, I]) run(ctx context.Context) {
	t := time.NewTicker(m.retryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
		m.sync(ctx)
	}
}

// sync applies the queued changes. A change whose load fails stays queued
// (without waking run) and is retried on the next tick.
func (m *mirror[V, I]) sync(ctx context.Context) {
	m.pmu.Lock()
	all, pending := m.all, m.pending
	m.all, m.pending = false, nil
	m.pmu.Unlock()

	if all {
		if err := m.reloadAll(ctx); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("reloading control records; will retry", zap.Strings("kinds", m.kinds), zap.Error(err))
			}
			m.pmu.Lock()
			m.all = true
			m.pmu.Unlock()
		}
		return
	}
	if len(pending) > 0 {
		m.reloadSome(ctx, pending)
	}
}

// reloadAll replaces the mirror with every record of every kind. Nothing
// changes unless every kind loads, and nothing is rebuilt when every record
// is as it was (stores may ask for a full reload periodically).
func (m *mirror[V, I]) reloadAll(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries, raws := map[ref]V{}, map[ref][]byte{}
	seen := map[ref]struct{}{}
	changed := false
	for _, kind := range m.kinds {
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		recs, err := m.records.LoadRecords(lctx, kind)
		cancel()
		if err != nil {
			return fmt.Errorf("loading %s records: %w: %w", kind, ErrUnavailable, err)
		}
		for id, raw := range recs {
			r := ref{kind, id}
			seen[r] = struct{}{}
			if old, ok := m.raws[r]; ok && bytes.Equal(old, raw) {
				entries[r], raws[r] = m.entries[r], old
				continue
			}
			if v, ok := m.decodeLogged(r, raw); ok {
				entries[r], raws[r] = v, raw
				changed = true
			}
		}
	}
	for r := range m.bad {
		if _, ok := seen[r]; !ok {
			delete(m.bad, r)
		}
	}
	if !changed && len(raws) == len(m.raws) {
		return nil
	}
	m.entries, m.raws = entries, raws
	m.publish()
	return nil
}

// reloadSome reloads the given records and publishes once. An absent or
// invalid record leaves the mirror; one that fails to load is queued again.
func (m *mirror[V, I]) reloadSome(ctx context.Context, refs map[ref]struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for r := range refs {
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		raw, ok, err := m.records.LoadRecord(lctx, r.kind, r.id)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("reloading control record; will retry",
					zap.String("kind", r.kind), zap.String("id", r.id), zap.Error(err))
			}
			m.pmu.Lock()
			if m.pending == nil {
				m.pending = map[ref]struct{}{}
			}
			m.pending[r] = struct{}{}
			m.pmu.Unlock()
			continue
		}
		changed = m.setLocked(r, raw, ok) || changed
	}
	if changed {
		m.publish()
	}
}

// write applies ops to the store in order, then to the mirror at once (not
// waiting for the watch echo). On a store error it stops: the ops written so
// far are in the mirror, and the error wraps ErrUnavailable.
//
// A swap op, on a store that can swap (store.RecordSwapper), is written
// only if the stored record is still o.old, the one its change was made
// from. (Not the mirror's copy at write time: a notice may have updated it
// since the change was made.) If another instance changed it, the op is not
// written, the record is fetched again, and the error wraps ErrConflict:
// the caller reads the new record and tries again. On other stores a swap
// is a plain write (last writer wins).
func (m *mirror[V, I]) write(ctx context.Context, ops ...op) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	changed := false
	sw, canSwap := m.records.(store.RecordSwapper)
	for _, o := range ops {
		switch {
		case o.swap && canSwap:
			var swapped bool
			if swapped, err = sw.SwapRecord(ctx, o.kind, o.id, o.old, o.raw); err == nil && !swapped {
				m.notify(o.kind, o.id)
				return fmt.Errorf("%s record %s was changed by another instance meanwhile; read it again and retry: %w", o.kind, o.id, ErrConflict)
			}
		case o.raw == nil:
			err = m.records.DeleteRecord(ctx, o.kind, o.id)
		default:
			err = m.records.PutRecord(ctx, o.kind, o.id, o.raw)
		}
		if err != nil {
			err = fmt.Errorf("writing %s record %s: %w: %w", o.kind, o.id, ErrUnavailable, err)
			break
		}
		changed = m.setLocked(o.ref, o.raw, o.raw != nil) || changed
	}
	if changed {
		m.publish()
	}
	return err
}

// setLocked puts a record into entries, or removes it when absent or
// invalid, and reports whether anything changed: the echo of a local write
// finds the same bytes and costs no rebuild. The caller holds mu.
func (m *mirror[V, I]) setLocked(r ref, raw []byte, present bool) bool {
	if old, had := m.raws[r]; had && present && bytes.Equal(old, raw) {
		return false
	}
	if !present {
		delete(m.bad, r)
	} else if v, ok := m.decodeLogged(r, raw); ok {
		m.entries[r] = v
		m.raws[r] = raw
		return true
	}
	if _, had := m.raws[r]; !had {
		return false
	}
	delete(m.entries, r)
	delete(m.raws, r)
	return true
}

// decodeLogged decodes a record, logging it when it is invalid. The same
// invalid bytes are logged once, not on every reload. The caller holds mu.
func (m *mirror[V, I]) decodeLogged(r ref, raw []byte) (V, bool) {
	if bad, ok := m.bad[r]; ok && bytes.Equal(bad, raw) {
		var zero V
		return zero, false
	}
	v, err := m.decode(r.kind, r.id, raw)
	if err != nil {
		// The error names the record and the field, never its value.
		m.log.Error("skipping invalid control record",
			zap.String("kind", r.kind), zap.String("id", r.id), zap.Error(err))
		m.bad[r] = raw
		return v, false
	}
	delete(m.bad, r)
	return v, true
}

// publish builds and stores a new index. The caller holds mu.
func (m *mirror[V, I]) publish() { m.snap.Store(m.build(m.entries)) }

// every calls fn every d until ctx is done.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
