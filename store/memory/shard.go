package memory

import (
	"math"
	"sync"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// entry is one key's stored state: the algorithm's first two scalars and
// when the state becomes idle. It holds no pointers, so a shard's map costs
// the garbage collector nothing to scan and a key costs one 40-byte map slot
// (16 bytes of key, 24 of entry) and no allocation. Every algorithm but
// sliding_window keeps at most two scalars; a third one that is not zero
// goes to the shard's v2 map.
type entry struct {
	v   [2]int64
	exp int64 // unix nanoseconds; the state is idle from then on
}

// shard is one independently locked part of the key space.
type shard struct {
	mu sync.Mutex
	m  map[store.Key]entry
	// v2 holds State.V[2] for the keys where it is not zero
	// (sliding_window's previous count), so that other keys do not pay
	// for it.
	v2 map[store.Key]int64
	// logs holds State.Log for the keys whose algorithm keeps one
	// (sliding_log), so that scalar keys do not pay for a slice header.
	logs map[store.Key][]int64
	// peak is the most keys m has held since it was last rebuilt; maps
	// never shrink, so the sweeper rebuilds m when it falls far below.
	peak int
	// deleted counts the keys deleted from m since it was last rebuilt. A
	// deleted slot can stay a tombstone that new keys do not reuse, so a
	// map whose keys come and go keeps growing; the sweeper rebuilds it
	// once as many keys were deleted as it holds.
	deleted   int
	evictions uint64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

func (sh *shard) init(size int) {
	sh.m = make(map[store.Key]entry, size)
	sh.v2, sh.logs = nil, nil
	sh.peak, sh.deleted = size, 0
}

// load returns k's state at nowN, the zero State when k is missing or
// expired. The caller holds sh.mu.
func (sh *shard) load(k store.Key, nowN int64) algorithms.State {
	e, ok := sh.m[k]
	if !ok || e.exp <= nowN {
		return algorithms.State{}
	}
	st := algorithms.State{V: [3]int64{e.v[0], e.v[1]}}
	if len(sh.v2) > 0 {
		st.V[2] = sh.v2[k]
	}
	if len(sh.logs) > 0 {
		st.Log = sh.logs[k]
	}
	return st
}

// commit stores next as k's state until nowN+resetAfter, or forgets k when
// next is idle (resetAfter <= 0). limit is the shard's key limit, 0 for
// none. The caller holds sh.mu.
func (sh *shard) commit(k store.Key, next algorithms.State, resetAfter time.Duration, nowN int64, limit int) {
	if resetAfter <= 0 {
		sh.remove(k)
		return
	}
	if limit > 0 && len(sh.m) >= limit {
		if _, ok := sh.m[k]; !ok {
			sh.makeRoom(nowN)
		}
	}
	exp := int64(math.MaxInt64)
	if int64(resetAfter) < exp-nowN {
		exp = nowN + int64(resetAfter)
	}
	sh.m[k] = entry{v: [2]int64{next.V[0], next.V[1]}, exp: exp}
	if n := len(sh.m); n > sh.peak {
		sh.peak = n
	}
	switch {
	case next.V[2] != 0:
		if sh.v2 == nil {
			sh.v2 = make(map[store.Key]int64)
		}
		sh.v2[k] = next.V[2]
	case len(sh.v2) > 0:
		delete(sh.v2, k)
	}
	switch {
	case len(next.Log) > 0:
		if sh.logs == nil {
			sh.logs = make(map[store.Key][]int64)
		}
		sh.logs[k] = next.Log
	case len(sh.logs) > 0:
		delete(sh.logs, k)
	}
}

// remove forgets k. The caller holds sh.mu.
func (sh *shard) remove(k store.Key) {
	n := len(sh.m)
	delete(sh.m, k)
	sh.deleted += n - len(sh.m)
	if len(sh.v2) > 0 {
		delete(sh.v2, k)
	}
	if len(sh.logs) > 0 {
		delete(sh.logs, k)
	}
}
