package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// BenchmarkTakeTracing measures what tracing costs, with the workload of
// BenchmarkTakeParallel (16 goroutines per CPU, GCRA on 100,000 keys of the
// shared server), pipelined and direct, through:
//
//   - plain: a plain go-redis client, as before tracing existed;
//   - untraced: the client NewClient makes, with redisotel behind the
//     gate, under no span, as every request without Caddy's tracing;
//   - traced: the same client under a recording span of an SDK provider
//     that keeps nothing, as a request under Caddy's tracing handler.
//
// untraced must allocate no more than plain:
//
//	go test ./store/redis -run '^$' -bench TakeTracing -benchtime 20000x
func BenchmarkTakeTracing(b *testing.B) {
	gcra := lookup(b, "gcra")
	run := func(b *testing.B, s *Store, ctx context.Context) {
		var seq atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			reqs := make([]store.Request, 1)
			out := make([]algorithms.Decision, 1)
			for pb.Next() {
				k := key(fmt.Sprint(seq.Add(1) % 100_000))
				reqs[0] = req(gcra, "gcra", k, 1_000_000, time.Minute, 1)
				if err := s.Take(ctx, reqs, out); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	tp := sdktrace.NewTracerProvider() // records, exports nothing
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	traced, span := tp.Tracer("bench").Start(context.Background(), "request")
	defer span.End()

	for _, pipelining := range []bool{true, false} {
		mode := map[bool]string{true: "pipelined", false: "direct"}[pipelining]
		tput := Throughput{DisablePipelining: !pipelining}
		opts := func(b *testing.B) Options {
			return Options{KeyPrefix: "bench:" + b.Name() + ":", Timeout: caddy.Duration(time.Second), Throughput: tput}
		}
		b.Run(mode+"/plain", func(b *testing.B) {
			run(b, New(sharedServer(b).client(b), opts(b)), context.Background())
		})
		b.Run(mode+"/untraced", func(b *testing.B) {
			run(b, instrumentedStore(b, sharedServer(b).Addr, opts(b)), context.Background())
		})
		b.Run(mode+"/traced", func(b *testing.B) {
			run(b, instrumentedStore(b, sharedServer(b).Addr, opts(b)), traced)
		})
	}
}
