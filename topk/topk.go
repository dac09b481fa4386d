// Package topk tracks the heaviest hitters of a stream of keys in bounded
// memory, with the Space-Saving algorithm of Metwally, Agrawal and El Abbadi
// ("Efficient Computation of Frequent and Top-k Elements in Data Streams",
// ICDT 2005).
//
// A zone feeds its denied keys to a Sketch; the admin API reads the most
// denied ones back with Top. A Sketch of capacity m that has seen N keys
// guarantees, for every key:
//
//   - a key seen more than N/m times is tracked;
//   - a tracked key's Count is at least its true count;
//   - its Count minus its Error is at most its true count.
package topk

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"sync"
)

// DefaultCapacity is the number of keys a Sketch tracks when New is given a
// capacity of zero or less.
const DefaultCapacity = 64

// Entry is one tracked key, as Top reports it.
type Entry struct {
	// Key is the fixed-size digest the zone limits on.
	Key [16]byte
	// Label is the display string last given with Key (the raw key when
	// the zone logs keys, or an API key's name); empty when none was.
	Label string
	// Count is an upper bound of how often Key was added.
	Count uint64
	// Error is how much of Count may belong to keys that Key evicted:
	// Key was added at least Count-Error times.
	Error uint64
}

// Sketch is a Space-Saving sketch: a fixed number of counters kept in a
// min-heap by count, with a map from key to counter. Adding a tracked key
// bumps its counter; adding an untracked key to a full sketch takes over the
// smallest counter. Both cost O(log capacity).
//
// Counters live in fixed slots, so that the map only changes when a key is
// evicted; the heap orders slot numbers.
//
// A Sketch is safe for concurrent use.
type Sketch struct {
	mu    sync.Mutex
	slots []Entry            // the counters; len(slots) <= cap(slots) == capacity
	heap  []int32            // slot numbers, a min-heap by Count
	pos   []int32            // slot number -> its position in heap
	index map[[16]byte]int32 // key -> slot number
	total uint64             // keys added since New or Reset
}

// New returns an empty Sketch that tracks at most capacity keys
// (DefaultCapacity when capacity <= 0). Its memory is allocated up front.
func New(capacity int) *Sketch {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Sketch{
		slots: make([]Entry, 0, capacity),
		heap:  make([]int32, 0, capacity),
		pos:   make([]int32, 0, capacity),
		index: make(map[[16]byte]int32, capacity),
	}
}

// Add counts one occurrence of key. label is an optional display string for
// key: an empty label keeps the one already recorded. The sketch keeps its
// own copy of a label, made only when the label changes, so that it never
// pins the caller's (request-sized) buffer and an unchanged label costs no
// allocation.
//
// Add allocates nothing when key is already tracked with the same label, and
// at most the one copy of label otherwise.
func (s *Sketch) Add(key [16]byte, label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++

	if slot, ok := s.index[key]; ok {
		e := &s.slots[slot]
		e.Count++
		if label != "" && label != e.Label {
			e.Label = strings.Clone(label)
		}
		s.down(s.pos[slot])
		return
	}

	if len(s.slots) < cap(s.slots) {
		slot := int32(len(s.slots))
		s.slots = append(s.slots, Entry{Key: key, Label: strings.Clone(label), Count: 1})
		s.heap = append(s.heap, slot)
		s.pos = append(s.pos, slot)
		s.index[key] = slot
		s.up(slot)
		return
	}

	// Full: the new key takes over the smallest counter, inheriting its
	// count as the possible overestimate.
	slot := s.heap[0]
	e := &s.slots[slot]
	delete(s.index, e.Key)
	*e = Entry{Key: key, Label: strings.Clone(label), Count: e.Count + 1, Error: e.Count}
	s.index[key] = slot
	s.down(0)
}

// Top returns up to n tracked keys, most counted first; ties are ordered by
// key so that the result is deterministic. n <= 0 returns every tracked key.
// The returned slice is the caller's.
func (s *Sketch) Top(n int) []Entry {
	s.mu.Lock()
	out := slices.Clone(s.slots)
	s.mu.Unlock()

	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return bytes.Compare(a.Key[:], b.Key[:])
	})
	if n > 0 && n < len(out) {
		out = out[:n:n]
	}
	return out
}

// Len reports how many keys are tracked: at most the capacity.
func (s *Sketch) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slots)
}

// Capacity reports the most keys the sketch tracks.
func (s *Sketch) Capacity() int {
	return cap(s.slots) // fixed by New; never reallocated
}

// Total reports how many keys were added since New or Reset: the N of the
// N/capacity guarantee. It equals the sum of the tracked Counts.
func (s *Sketch) Total() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Reset forgets every key, keeping the allocated memory.
func (s *Sketch) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.slots) // drop label references
	s.slots = s.slots[:0]
	s.heap = s.heap[:0]
	s.pos = s.pos[:0]
	clear(s.index)
	s.total = 0
}

// count is the Count of the slot at heap position i.
func (s *Sketch) count(i int32) uint64 { return s.slots[s.heap[i]].Count }

// up moves the slot at heap position i toward the root while it counts less
// than its parent.
func (s *Sketch) up(i int32) {
	for i > 0 {
		p := (i - 1) / 2
		if s.count(p) <= s.count(i) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

// down moves the slot at heap position i toward the leaves while a child
// counts less.
func (s *Sketch) down(i int32) {
	n := int32(len(s.heap))
	for {
		least := i
		if l := 2*i + 1; l < n && s.count(l) < s.count(least) {
			least = l
		}
		if r := 2*i + 2; r < n && s.count(r) < s.count(least) {
			least = r
		}
		if least == i {
			return
		}
		s.swap(i, least)
		i = least
	}
}

func (s *Sketch) swap(i, j int32) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.pos[s.heap[i]] = i
	s.pos[s.heap[j]] = j
}
