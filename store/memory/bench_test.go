package memory

import (
	"context"
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// benchAlgorithms returns the algorithms to benchmark: the test counter (the
// store's own overhead) and gcra once it is registered.
func benchAlgorithms() []algorithms.Algorithm {
	algs := []algorithms.Algorithm{counter{}}
	if alg, err := algorithms.Lookup("gcra"); err == nil {
		algs = append(algs, alg)
	}
	return algs
}

// benchReq is a request whose limit is never reached in a benchmark.
func benchReq(alg algorithms.Algorithm, k store.Key) store.Request {
	return store.Request{
		Zone:      "bench",
		Key:       k,
		Algorithm: alg,
		Policy:    algorithms.Policy{Limit: math.MaxInt64 / 4, Window: time.Hour, Burst: 1 << 40},
		Cost:      1,
	}
}

// BenchmarkTakeOneKey is every goroutine hitting one key: the worst case for
// lock contention.
func BenchmarkTakeOneKey(b *testing.B) {
	for _, alg := range benchAlgorithms() {
		b.Run(alg.Name(), func(b *testing.B) {
			s := newTestStore(b, Options{})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				reqs := rs(benchReq(alg, kA))
				out := make([]algorithms.Decision, 1)
				for pb.Next() {
					_ = s.Take(context.Background(), reqs, out)
				}
			})
		})
	}
}

// BenchmarkTakeDistinctKeys spreads Takes over 100,000 keys that already
// exist.
func BenchmarkTakeDistinctKeys(b *testing.B) {
	ks := keys("distinct", 100_000)
	for _, alg := range benchAlgorithms() {
		b.Run(alg.Name(), func(b *testing.B) {
			s := newTestStore(b, Options{})
			out := make([]algorithms.Decision, 1)
			for _, k := range ks {
				_ = s.Take(context.Background(), rs(benchReq(alg, k)), out)
			}
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				reqs := rs(benchReq(alg, kA))
				out := make([]algorithms.Decision, 1)
				for pb.Next() {
					i++
					reqs[0].Key = ks[i%len(ks)]
					_ = s.Take(context.Background(), reqs, out)
				}
			})
		})
	}
}

// BenchmarkTakeThreeZones is one call deciding three zones at once.
func BenchmarkTakeThreeZones(b *testing.B) {
	for _, alg := range benchAlgorithms() {
		b.Run(alg.Name(), func(b *testing.B) {
			s := newTestStore(b, Options{})
			reqs := rs(benchReq(alg, key("z1")), benchReq(alg, key("z2")), benchReq(alg, key("z3")))
			out := make([]algorithms.Decision, len(reqs))
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Take(context.Background(), reqs, out)
			}
		})
	}
}

// BenchmarkBytesPerKey reports the heap each stored key costs, per
// algorithm, after inserting 100,000 keys of one request each (limit 10 per
// minute). It is live heap only: with the default GOGC=100 the process may
// hold up to about twice that before the collector runs.
func BenchmarkBytesPerKey(b *testing.B) {
	const n = 100_000
	ks := keys("bytes", n)
	for _, name := range append([]string{"test_counter"}, realAlgorithms...) {
		b.Run(name, func(b *testing.B) {
			var alg algorithms.Algorithm = counter{}
			if name != "test_counter" {
				alg = lookup(b, name)
			}
			var perKey float64
			for b.Loop() {
				perKey = bytesPerKey(b, alg, ks)
			}
			b.ReportMetric(perKey, "bytes/key")
		})
	}
}

// bytesPerKey measures the heap growth of a new store after one request on
// each of ks.
func bytesPerKey(b *testing.B, alg algorithms.Algorithm, ks []store.Key) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	s := New(Options{MaxKeys: -1, Now: newClock().Now})
	defer s.Close()
	reqs := rs(store.Request{
		Zone:      "bytes",
		Algorithm: alg,
		Policy:    algorithms.Policy{Limit: 10, Window: time.Minute},
		Cost:      1,
	})
	out := make([]algorithms.Decision, 1)
	for _, k := range ks {
		reqs[0].Key = k
		if err := s.Take(context.Background(), reqs, out); err != nil || !out[0].Allowed {
			b.Fatalf("%s: Take: %v %+v", alg.Name(), err, out[0])
		}
	}
	if s.Len() != len(ks) {
		b.Fatalf("%s: stored %d keys, want %d", alg.Name(), s.Len(), len(ks))
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(ks))
}
