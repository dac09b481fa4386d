package integration

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ratewarden/ratewarden/control"
)

// family is what a caddy_rate_limit_* metric family must look like.
type family struct {
	typ    dto.MetricType
	labels []string // sorted
}

// handlerFamilies are the families of the handler, the rate_limit app and
// the memory store; redisFamilies those a Redis store adds. No other
// caddy_rate_limit_* family may exist: a new one belongs in these lists.
var (
	handlerFamilies = map[string]family{
		"caddy_rate_limit_decisions_total":           {dto.MetricType_COUNTER, []string{"outcome", "zone"}},
		"caddy_rate_limit_decision_duration_seconds": {dto.MetricType_HISTOGRAM, nil},
		"caddy_rate_limit_api_key_lookups_total":     {dto.MetricType_COUNTER, []string{"result"}},
		"caddy_rate_limit_overrides_active":          {dto.MetricType_GAUGE, []string{"type"}},
		"caddy_rate_limit_api_keys":                  {dto.MetricType_GAUGE, []string{"status"}},
		"caddy_rate_limit_memory_keys":               {dto.MetricType_GAUGE, []string{"store"}},
	}
	redisFamilies = map[string]family{
		"caddy_rate_limit_store_errors_total":               {dto.MetricType_COUNTER, []string{"store"}},
		"caddy_rate_limit_breaker_state":                    {dto.MetricType_GAUGE, []string{"store"}},
		"caddy_rate_limit_store_operation_duration_seconds": {dto.MetricType_HISTOGRAM, []string{"operation", "store"}},
		"caddy_rate_limit_store_batch_size":                 {dto.MetricType_HISTOGRAM, []string{"store"}},
		"caddy_rate_limit_store_round_trips_total":          {dto.MetricType_COUNTER, []string{"store"}},
		"caddy_rate_limit_store_local_cache_hits_total":     {dto.MetricType_COUNTER, []string{"store"}},
		"caddy_rate_limit_store_fallback_decisions_total":   {dto.MetricType_COUNTER, []string{"policy", "store"}},
	}
)

// maxSeries bounds the caddy_rate_limit_* series (label sets) of one
// instance, whatever its traffic.
const maxSeries = 200

// metricsSite has a handler whose zone perKey admits each X-Key header
// value twice per 10 minutes, so that every key stays live in its store
// for the whole test, and on /keyed one with API keys (whose lookup
// counters exist once a handler has api_key), in zone perAPIKey, with
// apiStore as its store line ("" for the default store).
func metricsSite(perKey, perAPIKey, apiStore string) string {
	return fmt.Sprintf(`@keyed path /keyed
handle @keyed {
	rate_limit {
		%s
		api_key {
			header X-API-Key
		}
		zone %s {
			key {http.rate_limit.api_key.id}
			limit 100 1m
		}
	}
	respond "ok"
}
handle {
	rate_limit {
		zone %s {
			key {header.X-Key}
			limit 2 10m
		}
	}
	respond "ok"
}`, apiStore, perAPIKey, perKey)
}

// scrape reads the admin endpoint's /metrics and returns the
// caddy_rate_limit_* families.
func (c *Caddy) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Client.Get(c.Admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scraping /metrics: status %d: %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	all, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	ours := make(map[string]*dto.MetricFamily)
	for name, f := range all {
		if strings.HasPrefix(name, "caddy_rate_limit_") {
			ours[name] = f
		}
	}
	return ours
}

// checkFamilies fails the test unless got has exactly the families of
// want, each of its type and with exactly its label names on every series.
func checkFamilies(t testing.TB, got map[string]*dto.MetricFamily, want map[string]family) {
	t.Helper()
	for name, w := range want {
		f, ok := got[name]
		if !ok {
			t.Errorf("no %s family", name)
			continue
		}
		if f.GetType() != w.typ {
			t.Errorf("%s is a %v, want a %v", name, f.GetType(), w.typ)
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			slices.Sort(labels)
			if !slices.Equal(labels, w.labels) {
				t.Errorf("%s series with labels %v, want %v", name, labels, w.labels)
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected family %s: add it to the lists in metrics_test.go", name)
		}
	}
}

// checkNoKeys fails the test if a label value of any series is one of the
// keys that were sent.
func checkNoKeys(t testing.TB, fams map[string]*dto.MetricFamily, sent func(string) bool) {
	t.Helper()
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if sent(l.GetValue()) {
					t.Errorf("%s has the key %q as its %s label", name, l.GetValue(), l.GetName())
				}
			}
		}
	}
}

// seriesCount counts the series (label sets) of fams.
func seriesCount(fams map[string]*dto.MetricFamily) int {
	n := 0
	for _, f := range fams {
		n += len(f.GetMetric())
	}
	return n
}

// value returns the value of the series of fams[name] whose labels include
// every name/value pair of labels: a counter's or a gauge's value.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no %s family", name)
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue series
			}
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no %s series with labels %v", name, labels)
	return 0
}

// sendKeys sends one GET / for each of keys in X-Key, from workers
// goroutines on connections of their own, and fails the test unless each
// is answered 200.
func (c *Caddy) sendKeys(t testing.TB, keys []string, workers int) {
	t.Helper()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: workers, MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers,
		},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var failure error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(keys)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				err := getOK(ctx, client, c.URL+"/", keys[i])
				if err != nil {
					once.Do(func() { failure = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
}

// getOK sends GET url with X-Key key and reports anything but a 200.
func getOK(ctx context.Context, client *http.Client, url, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("key %s: %w", key, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("key %s: status %d, want 200 for a new key", key, resp.StatusCode)
	}
	return nil
}

// distinctKeys returns n distinct keys that look like client identifiers.
func distinctKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return keys
}

// warmUp sends traffic of every kind the families count: keys that are
// refused on their third request, and requests with a missing and an
// unknown API key. It returns the keys it sent.
func (c *Caddy) warmUp(t testing.TB, prefix string) []string {
	t.Helper()
	keys := distinctKeys(prefix+"-warm", 5)
	for _, k := range keys {
		c.expectStatuses(t, "/", repeat(http.StatusOK, 2, http.StatusTooManyRequests, http.StatusTooManyRequests), "X-Key", k)
	}
	c.Get(t, "/keyed")
	c.Get(t, "/keyed", "X-API-Key", prefix+"-not-a-real-api-key")
	return keys
}

func TestMetricsStayBoundedUnderDistinctKeys(t *testing.T) {
	t.Parallel()
	const distinct, workers = 100_000, 64
	c := Start(t, Config{Site: metricsSite("metrics_per_key", "metrics_per_api_key", "")})
	warm := c.warmUp(t, "user")
	before := c.scrape(t)
	checkFamilies(t, before, handlerFamilies)

	keys := distinctKeys("user", distinct)
	start := time.Now()
	c.sendKeys(t, keys, workers)
	t.Logf("%d distinct keys in %v", distinct, time.Since(start).Round(time.Millisecond))

	after := c.scrape(t)
	checkFamilies(t, after, handlerFamilies)
	sent := map[string]bool{}
	for _, k := range append(keys, warm...) {
		sent[k] = true
	}
	checkNoKeys(t, after, func(v string) bool { return sent[v] })
	if n, m := seriesCount(before), seriesCount(after); n != m || m >= maxSeries {
		t.Errorf("%d caddy_rate_limit_* series before %d distinct keys and %d after, want the same number under %d",
			n, distinct, m, maxSeries)
	}
	// Every key lives for minutes in the default store: none expired, and
	// a million keys fit before any eviction.
	live := value(t, after, "caddy_rate_limit_memory_keys", "store", "default")
	if low, high := float64(distinct+len(warm)), float64(distinct+len(warm)+10); live < low || live > high {
		t.Errorf("memory_keys %v, want %v to %v", live, low, high)
	}
	if n := value(t, after, "caddy_rate_limit_decisions_total", "zone", "metrics_per_key", "outcome", "allowed"); n < distinct {
		t.Errorf("%v allowed decisions, want at least %d", n, distinct)
	}
	if n := value(t, after, "caddy_rate_limit_decisions_total", "zone", "metrics_per_key", "outcome", "denied"); n != float64(2*len(warm)) {
		t.Errorf("%v denied decisions, want %d", n, 2*len(warm))
	}
}

func TestMetricsWithARedisStore(t *testing.T) {
	t.Parallel()
	const distinct, workers = 2000, 16
	srv := startRedis(t, 0)
	// Redis is the default store; the API-key handler decides in the
	// memory store "local".
	c := Start(t, Config{
		Global: fmt.Sprintf(`rate_limit {
	store redis {
		address %s
		key_prefix metrics:
		timeout 2s
		deny_cache
	}
	store memory local
}`, srv.Addr),
		Site: metricsSite("metrics_redis_per_key", "metrics_local_per_api_key", "store local"),
	})
	want := maps.Clone(handlerFamilies)
	maps.Copy(want, redisFamilies)

	warm := c.warmUp(t, "redis-user")
	before := c.scrape(t)
	checkFamilies(t, before, want)
	keys := distinctKeys("redis-user", distinct)
	c.sendKeys(t, keys, workers)
	after := c.scrape(t)
	checkFamilies(t, after, want)

	sent := map[string]bool{}
	for _, k := range append(keys, warm...) {
		sent[k] = true
	}
	checkNoKeys(t, after, func(v string) bool { return sent[v] })
	if n, m := seriesCount(before), seriesCount(after); n != m || m >= maxSeries {
		t.Errorf("%d caddy_rate_limit_* series before %d distinct keys and %d after, want the same number under %d",
			n, distinct, m, maxSeries)
	}
	// Redis decided, in round trips, and refused the warm-up keys' fourth
	// requests from the cache of denied keys; the breaker stayed closed.
	if n := value(t, after, "caddy_rate_limit_store_round_trips_total", "store", "default"); n < 1 {
		t.Errorf("%v round trips to Redis", n)
	}
	if n := value(t, after, "caddy_rate_limit_store_local_cache_hits_total", "store", "default"); n < float64(len(warm)) {
		t.Errorf("%v decisions from the cache of denied keys, want at least %d", n, len(warm))
	}
	if n := value(t, after, "caddy_rate_limit_breaker_state", "store", "default"); n != 0 {
		t.Errorf("breaker state %v, want 0 (closed)", n)
	}
	if n := value(t, after, "caddy_rate_limit_store_errors_total", "store", "default"); n != 0 {
		t.Errorf("%v store errors", n)
	}
	if n := value(t, after, "caddy_rate_limit_decisions_total", "zone", "metrics_redis_per_key", "outcome", "allowed"); n < distinct {
		t.Errorf("%v allowed decisions, want at least %d", n, distinct)
	}

	// API keys by status, from the control store (Redis here): two
	// created, one of them revoked.
	var issued [2]struct {
		Key control.KeyInfo `json:"key"`
	}
	for i := range issued {
		adminCall(t, c, http.MethodPost, "/rate_limit/v1/keys", map[string]any{"name": fmt.Sprint("metrics-", i)}, &issued[i])
	}
	adminCall(t, c, http.MethodPost, "/rate_limit/v1/keys/"+issued[1].Key.ID+"/revoke", nil, nil)
	pollUntil(t, 10*time.Second, "api_keys to show one active and one revoked key", func() bool {
		fams := c.scrape(t)
		return value(t, fams, "caddy_rate_limit_api_keys", "status", "active") == 1 &&
			value(t, fams, "caddy_rate_limit_api_keys", "status", "revoked") == 1 &&
			value(t, fams, "caddy_rate_limit_api_keys", "status", "expired") == 0
	})
}
