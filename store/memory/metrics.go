package memory

import (
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratewarden/ratewarden/store"
)

// Metrics.
//
// caddy_rate_limit_memory_keys{store} is the number of live keys of each
// pooled memory store, by store name: stored keys that have not expired,
// whether or not the sweeper has deleted the expired ones yet, as the
// health report counts them. It is read when Prometheus scrapes, so a
// decision pays nothing for it; a scrape locks one shard at a time and
// walks its keys (about a millisecond per 100,000 keys). Keys themselves
// are never labels.

// collectors are created once per process and registered on every config
// load's registry (Caddy makes a new registry for each load).
var collectors = struct {
	once sync.Once
	keys *keysCollector
}{}

func initCollectors() {
	collectors.once.Do(func() {
		collectors.keys = &keysCollector{desc: prometheus.NewDesc(
			prometheus.BuildFQName("caddy", "rate_limit", "memory_keys"),
			"Live keys held by each memory store: stored keys that have not expired.",
			[]string{"store"}, nil,
		)}
	})
}

// registerCollectors registers the collectors on the config load's
// registry. A registry that has them already is fine: several memory
// stores share them.
func registerCollectors(ctx caddy.Context) error {
	initCollectors()
	return store.RegisterCollectors(ctx, collectors.keys)
}

// keysCollector reports the live keys of the stores in the pool, which
// are the stores of running configs, at scrape time.
type keysCollector struct {
	desc *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *keysCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. It counts outside the pool's
// lock, so a scrape never holds up a config load.
func (c *keysCollector) Collect(ch chan<- prometheus.Metric) {
	type named struct {
		name string
		s    *Store
	}
	var stores []named
	pool.Range(func(key, val any) bool {
		name, _ := key.(string)
		if s, ok := val.(*Store); ok {
			stores = append(stores, named{name, s})
		}
		return true
	})
	for _, st := range stores {
		live := st.s.liveKeys(st.s.now().UnixNano())
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(live), st.name)
	}
}

// Interface guards
var _ prometheus.Collector = (*keysCollector)(nil)
