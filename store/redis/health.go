package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/store"
)

// Health.
//
// CheckHealth asks Redis directly, within the store's Timeout, and not
// through the circuit breaker: a health probe must neither wait on the
// breaker's cooldown nor close or open it. The breaker's state is reported
// as it is.

// Script states in store.Health.
const (
	scriptsLoaded  = "loaded"
	scriptsMissing = "missing"
	scriptsUnknown = "unknown"
)

// failoverAddr is the address go-redis gives the options of a Sentinel
// failover client, which dials whichever primary the sentinels name.
const failoverAddr = "FailoverClient"

// poolStatser is a client that reports its connection pool's statistics:
// every go-redis client.
type poolStatser interface {
	PoolStats() *goredis.PoolStats
}

// CheckHealth pings Redis (every live shard of a Ring) and reports whether
// it answered within the store's Timeout, with the topology, the circuit
// breaker's state, the failure policy, the connection pool's statistics and
// whether the take script is loaded. Latency is the ping's. The error, when
// there is one, names the store and its addresses, never a password.
func (s *Store) CheckHealth(ctx context.Context) store.Health {
	h := store.Health{
		Backend:   "redis",
		Topology:  s.topology(),
		Breaker:   s.g.stateName(),
		OnFailure: s.g.policy,
		Scripts:   scriptsUnknown,
	}
	pingCtx, cancel := context.WithTimeout(ctx, s.timeout)
	start := time.Now()
	err := s.probe(pingCtx)
	h.Latency = time.Since(start)
	cancel()
	if err != nil {
		h.Error = s.diag.explain("checking the health of", err).Error()
	} else {
		h.OK = true
		h.Scripts = s.scripts(ctx)
	}
	h.Pool = s.poolStats()
	return h
}

// topology names the store's topology from its client, or returns "" for a
// client the store does not know.
func (s *Store) topology() string {
	switch c := s.c.(type) {
	case *goredis.ClusterClient:
		return "cluster"
	case *goredis.Ring:
		return "ring"
	case *goredis.Client:
		if s.diag.master != "" || c.Options().Addr == failoverAddr {
			return "sentinel"
		}
		return "standalone"
	}
	return ""
}

// probe pings Redis: every live shard of a Ring, which must have all its
// shards up, and otherwise the client's topology as Ping does. A client
// that cannot ping is asked for the script instead.
func (s *Store) probe(ctx context.Context) error {
	switch c := s.c.(type) {
	case *goredis.Ring:
		err := c.ForEachShard(ctx, func(ctx context.Context, shard *goredis.Client) error {
			return shard.Ping(ctx).Err()
		})
		if err != nil {
			return err
		}
		if up, all := len(c.GetShardClients()), len(c.Options().Addrs); up < all {
			return fmt.Errorf("%d of %d ring shards are down", all-up, all)
		}
		return nil
	case pinger:
		return c.Ping(ctx).Err()
	}
	return s.c.ScriptExists(ctx, takeScript.Hash()).Err()
}

// scripts tells whether the take script is loaded on every server that may
// run it, within the store's Timeout. A Cluster client asks every node
// itself; a Ring's shards are asked one by one, as the Ring would send
// SCRIPT EXISTS to one shard at random.
func (s *Store) scripts(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	hash := takeScript.Hash()
	loaded := true
	var err error
	if r, ok := s.c.(*goredis.Ring); ok {
		err = r.ForEachShard(ctx, func(ctx context.Context, shard *goredis.Client) error {
			exists, err := shard.ScriptExists(ctx, hash).Result()
			if err == nil && (len(exists) != 1 || !exists[0]) {
				err = errScriptMissing
			}
			return err
		})
		if errors.Is(err, errScriptMissing) {
			loaded, err = false, nil
		}
	} else {
		var exists []bool
		exists, err = s.c.ScriptExists(ctx, hash).Result()
		loaded = len(exists) == 1 && exists[0]
	}
	switch {
	case err != nil:
		return scriptsUnknown
	case loaded:
		return scriptsLoaded
	}
	return scriptsMissing
}

// errScriptMissing stops a walk over a Ring's shards at the first that
// lacks the script.
var errScriptMissing = errors.New("script missing")

// poolStats returns the client's pool statistics, or nil when it keeps
// none.
func (s *Store) poolStats() *store.PoolStats {
	p, ok := s.c.(poolStatser)
	if !ok {
		return nil
	}
	st := p.PoolStats()
	if st == nil {
		return nil
	}
	return &store.PoolStats{
		Hits:       st.Hits,
		Misses:     st.Misses,
		Timeouts:   st.Timeouts,
		TotalConns: st.TotalConns,
		IdleConns:  st.IdleConns,
		StaleConns: st.StaleConns,
	}
}

// Interface guards
var (
	_ store.HealthChecker = (*Store)(nil)
	_ store.HealthChecker = (*Module)(nil)
	_ poolStatser         = (*goredis.Client)(nil)
	_ poolStatser         = (*goredis.ClusterClient)(nil)
	_ poolStatser         = (*goredis.Ring)(nil)
)
