package redis

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// go-redis has one process-wide logger for its own messages (dial retries,
// sentinel switches), which by default are bare lines on stderr. They go
// through Caddy's default logger instead, at debug level: the store logs
// the failures that matter itself, once, with the circuit breaker.
func init() { goredis.SetLogger(clientLog{logger: caddy.Log}) }

// clientLog adapts a zap logger to go-redis's logging interface. It looks
// the logger up per message: Caddy replaces its default logger when a
// config loads.
type clientLog struct{ logger func() *zap.Logger }

func (c clientLog) Printf(_ context.Context, format string, v ...any) {
	if ce := c.logger().Named("rate_limit.redis.client").Check(zap.DebugLevel, "go-redis"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}
