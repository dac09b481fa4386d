package topk

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// k makes a distinct test key from n.
func k(n uint64) [16]byte {
	var key [16]byte
	binary.BigEndian.PutUint64(key[8:], n)
	return key
}

func TestSketch(t *testing.T) {
	t.Parallel()
	type add struct {
		key   uint64
		label string
		times int
	}
	tests := []struct {
		name     string
		capacity int
		adds     []add
		n        int
		want     []Entry
	}{
		{
			name:     "empty sketch reports nothing",
			capacity: 4,
			n:        10,
			want:     []Entry{},
		},
		{
			name:     "keys under capacity are counted exactly",
			capacity: 4,
			adds:     []add{{1, "a", 3}, {2, "b", 5}, {3, "", 1}},
			want: []Entry{
				{Key: k(2), Label: "b", Count: 5},
				{Key: k(1), Label: "a", Count: 3},
				{Key: k(3), Count: 1},
			},
		},
		{
			name:     "top n cuts the list after the heaviest",
			capacity: 4,
			adds:     []add{{1, "", 3}, {2, "", 5}, {3, "", 1}},
			n:        2,
			want:     []Entry{{Key: k(2), Count: 5}, {Key: k(1), Count: 3}},
		},
		{
			name:     "equal counts are ordered by key",
			capacity: 4,
			adds:     []add{{3, "", 2}, {1, "", 2}, {2, "", 2}},
			want:     []Entry{{Key: k(1), Count: 2}, {Key: k(2), Count: 2}, {Key: k(3), Count: 2}},
		},
		{
			name:     "a new key in a full sketch takes over the smallest counter",
			capacity: 2,
			adds:     []add{{1, "one", 5}, {2, "two", 2}, {3, "three", 1}},
			want: []Entry{
				{Key: k(1), Label: "one", Count: 5},
				{Key: k(3), Label: "three", Count: 3, Error: 2},
			},
		},
		{
			name:     "an empty label keeps the recorded one",
			capacity: 2,
			adds:     []add{{1, "first", 1}, {1, "", 1}},
			want:     []Entry{{Key: k(1), Label: "first", Count: 2}},
		},
		{
			name:     "a changed label replaces the recorded one",
			capacity: 2,
			adds:     []add{{1, "first", 1}, {1, "second", 1}},
			want:     []Entry{{Key: k(1), Label: "second", Count: 2}},
		},
		{
			name:     "a heavy hitter survives a stream of one-off keys",
			capacity: 3,
			adds: []add{
				{1, "hot", 10}, {100, "", 1}, {101, "", 1}, {102, "", 1},
				{103, "", 1}, {104, "", 1}, {1, "hot", 1},
			},
			n:    1,
			want: []Entry{{Key: k(1), Label: "hot", Count: 11}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(tt.capacity)
			var total uint64
			for _, a := range tt.adds {
				for range a.times {
					s.Add(k(a.key), a.label)
					total++
				}
			}
			got := s.Top(tt.n)
			if len(got) != len(tt.want) {
				t.Fatalf("Top(%d) = %+v, want %+v", tt.n, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Top(%d)[%d] = %+v, want %+v", tt.n, i, got[i], tt.want[i])
				}
			}
			if s.Total() != total {
				t.Errorf("Total() = %d, want %d", s.Total(), total)
			}
		})
	}
}

func TestNewDefaultsCapacity(t *testing.T) {
	t.Parallel()
	for _, c := range []int{0, -1} {
		if got := New(c).Capacity(); got != DefaultCapacity {
			t.Errorf("New(%d).Capacity() = %d, want %d", c, got, DefaultCapacity)
		}
	}
	if got := New(7).Capacity(); got != 7 {
		t.Errorf("New(7).Capacity() = %d, want 7", got)
	}
}

func TestLenIsBoundedByCapacity(t *testing.T) {
	t.Parallel()
	s := New(8)
	for i := range uint64(100) {
		s.Add(k(i), "")
		if want := min(int(i)+1, 8); s.Len() != want {
			t.Fatalf("after %d keys Len() = %d, want %d", i+1, s.Len(), want)
		}
	}
}

func TestResetForgetsEverything(t *testing.T) {
	t.Parallel()
	s := New(4)
	for i := range uint64(10) {
		s.Add(k(i), "x")
	}
	s.Reset()
	if s.Len() != 0 || s.Total() != 0 || len(s.Top(0)) != 0 {
		t.Fatalf("after Reset: Len=%d Total=%d Top=%v", s.Len(), s.Total(), s.Top(0))
	}
	s.Add(k(42), "again")
	if got := s.Top(0); len(got) != 1 || got[0] != (Entry{Key: k(42), Label: "again", Count: 1}) {
		t.Fatalf("after Reset and Add: Top = %+v", got)
	}
}

func TestLabelIsCopiedNotAliased(t *testing.T) {
	t.Parallel()
	// A label is often a slice of a request-sized buffer: the sketch must
	// keep its own copy so that it never pins that buffer.
	buf := strings.Repeat("z", 4096)
	s := New(2)
	s.Add(k(1), buf[:4])
	got := s.Top(0)
	if len(got) != 1 || got[0].Label != "zzzz" {
		t.Fatalf("Top = %+v, want one entry labelled zzzz", got)
	}
	if unsafe.StringData(got[0].Label) == unsafe.StringData(buf) {
		t.Fatal("the recorded label aliases the caller's buffer")
	}
}

func TestTopReturnsACopy(t *testing.T) {
	t.Parallel()
	s := New(2)
	s.Add(k(1), "a")
	got := s.Top(0)
	got[0].Count = 1000
	if again := s.Top(0); again[0].Count != 1 {
		t.Fatalf("mutating Top's result changed the sketch: Count = %d", again[0].Count)
	}
}

func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	const workers, perWorker = 8, 2000
	s := New(16)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// One hot key shared by all, plus a tail per worker.
				if i%2 == 0 {
					s.Add(k(0), "hot")
				} else {
					s.Add(k(uint64(w*perWorker+i)), "")
				}
				if i%100 == 0 {
					_ = s.Top(3)
				}
			}
		})
	}
	wg.Wait()
	if s.Total() != workers*perWorker {
		t.Fatalf("Total() = %d, want %d", s.Total(), workers*perWorker)
	}
	top := s.Top(1)
	if len(top) != 1 || top[0].Key != k(0) || top[0].Count-top[0].Error > workers*perWorker/2 {
		t.Fatalf("Top(1) = %+v, want the hot key with a lower bound <= %d", top, workers*perWorker/2)
	}
	var sum uint64
	for _, e := range s.Top(0) {
		sum += e.Count
	}
	if sum != s.Total() {
		t.Fatalf("sum of counts = %d, want Total() = %d", sum, s.Total())
	}
}

func TestAddAllocations(t *testing.T) {
	// Not parallel: AllocsPerRun counts every goroutine's allocations.
	const capacity = 64
	labels := make([]string, 4*capacity)
	for i := range labels {
		labels[i] = strings.Repeat("k", 10) + string(rune('a'+i%26))
	}
	tests := []struct {
		name string
		max  float64
		add  func(s *Sketch, i int)
	}{
		{
			name: "tracked key with unchanged label allocates nothing",
			max:  0,
			add:  func(s *Sketch, i int) { s.Add(k(uint64(i%capacity)), labels[i%capacity]) },
		},
		{
			name: "tracked key with an equal label from another buffer allocates nothing",
			max:  0,
			add: func(s *Sketch, i int) {
				s.Add(k(uint64(i%capacity)), labels[i%capacity+capacity])
			},
		},
		{
			name: "tracked key without label allocates nothing",
			max:  0,
			add:  func(s *Sketch, i int) { s.Add(k(uint64(i%capacity)), "") },
		},
		{
			name: "evicting keys without label allocates nothing",
			max:  0,
			add:  func(s *Sketch, i int) { s.Add(k(uint64(capacity+i)), "") },
		},
		{
			name: "evicting keys with a label copies the label once",
			max:  1,
			add:  func(s *Sketch, i int) { s.Add(k(uint64(capacity+i)), labels[i%len(labels)]) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(capacity)
			// Fill the sketch so that every run is in steady state; labels
			// 0..capacity-1 equal labels capacity..2*capacity-1 by content.
			for i := range capacity {
				s.Add(k(uint64(i)), labels[i])
			}
			i := 0
			got := testing.AllocsPerRun(10000, func() {
				tt.add(s, i)
				i++
			})
			if got > tt.max {
				t.Errorf("Add: %.2f allocs/op, want at most %v", got, tt.max)
			}
		})
	}
}

// BenchmarkAdd measures Add on a full sketch of the default capacity.
// Reproduce with: go test -run '^$' -bench . -benchmem ./topk/
func BenchmarkAdd(b *testing.B) {
	const capacity = DefaultCapacity
	keys := make([][16]byte, 1024)
	for i := range keys {
		keys[i] = k(uint64(i))
	}
	benches := []struct {
		name  string
		key   func(i int) [16]byte
		label string
	}{
		// Every add hits a tracked key.
		{name: "tracked", key: func(i int) [16]byte { return keys[i%capacity] }, label: "client"},
		// Every add evicts: the worst case, keys never repeat within capacity.
		{name: "evicting", key: func(i int) [16]byte { return keys[i%len(keys)] }},
		{name: "evicting_label", key: func(i int) [16]byte { return keys[i%len(keys)] }, label: "client"},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			s := New(capacity)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s.Add(bb.key(i), bb.label)
				i++
			}
		})
	}
	b.Run("tracked_parallel", func(b *testing.B) {
		s := New(capacity)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s.Add(keys[i%capacity], "client")
				i++
			}
		})
	})
}
