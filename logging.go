package ratewarden

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Rejection logs are sampled per message: the first logSampleFirst lines
// each second are written, then one in logSampleThereafter.
const (
	logSampleFirst      = 10
	logSampleThereafter = 100
)

// provisionLogging sets up the sampled logger used on the request path,
// and the samplers of the rejection lines (sampled before zap sees them, so
// a refusal that is not logged reads no clock).
func (h *Handler) provisionLogging() error {
	h.logLevel = zapcore.InfoLevel
	if h.LogLevel != "" {
		lvl, err := zapcore.ParseLevel(h.LogLevel)
		if err != nil || lvl > zapcore.ErrorLevel {
			return fmt.Errorf("log_level must be debug, info, warn or error, got %q", h.LogLevel)
		}
		h.logLevel = lvl
	}
	h.sampled = h.logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, logSampleFirst, logSampleThereafter)
	}))
	h.rejectLog, h.shadowLog = new(sampler), new(sampler)
	return nil
}

// logRejection writes one sampled line for a refused request and adds the
// decision to the access log.
func (h *Handler) logRejection(r *http.Request, repl *caddy.Replacer, sc *scratch, shown int, now time.Time) {
	h.accessLogFields(r, sc.zones[shown], outcomeDenied)
	if !h.rejectLog.allow(now, logSampleFirst, logSampleThereafter) {
		return
	}
	if ce := h.logger.Check(h.logLevel, "rate limit exceeded"); ce != nil {
		ce.Write(h.decisionFields(repl, sc, shown)...)
	}
}

// logShadow logs shadow denials of an allowed request and records the
// decision in the access log: the shadow denial if there is one, otherwise
// the zone the response headers describe (shown, or the first zone).
func (h *Handler) logShadow(r *http.Request, repl *caddy.Replacer, sc *scratch, shown int) {
	for i := range sc.out {
		if sc.out[i].Allowed {
			continue
		}
		h.accessLogFields(r, sc.zones[i], outcomeShadowDenied)
		if !h.shadowLog.allow(time.Now(), logSampleFirst, logSampleThereafter) {
			return
		}
		if ce := h.logger.Check(h.logLevel, "rate limit exceeded in shadow mode"); ce != nil {
			ce.Write(h.decisionFields(repl, sc, i)...)
		}
		return
	}
	h.accessLogFields(r, sc.zones[max(shown, 0)], outcomeAllowed)
}

// decisionFields describes zone i's decision. The raw key appears only with
// log_key; otherwise its hash does.
func (h *Handler) decisionFields(repl *caddy.Replacer, sc *scratch, i int) []zap.Field {
	z, d := sc.zones[i], sc.out[i]
	key := sc.reqs[i].Key.String()
	keyField := zap.String("key_hash", key)
	if z.LogKey {
		keyField = zap.String("key", sc.raw[i])
	}
	requestID, _ := repl.GetString("http.request.uuid")
	clientIP, _ := repl.GetString("http.vars.client_ip")
	traceID, _ := repl.GetString("http.vars.trace_id")
	return []zap.Field{
		zap.String("zone", z.name),
		keyField,
		zap.String("algorithm", z.Algorithm),
		zap.Int64("limit", d.Limit),
		zap.Int64("cost", sc.reqs[i].Cost),
		zap.Duration("retry_after", d.RetryAfter),
		zap.Bool("shadow", sc.reqs[i].Shadow),
		zap.String("request_id", requestID),
		zap.String("trace_id", traceID),
		zap.String("client_ip", clientIP),
	}
}

// requestFields are the fields of a store-failure line: the request ID and
// trace ID, then extra.
func (h *Handler) requestFields(r *http.Request, extra ...zap.Field) []zap.Field {
	var requestID, trace string
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		requestID, _ = repl.GetString("http.request.uuid")
		trace, _ = repl.GetString("http.vars.trace_id")
	}
	if trace == "" {
		trace = traceID(r)
	}
	return append([]zap.Field{zap.String("request_id", requestID), zap.String("trace_id", trace)}, extra...)
}

// accessLogFields adds rate_limit_zone and rate_limit_decision to the
// request's access log entry, as one prebuilt field (each Add on
// ExtraLogFields costs an allocation), when the server writes access logs.
func (h *Handler) accessLogFields(r *http.Request, z *Zone, outcome string) {
	// Without access logs nobody reads the fields; skip the allocations.
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); !ok || srv.Logs == nil {
		return
	}
	extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields)
	if !ok {
		return
	}
	extra.Add(z.logFields[outcome])
}

// accessLogDecision renders a zone's decision as access-log fields.
type accessLogDecision struct{ zone, decision string }

func (a accessLogDecision) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("rate_limit_zone", a.zone)
	enc.AddString("rate_limit_decision", a.decision)
	return nil
}
