package ratewarden

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
)

// Placeholders set from a verified API key.
const (
	phAPIKeyID     = "http.rate_limit.api_key.id"
	phAPIKeyName   = "http.rate_limit.api_key.name"
	phAPIKeyTier   = "http.rate_limit.api_key.tier"
	phAPIKeyOwner  = "http.rate_limit.api_key.owner"
	phAPIKeyResult = "http.rate_limit.api_key.result"
)

// apiKeyFailureZone is the reserved zone that counts failed API key
// lookups per client IP, in the handler's store.
const apiKeyFailureZone = "_ratewarden:api_key_failures"

// APIKeyAuth identifies the client by an API key from the rate_limit app's
// registry (see the admin API's /keys endpoints). A verified key sets the
// {http.rate_limit.api_key.id|name|tier|owner} placeholders, so zones can key
// and match on them. Keys are read from the first configured source that
// has one: Header, then Bearer, then Query.
type APIKeyAuth struct {
	// Header is a request header that carries the key.
	// Default: "X-API-Key" when no source is configured.
	Header string `json:"header,omitempty"`

	// Bearer reads the key from "Authorization: Bearer <key>". Default: true
	// when no source is configured.
	Bearer bool `json:"bearer,omitempty"`

	// Query is a query parameter that carries the key. Query strings end up
	// in access logs and browser history; prefer a header. Example: "api_key".
	Query string `json:"query,omitempty"`

	// Require refuses a request without a valid key with 401 and a
	// problem+json body saying whether the key was missing, malformed,
	// unknown, expired or revoked. Without it, such requests go on with
	// empty api_key placeholders.
	Require bool `json:"require,omitempty"`

	// FailureLimit is how many failed key lookups a client IP may make per
	// FailureWindow; further failed attempts are refused with 429. A right
	// key is always accepted. Default: 10 per 1m.
	FailureLimit int64 `json:"failure_limit,omitempty"`

	// FailureWindow is the period of FailureLimit. Default: 1m.
	FailureWindow caddy.Duration `json:"failure_window,omitempty"`

	keys       *control.Keys
	header     string
	failures   algorithms.Algorithm
	policy     algorithms.Policy
	results    [6]any
	unauthType [6]string
}

// provision checks the configuration and binds the registry.
func (a *APIKeyAuth) provision(keys *control.Keys) error {
	if a.Header == "" && !a.Bearer && a.Query == "" {
		a.Header, a.Bearer = "X-API-Key", true
	}
	a.header = textproto.CanonicalMIMEHeaderKey(a.Header)
	if a.FailureLimit < 0 || a.FailureWindow < 0 {
		return fmt.Errorf("api_key: failure_limit and failure_window must not be negative")
	}
	if a.FailureLimit == 0 {
		a.FailureLimit = 10
	}
	if a.FailureWindow == 0 {
		a.FailureWindow = caddy.Duration(time.Minute)
	}
	alg, err := algorithms.Lookup("gcra")
	if err != nil {
		return err
	}
	a.failures = alg
	a.policy = algorithms.Policy{Limit: a.FailureLimit, Window: time.Duration(a.FailureWindow)}
	if err := a.policy.Validate(); err != nil {
		return fmt.Errorf("api_key: %w", err)
	}
	if keys == nil {
		return fmt.Errorf("api_key: the rate_limit app has no API key registry")
	}
	a.keys = keys
	for r := control.LookupOK; r <= control.LookupRevoked; r++ {
		a.results[r] = r.String()
		a.unauthType[r] = problemBase + "api-key-" + r.String()
	}
	return nil
}

// token returns the presented key, or "".
func (a *APIKeyAuth) token(r *http.Request) string {
	if a.header != "" {
		if v := r.Header[a.header]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	if a.Bearer {
		if v := r.Header["Authorization"]; len(v) > 0 && len(v[0]) > 7 && strings.EqualFold(v[0][:7], "bearer ") {
			return strings.TrimSpace(v[0][7:])
		}
	}
	if a.Query != "" {
		return queryParam(r.URL.RawQuery, a.Query)
	}
	return ""
}

// queryParam finds one query parameter without parsing the whole query.
func queryParam(raw, name string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}

// identify verifies the request's API key and sets the placeholders. It
// returns done when it has answered the request (401 or 429).
func (h *Handler) identify(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer) (done bool, err error) {
	a := h.APIKey
	tok := a.token(r)
	id, res := a.keys.Lookup(tok)
	if h.apiKeyLookups != nil {
		h.apiKeyLookups[res].Inc()
	}
	a.setPlaceholders(repl, id, res)
	if res == control.LookupOK {
		return false, nil
	}
	if tok != "" {
		if wait, limited := h.chargeFailure(r, repl); limited {
			return true, h.refuse(w, r, wait)
		}
	}
	if !a.Require {
		return false, nil
	}
	return true, h.unauthorized(w, r, res)
}

// setPlaceholders publishes a lookup: its result, and for a verified key
// its id, name, tier and owner (boxed once per key, so this does not
// allocate).
func (a *APIKeyAuth) setPlaceholders(repl *caddy.Replacer, id *control.Identity, res control.LookupResult) {
	repl.Set(phAPIKeyResult, a.results[res])
	if res != control.LookupOK {
		return
	}
	repl.Set(phAPIKeyID, id.Values[0])
	repl.Set(phAPIKeyName, id.Values[1])
	repl.Set(phAPIKeyTier, id.Values[2])
	repl.Set(phAPIKeyOwner, id.Values[3])
}

// chargeFailure counts a failed lookup against the client IP and reports
// whether the client has failed too often.
func (h *Handler) chargeFailure(r *http.Request, repl *caddy.Replacer) (time.Duration, bool) {
	ip, _ := repl.GetString("http.vars.client_ip")
	a := h.APIKey
	reqs := []store.Request{{
		Zone: apiKeyFailureZone, Key: hashKey(apiKeyFailureZone, ip),
		Algorithm: a.failures, Policy: a.policy, Cost: 1,
	}}
	out := make([]algorithms.Decision, 1)
	if err := h.store.Take(r.Context(), reqs, out); err != nil {
		return 0, false // the store's failure policy covers decisions, not this count
	}
	return out[0].RetryAfter, !out[0].Allowed
}

// unauthorized answers 401 for a missing or invalid key: a Caddy error when
// the server has error routes, otherwise a problem+json body.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, res control.LookupResult) error {
	detail := unauthorizedDetail[res]
	if h.APIKey.Bearer {
		v := `Bearer realm="api"`
		if res != control.LookupMissing {
			v += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	if hasErrorRoutes(r) {
		return caddyhttp.Error(http.StatusUnauthorized, fmt.Errorf("%s", detail))
	}
	hdr := w.Header()
	// Fresh slices: a later `header` directive may rewrite values in place.
	hdr["Content-Type"] = []string{problemType}
	hdr["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusUnauthorized)
	_, err := fmt.Fprintf(w, `{"type":%q,"title":"Unauthorized","status":401,"detail":%q,"reason":%q}`,
		h.APIKey.unauthType[res], detail, res.String())
	return err
}

var unauthorizedDetail = [...]string{
	control.LookupOK:        "",
	control.LookupMissing:   "an API key is required",
	control.LookupMalformed: "the API key is malformed",
	control.LookupUnknown:   "the API key is unknown",
	control.LookupExpired:   "the API key has expired",
	control.LookupRevoked:   "the API key was revoked",
}

// problemBase is the prefix of every problem type URI.
const problemBase = "https://github.com/ratewarden/ratewarden/blob/main/docs/problems.md#"
