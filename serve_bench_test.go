package ratewarden

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store/memory"
)

// benchHandler provisions h with its own memory store.
func benchHandler(b *testing.B, h *Handler) *Handler {
	b.Helper()
	st := memory.New(memory.Options{})
	b.Cleanup(st.Close)
	h.store = st
	if err := h.Provision(newTestContext(b, "")); err != nil {
		b.Fatal(err)
	}
	// Log to nowhere, through the same encoder and sampler as in production.
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.DebugLevel))
	if err := h.provisionLogging(); err != nil {
		b.Fatal(err)
	}
	return h
}

// benchRequest prepares a request the way Caddy's server does.
func benchRequest(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	r.RemoteAddr = remote
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1"})
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	r = r.WithContext(ctx)
	repl := caddyhttp.NewTestReplacer(r)
	return r.WithContext(context.WithValue(ctx, caddy.ReplacerCtxKey, repl))
}

// resetRequest gives r a fresh access-log field list, as Caddy does for
// every request.
func resetRequest(r *http.Request) {
	*r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields) = caddyhttp.ExtraLogFields{}
}

var benchNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// discardWriter is a ResponseWriter that keeps headers and drops the body.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP measures the handler on the allow and the refuse path,
// with one zone keyed on a placeholder, a static key, and three zones.
// Report allocs/op: the allow path should make at most one allocation per
// zone beyond the response headers.
func BenchmarkServeHTTP(b *testing.B) {
	cases := []struct {
		name    string
		zones   map[string]*Zone
		hdrs    []string
		metrics bool
	}{
		{"allow/static_key", map[string]*Zone{"bench_static": {Key: "static", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, []string{"none"}, false},
		{"allow/placeholder_key", map[string]*Zone{"bench_ph": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, []string{"none"}, false},
		{"allow/placeholder_key_ietf_headers", map[string]*Zone{"bench_ph_hdr": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, nil, false},
		{"allow/three_zones", map[string]*Zone{
			"bench_a": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
			"bench_b": {Key: "static", Algorithm: "token_bucket", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
			"bench_c": {Key: "{http.request.method}", Algorithm: "fixed_window", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
		}, []string{"none"}, false},
		{"deny/placeholder_key", map[string]*Zone{"bench_deny": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1, Window: caddy.Duration(time.Hour)}}, nil, false},
		// With metrics on, a denial also feeds the zone's top-keys sketch.
		{"deny/placeholder_key_metrics", map[string]*Zone{"bench_deny_m": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1, Window: caddy.Duration(time.Hour)}}, nil, true},
		{"allow/placeholder_key_metrics", map[string]*Zone{"bench_ph_m": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, []string{"none"}, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			h := benchHandler(b, &Handler{RateLimits: tc.zones, Headers: tc.hdrs, DisableMetrics: !tc.metrics})
			w := &discardWriter{h: http.Header{}}
			r := benchRequest("198.51.100.7:1234")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resetRequest(r)
				clear(w.h)
				_ = h.ServeHTTP(w, r, benchNext)
			}
		})
	}
}

// BenchmarkServeHTTPAPIKey measures a verified API key on the allow path
// against the same zone keyed on the raw header: the difference is the
// lookup and its placeholders.
func BenchmarkServeHTTPAPIKey(b *testing.B) {
	for _, withKey := range []bool{false, true} {
		name := "header_key"
		if withKey {
			name = "api_key"
		}
		b.Run(name, func(b *testing.B) {
			zone := &Zone{Key: "{http.request.header.X-Api-Key}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}
			h := &Handler{RateLimits: map[string]*Zone{"bench_" + name: zone}, Headers: []string{"none"}, DisableMetrics: true}
			var token string
			if withKey {
				zone.Key = "{http.rate_limit.api_key.id}"
				_, app := appHandler(b, `{"rate_limits":{"unused":{"max_events":1,"window":"1m"}}}`)
				var err error
				if token, _, err = app.control.keys.Create(context.Background(), control.KeySpec{Name: "bench"}); err != nil {
					b.Fatal(err)
				}
				h.APIKey = &APIKeyAuth{Require: true}
				if err := h.APIKey.provision(app.control.keys); err != nil {
					b.Fatal(err)
				}
			} else {
				token = "rwk_static_value_of_the_same_length_as_a_real_key_000000000000000"
			}
			h = benchHandler(b, h)
			w := &discardWriter{h: http.Header{}}
			r := benchRequest("198.51.100.7:1234")
			r.Header.Set("X-Api-Key", token)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resetRequest(r)
				clear(w.h)
				if err := h.ServeHTTP(w, r, benchNext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServeHTTPDistinctKeys spreads requests over 100,000 keys.
func BenchmarkServeHTTPDistinctKeys(b *testing.B) {
	h := benchHandler(b, &Handler{RateLimits: map[string]*Zone{
		"bench_distinct": {Key: "{http.request.header.X-Key}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
	}, Headers: []string{"none"}, DisableMetrics: true})
	keys := make([]string, 100000)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	r := benchRequest("198.51.100.7:1234")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resetRequest(r)
		r.Header["X-Key"] = keys[i%len(keys):][:1]
		_ = h.ServeHTTP(w, r, benchNext)
	}
}
