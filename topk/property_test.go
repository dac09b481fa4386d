package topk

import (
	"testing"

	"pgregory.net/rapid"
)

// TestSpaceSavingGuarantees checks the bounds of Metwally et al. against
// exact counts, over random streams drawn from a key space both smaller and
// larger than the sketch.
func TestSpaceSavingGuarantees(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		capacity := rapid.IntRange(1, 16).Draw(rt, "capacity")
		keySpace := rapid.IntRange(1, 4*capacity).Draw(rt, "key_space")
		// Skewed streams are the interesting ones: draw each key as the
		// smaller of two uniform draws, so low keys are heavy hitters.
		keyGen := rapid.Custom(func(rt *rapid.T) uint64 {
			a := rapid.IntRange(0, keySpace-1).Draw(rt, "a")
			b := rapid.IntRange(0, keySpace-1).Draw(rt, "b")
			return uint64(min(a, b))
		})
		stream := rapid.SliceOfN(keyGen, 0, 400).Draw(rt, "stream")

		s := New(capacity)
		exact := map[[16]byte]uint64{}
		for _, n := range stream {
			s.Add(k(n), "")
			exact[k(n)]++
		}
		checkInvariants(rt, s)

		total := uint64(len(stream))
		if s.Total() != total {
			rt.Fatalf("Total() = %d, want %d", s.Total(), total)
		}
		top := s.Top(0)
		tracked := map[[16]byte]bool{}
		var sum uint64
		for i, e := range top {
			tracked[e.Key] = true
			sum += e.Count
			if i > 0 && top[i-1].Count < e.Count {
				rt.Fatalf("Top not sorted: %d before %d", top[i-1].Count, e.Count)
			}
			if e.Count < exact[e.Key] {
				rt.Fatalf("key %x: Count %d < true count %d", e.Key, e.Count, exact[e.Key])
			}
			if e.Error > e.Count || e.Count-e.Error > exact[e.Key] {
				rt.Fatalf("key %x: Count %d - Error %d > true count %d", e.Key, e.Count, e.Error, exact[e.Key])
			}
		}
		if sum != total {
			rt.Fatalf("sum of counts %d, want the stream length %d", sum, total)
		}
		for key, n := range exact {
			if n*uint64(capacity) > total && !tracked[key] {
				rt.Fatalf("key %x seen %d of %d times (> N/%d) is not tracked", key, n, total, capacity)
			}
		}
		if len(exact) <= capacity {
			// Nothing was ever evicted: every count is exact.
			for _, e := range top {
				if e.Count != exact[e.Key] || e.Error != 0 {
					rt.Fatalf("key %x: got %d±%d, want exactly %d", e.Key, e.Count, e.Error, exact[e.Key])
				}
			}
		}
	})
}

// checkInvariants verifies the sketch's internal structure: the heap orders
// slots by count, and heap, pos and index agree.
func checkInvariants(rt *rapid.T, s *Sketch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heap) != len(s.slots) || len(s.pos) != len(s.slots) || len(s.index) != len(s.slots) {
		rt.Fatalf("sizes differ: slots %d heap %d pos %d index %d",
			len(s.slots), len(s.heap), len(s.pos), len(s.index))
	}
	for i, slot := range s.heap {
		if s.pos[slot] != int32(i) {
			rt.Fatalf("pos[%d] = %d, want %d", slot, s.pos[slot], i)
		}
		if i > 0 && s.count(int32((i-1)/2)) > s.count(int32(i)) {
			rt.Fatalf("heap order broken at %d", i)
		}
	}
	for key, slot := range s.index {
		if s.slots[slot].Key != key {
			rt.Fatalf("index[%x] = slot %d holding %x", key, slot, s.slots[slot].Key)
		}
	}
}
