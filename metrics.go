package ratewarden

import (
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

// Outcomes of a zone's decision, the values of the outcome label.
const (
	outcomeAllowed      = "allowed"
	outcomeDenied       = "denied"
	outcomeShadowDenied = "shadow_denied"
	outcomeExempt       = "exempt"
)

// metrics are created once per process and registered on every config
// load's registry (Caddy makes a new registry for each load). No metric
// carries a key as a label.
var metrics = struct {
	once      sync.Once
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	// apiKeyLookups counts API key lookups by result.
	apiKeyLookups *prometheus.CounterVec
	// overridesActive reports the current config's active overrides.
	overridesActive *prometheus.GaugeVec
	// apiKeys reports the control store's API keys by status.
	apiKeys *prometheus.GaugeVec
}{}

func initMetrics() {
	metrics.once.Do(func() {
		metrics.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "rate_limit",
			Name:      "decisions_total",
			Help:      "Rate-limit decisions by zone and outcome (allowed, denied, shadow_denied, exempt).",
		}, []string{"zone", "outcome"})
		metrics.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "caddy",
			Subsystem: "rate_limit",
			Name:      "decision_duration_seconds",
			Help:      "Time to decide a request: matching, keys, costs and the store call.",
			Buckets:   []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		})
		metrics.apiKeyLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy",
			Subsystem: "rate_limit",
			Name:      "api_key_lookups_total",
			Help:      "API key lookups by result (ok, missing, malformed, unknown, expired, revoked).",
		}, []string{"result"})
		metrics.overridesActive = gaugeVec("overrides_active", "Live overrides in force, by type (zone, key).", "type")
		metrics.apiKeys = gaugeVec("api_keys", "API keys in the control store, by status (active, expired, revoked).", "status")
	})
}

// gaugeVec is a caddy_rate_limit_<name> gauge with the given labels.
func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "rate_limit",
		Name:      name,
		Help:      help,
	}, labels)
}

// registerMetrics registers the collectors on the config load's registry.
func registerMetrics(ctx caddy.Context) error {
	initMetrics()
	return store.RegisterCollectors(ctx, metrics.decisions, metrics.latency, metrics.apiKeyLookups, metrics.overridesActive, metrics.apiKeys)
}

// zoneCounters holds a zone's decision counters, resolved once so the
// request path only adds.
type zoneCounters struct {
	allowed, denied, shadowDenied prometheus.Counter
}

func newZoneCounters(zone string) *zoneCounters {
	initMetrics()
	return &zoneCounters{
		allowed:      metrics.decisions.WithLabelValues(zone, outcomeAllowed),
		denied:       metrics.decisions.WithLabelValues(zone, outcomeDenied),
		shadowDenied: metrics.decisions.WithLabelValues(zone, outcomeShadowDenied),
	}
}

// apiKeyLookupCounters returns the lookup counters indexed by result.
func apiKeyLookupCounters() []prometheus.Counter {
	initMetrics()
	out := make([]prometheus.Counter, control.LookupRevoked+1)
	for r := range out {
		out[r] = metrics.apiKeyLookups.WithLabelValues(control.LookupResult(r).String())
	}
	return out
}
