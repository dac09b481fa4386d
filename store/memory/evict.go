package memory

import (
	"math"

	"github.com/ratewarden/ratewarden/store"
)

// evictSample is how many entries of a full shard are looked at to make room
// for a new key.
const evictSample = 8

// makeRoom frees at least one slot in a shard that is at its key limit, with
// bounded work: it samples up to evictSample entries (map iteration starts
// at a random place), drops those that have expired and, if none had,
// evicts the sampled entry that expires soonest. The caller holds sh.mu.
func (sh *shard) makeRoom(nowN int64) {
	var victim store.Key
	victimExp := int64(math.MaxInt64)
	found, expired, seen := false, false, 0
	for k, e := range sh.m {
		switch {
		case e.exp <= nowN:
			sh.remove(k)
			expired = true
		case !found || e.exp < victimExp:
			victim, victimExp, found = k, e.exp, true
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if expired || !found {
		return
	}
	sh.remove(victim)
	sh.evictions++
}

// trim evicts entries until the shard holds at most limit keys. It matters
// only after MaxKeys was lowered on a running store, since commit keeps a
// shard from growing past its limit. The caller holds sh.mu.
func (sh *shard) trim(limit int, nowN int64) {
	if limit <= 0 {
		return
	}
	for len(sh.m) > limit {
		sh.makeRoom(nowN)
	}
}
