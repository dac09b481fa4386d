package ratewarden

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Placeholders set on every request a handler decides.
const (
	phExceeded   = "http.rate_limit.exceeded"
	phZone       = "http.rate_limit.zone"
	phRemaining  = "http.rate_limit.remaining"
	phRetryAfter = "http.rate_limit.retry_after"
	// phExceededName is caddy-ratelimit's placeholder for the refusing zone.
	phExceededName = "http.rate_limit.exceeded.name"
)

// headerMode is a set of header families to send.
type headerMode uint8

const (
	headersIETF headerMode = 1 << iota
	headersLegacy
)

// parseHeaderModes turns the headers config into a mode. Empty means ietf.
func parseHeaderModes(names []string) (headerMode, error) {
	if len(names) == 0 {
		return headersIETF, nil
	}
	var m headerMode
	for _, n := range names {
		switch n {
		case "ietf":
			m |= headersIETF
		case "legacy":
			m |= headersLegacy
		case "none":
			if len(names) > 1 {
				return 0, fmt.Errorf("headers: 'none' cannot be combined with other modes")
			}
		default:
			return 0, fmt.Errorf("headers: unknown mode %q (want ietf, legacy or none)", n)
		}
	}
	return m, nil
}

// setPlaceholders publishes the decision for later handlers and logs.
// shown is the zone the response reports (-1 if none); the exceeded name is
// the refusing zone, or the first shadow zone that would have refused.
func (h *Handler) setPlaceholders(repl *caddy.Replacer, sc *scratch, shown int) {
	denied := -1
	for i := range sc.out {
		if !sc.out[i].Allowed {
			denied = i
			break
		}
	}
	repl.Set(phExceeded, denied >= 0)
	if shown < 0 {
		shown = denied // only shadow zones matched
	}
	if shown < 0 {
		return
	}
	d := sc.out[shown]
	repl.Set(phZone, sc.zones[shown].nameValue)
	repl.Set(phRemaining, boxInt(d.Remaining))
	repl.Set(phRetryAfter, boxInt(ceilSeconds(d.RetryAfter)))
	if !d.Allowed {
		denied = shown
	}
	if denied >= 0 {
		repl.Set(phExceededName, sc.zones[denied].nameValue)
	}
}

// headerValues returns room for the header values of one response: the
// rate-limit headers of the zone at shown, and a refusal's own.
func (h *Handler) headerValues(shown int, blocked bool) headerValues {
	n := 0
	if shown >= 0 {
		if h.headers&headersIETF != 0 {
			n += 2
		}
		if h.headers&headersLegacy != 0 {
			n += 3
		}
	}
	if blocked {
		n += 3
	}
	return make(headerValues, n)
}

// headerValues holds one response's header values, allocated together.
// Each value gets its own one-element slice, capped so that an Add
// reallocates rather than writing into the next value. Nothing is shared
// between responses: Caddy's header directive rewrites values in place.
type headerValues []string

// one returns s as a header value.
func (v *headerValues) one(s string) []string {
	if len(*v) == 0 {
		return []string{s}
	}
	val := (*v)[:1:1]
	val[0] = s
	*v = (*v)[1:]
	return val
}

// writeHeaders sets the selected rate-limit headers for the zone at shown.
func (h *Handler) writeHeaders(hdr http.Header, sc *scratch, shown int, vals *headerValues) {
	if shown < 0 || h.headers == 0 {
		return
	}
	z, d := sc.zones[shown], sc.out[shown]
	policy, limit := z.policyHeaders(sc.reqs[shown].Policy)
	reset := ceilSeconds(d.ResetAfter)
	if !d.Allowed {
		reset = max(reset, ceilSeconds(d.RetryAfter))
	}
	if h.headers&headersIETF != 0 {
		hdr["Ratelimit-Policy"] = vals.one(policy)
		hdr["Ratelimit"] = vals.one(z.rateLimitHeader(d.Remaining, reset))
	}
	if h.headers&headersLegacy != 0 {
		hdr["X-Ratelimit-Limit"] = vals.one(limit)
		hdr["X-Ratelimit-Remaining"] = vals.one(itoa(d.Remaining))
		hdr["X-Ratelimit-Reset"] = vals.one(itoa(reset))
	}
}

// rateLimitHeader returns the RateLimit header value
// `"zone";r=<remaining>;t=<reset>`. A refused request's value (remaining 0)
// repeats for a second at a time, so the zone keeps the last one.
func (z *Zone) rateLimitHeader(remaining, reset int64) string {
	if remaining == 0 {
		if c := z.refusedHeader.Load(); c != nil && c.reset == reset {
			return c.value
		}
	}
	var digits [20]byte
	var b strings.Builder
	b.Grow(len(z.quotedName) + len(";r=;t=") + 2*len(digits))
	b.WriteString(z.quotedName)
	b.WriteString(";r=")
	b.Write(strconv.AppendInt(digits[:0], remaining, 10))
	b.WriteString(";t=")
	b.Write(strconv.AppendInt(digits[:0], reset, 10))
	value := b.String()
	if remaining == 0 {
		z.refusedHeader.Store(&cachedHeader{reset: reset, value: value})
	}
	return value
}

// cachedHeader is a zone's RateLimit header value for a refusal.
type cachedHeader struct {
	reset int64
	value string
}

// refuse answers 429. With error routes configured it returns a Caddy error
// so handle_errors can restyle it; otherwise it writes a small
// application/problem+json body.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, wait time.Duration) error {
	return h.refuseInto(w, r, wait, nil, nil)
}

// refuseInto is refuse with buf as room for the body and vals for the
// header values, so that pooled or shared buffers save their allocations.
// buf and vals may be nil.
func (h *Handler) refuseInto(w http.ResponseWriter, r *http.Request, wait time.Duration, buf []byte, vals *headerValues) error {
	if vals == nil {
		vals = new(headerValues)
	}
	secs := max(ceilSeconds(h.jitterWait(wait)), 1)
	hdr := w.Header()
	hdr["Retry-After"] = vals.one(itoa(secs))
	if hasErrorRoutes(r) {
		return caddyhttp.Error(http.StatusTooManyRequests, errors.New("rate limit exceeded; retry after "+itoa(secs)+"s"))
	}
	hdr["Content-Type"] = vals.one(problemType)
	hdr["Cache-Control"] = vals.one("no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	b := append(buf[:0], problemPrefix...)
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, problemSuffix...)
	_, _ = w.Write(b)
	return nil
}

// smallInts are the decimal strings of 0 to a bit over an hour in seconds,
// and boxedInts the same numbers as int64 in an interface: header values
// and placeholders (remaining quota, seconds to wait) mostly fall in that
// range. Together they take about 180 KB.
var smallInts, boxedInts = func() ([]string, []any) {
	const n = 4096
	s, a := make([]string, n), make([]any, n)
	var digits []byte
	ends := make([]int, n)
	for i := range s {
		digits = strconv.AppendInt(digits, int64(i), 10)
		ends[i] = len(digits)
	}
	all, start := string(digits), 0
	for i := range s {
		s[i], start = all[start:ends[i]], ends[i]
		a[i] = int64(i)
	}
	return s, a
}()

// itoa formats n without allocating when it is small.
func itoa(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

// boxInt returns n in an interface without allocating when it is small.
func boxInt(n int64) any {
	if n >= 0 && n < int64(len(boxedInts)) {
		return boxedInts[n]
	}
	return n
}

const (
	problemType   = "application/problem+json"
	problemPrefix = `{"type":"` + ProblemRateLimited + `","title":"Too Many Requests","status":429,"detail":"rate limit exceeded; retry after `
	problemSuffix = ` seconds"}`
)

// ProblemRateLimited is the stable problem type URI of a 429 refusal.
const ProblemRateLimited = "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#rate-limited"

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// hasErrorRoutes reports whether r's server has handle_errors routes: a
// refusal is then returned as a Caddy error for them to render, instead of
// a problem+json body written here.
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv.Errors != nil && len(srv.Errors.Routes) > 0
}
