package algorithms

import (
	"testing"
	"time"
)

// lookup returns the algorithm as a store gets it, through Lookup.
func lookup(b *testing.B, name string) Algorithm {
	alg, err := Lookup(name)
	if err != nil {
		b.Fatal(err)
	}
	return alg
}

// BenchmarkTake measures the allow path: arrivals at half the policy's rate,
// each decision committed the way a store would. Concurrency alternates
// acquiring and releasing a slot.
func BenchmarkTake(b *testing.B) {
	p := Policy{Limit: 100, Window: time.Second}
	gap := 2 * p.Window / time.Duration(p.Limit)
	for _, a := range all {
		b.Run(a.Name(), func(b *testing.B) {
			alg := lookup(b, a.Name())
			b.ReportAllocs()
			var s State
			now := t0
			cost := int64(1)
			for b.Loop() {
				next, d := alg.Take(s, now, p, cost)
				if !d.Allowed {
					b.Fatalf("denied at %v: %+v", now, d)
				}
				s = next
				now = now.Add(gap)
				if _, ok := alg.(*Concurrency); ok {
					cost = -cost
				}
			}
		})
	}
}

// BenchmarkTakeDenied measures the deny path: a key at its limit refusing
// every further request.
func BenchmarkTakeDenied(b *testing.B) {
	p := Policy{Limit: 100, Window: time.Second}
	for _, a := range all {
		b.Run(a.Name(), func(b *testing.B) {
			alg := lookup(b, a.Name())
			b.ReportAllocs()
			var s State
			for range p.Limit {
				s, _ = alg.Take(s, t0, p, 1)
			}
			for b.Loop() {
				if _, d := alg.Take(s, t0, p, 1); d.Allowed {
					b.Fatalf("allowed: %+v", d)
				}
			}
		})
	}
}
