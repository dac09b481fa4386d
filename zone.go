package ratewarden

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
	"github.com/ratewarden/ratewarden/topk"
)

// Zone is one rate limit: which requests it applies to, how they are
// grouped into keys, and the policy each key gets. Its JSON is a superset of
// caddy-ratelimit's zone (match, key, window, max_events).
type Zone struct {
	// Match selects the requests the zone applies to, with any Caddy request
	// matchers, including `expression` (CEL). Sets are ORed, matchers within
	// a set ANDed. If a matcher fails at run time (for example a CEL
	// expression that errors), the zone applies: a broken expression never
	// switches protection off. Default: every request.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// Key groups requests into counters. Placeholders are expanded, for
	// example "{http.request.remote.host}" or "{http.request.header.X-API-Key}".
	// A key that is empty after expansion, including a static key, means one
	// counter shared by every request of the zone. Default: "" (one counter).
	Key string `json:"key,omitempty"`

	// KeyExpression is a CEL expression returning a string, used instead of
	// Key. Placeholders are written {like.this}. If it fails at run time the
	// client IP ({http.vars.client_ip}) is used as the key. Example:
	// `{http.request.header.X-Tenant} + ":" + {http.request.uri.path}`.
	KeyExpression string `json:"key_expression,omitempty"`

	// IPv4Prefix masks a key that is an IPv4 address to this many leading
	// bits, so a whole network shares one counter. Example: 24. Default: 32
	// (or the handler's ipv4_prefix).
	IPv4Prefix int `json:"ipv4_prefix,omitempty"`

	// IPv6Prefix masks a key that is an IPv6 address. Example: 64. Default:
	// 128 (or the handler's ipv6_prefix).
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`

	// Algorithm names a rate_limit.algorithms module: sliding_log, gcra,
	// token_bucket, fixed_window, sliding_window or concurrency.
	// Default: sliding_log (the meaning of a caddy-ratelimit zone).
	Algorithm string `json:"algorithm,omitempty"`

	// Window is the period MaxEvents applies to. Required except for the
	// concurrency algorithm, where it is the lease after which a slot that
	// was never released is reclaimed. Example: "1m".
	Window caddy.Duration `json:"window,omitempty"`

	// MaxEvents is the number of events (units of cost) allowed per Window
	// for each key; for concurrency, the requests in flight. Required.
	MaxEvents int64 `json:"max_events,omitempty"`

	// Burst is the largest cost admitted at once from an idle key, for gcra
	// and token_bucket. Default: MaxEvents.
	Burst int64 `json:"burst,omitempty"`

	// Cost is what each request is charged. Default: 1.
	Cost int64 `json:"cost,omitempty"`

	// CostExpression is a CEL expression returning an int, used instead of
	// Cost. A negative result or a run-time error charges the default cost
	// of 1 (and is logged). Example: `{http.request.method} == "POST" ? 5 : 1`.
	CostExpression string `json:"cost_expression,omitempty"`

	// Shadow evaluates and counts the zone but never refuses a request.
	Shadow bool `json:"shadow,omitempty"`

	// CountIf charges the zone only for requests whose response matches,
	// for example status 401 and 403 for login brute-force protection. The
	// request is still checked before it is forwarded: once the key has
	// spent its quota, further requests are refused.
	CountIf *caddyhttp.ResponseMatcher `json:"count_if,omitempty"`

	// LogKey writes the raw key in rejection logs instead of its hash.
	LogKey bool `json:"log_key,omitempty"`

	name     string
	alg      algorithms.Algorithm
	policy   algorithms.Policy
	matchers caddyhttp.MatcherSets
	keyExpr  *celExpr
	costExpr *celExpr
	// keyHasPlaceholders is false for a static key, whose hash is computed
	// once in staticKey.
	keyHasPlaceholders bool
	staticKey          store.Key
	// keyPlaceholder is set when Key is exactly one placeholder, which is
	// read without building a string.
	keyPlaceholder string
	// nameValue is the zone name boxed once for the replacer.
	nameValue any
	// logFields are the access-log fields for each outcome, built once.
	logFields   map[string]zap.Field
	concurrency bool
	counters    *zoneCounters
	// top tracks the zone's most-denied keys (nil with metrics off).
	top *topk.Sketch
	// Precomputed response header values.
	quotedName, policyHeader, limitHeader string
	// refusedHeader is the last RateLimit header value of a refusal, reused
	// while its reset time is the same (see rateLimitHeader).
	refusedHeader atomic.Pointer[cachedHeader]
}

// provision checks and prepares z. defaults carries handler-level settings.
func (z *Zone) provision(ctx caddy.Context, name string, defaults zoneDefaults) error {
	z.name = name
	if z.Algorithm == "" {
		z.Algorithm = "sliding_log"
	}
	alg, err := algorithms.Lookup(z.Algorithm)
	if err != nil {
		return err
	}
	z.alg = alg
	z.concurrency = z.Algorithm == "concurrency"

	if z.MaxEvents <= 0 {
		return fmt.Errorf("max_events must be greater than zero, got %d", z.MaxEvents)
	}
	if z.Window <= 0 && !z.concurrency {
		return fmt.Errorf("window must be greater than zero")
	}
	z.policy = algorithms.Policy{Limit: z.MaxEvents, Window: time.Duration(z.Window), Burst: z.Burst}
	if err := z.policy.Validate(); err != nil {
		return err
	}
	if z.Cost < 0 {
		return fmt.Errorf("cost must not be negative, got %d", z.Cost)
	}
	if z.Cost == 0 {
		z.Cost = 1
	}
	if z.concurrency && z.CountIf != nil {
		return fmt.Errorf("count_if cannot be used with the concurrency algorithm")
	}
	if z.Key != "" && z.KeyExpression != "" {
		return fmt.Errorf("key and key_expression are mutually exclusive")
	}
	if z.Cost != 1 && z.CostExpression != "" {
		return fmt.Errorf("cost and cost_expression are mutually exclusive")
	}
	if z.IPv4Prefix == 0 {
		z.IPv4Prefix = defaults.ipv4Prefix
	}
	if z.IPv6Prefix == 0 {
		z.IPv6Prefix = defaults.ipv6Prefix
	}
	if z.IPv4Prefix < 0 || z.IPv4Prefix > 32 {
		return fmt.Errorf("ipv4_prefix must be between 1 and 32, got %d", z.IPv4Prefix)
	}
	if z.IPv6Prefix < 0 || z.IPv6Prefix > 128 {
		return fmt.Errorf("ipv6_prefix must be between 1 and 128, got %d", z.IPv6Prefix)
	}
	z.LogKey = z.LogKey || defaults.logKey
	z.Shadow = z.Shadow || defaults.shadow

	if z.MatcherSetsRaw != nil {
		mods, err := ctx.LoadModule(z, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("loading matchers: %w", err)
		}
		if err := z.matchers.FromInterface(mods); err != nil {
			return fmt.Errorf("loading matchers: %w", err)
		}
	}
	if z.KeyExpression != "" {
		if z.keyExpr, err = compileCEL(z.KeyExpression, cel.StringType); err != nil {
			return fmt.Errorf("key_expression: %w", err)
		}
	}
	if z.CostExpression != "" {
		if z.costExpr, err = compileCEL(z.CostExpression, cel.IntType); err != nil {
			return fmt.Errorf("cost_expression: %w", err)
		}
	}
	z.quotedName = sfString(name)
	z.policyHeader = z.quotedName + ";q=" + strconv.FormatInt(z.MaxEvents, 10)
	if !z.concurrency {
		z.policyHeader += ";w=" + strconv.FormatInt(ceilSeconds(time.Duration(z.Window)), 10)
	}
	z.limitHeader = strconv.FormatInt(z.MaxEvents, 10)
	z.nameValue = name
	z.logFields = make(map[string]zap.Field, 3)
	for _, outcome := range []string{outcomeAllowed, outcomeDenied, outcomeShadowDenied} {
		z.logFields[outcome] = zap.Inline(accessLogDecision{zone: name, decision: outcome})
	}
	if strings.Count(z.Key, "{") == 1 && strings.HasPrefix(z.Key, "{") && strings.HasSuffix(z.Key, "}") {
		z.keyPlaceholder = z.Key[1 : len(z.Key)-1]
	}
	z.keyHasPlaceholders = z.keyExpr != nil || containsPlaceholder(z.Key)
	if !z.keyHasPlaceholders {
		z.staticKey = hashKey(name, z.maskIP(z.Key))
	}
	return nil
}

// zoneDefaults are handler-level settings that zones inherit.
type zoneDefaults struct {
	ipv4Prefix, ipv6Prefix int
	logKey, shadow         bool
}

// matches reports whether z applies to r. A matcher error applies the zone.
func (z *Zone) matches(r *http.Request) (bool, error) {
	if len(z.matchers) == 0 {
		return true, nil
	}
	ok, err := z.matchers.AnyMatchWithError(r)
	if err != nil {
		return true, err
	}
	return ok, nil
}

// key computes the request's hashed key and, when the raw key is needed for
// logging, the raw key.
func (z *Zone) key(repl *caddy.Replacer) (store.Key, string, error) {
	if !z.keyHasPlaceholders {
		return z.staticKey, z.Key, nil
	}
	var raw string
	var err error
	if z.keyExpr != nil {
		raw, err = z.keyExpr.evalString(repl)
		if err != nil {
			raw = repl.ReplaceAll("{http.vars.client_ip}", "")
		}
	} else if z.keyPlaceholder != "" {
		raw, _ = repl.GetString(z.keyPlaceholder)
	} else {
		raw = repl.ReplaceAll(z.Key, "")
	}
	raw = z.maskIP(raw)
	return hashKey(z.name, raw), raw, err
}

// cost computes the request's cost. A failing or negative expression costs
// the default 1.
func (z *Zone) cost(repl *caddy.Replacer) (int64, error) {
	if z.costExpr == nil {
		return z.Cost, nil
	}
	n, err := z.costExpr.evalInt(repl)
	if err != nil {
		return 1, err
	}
	if n < 0 {
		return 1, fmt.Errorf("cost expression returned %d; negative costs are charged as 1", n)
	}
	return n, nil
}

// maskIP masks raw to the zone's prefix when it is an IP address.
func (z *Zone) maskIP(raw string) string {
	if (z.IPv4Prefix == 0 || z.IPv4Prefix == 32) && (z.IPv6Prefix == 0 || z.IPv6Prefix == 128) {
		return raw
	}
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return raw
	}
	bits := z.IPv6Prefix
	if addr.Is4() || addr.Is4In6() {
		addr = addr.Unmap()
		bits = z.IPv4Prefix
	}
	if bits == 0 {
		return raw
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return raw
	}
	return p.String()
}

// hashKey turns a zone name and raw key into the key a store sees. Raw keys
// of any size or content hash to 16 bytes, so hostile keys cannot grow
// memory or collide on purpose.
func hashKey(zone, raw string) store.Key {
	var buf [256]byte
	b := append(buf[:0], zone...)
	b = append(b, 0)
	b = append(b, raw...)
	sum := sha256.Sum256(b)
	var k store.Key
	copy(k[:], sum[:len(k)])
	return k
}

// containsPlaceholder reports whether s has a {placeholder}.
func containsPlaceholder(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '{' {
			for j := i + 1; j < len(s); j++ {
				if s[j] == '}' {
					return true
				}
			}
		}
	}
	return false
}

// sfString renders s as a structured-field string (RFC 9651): quoted, with
// backslash and quote escaped and anything outside printable ASCII replaced.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
