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
	policy, limit := z.policyHeaders(sc.reqs[shown].Policy)
	reset := ceilSeconds(d.ResetAfter)
	if !d.Allowed {
		reset = max(reset, ceilSeconds(d.RetryAfter))
	}
	if h.headers&headersIETF != 0 {
		hdr["Ratelimit-Policy"] = []string{policy}
		hdr["Ratelimit"] = []string{z.quotedName + ";r=" + itoa(d.Remaining) + ";t=" + itoa(reset)}
	}
	if h.headers&headersLegacy != 0 {
		hdr["X-Ratelimit-Limit"] = []string{limit}
		hdr["X-Ratelimit-Remaining"] = []string{itoa(d.Remaining)}
		hdr["X-Ratelimit-Reset"] = []string{itoa(reset)}
	}
}

// refuse answers 429. With error routes configured it returns a Caddy error
// so handle_errors can restyle it; otherwise it writes a small
// application/problem+json body.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, wait time.Duration) error {
	secs := max(ceilSeconds(h.jitterWait(wait)), 1)
	retry := itoa(secs)
	hdr := w.Header()
	hdr["Retry-After"] = []string{retry}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok &&
		srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(http.StatusTooManyRequests, fmt.Errorf("rate limit exceeded; retry after %ss", retry))
	}
	// The slices are shared and never modified: Header.Set and Add replace
	// or reallocate them.
	hdr["Content-Type"] = problemContentType
	hdr["Cache-Control"] = noStore
	w.WriteHeader(http.StatusTooManyRequests)
	var body [len(problemPrefix) + 20 + len(problemSuffix)]byte
	b := append(body[:0], problemPrefix...)
	b = strconv.AppendInt(b, secs, 10)
	b = append(b, problemSuffix...)
	_, _ = w.Write(b)
	return nil
}

// smallInts are the decimal strings of 0..1023: header values and
// placeholders mostly fall in that range.
var smallInts = func() []string {
	s := make([]string, 1024)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// itoa formats n without allocating when it is small.
func itoa(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

var (
	problemContentType = []string{"application/problem+json"}
	noStore            = []string{"no-store"}
)

const (
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
