package memory

import (
	"testing"
	"time"

	"github.com/ratewarden/ratewarden/algorithms"
)

// TestShardKeepsEveryScalar pins that a state round-trips whatever its
// width, and that a third scalar lives in v2 only while it is not zero.
func TestShardKeepsEveryScalar(t *testing.T) {
	t.Parallel()
	nowN := t0.UnixNano()
	k, other := key("wide"), key("narrow")
	tests := []struct {
		name   string
		v      [3]int64
		wantV2 int
	}{
		{"one scalar", [3]int64{7}, 0},
		{"two scalars", [3]int64{7, 8}, 0},
		{"three scalars", [3]int64{7, 8, 9}, 1},
		{"third scalar alone", [3]int64{0, 0, 9}, 1},
		{"back to two scalars", [3]int64{7, 8}, 0},
		{"negative scalars", [3]int64{-1, -2, -3}, 1},
	}
	var sh shard
	sh.init(0)
	sh.commit(other, algorithms.State{V: [3]int64{1}}, time.Minute, nowN, 0)
	for _, tc := range tests {
		sh.commit(k, algorithms.State{V: tc.v}, time.Minute, nowN, 0)
		if got := sh.load(k, nowN); got.V != tc.v {
			t.Errorf("%s: load = %v, want %v", tc.name, got.V, tc.v)
		}
		if len(sh.v2) != tc.wantV2 {
			t.Errorf("%s: %d keys in v2, want %d", tc.name, len(sh.v2), tc.wantV2)
		}
	}
	sh.remove(k)
	if len(sh.m) != 1 || len(sh.v2) != 0 {
		t.Errorf("after remove: %d keys, %d in v2", len(sh.m), len(sh.v2))
	}
	if got := sh.load(other, nowN); got.V != [3]int64{1} {
		t.Errorf("other key = %v", got.V)
	}
}

// TestShardDropsAWideStateWhenIdle pins that an idle commit forgets the
// third scalar with the key, and an expired one is not loaded.
func TestShardDropsAWideStateWhenIdle(t *testing.T) {
	t.Parallel()
	nowN := t0.UnixNano()
	k := key("idle")
	var sh shard
	sh.init(0)
	sh.commit(k, algorithms.State{V: [3]int64{1, 2, 3}}, time.Second, nowN, 0)
	if got := sh.load(k, nowN+int64(time.Second)); got.V != ([3]int64{}) {
		t.Errorf("expired state loaded: %v", got.V)
	}
	sh.commit(k, algorithms.State{}, 0, nowN, 0)
	if len(sh.m) != 0 || len(sh.v2) != 0 {
		t.Errorf("after an idle commit: %d keys, %d in v2", len(sh.m), len(sh.v2))
	}
}
