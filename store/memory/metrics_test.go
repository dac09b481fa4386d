package memory

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

const keysFamily = "caddy_rate_limit_memory_keys"

// liveKeysGauge gathers reg and returns the memory_keys value of the store
// named name, and whether it has a series. It fails the test if the family
// is not a gauge or a series has a label other than store.
func liveKeysGauge(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	for _, f := range families {
		if f.GetName() != keysFamily {
			continue
		}
		if f.GetType() != dto.MetricType_GAUGE {
			t.Fatalf("%s is a %v, want a gauge", keysFamily, f.GetType())
		}
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			if len(labels) != 1 || labels[0].GetName() != "store" {
				t.Fatalf("%s series with labels %v, want store only", keysFamily, labels)
			}
			if labels[0].GetValue() == name {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// charge charges k one unit in s, which must admit it.
func charge(t *testing.T, s *Store, k store.Key) {
	t.Helper()
	out := make([]algorithms.Decision, 1)
	if err := s.Take(context.Background(), []store.Request{req(k, 5, 1)}, out); err != nil || !out[0].Allowed {
		t.Fatalf("Take: %+v, %v", out[0], err)
	}
}

// moduleContext returns a fresh Caddy context, with a registry of its own,
// that names the store name.
func moduleContext(t *testing.T, name string) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{
		Context: context.WithValue(context.Background(), store.NameCtxKey, name),
	})
	t.Cleanup(cancel)
	return ctx
}

func TestKeysGaugeReportsEachPooledStoresLiveKeys(t *testing.T) {
	t.Parallel()
	const provisioned, loaded = "TestKeysGauge/provisioned", "TestKeysGauge/loaded"

	// A module registers the gauge on its config's registry.
	ctx := moduleContext(t, provisioned)
	reg := ctx.GetMetricsRegistry()
	m := new(Module)
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Cleanup() })
	if n, ok := liveKeysGauge(t, reg, provisioned); !ok || n != 0 {
		t.Fatalf("empty store: %v (series %v), want 0", n, ok)
	}
	for _, k := range keys("provisioned", 3) {
		charge(t, m.Store, k)
	}
	if n, _ := liveKeysGauge(t, reg, provisioned); n != 3 {
		t.Errorf("after 3 keys: %v, want 3", n)
	}

	// Another pooled store, on a clock of its own: its keys count while
	// they live, and not once they expired, swept or not.
	clk := newClock()
	s, err := Load(loaded, Options{Now: clk.Now, SweepInterval: caddy.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys("loaded", 100) {
		charge(t, s, k)
	}
	charge(t, s, key("loaded/0")) // an existing key again
	if n, _ := liveKeysGauge(t, reg, loaded); n != 100 {
		t.Errorf("after 100 keys: %v, want 100", n)
	}
	clk.Advance(2 * time.Minute)
	if n, _ := liveKeysGauge(t, reg, loaded); n != 0 || s.Len() != 100 {
		t.Errorf("after expiry: %v live of %d stored, want 0 live of 100", n, s.Len())
	}

	// A reload registers again, on the old registry and on a new one.
	next := moduleContext(t, provisioned)
	m2 := new(Module)
	if err := m2.Provision(next); err != nil {
		t.Fatal(err)
	}
	if err := registerCollectors(ctx); err != nil {
		t.Errorf("registering again: %v", err)
	}
	if n, _ := liveKeysGauge(t, next.GetMetricsRegistry(), provisioned); n != 3 {
		t.Errorf("after the reload: %v, want the pooled store's 3", n)
	}
	if err := m2.Cleanup(); err != nil {
		t.Fatal(err)
	}

	// A store no config uses any more has no series.
	if err := Release(loaded); err != nil {
		t.Fatal(err)
	}
	if _, ok := liveKeysGauge(t, reg, loaded); ok {
		t.Error("a released store still has a series")
	}
}
