package memory

import (
	"maps"
	"time"

	"github.com/ratewarden/ratewarden/store"
)

// shrinkMin is the smallest peak size at which a shard's maps are rebuilt
// after most of their keys are gone. Go maps never give memory back, so
// without this a burst of keys would hold its memory for good.
const shrinkMin = 1024

// churnMin is the fewest deletions after which a shard's maps are rebuilt
// to drop their tombstones (see shard.deleted). Smaller maps are cheap
// either way.
const churnMin = 64

// sweepLoop deletes expired keys every SweepInterval until Close.
func (s *Store) sweepLoop() {
	defer close(s.stopped)
	every := time.Duration(s.sweepEvery.Load())
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			every = time.Duration(s.sweepEvery.Load())
			ticker.Reset(every)
		case <-ticker.C:
			s.Sweep(s.now())
		}
	}
}

// Sweep deletes the keys that have expired at now and returns how many it
// deleted. It also brings shards back within MaxKeys after it was lowered,
// and gives back map memory after a burst of keys has expired. It locks one
// shard at a time.
func (s *Store) Sweep(now time.Time) (removed int) {
	nowN := now.UnixNano()
	for i := range s.shards {
		limit := int(s.shardCap.Load())
		sh := &s.shards[i]
		sh.mu.Lock()
		removed += sh.sweep(nowN)
		sh.trim(limit, nowN)
		sh.shrink()
		sh.mu.Unlock()
	}
	return removed
}

// sweep deletes the shard's expired keys. The caller holds sh.mu.
func (sh *shard) sweep(nowN int64) (removed int) {
	for k, e := range sh.m {
		if e.exp <= nowN {
			sh.remove(k)
			removed++
		}
	}
	return removed
}

// shrink rebuilds the shard's maps when they hold a quarter or less of their
// peak, or when at least as many keys were deleted since the last rebuild
// as they hold: Go maps neither shrink nor always reuse deleted slots, so a
// shard whose keys expire and come back would otherwise grow at every
// sweep. The caller holds sh.mu.
func (sh *shard) shrink() {
	shrunk := sh.peak >= shrinkMin && len(sh.m)*4 <= sh.peak
	churned := sh.deleted >= churnMin && sh.deleted >= len(sh.m)
	if !shrunk && !churned {
		return
	}
	m, v2, logs := sh.m, sh.v2, sh.logs
	sh.init(len(m))
	maps.Copy(sh.m, m)
	if len(v2) > 0 {
		sh.v2 = make(map[store.Key]int64, len(v2))
		maps.Copy(sh.v2, v2)
	}
	if len(logs) > 0 {
		sh.logs = make(map[store.Key][]int64, len(logs))
		maps.Copy(sh.logs, logs)
	}
}
