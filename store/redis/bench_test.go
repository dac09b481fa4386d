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

// benchTake measures Take on the shared server from 16 goroutines per CPU
// (like concurrent requests), each call on one of keys distinct keys per
// zone, with the server's clock. Without autopipelining each call is one
// round trip on a pooled connection.
func benchTake(b *testing.B, keys int, zones ...string) {
	c := sharedServer(b).client(b)
	s := New(c, Options{KeyPrefix: "bench:" + b.Name() + ":", Timeout: caddy.Duration(time.Second)})
	algs := make([]algorithms.Algorithm, len(zones))
	for i, name := range zones {
		algs[i] = lookup(b, name)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		reqs := make([]store.Request, len(zones))
		out := make([]algorithms.Decision, len(zones))
		for pb.Next() {
			k := key(fmt.Sprint(seq.Add(1) % int64(keys)))
			for i, alg := range algs {
				reqs[i] = req(alg, zones[i], k, 1_000_000, time.Minute, 1)
			}
			if err := s.Take(context.Background(), reqs, out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkTakeGCRA(b *testing.B)        { benchTake(b, 100_000, "gcra") }
func BenchmarkTakeGCRAOneKey(b *testing.B)  { benchTake(b, 1, "gcra") }
func BenchmarkTakeSlidingLog(b *testing.B)  { benchTake(b, 1000, "sliding_log") }
func BenchmarkTakeTokenBucket(b *testing.B) { benchTake(b, 100_000, "token_bucket") }
func BenchmarkTakeThreeZones(b *testing.B) {
	benchTake(b, 100_000, "gcra", "fixed_window", "concurrency")
}
