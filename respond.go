package ratewarden

import (
	"fmt"
	"net/http"
	"strconv"
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
	repl.Set(phRemaining, d.Remaining)
	repl.Set(phRetryAfter, ceilSeconds(d.RetryAfter))
	if !d.Allowed {
		denied = shown
	}
	if denied >= 0 {
		repl.Set(phExceededName, sc.zones[denied].nameValue)
	}
}

// writeHeaders sets the selected rate-limit headers for the zone at shown.
func (h *Handler) writeHeaders(hdr http.Header, sc *scratch, shown int) {
	if shown < 0 || h.headers == 0 {
		return
	}
	z, d := sc.zones[shown], sc.out[shown]
	reset := ceilSeconds(d.ResetAfter)
	if !d.Allowed {
		reset = max(reset, ceilSeconds(d.RetryAfter))
	}
	if h.headers&headersIETF != 0 {
		hdr["Ratelimit-Policy"] = []string{z.policyHeader}
		hdr["Ratelimit"] = []string{z.quotedName + ";r=" + strconv.FormatInt(d.Remaining, 10) + ";t=" + strconv.FormatInt(reset, 10)}
	}
	if h.headers&headersLegacy != 0 {
		hdr["X-Ratelimit-Limit"] = []string{z.limitHeader}
		hdr["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(d.Remaining, 10)}
		hdr["X-Ratelimit-Reset"] = []string{strconv.FormatInt(reset, 10)}
	}
}

// refuse answers 429. With error routes configured it returns a Caddy error
// so handle_errors can restyle it; otherwise it writes a small
// application/problem+json body.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, wait time.Duration) error {
	retry := max(ceilSeconds(h.jitterWait(wait)), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	err := fmt.Errorf("rate limit exceeded; retry after %ds", retry)
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok &&
		srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(http.StatusTooManyRequests, err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"type":"` + ProblemRateLimited + `","title":"Too Many Requests","status":429,"detail":"rate limit exceeded; retry after ` +
		strconv.FormatInt(retry, 10) + ` seconds"}`))
	return nil
}

// ProblemRateLimited is the stable problem type URI of a 429 refusal.
const ProblemRateLimited = "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#rate-limited"

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
