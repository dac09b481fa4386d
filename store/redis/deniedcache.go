package redis

import (
	"sync"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// The local cache of denied keys (Throughput.DenyCache).
//
// A client that keeps sending after its limit is denied by Redis again and
// again, each denial a round trip that changes nothing. With the cache on,
// when Redis denies an enforcing zone's request, this instance remembers
// the key until the denial's retry time and refuses further requests on it
// itself, with no Redis trip and nothing charged (a denial charges nothing
// anyway).
//
// The cache answers only what Redis would answer:
//   - only requests that are not Peek, not Shadow and cost at least as much
//     as the cached denial (a smaller cost may fit sooner), with the same
//     policy (a live override that changes the limit asks Redis again);
//   - never for the concurrency algorithm, whose slots free when other
//     requests end, long before a denial's retry time;
//   - until the retry time measured from when the call started, so an entry
//     never outlives the denial it stands for.
//
// A request over several zones is answered from the cache only when one of
// its enforcing zones is cached as denied: then the whole request is
// refused and nothing is charged anywhere, as Redis would have done. Its
// other zones were not evaluated; their decisions say Allowed with the
// zone's Limit and Remaining 0, like a zone that was not charged because
// another refused.
//
// The trade-off: the cache is this instance's own. A key denied here stays
// denied here until its retry time even if its counter frees earlier: an
// admin resets the key (Reset clears this instance's entry only, not the
// other instances'), a split Cluster call refunds a charge, or the
// counter is deleted in Redis. At worst a client waits out the retry time
// Redis gave it. It never admits more than Redis would.
//
// The cache holds at most its size in entries. When a shard is full, an
// expired entry is evicted if one is found among a few, else a random one.

// deniedShards spreads the cache over independent locks; keys are hashes,
// so their first byte spreads them evenly.
const deniedShards = 16

type deniedKey struct {
	zone string
	key  store.Key
	id   algID
}

type deniedEntry struct {
	until   time.Time // the retry time, on this instance's clock
	resetAt time.Time
	cost    int64
	policy  algorithms.Policy
}

type deniedCache struct {
	shards [deniedShards]deniedShard
}

type deniedShard struct {
	mu  sync.Mutex
	max int
	m   map[deniedKey]deniedEntry
}

func newDeniedCache(size int) *deniedCache {
	c := new(deniedCache)
	per := max(size/deniedShards, 1)
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].m = make(map[deniedKey]deniedEntry)
	}
	return c
}

func (c *deniedCache) shard(k store.Key) *deniedShard { return &c.shards[k[0]%deniedShards] }

// cacheable reports whether r may be answered from the cache, or its
// denial remembered, and returns its cache key.
func cacheable(r *store.Request) (deniedKey, bool) {
	if r.Shadow || r.Peek || r.Cost <= 0 {
		return deniedKey{}, false
	}
	id, err := idOf(r.Algorithm)
	if err != nil || id == algConcurrency {
		return deniedKey{}, false
	}
	return deniedKey{zone: r.Zone, key: r.Key, id: id}, true
}

// answer refuses reqs from the cache at now and fills out, if one of their
// enforcing zones is cached as denied. It reports whether it did.
func (c *deniedCache) answer(reqs []store.Request, out []algorithms.Decision, now time.Time) bool {
	hit := -1
	var e deniedEntry
	for i := range reqs {
		k, ok := cacheable(&reqs[i])
		if !ok {
			continue
		}
		if e, ok = c.lookup(k, &reqs[i], now); ok {
			hit = i
			break
		}
	}
	if hit < 0 {
		return false
	}
	for i := range reqs {
		out[i] = algorithms.Decision{Allowed: true, Limit: reqs[i].Policy.Limit}
	}
	retry := e.until.Sub(now)
	out[hit] = algorithms.Decision{
		Allowed:    false,
		Limit:      reqs[hit].Policy.Limit,
		RetryAfter: retry,
		ResetAfter: max(e.resetAt.Sub(now), retry),
	}
	return true
}

// lookup returns the live entry of k that denies r at now.
func (c *deniedCache) lookup(k deniedKey, r *store.Request, now time.Time) (deniedEntry, bool) {
	sh := c.shard(k.key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[k]
	if !ok {
		return deniedEntry{}, false
	}
	if !now.Before(e.until) {
		delete(sh.m, k)
		return deniedEntry{}, false
	}
	return e, r.Cost >= e.cost && r.Policy == e.policy
}

// remember caches every enforcing zone of reqs that out denies, as decided
// by a call that started at start.
func (c *deniedCache) remember(reqs []store.Request, out []algorithms.Decision, start time.Time) {
	for i := range reqs {
		d := out[i]
		if d.Allowed || d.RetryAfter <= 0 {
			continue
		}
		k, ok := cacheable(&reqs[i])
		if !ok {
			continue
		}
		c.shard(k.key).put(k, deniedEntry{
			until:   start.Add(d.RetryAfter),
			resetAt: start.Add(d.ResetAfter),
			cost:    reqs[i].Cost,
			policy:  reqs[i].Policy,
		}, start)
	}
}

func (sh *deniedShard) put(k deniedKey, e deniedEntry, now time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= sh.max {
		sh.evict(now)
	}
	sh.m[k] = e
}

// evict removes one entry: an expired one among the first few that map
// iteration (which starts at a random place) yields, or else the first.
// sh.mu must be held.
func (sh *deniedShard) evict(now time.Time) {
	const probes = 8
	n := 0
	var victim deniedKey
	for k, e := range sh.m {
		if n == 0 {
			victim = k
		}
		if !now.Before(e.until) {
			victim = k
			break
		}
		if n++; n == probes {
			break
		}
	}
	delete(sh.m, victim)
}

// forget drops every entry of key in zone.
func (c *deniedCache) forget(zone string, key store.Key) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for id := algGCRA; id <= algConcurrency; id++ {
		delete(sh.m, deniedKey{zone: zone, key: key, id: id})
	}
}
