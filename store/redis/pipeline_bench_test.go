package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// BenchmarkTakeParallel compares decisions sent one by one (direct), batched
// by the store's pipelining (pipelined), and batched by go-redis's own
// blocking AutoPipeliner (goredis_autopipeline), with 16 goroutines per CPU
// deciding GCRA on 100,000 keys of the shared server:
//
//	go test ./store/redis -run '^$' -bench TakeParallel -benchtime 3s
func BenchmarkTakeParallel(b *testing.B) {
	gcra := lookup(b, "gcra")
	run := func(b *testing.B, s *Store) {
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
				if err := s.Take(context.Background(), reqs, out); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	opts := func(b *testing.B) Options {
		return Options{KeyPrefix: "bench:" + b.Name() + ":", Timeout: caddy.Duration(time.Second)}
	}
	b.Run("direct", func(b *testing.B) {
		c := sharedServer(b).client(b)
		run(b, New(c, opts(b)).WithThroughput(Throughput{DisablePipelining: true}))
	})
	b.Run("pipelined", func(b *testing.B) {
		c := sharedServer(b).client(b)
		run(b, New(c, opts(b)))
	})
	b.Run("goredis_autopipeline", func(b *testing.B) {
		c := sharedServer(b).client(b)
		ap, err := c.AutoPipeline()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ap.Close() })
		run(b, New(ap, opts(b)).WithThroughput(Throughput{DisablePipelining: true}))
	})
}
