package memory

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/algorithms"
)

func closed(s *Store) bool {
	select {
	case <-s.stopped:
		return true
	default:
		return false
	}
}

func TestLoadSharesOneStoreAcrossReloads(t *testing.T) {
	t.Parallel()
	const name = "TestLoadSharesOneStoreAcrossReloads"
	clk := newClock()
	first, err := Load(name, Options{Shards: 4, MaxKeys: 100, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]algorithms.Decision, 1)
	if err := first.Take(context.Background(), rs(req(kA, 3, 1)), out); err != nil {
		t.Fatal(err)
	}

	// A reload: the new config loads before the old one is released.
	second, err := Load(name, Options{Shards: 64, MaxKeys: 8, SweepInterval: caddy.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatal("Load with the same name returned a different store")
	}
	if got := second.shardCap.Load(); got != 2 {
		t.Errorf("per-shard limit = %d, want MaxKeys 8 over 4 shards = 2", got)
	}
	if got := time.Duration(second.sweepEvery.Load()); got != time.Hour {
		t.Errorf("sweep interval = %s, want 1h", got)
	}
	if len(second.shards) != 4 {
		t.Errorf("shards changed on a running store: %d", len(second.shards))
	}

	if err := Release(name); err != nil {
		t.Fatal(err)
	}
	if closed(second) {
		t.Fatal("store closed while a config still uses it")
	}
	d, _ := second.Inspect(context.Background(), req(kA, 3, 0))
	if d.Remaining != 2 {
		t.Errorf("counter lost across reload: remaining %d, want 2", d.Remaining)
	}

	if err := Release(name); err != nil {
		t.Fatal(err)
	}
	if !closed(second) {
		t.Error("store still running after its last release")
	}
	third, err := Load(name, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = Release(name) }()
	if third == first || third.Len() != 0 {
		t.Error("Load after the last release returned the old store")
	}
}

func TestReleaseUnknownNameIsANoop(t *testing.T) {
	t.Parallel()
	if err := Release("TestReleaseUnknownNameIsANoop"); err != nil {
		t.Fatal(err)
	}
}
