// Package ratewarden is a rate-limiting plugin for the Caddy web server.
//
// The rate_limit handler (http.handlers.rate_limit) applies named zones to
// requests; the rate_limit app holds the stores where counters live. See
// README.md for the Caddyfile and JSON reference.
package ratewarden

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	weakrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler applies rate-limit zones to requests. When a zone's limit is
// exceeded it refuses the request with HTTP 429, returned as a Caddy error
// so `handle_errors` can restyle it. Its JSON is a superset of
// mholt/caddy-ratelimit's handler.
type Handler struct {
	// RateLimits holds the zones, keyed by zone name. Zone names are global:
	// two handlers with a zone of the same name share its counters, and a
	// zone's counters survive config reloads while its name stays.
	RateLimits map[string]*Zone `json:"rate_limits,omitempty"`

	// APIKey identifies clients by API keys from the rate_limit app's
	// registry before the zones run. Default: off.
	APIKey *APIKeyAuth `json:"api_key,omitempty"`

	// Exempt lists requests that skip every zone.
	Exempt *Exemption `json:"exempt,omitempty"`

	// Headers selects the rate-limit response headers: "ietf" (RateLimit
	// and RateLimit-Policy, draft-ietf-httpapi-ratelimit-headers-10),
	// "legacy" (X-RateLimit-Limit, -Remaining, -Reset), both, or "none".
	// Default: ["ietf"].
	Headers []string `json:"headers,omitempty"`

	// Shadow puts every zone in shadow mode: decisions are made, counted
	// and logged but never enforced.
	Shadow bool `json:"shadow,omitempty"`

	// Jitter adds up to this fraction of the wait, at random, to
	// Retry-After, so refused clients do not return in a herd. Example: 0.2
	// adds up to 20%. Default: 0.
	Jitter float64 `json:"jitter,omitempty"`

	// Store names the rate_limit app store that keeps this handler's
	// counters. Default: "default" (in memory unless configured).
	Store string `json:"store,omitempty"`

	// StoreConfig defines a store for this handler alone, inline, instead of
	// naming one of the app's: a store module whose "backend" field picks it,
	// as in the app's "stores", for example
	// `{"backend": "redis", "address": ["10.0.0.5:6379"]}`. It is added to
	// the app under the name "inline-" plus a hash of its settings, so
	// handlers with the same inline settings share one store, and its
	// counters survive reloads like a named store's. Give Store or
	// StoreConfig, not both.
	StoreConfig json.RawMessage `json:"store_config,omitempty" caddy:"namespace=rate_limit.stores inline_key=backend"`

	// LogLevel is the level of the (sampled) rejection log lines: debug,
	// info, warn or error. Default: info.
	LogLevel string `json:"log_level,omitempty"`

	// LogKey writes raw keys in rejection logs instead of their hashes, for
	// every zone.
	LogKey bool `json:"log_key,omitempty"`

	// DisableMetrics turns off this handler's Prometheus metrics.
	DisableMetrics bool `json:"disable_metrics,omitempty"`

	// IPv4Prefix and IPv6Prefix are defaults for zones that set none.
	IPv4Prefix int `json:"ipv4_prefix,omitempty"`
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`

	// SweepInterval is accepted for caddy-ratelimit compatibility and sets
	// how often the default memory store removes expired keys. Prefer the
	// store's own sweep_interval. Default: 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// Distributed is caddy-ratelimit's approximate storage sync. It is
	// accepted and ignored with a warning: use a Redis store for exact
	// shared limits.
	Distributed json.RawMessage `json:"distributed,omitempty"`

	// StorageRaw is caddy-ratelimit's storage for distributed sync. It is
	// accepted and ignored with a warning, like Distributed.
	StorageRaw json.RawMessage `json:"storage,omitempty"`

	zones    []*Zone
	store    store.Store
	headers  headerMode
	logger   *zap.Logger
	sampled  *zap.Logger
	logLevel zapcore.Level
	exempted prometheus.Counter
	scratch  *sync.Pool
	// overrides is the app's live override registry (nil when the handler
	// was provisioned without the app, in tests).
	overrides *control.Overrides
	// apiKeyLookups counts API key lookups by result.
	apiKeyLookups []prometheus.Counter
	// events is Caddy's events app; eventSample samples exceeded events.
	events      *caddyevents.App
	eventSample *sampler
	// rejectLog and shadowLog sample the rejection log lines.
	rejectLog, shadowLog *sampler
	ctx                  caddy.Context
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.rate_limit",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if len(h.Distributed) > 0 || len(h.StorageRaw) > 0 {
		h.logger.Warn("rate_limit: 'distributed' and 'storage' are caddy-ratelimit's approximate sync and are ignored; " +
			"configure a Redis store in the global rate_limit option for exact shared limits")
	}
	if h.Jitter < 0 || h.Jitter > 1 {
		return fmt.Errorf("jitter must be between 0 and 1, got %v", h.Jitter)
	}
	mode, err := parseHeaderModes(h.Headers)
	if err != nil {
		return err
	}
	h.headers = mode
	if err := h.provisionLogging(); err != nil {
		return err
	}
	if err := h.provisionEvents(ctx); err != nil {
		return fmt.Errorf("loading the events app: %w", err)
	}

	var keys *control.Keys
	if h.store == nil { // tests may inject a store
		appIface, err := ctx.App("rate_limit")
		if err != nil {
			return fmt.Errorf("loading the rate_limit app: %w", err)
		}
		app := appIface.(*App)
		if len(h.StoreConfig) > 0 {
			if h.Store != "" {
				return fmt.Errorf("give a store's name (store %q) or an inline store (store_config), not both", h.Store)
			}
			if h.Store, err = app.addInlineStore(h.StoreConfig); err != nil {
				return err
			}
		}
		if h.store, err = app.Store(h.Store); err != nil {
			return err
		}
		if app.control != nil {
			h.overrides = app.control.overrides
			keys = app.control.keys
		}
	}
	if h.SweepInterval > 0 {
		if s, ok := h.store.(interface{ SetSweepInterval(time.Duration) }); ok {
			s.SetSweepInterval(time.Duration(h.SweepInterval))
		}
	}

	if !h.DisableMetrics {
		if err := registerMetrics(ctx); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		h.exempted = metrics.decisions.WithLabelValues("", outcomeExempt)
	}
	if h.APIKey != nil {
		if h.APIKey.keys == nil { // tests may inject a registry
			if err := h.APIKey.provision(keys); err != nil {
				return err
			}
		}
		if !h.DisableMetrics {
			h.apiKeyLookups = apiKeyLookupCounters()
		}
	}
	if h.Exempt != nil {
		if err := h.Exempt.provision(ctx); err != nil {
			return err
		}
	}
	defaults := zoneDefaults{ipv4Prefix: h.IPv4Prefix, ipv6Prefix: h.IPv6Prefix, logKey: h.LogKey, shadow: h.Shadow}
	for name, z := range h.RateLimits {
		if z == nil {
			return fmt.Errorf("zone %q: empty definition", name)
		}
		if err := z.provision(ctx, name, defaults); err != nil {
			return fmt.Errorf("zone %q: %w", name, err)
		}
		if pc, ok := h.store.(store.PolicyChecker); ok {
			if err := pc.CheckPolicy(z.alg, z.policy); err != nil {
				return fmt.Errorf("zone %q: store %q cannot decide this policy: %w", name, h.Store, err)
			}
		}
		if !h.DisableMetrics {
			z.counters = newZoneCounters(name)
			if z.top, err = loadSketch(name); err != nil {
				return err
			}
		}
		h.zones = append(h.zones, z)
	}
	// A fixed order makes decisions and logs deterministic.
	sort.Slice(h.zones, func(i, j int) bool { return h.zones[i].name < h.zones[j].name })
	n := len(h.zones)
	h.scratch = &sync.Pool{New: func() any { return newScratch(n) }}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var start time.Time // read only for the latency histogram
	if !h.DisableMetrics {
		start = time.Now()
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if h.Exempt.exempts(r) {
		if h.exempted != nil {
			h.exempted.Inc()
		}
		repl.Set(phExceeded, false)
		return next.ServeHTTP(w, r)
	}
	if h.APIKey != nil {
		if done, err := h.identify(w, r, repl); done {
			return err
		}
	}

	sc := h.scratch.Get().(*scratch)
	defer h.putScratch(sc)
	h.collect(r, repl, sc)
	if len(sc.reqs) == 0 {
		repl.Set(phExceeded, false)
		return next.ServeHTTP(w, r)
	}

	if err := h.store.Take(r.Context(), sc.reqs, sc.out); err != nil {
		return h.storeFailed(w, r, next, err)
	}
	blocked := store.Blocked(sc.reqs, sc.out)
	h.observe(repl, sc, blocked, start)

	shown := h.restrictive(sc, blocked)
	h.setPlaceholders(repl, sc, shown)
	vals := h.headerValues(shown, blocked)
	h.writeHeaders(w.Header(), sc, shown, &vals)
	if blocked {
		now := start // one clock read serves the log and event samplers
		if now.IsZero() {
			now = time.Now()
		}
		h.annotateSpan(r, sc, shown, outcomeDenied)
		h.logRejection(r, repl, sc, shown, now)
		h.emitExceeded(repl, sc, shown, now)
		return h.refuseInto(w, r, sc.out[shown].RetryAfter, sc.body[:0], &vals)
	}
	h.annotateSpan(r, sc, shown, sc.outcome())
	h.logShadow(r, repl, sc, shown)
	if !sc.needsAfter() {
		return next.ServeHTTP(w, r)
	}
	return h.serveAndSettle(w, r, next, sc)
}

// putScratch clears sc, so the pool holds no request's keys, and returns it.
func (h *Handler) putScratch(sc *scratch) {
	sc.reset()
	h.scratch.Put(sc)
}

// storeFailed applies the store's failure outcome: an UnavailableError
// refuses with 503 and Retry-After; any other error lets the request
// through (fail open). Stores with a failure policy (on_failure) choose
// which of the two they return, or decide locally and return no error.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, err error) error {
	var unavailable *store.UnavailableError
	if errors.As(err, &unavailable) {
		h.sampled.Error("rate_limit store unavailable; refusing request", h.requestFields(r, zap.Error(err))...)
		w.Header().Set("Retry-After", itoa(max(ceilSeconds(unavailable.RetryAfter), 1)))
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	h.sampled.Error("rate_limit store failed; allowing request", h.requestFields(r, zap.Error(err))...)
	return next.ServeHTTP(w, r)
}

// collect evaluates every zone against r and fills sc with the requests
// for the store.
func (h *Handler) collect(r *http.Request, repl *caddy.Replacer, sc *scratch) {
	for _, z := range h.zones {
		lz, enabled := h.live(z)
		if !enabled {
			continue
		}
		ok, err := z.matches(r)
		if err != nil {
			h.sampled.Warn("rate_limit zone matcher failed; applying the zone", zap.String("zone", z.name), zap.Error(err))
		}
		if !ok {
			continue
		}
		key, raw, err := z.key(repl)
		if err != nil {
			h.sampled.Warn("rate_limit key_expression failed; keying on client IP", zap.String("zone", z.name), zap.Error(err))
		}
		cost, err := z.cost(repl)
		if err != nil {
			h.sampled.Warn("rate_limit cost_expression failed; charging 1", zap.String("zone", z.name), zap.Error(err))
		}
		policy, shadow := h.effective(z, lz, key)
		sc.zones = append(sc.zones, z)
		sc.raw = append(sc.raw, raw)
		sc.reqs = append(sc.reqs, store.Request{
			Zone:      z.name,
			Key:       key,
			Algorithm: z.alg,
			Policy:    policy,
			Cost:      cost,
			Shadow:    shadow,
			Peek:      z.CountIf != nil,
		})
	}
	sc.out = sc.out[:len(sc.reqs)]
}

// observe records metrics for the decisions.
func (h *Handler) observe(repl *caddy.Replacer, sc *scratch, blocked bool, start time.Time) {
	if h.DisableMetrics {
		return
	}
	for i, z := range sc.zones {
		switch d := sc.out[i]; {
		case d.Allowed && !blocked:
			z.counters.allowed.Inc()
		case d.Allowed:
			// another zone refused; this one was not charged and is not a denial
		case sc.reqs[i].Shadow:
			z.counters.shadowDenied.Inc()
			h.recordDenial(repl, sc, i)
		default:
			z.counters.denied.Inc()
			h.recordDenial(repl, sc, i)
		}
	}
	metrics.latency.Observe(time.Since(start).Seconds())
}

// restrictive picks the zone whose decision the response reports: when
// refused, the enforcing denial with the longest wait; otherwise the
// enforcing zone with the least remaining quota. It returns -1 when only
// shadow zones matched.
func (h *Handler) restrictive(sc *scratch, blocked bool) int {
	best := -1
	for i := range sc.zones {
		if sc.reqs[i].Shadow {
			continue
		}
		d := sc.out[i]
		if blocked {
			if !d.Allowed && (best < 0 || d.RetryAfter > sc.out[best].RetryAfter) {
				best = i
			}
			continue
		}
		if best < 0 || d.Remaining < sc.out[best].Remaining ||
			(d.Remaining == sc.out[best].Remaining && d.ResetAfter > sc.out[best].ResetAfter) {
			best = i
		}
	}
	return best
}

// serveAndSettle calls next and then settles what depends on the response:
// it releases concurrency slots (also on panic or client abort) and
// charges count_if zones whose response matched.
func (h *Handler) serveAndSettle(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, sc *scratch) error {
	rec := &statusRecorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	var settle []store.Request
	for i, z := range sc.zones {
		if z.concurrency && sc.out[i].Allowed {
			req := sc.reqs[i]
			req.Cost, req.Shadow = -req.Cost, true
			settle = append(settle, req)
		}
	}
	defer func() {
		// Settle with a context that outlives an aborted client.
		ctx := context.WithoutCancel(r.Context())
		if len(settle) > 0 {
			out := make([]algorithms.Decision, len(settle))
			if err := h.store.Take(ctx, settle, out); err != nil {
				h.logger.Error("rate_limit: releasing concurrency slots failed", zap.Error(err))
			}
		}
	}()
	err := next.ServeHTTP(rec, r)
	status := rec.status
	var herr caddyhttp.HandlerError
	switch {
	case errors.As(err, &herr) && herr.StatusCode != 0:
		status = herr.StatusCode
	case err != nil:
		status = http.StatusInternalServerError // what Caddy answers for a plain error
	case status == 0:
		status = http.StatusOK // nothing written: net/http sends 200
	}
	var charge []store.Request
	for i, z := range sc.zones {
		if z.CountIf != nil && z.CountIf.Match(status, rec.Header()) {
			req := sc.reqs[i]
			req.Peek, req.Shadow = false, true
			charge = append(charge, req)
		}
	}
	if len(charge) > 0 {
		out := make([]algorithms.Decision, len(charge))
		if serr := h.store.Take(context.WithoutCancel(r.Context()), charge, out); serr != nil {
			h.logger.Error("rate_limit: charging count_if zones failed", zap.Error(serr))
		}
	}
	return err
}

// statusRecorder remembers the status code written to the client.
type statusRecorder struct {
	*caddyhttp.ResponseWriterWrapper
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriterWrapper.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriterWrapper.Write(b)
}

// jitterWait adds the configured jitter to a wait.
func (h *Handler) jitterWait(d time.Duration) time.Duration {
	if h.Jitter <= 0 || d <= 0 {
		return d
	}
	return d + time.Duration(weakrand.Float64()*h.Jitter*float64(d))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
