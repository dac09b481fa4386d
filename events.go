package ratewarden

import (
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
)

// EventExceeded is the Caddy event emitted, sampled, when a zone refuses a
// request. Subscribe with the `events` global option, for example
// `events { on rate_limit_exceeded exec ./notify.sh }`.
const EventExceeded = "rate_limit_exceeded"

// exceededPerSecond is how many exceeded events a handler emits per second
// at most; the rest are counted in the metrics and logs only.
const exceededPerSecond = 1

// sampler lets through the first `first` events of each second, then one
// in `thereafter` (none when 0). It reads no clock: callers pass the time
// they already have.
type sampler struct {
	second atomic.Int64
	count  atomic.Int64
}

// allow reports whether an event at now may pass.
func (s *sampler) allow(now time.Time, first, thereafter int64) bool {
	sec := now.Unix()
	if old := s.second.Load(); old != sec && s.second.CompareAndSwap(old, sec) {
		s.count.Store(0)
	}
	n := s.count.Add(1)
	return n <= first || (thereafter > 0 && (n-first)%thereafter == 0)
}

// provisionEvents finds Caddy's events app.
func (h *Handler) provisionEvents(ctx caddy.Context) error {
	app, err := ctx.App("events")
	if err != nil {
		return err
	}
	h.events = app.(*caddyevents.App)
	h.eventSample = new(sampler)
	h.ctx = ctx
	return nil
}

// emitExceeded emits a sampled rate_limit_exceeded event for the refusing
// zone. Its data carries the zone, the hashed key (the raw key only with
// log_key), the wait, the client IP and the request ID. Subscribers run
// off the request path.
func (h *Handler) emitExceeded(repl *caddy.Replacer, sc *scratch, shown int, now time.Time) {
	if h.events == nil || !h.eventSample.allow(now, exceededPerSecond, 0) {
		return
	}
	z, d := sc.zones[shown], sc.out[shown]
	data := map[string]any{
		"zone":        z.name,
		"key_hash":    sc.reqs[shown].Key.String(),
		"retry_after": d.RetryAfter.Seconds(),
		"limit":       d.Limit,
	}
	if z.LogKey {
		data["key"] = sc.raw[shown]
	}
	data["client_ip"], _ = repl.GetString("http.vars.client_ip")
	data["request_id"], _ = repl.GetString("http.request.uuid")
	go h.events.Emit(h.ctx, EventExceeded, data)
}

// Emit emits a Caddy event through the config's events app (admin.Backend).
func (a *App) Emit(event string, data map[string]any) {
	if a.ctx.Context == nil {
		return
	}
	v, err := a.ctx.App("events")
	if err != nil {
		return
	}
	if ev, ok := v.(*caddyevents.App); ok {
		go ev.Emit(a.ctx, event, data)
	}
}
