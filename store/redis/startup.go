package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The start-up check.
//
// When the module is provisioned, the store pings its topology once, so
// that a wrong address, password, master name or topology shows up when
// Caddy starts rather than at the first request. By default an unreachable
// Redis does not stop Caddy: the check logs one error, counts as a failure
// in the circuit breaker, and decisions follow on_failure until Redis
// answers. With require_store the error fails the config load instead.

// DefaultStartupTimeout bounds the start-up check when no dial timeout is
// configured.
const DefaultStartupTimeout = time.Second

// startupTimeout is how long the start-up check waits: the dial timeout,
// or DefaultStartupTimeout.
func (o Options) startupTimeout() time.Duration {
	if o.DialTimeout > 0 {
		return time.Duration(o.DialTimeout)
	}
	return DefaultStartupTimeout
}

// pinger is a client that pings its topology: every go-redis client.
type pinger interface {
	Ping(ctx context.Context) *goredis.StatusCmd
}

// Ping checks once, within timeout and through the circuit breaker, that
// the store's Redis answers. On a Ring it pings every shard; on a Cluster
// it loads the slot map and pings one node; on Sentinel it asks the
// sentinels for the primary and pings it. The error names the store, its
// topology and addresses, never a password.
func (s *Store) Ping(ctx context.Context, timeout time.Duration) error {
	err := s.doWithin(ctx, opPing, s.g.main, timeout, func(ctx context.Context) error {
		if r, ok := s.c.(*goredis.Ring); ok {
			return r.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error {
				return c.Ping(ctx).Err()
			})
		}
		if p, ok := s.c.(pinger); ok {
			return p.Ping(ctx).Err()
		}
		// A client that cannot ping: the first decision will tell.
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// go-redis retries a refused dial until the deadline, so its
		// error says only that time ran out.
		err = fmt.Errorf("no answer within %v, check that the address is right and the server up: %w", timeout, err)
	}
	return s.diag.explain("pinging", err)
}

// checkStartup pings Redis once for a store provisioned with opts, which
// have their defaults, and reports whether it answered. When Redis does not
// answer it returns the error if opts.RequireStore is set, and otherwise
// logs it, once, and returns nil.
func (s *Store) checkStartup(ctx context.Context, opts Options) (bool, error) {
	err := s.Ping(ctx, opts.startupTimeout())
	if err == nil {
		return true, nil
	}
	if opts.RequireStore {
		return false, fmt.Errorf("require_store is set: %w", err)
	}
	opts.Logger.Error("redis store unreachable at start-up: on_failure decides until it answers",
		zap.String("store", opts.Name), zap.String("on_failure", opts.OnFailure), zap.Error(err))
	return false, nil
}
