package memory

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ratewarden/ratewarden/store"
)

func TestModuleCaddyfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  Module
		err   bool
	}{
		{"no block", `store memory`, Module{}, false},
		{"every option", `store memory main {
			shards 16
			max_keys 5000
			sweep_interval 30s
		}`, Module{Shards: 16, MaxKeys: 5000, SweepInterval: caddy.Duration(30 * time.Second)}, false},
		{"an option given twice", "store memory {\nshards 2\nshards 4\n}", Module{}, true},
		{"a missing value", "store memory {\nmax_keys\n}", Module{}, true},
		{"an extra value", "store memory {\nmax_keys 1 2\n}", Module{}, true},
		{"a count that is not a number", "store memory {\nshards many\n}", Module{}, true},
		{"a zero count", "store memory {\nmax_keys 0\n}", Module{}, true},
		{"a bad duration", "store memory {\nsweep_interval soon\n}", Module{}, true},
		{"an unknown option", "store memory {\nsize 1\n}", Module{}, true},
	}
	for _, tc := range tests {
		var m Module
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if (err != nil) != tc.err {
			t.Errorf("%s: error = %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if !tc.err && (m.Shards != tc.want.Shards || m.MaxKeys != tc.want.MaxKeys || m.SweepInterval != tc.want.SweepInterval) {
			t.Errorf("%s: got %+v, want %+v", tc.name, m, tc.want)
		}
	}
}

func TestModuleSharesThePooledStoreAcrossProvisions(t *testing.T) {
	t.Parallel()
	const name = "TestModuleSharesThePooledStoreAcrossProvisions"
	ctx, cancel := caddy.NewContext(caddy.Context{
		Context: context.WithValue(context.Background(), store.NameCtxKey, name),
	})
	defer cancel()

	var old, cur Module
	for _, m := range []*Module{&old, &cur} {
		if err := m.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if old.Store != cur.Store {
		t.Fatal("two provisions under one name got different stores")
	}
	cur.SetSweepInterval(time.Hour)
	if got := time.Duration(old.Store.sweepEvery.Load()); got != time.Hour {
		t.Errorf("sweep interval = %s, want 1h", got)
	}
	if err := old.Cleanup(); err != nil || closed(cur.Store) {
		t.Fatalf("first cleanup: %v, closed %v", err, closed(cur.Store))
	}
	if err := cur.Cleanup(); err != nil || !closed(cur.Store) {
		t.Fatalf("last cleanup: %v, closed %v", err, closed(cur.Store))
	}
	if err := new(Module).Cleanup(); err != nil {
		t.Errorf("cleanup of an unprovisioned module: %v", err)
	}
}
