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

	"github.com/ratewarden/ratewarden/store/memory"
)

// benchHandler provisions h with its own memory store.
func benchHandler(b *testing.B, h *Handler) *Handler {
	b.Helper()
	st := memory.New(memory.Options{})
	b.Cleanup(st.Close)
	h.store = st
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
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
		name  string
		zones map[string]*Zone
		hdrs  []string
	}{
		{"allow/static_key", map[string]*Zone{"bench_static": {Key: "static", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, []string{"none"}},
		{"allow/placeholder_key", map[string]*Zone{"bench_ph": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, []string{"none"}},
		{"allow/placeholder_key_ietf_headers", map[string]*Zone{"bench_ph_hdr": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)}}, nil},
		{"allow/three_zones", map[string]*Zone{
			"bench_a": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
			"bench_b": {Key: "static", Algorithm: "token_bucket", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
			"bench_c": {Key: "{http.request.method}", Algorithm: "fixed_window", MaxEvents: 1 << 40, Window: caddy.Duration(time.Second)},
		}, []string{"none"}},
		{"deny/placeholder_key", map[string]*Zone{"bench_deny": {Key: "{http.request.remote.host}", Algorithm: "gcra", MaxEvents: 1, Window: caddy.Duration(time.Hour)}}, nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			h := benchHandler(b, &Handler{RateLimits: tc.zones, Headers: tc.hdrs, DisableMetrics: true})
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
