package ratewarden

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// spanOf runs c through h inside a recorded span and returns the span's
// attributes.
func spanOf(t *testing.T, h *Handler, c call) map[attribute.Key]attribute.Value {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	c.ctx = ctx
	c.do(t, h)
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range ended[0].Attributes() {
		attrs[kv.Key] = kv.Value
	}
	return attrs
}

func TestSpanAttributes(t *testing.T) {
	t.Parallel()
	name := uniq("traced")
	h := oneZone(t, name, `"key":"k","max_events":1,"window":"1m","algorithm":"gcra"`, "")
	for _, want := range []string{outcomeAllowed, outcomeDenied} {
		attrs := spanOf(t, h, call{})
		for k, v := range map[attribute.Key]string{
			attrZone: name, attrOutcome: want, attrAlgorithm: "gcra", attrStore: DefaultStore,
		} {
			if got := attrs[k].AsString(); got != v {
				t.Errorf("%s: span attribute %s = %q, want %q", want, k, got, v)
			}
		}
		if zones := attrs[attrZones].AsStringSlice(); len(zones) != 1 || zones[0] != name {
			t.Errorf("%s: zones attribute %v", want, zones)
		}
	}
}

func TestSpanAttributesShadowDenied(t *testing.T) {
	t.Parallel()
	name := uniq("traced_shadow")
	h := oneZone(t, name, `"key":"k","max_events":1,"window":"1m","shadow":true`, "")
	spanOf(t, h, call{})
	if got := spanOf(t, h, call{})[attrOutcome].AsString(); got != outcomeShadowDenied {
		t.Errorf("outcome %q, want %q", got, outcomeShadowDenied)
	}
}

func TestNoSpanNoAttributes(t *testing.T) {
	t.Parallel()
	name := uniq("untraced")
	h := oneZone(t, name, `"key":"k","max_events":1,"window":"1m"`, "")
	// Without a recording span the handler must not fail or record.
	if res := (call{}).do(t, h); !res.allowed(t) {
		t.Fatal("first request refused")
	}
}

func TestLogLinesCarryTheTraceID(t *testing.T) {
	t.Parallel()
	name := uniq("traced_logs")
	h := oneZone(t, name, `"key":"k","max_events":1,"window":"1m"`, "")
	logs := observeLogs(h)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	want := span.SpanContext().TraceID().String()
	for range 2 {
		w := httptest.NewRecorder()
		r, _ := call{ctx: ctx}.prepare(w)
		caddyhttp.SetVar(r.Context(), "trace_id", want) // as Caddy's tracing handler does
		_ = h.ServeHTTP(w, r, okNext)
	}
	entries := logs.FilterMessage("rate limit exceeded").All()
	if len(entries) != 1 || entries[0].ContextMap()["trace_id"] != want {
		t.Fatalf("rejection lines %v, want one with trace_id %s", entries, want)
	}
	// A store-failure line reads the trace ID from the span when the
	// variable is not set.
	r, _ := call{ctx: ctx}.prepare(httptest.NewRecorder())
	fields := map[string]any{}
	for _, f := range h.requestFields(r) {
		fields[f.Key] = f.String
	}
	if fields["trace_id"] != want || fields["request_id"] == "" {
		t.Errorf("store-failure fields %v, want trace_id %s and a request_id", fields, want)
	}
}
