package ratewarden

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys set on the request span of Caddy's tracing handler.
const (
	attrZone      = attribute.Key("rate_limit.zone")
	attrOutcome   = attribute.Key("rate_limit.outcome")
	attrAlgorithm = attribute.Key("rate_limit.algorithm")
	attrStore     = attribute.Key("rate_limit.store")
	attrZones     = attribute.Key("rate_limit.zones")
)

// annotateSpan adds the decision to the request's span, when Caddy's
// tracing handler records one: the zone the response reports (the refusing
// zone when refused), the outcome, its algorithm and the store, and every
// zone that matched. Without tracing, the span is a no-op and this costs a
// context lookup.
func (h *Handler) annotateSpan(r *http.Request, sc *scratch, shown int, outcome string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	i := max(shown, 0)
	z := sc.zones[i]
	names := make([]string, len(sc.zones))
	for j, zz := range sc.zones {
		names[j] = zz.name
	}
	span.SetAttributes(
		attrZone.String(z.name),
		attrOutcome.String(outcome),
		attrAlgorithm.String(z.Algorithm),
		attrStore.String(storeName(h.Store)),
		attrZones.StringSlice(names),
	)
}

// traceID returns the request's trace ID, or "" without tracing.
func traceID(r *http.Request) string {
	sc := trace.SpanContextFromContext(r.Context())
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
