// Package memory is Ratewarden's in-process store: counters live in a
// sharded map in this Caddy instance's memory. It needs nothing else and is
// the default when no other store is configured.
//
// Each shard is a mutex and a map from key to a compact entry (the
// algorithm's first two scalars and an expiry; the rare third scalar sits in
// a side map). A decision runs the algorithm's Go transition with the shards
// of all its keys locked, so it is atomic with respect to every other call
// on those keys. Keys are already uniformly
// hashed, so the shard is taken from the key's bytes.
//
// A store shared through Load survives `caddy reload`: the counters of zones
// that still exist are kept, and changed settings apply to the running store.
package memory

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultShards        = 256
	DefaultMaxKeys       = 1_000_000
	DefaultSweepInterval = time.Minute

	// maxShards bounds Options.Shards; more shards than this only costs
	// memory.
	maxShards = 1 << 16
)

// Options configures a Store. Its fields are JSON-ready, so a Caddy module
// can embed it as its configuration.
type Options struct {
	// Shards is the number of independently locked parts the key space is
	// split into. More shards mean less lock contention between requests
	// for different keys. It is rounded up to a power of two (at most
	// 65536) and cannot change while a pooled store is running.
	// Default: 256.
	Shards int `json:"shards,omitempty"`

	// MaxKeys bounds how many keys the store holds, and so its memory. The
	// bound is split evenly over the shards: each shard holds at most
	// ceil(MaxKeys/Shards) keys. When full, a new key evicts the entry that
	// expires soonest among 8 sampled entries of its shard; evicting a key
	// forgets its counter, so size max_keys for your key cardinality.
	// Expired entries met in the sample are dropped first, and then nothing
	// live is evicted. Lowering MaxKeys on a running store takes full
	// effect at the next sweep. A negative value removes the bound.
	// Each key of a scalar algorithm (all but sliding_log, whose log
	// comes on top) costs about 55 to 120 bytes of live heap.
	// Default: 1000000. Example: 50000.
	MaxKeys int `json:"max_keys,omitempty"`

	// SweepInterval is how often expired keys are deleted in the
	// background. An expired key is never used, only its memory is held
	// until the sweep. Default: 1m. Example: 30s.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// Now is the clock. Default: time.Now.
	Now func() time.Time `json:"-"`
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Shards <= 0 {
		o.Shards = DefaultShards
	}
	o.Shards = min(1<<bits.Len(uint(o.Shards-1)), maxShards)
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = caddy.Duration(DefaultSweepInterval)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the in-memory store. It implements store.Store, store.Inspector
// and store.Resetter, and is safe for concurrent use. Create one with New or
// Load.
type Store struct {
	shards []shard
	mask   uint32
	now    func() time.Time

	// shardCap is the per-shard key limit, 0 for none; sweepEvery is the
	// sweep interval in nanoseconds. Both change on reload (see Load).
	shardCap   atomic.Int64
	sweepEvery atomic.Int64

	// records holds the control records' storage and watchers; see
	// records.go.
	records records

	kick      chan struct{} // wakes the sweeper after sweepEvery changed
	done      chan struct{} // closed by Close
	stopped   chan struct{} // closed when the sweeper has returned
	closeOnce sync.Once
}

// Stats is a snapshot of a store's counters, for metrics.
type Stats struct {
	// Keys is the number of stored keys, including expired ones that have
	// not been swept yet.
	Keys int
	// Evictions is how many live keys were evicted to respect MaxKeys.
	Evictions uint64
}

// New returns a store with its background sweeper running. Call Close to
// stop the sweeper.
func New(opts Options) *Store {
	opts = opts.withDefaults()
	s := &Store{
		shards:  make([]shard, opts.Shards),
		mask:    uint32(opts.Shards - 1),
		now:     opts.Now,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].init(0)
	}
	s.apply(opts)
	go s.sweepLoop()
	return s
}

// apply sets the options that may change on a running store.
func (s *Store) apply(opts Options) {
	limit := int64(0)
	if opts.MaxKeys > 0 {
		n := int64(len(s.shards))
		limit = (int64(opts.MaxKeys) + n - 1) / n
	}
	s.shardCap.Store(limit)
	if old := s.sweepEvery.Swap(int64(opts.SweepInterval)); old != 0 && old != int64(opts.SweepInterval) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// shardIndex picks the shard of k from its first bytes: keys are already
// uniform hashes.
func (s *Store) shardIndex(k store.Key) uint32 {
	return binary.LittleEndian.Uint32(k[:4]) & s.mask
}

func (s *Store) shardOf(k store.Key) *shard { return &s.shards[s.shardIndex(k)] }

// Take decides every request in reqs at once and writes one decision per
// request into out. See store.Store for the all-or-nothing contract.
//
// When the same key appears more than once in reqs, each request sees the
// state the earlier ones would leave if the call is committed, so two
// requests on one key are decided as if they came one after the other.
func (s *Store) Take(_ context.Context, reqs []store.Request, out []algorithms.Decision) error {
	if len(out) != len(reqs) {
		return fmt.Errorf("taking from memory store: %d decisions for %d requests", len(out), len(reqs))
	}
	for i := range reqs {
		if reqs[i].Algorithm == nil {
			return fmt.Errorf("taking from memory store: zone %q has no algorithm", reqs[i].Zone)
		}
	}
	if len(reqs) == 0 {
		return nil
	}

	var idxBuf [8]uint32
	locked := s.lockShards(reqs, idxBuf[:0])
	defer s.unlockShards(locked)

	// The clock is read under the locks, so calls on a key see times in
	// the order they are decided.
	now := s.now()
	nowN := now.UnixNano()
	var nextBuf [4]algorithms.State
	nexts := nextBuf[:0]
	if len(reqs) > len(nextBuf) {
		nexts = make([]algorithms.State, 0, len(reqs))
	}
	for i := range reqs {
		r := &reqs[i]
		state, ok := pending(reqs, out, nexts, i)
		if !ok {
			state = s.shardOf(r.Key).load(r.Key, nowN)
		}
		next, d := r.Algorithm.Take(state, now, r.Policy, r.Cost)
		nexts = append(nexts, next)
		out[i] = d
	}

	if store.Blocked(reqs, out) {
		return nil
	}
	limit := int(s.shardCap.Load())
	for i := range reqs {
		if charged(reqs, out, i) {
			s.shardOf(reqs[i].Key).commit(reqs[i].Key, nexts[i], out[i].ResetAfter, nowN, limit)
		}
	}
	return nil
}

// charged reports whether request i's next state is stored when the call is
// not blocked.
func charged(reqs []store.Request, out []algorithms.Decision, i int) bool {
	return out[i].Allowed && !reqs[i].Peek
}

// pending returns the state that the requests before i in the same call
// leave for request i's key, if any of them charges it.
func pending(reqs []store.Request, out []algorithms.Decision, nexts []algorithms.State, i int) (algorithms.State, bool) {
	for j := i - 1; j >= 0; j-- {
		if reqs[j].Key == reqs[i].Key && charged(reqs, out, j) {
			return nexts[j], true
		}
	}
	return algorithms.State{}, false
}

// lockShards locks the distinct shards of reqs in ascending index order, so
// concurrent multi-key calls cannot deadlock. It returns the locked indexes,
// appended to buf.
func (s *Store) lockShards(reqs []store.Request, buf []uint32) []uint32 {
	for i := range reqs {
		buf = insertSorted(buf, s.shardIndex(reqs[i].Key))
	}
	for _, idx := range buf {
		s.shards[idx].mu.Lock()
	}
	return buf
}

func (s *Store) unlockShards(idxs []uint32) {
	for _, idx := range idxs {
		s.shards[idx].mu.Unlock()
	}
}

// insertSorted inserts v into the ascending set a, unless it is there.
func insertSorted(a []uint32, v uint32) []uint32 {
	i := len(a)
	for i > 0 && a[i-1] > v {
		i--
	}
	if i > 0 && a[i-1] == v {
		return a
	}
	a = append(a, 0)
	copy(a[i+1:], a[i:])
	a[i] = v
	return a
}

// Inspect returns the decision req would get at cost 0, charging nothing.
func (s *Store) Inspect(_ context.Context, req store.Request) (algorithms.Decision, error) {
	if req.Algorithm == nil {
		return algorithms.Decision{}, fmt.Errorf("inspecting memory store: zone %q has no algorithm", req.Zone)
	}
	sh := s.shardOf(req.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.now()
	_, d := req.Algorithm.Take(sh.load(req.Key, now.UnixNano()), now, req.Policy, 0)
	return d, nil
}

// Reset forgets key. Keys are zone-qualified hashes, so zone is not needed
// to find it.
func (s *Store) Reset(_ context.Context, _ string, key store.Key) error {
	sh := s.shardOf(key)
	sh.mu.Lock()
	sh.remove(key)
	sh.mu.Unlock()
	return nil
}

// Len returns the number of stored keys, including expired ones that have
// not been swept yet.
func (s *Store) Len() int { return s.Stats().Keys }

// Stats returns the store's key count and eviction total. It locks one shard
// at a time, so it is a snapshot only when the store is idle.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Keys += len(sh.m)
		st.Evictions += sh.evictions
		sh.mu.Unlock()
	}
	return st
}

// Close stops the background sweeper. The store keeps answering afterwards,
// without sweeping. Close is idempotent.
func (s *Store) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	<-s.stopped
}

// Interface guards
var (
	_ store.Store     = (*Store)(nil)
	_ store.Inspector = (*Store)(nil)
	_ store.Resetter  = (*Store)(nil)
)
