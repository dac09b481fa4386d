package redis

import (
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratewarden/ratewarden/store"
)

// Operations, the values of the operation label.
const (
	opTake    = "take"
	opInspect = "inspect"
	opReset   = "reset"
	opPing    = "ping"
)

// collectors are created once per process and registered on every config
// load's registry (Caddy makes a new registry for each load). They are
// labelled by store name, never by key.
var collectors = struct {
	once      sync.Once
	errors    *prometheus.CounterVec
	state     *prometheus.GaugeVec
	duration  *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
	// Throughput: see pipeline.go and deniedcache.go.
	batchSize  *prometheus.HistogramVec
	roundTrips *prometheus.CounterVec
	cacheHits  *prometheus.CounterVec
}{}

func initCollectors() {
	collectors.once.Do(func() {
		const ns, sub = "caddy", "rate_limit"
		collectors.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub,
			Name: "store_errors_total",
			Help: "Redis operations that failed or timed out (not counting those the circuit breaker skipped).",
		}, []string{"store"})
		collectors.state = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub,
			Name: "breaker_state",
			Help: "State of the Redis store's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"store"})
		collectors.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub,
			Name:    "store_operation_duration_seconds",
			Help:    "Duration of Redis store operations that reached Redis, failed ones included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"store", "operation"})
		collectors.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub,
			Name: "store_fallback_decisions_total",
			Help: "Decisions made by the on_failure policy (allow, deny, local) instead of Redis.",
		}, []string{"store", "policy"})
		collectors.batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub,
			Name:    "store_batch_size",
			Help:    "Script calls sent to Redis in one pipeline.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"store"})
		collectors.roundTrips = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub,
			Name: "store_round_trips_total",
			Help: "Round trips to Redis for decisions: one per pipeline, or per call when pipelining is off.",
		}, []string{"store"})
		collectors.cacheHits = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub,
			Name: "store_local_cache_hits_total",
			Help: "Decisions refused from the local cache of denied keys, without asking Redis.",
		}, []string{"store"})
	})
}

// registerCollectors registers the collectors on the config load's
// registry.
func registerCollectors(ctx caddy.Context) error {
	initCollectors()
	return store.RegisterCollectors(ctx, collectors.errors, collectors.state, collectors.duration, collectors.fallbacks,
		collectors.batchSize, collectors.roundTrips, collectors.cacheHits)
}

// storeMetrics are one store's series, resolved once so that a decision
// only adds.
type storeMetrics struct {
	errors   prometheus.Counter
	state    prometheus.Gauge
	take     prometheus.Observer
	inspect  prometheus.Observer
	reset    prometheus.Observer
	ping     prometheus.Observer
	fallback prometheus.Counter

	batchSize  prometheus.Observer
	roundTrips prometheus.Counter
	cacheHits  prometheus.Counter
}

func newStoreMetrics(name, policy string) storeMetrics {
	initCollectors()
	return storeMetrics{
		errors:   collectors.errors.WithLabelValues(name),
		state:    collectors.state.WithLabelValues(name),
		take:     collectors.duration.WithLabelValues(name, opTake),
		inspect:  collectors.duration.WithLabelValues(name, opInspect),
		reset:    collectors.duration.WithLabelValues(name, opReset),
		ping:     collectors.duration.WithLabelValues(name, opPing),
		fallback: collectors.fallbacks.WithLabelValues(name, policy),

		batchSize:  collectors.batchSize.WithLabelValues(name),
		roundTrips: collectors.roundTrips.WithLabelValues(name),
		cacheHits:  collectors.cacheHits.WithLabelValues(name),
	}
}

// duration returns the observer of op.
func (m *storeMetrics) duration(op string) prometheus.Observer {
	switch op {
	case opInspect:
		return m.inspect
	case opReset:
		return m.reset
	case opPing:
		return m.ping
	}
	return m.take
}
