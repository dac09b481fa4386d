package ratewarden

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
)

func TestDecisionMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		handler string
		counted float64 // 1 when counted, 0 when metrics are off
	}{
		{"counted by zone and outcome", ``, 1},
		{"disable_metrics counts nothing", `"disable_metrics":true`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			enforcing, shadow := uniq("metric"), uniq("metric_shadow")
			js := `{"rate_limits":{%q:{"max_events":1,"window":"1m"},%q:{"max_events":1,"window":"1m","shadow":true}}`
			if tc.handler != "" {
				js += "," + tc.handler
			}
			h := handlerFromJSON(t, js+"}", enforcing, shadow)
			(call{}).admitted(t, h, 3)
			for _, c := range []struct {
				zone, outcome string
				want          float64
			}{
				{enforcing, outcomeAllowed, 1},
				{enforcing, outcomeDenied, 2},
				{enforcing, outcomeShadowDenied, 0},
				{shadow, outcomeAllowed, 1},
				{shadow, outcomeShadowDenied, 2},
				{shadow, outcomeDenied, 0},
			} {
				if got := decisions(t, c.zone, c.outcome); got != c.want*tc.counted {
					t.Errorf("%s/%s = %v, want %v", c.zone, c.outcome, got, c.want*tc.counted)
				}
			}
		})
	}
}

// TestExemptMetric is not parallel: every handler counts exemptions under
// the same empty zone label.
func TestExemptMetric(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler string
		want    float64
	}{
		{"exemptions are counted", ``, 2},
		{"not with disable_metrics", `,"disable_metrics":true`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := oneZone(t, uniq("exempt_metric"), `"max_events":1,"window":"1m"`, `"exempt":{"ranges":["10.0.0.0/8"]}`+tc.handler)
			before := decisions(t, "", outcomeExempt)
			(call{remote: "10.0.0.1"}).admitted(t, h, 2)
			if got := decisions(t, "", outcomeExempt) - before; got != tc.want {
				t.Errorf("%v exemptions counted, want %v", got, tc.want)
			}
		})
	}
}

func TestRegisterMetrics(t *testing.T) {
	t.Parallel()
	ctx := newTestContext(t, "")
	for i := range 2 {
		if err := registerMetrics(ctx); err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
	}
	mfs, err := ctx.GetMetricsRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "caddy_rate_limit_decision_duration_seconds"
	}
	if !found {
		t.Error("the decision latency histogram is not registered")
	}

	// A different collector under the same name is a real conflict.
	ctx = newTestContext(t, "")
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_rate_limit_decisions_total", Help: "something else"})
	if err := ctx.GetMetricsRegistry().Register(clash); err != nil {
		t.Fatal(err)
	}
	h := &Handler{RateLimits: map[string]*Zone{uniq("clash"): {MaxEvents: 1, Window: 1}}}
	wantErr(t, h.Provision(ctx), "registering metrics")
}

func TestRejectionLogs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, handler string
		level               zapcore.Level
		msg                 string
		rawKey              bool
	}{
		{"hashed key at info by default", ``, ``, zapcore.InfoLevel, "rate limit exceeded", false},
		{"handler log_key writes the raw key", ``, `"log_key":true`, zapcore.InfoLevel, "rate limit exceeded", true},
		{"zone log_key writes the raw key", `,"log_key":true`, ``, zapcore.InfoLevel, "rate limit exceeded", true},
		{"log_level", ``, `"log_level":"warn"`, zapcore.WarnLevel, "rate limit exceeded", false},
		{"shadow denial", `,"shadow":true`, `"log_level":"debug"`, zapcore.DebugLevel, "rate limit exceeded in shadow mode", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniq("logs")
			h := oneZone(t, name, `"key":"{http.request.header.X-User}","max_events":1,"window":"1m"`+tc.zone, tc.handler)
			logs := observeLogs(h)
			c := call{remote: "192.0.2.9", header: map[string]string{"X-User": "alice"}}
			c.do(t, h)
			res := c.do(t, h)
			entries := logs.FilterMessage(tc.msg).All()
			if len(entries) != 1 {
				t.Fatalf("%d log lines %q, want 1: %v", len(entries), tc.msg, logs.All())
			}
			e := entries[0]
			if e.Level != tc.level {
				t.Errorf("level %v, want %v", e.Level, tc.level)
			}
			f := e.ContextMap()
			requestID := res.placeholder("http.request.uuid")
			want := map[string]any{
				"zone": name, "algorithm": "sliding_log", "limit": int64(1), "cost": int64(1),
				"shadow": tc.msg != "rate limit exceeded", "client_ip": "192.0.2.9", "request_id": requestID,
			}
			if tc.rawKey {
				want["key"] = "alice"
			} else {
				want["key_hash"] = hashKey(name, "alice").String()
			}
			for k, v := range want {
				if f[k] != v {
					t.Errorf("field %s = %v (%T), want %v", k, f[k], f[k], v)
				}
			}
			if _, ok := f["key"]; ok && !tc.rawKey {
				t.Error("raw key logged without log_key")
			}
			if _, ok := f["key_hash"]; ok && tc.rawKey {
				t.Error("key_hash logged with log_key")
			}
			if requestID == "" {
				t.Error("request has no ID")
			}
		})
	}
}

func TestAccessLogFields(t *testing.T) {
	t.Parallel()
	a, b := uniq("access_a"), uniq("access_b")
	h := handlerFromJSON(t, `{"rate_limits":{%q:{"max_events":5,"window":"1m"},%q:{"max_events":1,"window":"1m"}}}`, a, b)
	// An allowed request names the most restrictive zone (b has 0 left
	// after it, a has 4), the one its headers describe.
	for i, want := range [][2]string{{b, outcomeAllowed}, {b, outcomeDenied}} {
		res := call{}.do(t, h)
		if got := [2]string{extraField(t, res.extra, "rate_limit_zone"), extraField(t, res.extra, "rate_limit_decision")}; got != want {
			t.Errorf("request %d: access log %v, want %v", i+1, got, want)
		}
	}
	// A server without access logs gets no fields (they would cost
	// allocations nobody reads), and the request is still decided.
	res := call{srv: new(caddyhttp.Server)}.do(t, h)
	if got := extraField(t, res.extra, "rate_limit_zone"); got != "" {
		t.Errorf("access log field written without access logs: %q", got)
	}
	// A request without access-log fields (not served by Caddy's server)
	// is still decided.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	caddyhttp.NewTestReplacer(r)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, okNext); err != nil || w.Code != http.StatusTooManyRequests {
		t.Errorf("bare request: status %d, error %v; want 429", w.Code, err)
	}
}
