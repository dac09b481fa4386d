package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// nodeTopology is what per-node breakers need to know of a client that
// spreads keys over several servers: a Cluster's primaries or a Ring's
// shards. See breakers.go.
type nodeTopology interface {
	pinger
	// nodeFor returns the address of the server that serves key, from the
	// client's memory only: it never touches the network.
	nodeFor(key string) (string, bool)
	// members returns the servers that serve keys now, by address, or nil
	// when the client does not know.
	members(ctx context.Context) map[string]*goredis.Client
	// refresh asks the client to reload its map of the servers.
	refresh(ctx context.Context)
	// mergeable reports whether the calls to one server may be merged into
	// one script call (see execMerged): on a Ring, where a server holds
	// any keys; not on a Cluster, where a script's keys must share a slot.
	mergeable() bool
}

// topologyOf returns the node topology of c, or nil for a client that
// talks to one server (standalone, Sentinel).
func topologyOf(c Client) nodeTopology {
	switch c := c.(type) {
	case *goredis.ClusterClient:
		return clusterTopology{c}
	case *goredis.Ring:
		return ringTopology{c}
	}
	return nil
}

// clusterTopology is a Cluster's primaries.
type clusterTopology struct{ *goredis.ClusterClient }

func (t clusterTopology) nodeFor(key string) (string, bool) {
	// A cancelled context: with its slot map loaded the client answers
	// from memory; without one it would load it now, outside the store's
	// timeout, so the call goes under the store's breaker instead and
	// loads the map within its own deadline.
	master, err := t.MasterForKey(cancelled, key)
	if err != nil {
		return "", false
	}
	return master.Options().Addr, true
}

func (t clusterTopology) members(ctx context.Context) map[string]*goredis.Client {
	var mu sync.Mutex
	out := map[string]*goredis.Client{}
	err := t.ForEachMaster(ctx, func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		out[c.Options().Addr] = c
		mu.Unlock()
		return nil
	})
	if err != nil || len(out) == 0 {
		return nil
	}
	return out
}

func (t clusterTopology) refresh(ctx context.Context) { t.ReloadState(ctx) }

func (clusterTopology) mergeable() bool { return false }

// ringTopology is a Ring's shards. The Ring itself notices a dead shard
// (its heartbeat) and hashes that shard's keys to the live ones; members
// lists only the live shards.
type ringTopology struct{ *goredis.Ring }

func (t ringTopology) nodeFor(key string) (string, bool) {
	c, err := t.GetShardClientForKey(key)
	if err != nil {
		return "", false
	}
	return c.Options().Addr, true
}

func (t ringTopology) members(context.Context) map[string]*goredis.Client {
	shards := t.GetShardClients()
	if len(shards) == 0 {
		return nil
	}
	out := make(map[string]*goredis.Client, len(shards))
	for _, c := range shards {
		out[c.Options().Addr] = c
	}
	return out
}

func (ringTopology) refresh(context.Context) {}

func (ringTopology) mergeable() bool { return true }

// cancelled is a context that has ended, for lookups that must not touch
// the network.
var cancelled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
