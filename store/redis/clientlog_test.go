package redis

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestGoRedisMessagesGoToTheLoggerAtDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := clientLog{logger: func() *zap.Logger { return zap.New(core) }}
	log.Printf(context.Background(), "dial %s: %s", "127.0.0.1:1", "refused")
	all := logs.All()
	if len(all) != 1 || all[0].Level != zapcore.DebugLevel || all[0].LoggerName != "rate_limit.redis.client" ||
		all[0].ContextMap()["message"] != "dial 127.0.0.1:1: refused" {
		t.Fatalf("logged %+v", all)
	}
	quiet, none := observer.New(zapcore.InfoLevel)
	clientLog{logger: func() *zap.Logger { return zap.New(quiet) }}.Printf(context.Background(), "x")
	if none.Len() != 0 {
		t.Errorf("a debug message reached an info logger: %v", none.All())
	}
}
